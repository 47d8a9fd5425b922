//! The whole forward pass on the GPU (lavapipe in CI) against llama.cpp's outputs for the same
//! model files (fixtures from scripts/golden/make-goldens.py, llama-cpp-python 0.3.36):
//! last-position logits and greedy continuations, for the tiny random model and the real
//! Qwen2.5-Coder-0.5B-Instruct Q4_K_M model. Tolerances: `support::golden`.

mod support;

use std::path::Path;

use qwen_webgpu::engine::{Engine, EngineOptions};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::load_engine;
use serde_json::Value;
use support::golden::{check_greedy, check_logits, golden, ids, logits_after};

fn load(model: &Path, gpu: GpuOptions) -> Engine {
    load_engine(
        model,
        &gpu,
        &EngineOptions {
            context_length: 512,
            prefill_chunk: 64,
            ..EngineOptions::default()
        },
    )
    .expect("model loads (GPU adapter: lavapipe via scripts/setup)")
}

fn tiny_model_run(gpu: GpuOptions) {
    let doc = golden("tiny_logits.json");
    let mut engine = load(&support::tiny_model(), gpu);
    let mut cached = Vec::new();
    for case in doc["logits"].as_array().unwrap() {
        let logits = logits_after(&mut engine, &mut cached, &ids(&case["prompt_ids"]));
        check_logits(
            case["name"].as_str().unwrap(),
            &logits,
            case["top"].as_array().unwrap(),
        );
    }
    let compared = check_greedy(
        &mut engine,
        &mut cached,
        doc["greedy"].as_array().unwrap(),
        16,
    );
    assert!(compared >= 16, "only {compared} greedy tokens compared");
}

#[test]
fn tiny_model_matches_llama_cpp() {
    let gpu = GpuOptions::default();
    let engine = load(&support::tiny_model(), gpu.clone());
    assert!(
        engine.gpu().subgroups && engine.gpu().f16,
        "lavapipe offers subgroups and shader-f16: the default run must use them"
    );
    drop(engine);
    tiny_model_run(gpu);
}

#[test]
fn tiny_model_matches_llama_cpp_with_fallbacks_and_split_weights() {
    // The paths of adapters without subgroups or shader-f16 (f32 KV cache), and 4 MiB bindings
    // that split the 10 MiB embedding and output matrices into pieces.
    tiny_model_run(GpuOptions {
        max_binding_bytes: Some(4 << 20),
        disable_subgroups: true,
        disable_f16: true,
    });
}

#[test]
fn real_model_matches_llama_cpp() {
    let mut engine = load(&support::real_model(), GpuOptions::default());
    let mut cached = Vec::new();
    let logits_doc = golden("logits.json");
    let mut checked = 0;
    for case in logits_doc["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        // Long prompts cost minutes on a CPU rasterizer; the short ones cover every path.
        if prompt.len() > 25 {
            continue;
        }
        let logits = logits_after(&mut engine, &mut cached, &prompt);
        check_logits(
            case["name"].as_str().unwrap(),
            &logits,
            case["top"].as_array().unwrap(),
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} logits cases checked");

    let greedy_doc = golden("greedy.json");
    let compared = check_greedy(
        &mut engine,
        &mut cached,
        greedy_doc["cases"].as_array().unwrap(),
        24,
    );
    assert!(compared >= 30, "only {compared} greedy tokens compared");
}

/// `logits --prompt TEXT` tokenizes like llama.cpp and ranks like it (tiny model, via the CLI).
#[test]
fn cli_logits_from_prompt_text() {
    let doc = golden("tiny_logits.json");
    let case = &doc["logits"][0];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qwen-webgpu"))
        .args([
            "logits",
            "--top",
            "3",
            "--json",
            "--context",
            "64",
            "--prompt",
        ])
        .arg(case["prompt"].as_str().unwrap())
        .arg(support::tiny_model())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["prompt_ids"], case["prompt_ids"]);
    assert_eq!(doc["top"][0]["id"], case["top"][0]["id"]);
}
