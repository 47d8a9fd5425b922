//! The model at the product's real size: the random model shaped exactly like Qwen2.5-7B-Instruct
//! Q4_K_M (two gguf-split shards, 4.68 GB, from scripts/make-7b-shaped-model) loads through the
//! streaming path and computes what llama.cpp computes on the same files
//! (tests/fixtures/golden/logits_7b_shaped.json, from scripts/golden/make-goldens.py --only
//! logits_7b_shaped).
//!
//! Minutes on lavapipe, so ignored in the default run: `scripts/test --7b` sets
//! QWEN_7B_SHAPED_MODEL to the first shard and runs it with `--ignored`; without the variable it
//! fails, saying so. Timings are printed, never asserted (benchmarks measure speed).

mod support;

use std::path::PathBuf;
use std::time::Instant;

use qwen_webgpu::engine::{Engine, EngineOptions, Readback, StepOutput};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::load_engine;
use serde_json::Value;

/// As in forward_golden.rs: llama.cpp's 8-bit activations move its logits by up to this much.
const LOGIT_TOLERANCE: f64 = 0.25;
/// Greedy steps whose llama.cpp top-1/top-2 margin is below this may flip either way.
const NEAR_TIE: f64 = 0.05;

fn first_shard() -> PathBuf {
    let path = PathBuf::from(std::env::var_os("QWEN_7B_SHAPED_MODEL").expect(
        "QWEN_7B_SHAPED_MODEL must name the 7B-shaped model's first shard (scripts/test --7b \
         generates it with scripts/make-7b-shaped-model and sets it)",
    ));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

fn golden() -> Value {
    let path = support::repo_root().join("tests/fixtures/golden/logits_7b_shaped.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden fixture")).expect("json")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// The process's peak resident memory (Linux `VmHWM`), in bytes.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

fn last_logits(engine: &mut Engine, prompt: &[u32]) -> Vec<f32> {
    engine.truncate(0);
    match pollster::block_on(engine.step(prompt, Readback::Logits)).expect("step") {
        StepOutput::Logits(l) => l,
        other => panic!("expected logits, got {other:?}"),
    }
}

/// Every id of llama.cpp's top list within LOGIT_TOLERANCE of its logit, and our top-5 in
/// llama.cpp's order except among logits closer than the tolerance.
fn check_logits(case: &str, ours: &[f32], top: &[Value]) {
    let reference: Vec<(usize, f64)> = top
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().expect("id") as usize,
                t["logit"].as_f64().expect("logit"),
            )
        })
        .collect();
    let mut worst = 0f64;
    for &(id, logit) in &reference {
        let diff = (f64::from(ours[id]) - logit).abs();
        worst = worst.max(diff);
        assert!(
            diff <= LOGIT_TOLERANCE,
            "{case}: logit of {id} is {} here, {logit} in llama.cpp",
            ours[id]
        );
    }
    let mut order: Vec<usize> = (0..ours.len()).collect();
    order.sort_by(|&a, &b| ours[b].total_cmp(&ours[a]));
    for (rank, &id) in order.iter().take(5).enumerate() {
        let logit = reference
            .iter()
            .find(|r| r.0 == id)
            .map(|r| r.1)
            .unwrap_or_else(|| panic!("{case}: our rank-{rank} id {id} is not in llama.cpp's top"));
        assert!(
            (logit - reference[rank].1).abs() < LOGIT_TOLERANCE,
            "{case}: rank {rank} is {id} here, {} in llama.cpp",
            reference[rank].0
        );
    }
    println!("{case}: top-5 as llama.cpp's, largest logit difference {worst:.3}");
}

#[test]
#[ignore = "minutes and a 4.7 GB model: run by scripts/test --7b"]
fn seven_b_shaped_model_matches_llama_cpp() {
    let path = first_shard();
    let doc = golden();
    let shards = doc["provenance"]["shards"].as_array().expect("shards");
    let mut model_bytes = 0;
    for (i, shard) in shards.iter().enumerate() {
        let name = shard["file"].as_str().expect("file");
        let file = path.with_file_name(name);
        let size = std::fs::metadata(&file)
            .expect("shard beside the first")
            .len();
        assert_eq!(
            Some(size),
            shard["size_bytes"].as_u64(),
            "shard {} is not the file the fixture was made from (sha256 {})",
            i + 1,
            shard["sha256"]
        );
        model_bytes += size;
    }

    let start = Instant::now();
    let mut engine = load_engine(
        &path,
        &GpuOptions::default(),
        &EngineOptions {
            context_length: 512,
            ..EngineOptions::default()
        },
    )
    .expect("the 7B-shaped model loads");
    let load_s = start.elapsed().as_secs_f64();
    // lavapipe's GPU memory is this process's memory: the weights once, plus little. Weight
    // writes left in staging memory until the first step would double it.
    let peak = peak_rss_bytes();
    println!(
        "loaded {model_bytes} bytes in {load_s:.1} s on {}; peak RSS {:.2} GB",
        engine.gpu().adapter_description(),
        peak as f64 / 1e9
    );
    assert!(
        peak < model_bytes + model_bytes / 4,
        "peak RSS {peak} bytes for a {model_bytes}-byte model"
    );

    for case in doc["logits"].as_array().expect("logits") {
        let name = case["name"].as_str().expect("name");
        let start = Instant::now();
        let logits = last_logits(&mut engine, &ids(&case["prompt_ids"]));
        println!("{name}: prefill {:.1} s", start.elapsed().as_secs_f64());
        assert_eq!(logits.len(), 152_064);
        check_logits(name, &logits, case["top"].as_array().expect("top"));
    }

    let greedy = &doc["greedy"];
    let expected = ids(&greedy["generated_ids"]);
    let margins: Vec<f64> = greedy["margins"]
        .as_array()
        .expect("margins")
        .iter()
        .map(|m| m.as_f64().expect("margin"))
        .collect();
    engine.truncate(0);
    let mut tokens = ids(&greedy["prompt_ids"]);
    let mut compared = 0;
    for (step, &want) in expected.iter().enumerate() {
        let start = Instant::now();
        let token = match pollster::block_on(engine.step(&tokens, Readback::Argmax)) {
            Ok(StepOutput::Argmax { token, .. }) => token,
            other => panic!("step {step}: {other:?}"),
        };
        println!("greedy step {step}: {:.1} s", start.elapsed().as_secs_f64());
        if margins[step] < NEAR_TIE {
            break;
        }
        assert_eq!(
            token, want,
            "greedy step {step} (llama.cpp margin {})",
            margins[step]
        );
        compared += 1;
        tokens = vec![token];
    }
    assert_eq!(compared, expected.len(), "greedy steps compared");
}
