//! Comparing the engine with llama.cpp's golden fixtures (tests/fixtures/golden, made by
//! scripts/golden/): last-position logits and greedy continuations.
//!
//! llama.cpp quantizes activations to 8 bits in its CPU dot products, so logits agree to within
//! LOGIT_TOLERANCE rather than bit for bit (measured here: up to 0.23, typically 0.07). Hence
//! the order of two top-5 logits is only compared where llama.cpp's gap exceeds that tolerance,
//! and greedy tokens only where llama.cpp's top-1/top-2 margin exceeds NEAR_TIE.

use qwen_webgpu::engine::{Engine, Readback, StepOutput};
use serde_json::Value;

pub const LOGIT_TOLERANCE: f64 = 0.25;
pub const NEAR_TIE: f64 = 0.05;

pub fn golden(name: &str) -> Value {
    let path = super::repo_root().join("tests/fixtures/golden").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden fixture")).expect("json")
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// Positions `tokens` after the longest prefix already in the cache (the KV cache reuse the
/// generator relies on) and returns the logits of the last token.
pub fn logits_after(engine: &mut Engine, cached: &mut Vec<u32>, tokens: &[u32]) -> Vec<f32> {
    let common = cached
        .iter()
        .zip(tokens)
        .take_while(|(a, b)| a == b)
        .count();
    // At least the last token must run to produce logits.
    let keep = common.min(tokens.len() - 1);
    engine.truncate(keep);
    let out = pollster::block_on(engine.step(&tokens[keep..], Readback::Logits)).expect("step");
    *cached = tokens.to_vec();
    match out {
        StepOutput::Logits(l) => l,
        other => panic!("expected logits, got {other:?}"),
    }
}

/// Our logits against llama.cpp's top list: every listed id within LOGIT_TOLERANCE, and our
/// top-5, in order, equal to llama.cpp's except among logits closer than LOGIT_TOLERANCE.
pub fn check_logits(case: &str, ours: &[f32], top: &[Value]) {
    let reference: Vec<(usize, f64)> = top
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap() as usize,
                t["logit"].as_f64().unwrap(),
            )
        })
        .collect();
    for &(id, logit) in &reference {
        let diff = (f64::from(ours[id]) - logit).abs();
        assert!(
            diff <= LOGIT_TOLERANCE,
            "{case}: logit of {id} is {} here, {logit} in llama.cpp",
            ours[id]
        );
    }
    let mut order: Vec<usize> = (0..ours.len()).collect();
    order.sort_by(|&a, &b| ours[b].total_cmp(&ours[a]));
    for (rank, &id) in order.iter().take(5).enumerate() {
        let reference_logit = reference
            .iter()
            .find(|r| r.0 == id)
            .map(|r| r.1)
            .unwrap_or_else(|| {
                panic!("{case}: our rank-{rank} id {id} is not in llama.cpp's top list")
            });
        assert!(
            (reference_logit - reference[rank].1).abs() < LOGIT_TOLERANCE,
            "{case}: rank {rank} is {id} here, {} in llama.cpp",
            reference[rank].0
        );
    }
}

/// Greedy decoding from each case's prompt, token for token against llama.cpp until its
/// first near-tie (where either choice is right) or the end of its output. Returns how many
/// tokens were compared.
pub fn check_greedy(
    engine: &mut Engine,
    cached: &mut Vec<u32>,
    cases: &[Value],
    max_steps: usize,
) -> usize {
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let prompt = ids(&case["prompt_ids"]);
        let expected = ids(&case["generated_ids"]);
        let margins: Vec<f64> = case["margins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_f64().unwrap())
            .collect();
        let logits = logits_after(engine, cached, &prompt);
        let mut token = argmax(&logits);
        for step in 0..expected.len().min(max_steps) {
            if margins[step] < NEAR_TIE {
                break;
            }
            assert_eq!(
                token, expected[step],
                "{name}: step {step} (llama.cpp margin {})",
                margins[step]
            );
            compared += 1;
            if step + 1 == expected.len().min(max_steps) {
                break;
            }
            token = match pollster::block_on(engine.step(&[token], Readback::Argmax)) {
                Ok(StepOutput::Argmax { token, .. }) => token,
                other => panic!("{name}: {other:?}"),
            };
            cached.push(expected[step]);
        }
    }
    compared
}

pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}
