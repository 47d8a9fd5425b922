//! The whole forward pass on the GPU (lavapipe in CI) and on the CPU backend against llama.cpp's
//! outputs for the same model files (fixtures from scripts/golden/make-goldens.py, llama-cpp-python 0.3.36):
//! last-position logits and greedy continuations, for the tiny random model and the real
//! Qwen2.5-Coder-0.5B-Instruct Q4_K_M model. Tolerances: `support::golden`.

mod support;

use std::path::Path;

use qwen_webgpu::engine::{Engine, EngineOptions};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::{load_cpu_engine, load_engine};
use serde_json::Value;
use support::golden::{check_greedy, check_logits, golden, ids, logits_after, LOGIT_TOLERANCE};

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

/// The CPU backend on 2 threads (this machine's cores), with the same context as [`load`].
fn load_cpu(model: &Path) -> Engine {
    load_cpu_engine(
        model,
        &EngineOptions {
            context_length: 512,
            prefill_chunk: 64,
            ..EngineOptions::default()
        },
        2,
    )
    .expect("model loads on the CPU")
}

fn tiny_model_run(gpu: GpuOptions) {
    tiny_model_checks(load(&support::tiny_model(), gpu));
}

fn tiny_model_checks(mut engine: Engine) {
    let doc = golden("tiny_logits.json");
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
    let gpu_context = engine.gpu().expect("a GPU engine");
    assert!(
        gpu_context.subgroup_min_size == Some(8) && gpu_context.f16,
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
        ..GpuOptions::default()
    });
}

#[test]
fn cpu_tiny_model_matches_llama_cpp() {
    tiny_model_checks(load_cpu(&support::tiny_model()));
}

#[test]
fn real_model_matches_llama_cpp() {
    // Long prompts cost minutes on a CPU rasterizer; the short ones cover every path.
    let checked = real_model_checks(load(&support::real_model(), GpuOptions::default()), 25);
    assert!(checked >= 6, "only {checked} logits cases checked");
}

#[test]
fn cpu_real_model_matches_llama_cpp() {
    let cases = golden("logits.json")["cases"].as_array().unwrap().len();
    let checked = real_model_checks(load_cpu(&support::real_model()), usize::MAX);
    assert_eq!(
        checked, cases,
        "every logits case, the 127-token one included"
    );
}

/// The logits cases of prompts up to `max_prompt` tokens and the greedy cases; returns how
/// many logits cases were checked.
fn real_model_checks(mut engine: Engine, max_prompt: usize) -> usize {
    let mut cached = Vec::new();
    let logits_doc = golden("logits.json");
    let mut checked = 0;
    for case in logits_doc["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        if prompt.len() > max_prompt {
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

    let greedy_doc = golden("greedy.json");
    let compared = check_greedy(
        &mut engine,
        &mut cached,
        greedy_doc["cases"].as_array().unwrap(),
        24,
    );
    assert!(compared >= 30, "only {compared} greedy tokens compared");
    checked
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

/// `logits --backend cpu --threads 2` on the real model ranks as llama.cpp (the same rule as
/// [`check_logits`]: order only where llama.cpp's logits are further apart than the
/// tolerance), with each logit within LOGIT_TOLERANCE.
#[test]
fn cli_logits_on_the_cpu_backend() {
    let doc = golden("logits.json");
    let case = &doc["cases"][0];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_qwen-webgpu"))
        .args([
            "logits",
            "--backend",
            "cpu",
            "--threads",
            "2",
            "--top",
            "5",
            "--json",
            "--context",
            "64",
            "--prompt",
        ])
        .arg(case["prompt"].as_str().unwrap())
        .arg(support::real_model())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ours: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(ours["prompt_ids"], case["prompt_ids"]);
    let reference = case["top"].as_array().unwrap();
    let reference_logit = |id: &Value| {
        reference
            .iter()
            .find(|r| &r["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not in llama.cpp's top list"))["logit"]
            .as_f64()
            .unwrap()
    };
    let top = ours["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    for (rank, mine) in top.iter().enumerate() {
        let theirs = reference_logit(&mine["id"]);
        let diff = (mine["logit"].as_f64().unwrap() - theirs).abs();
        assert!(diff <= LOGIT_TOLERANCE, "rank {rank}: {mine} vs {theirs}");
        let at_rank = reference[rank]["logit"].as_f64().unwrap();
        assert!(
            (theirs - at_rank).abs() < LOGIT_TOLERANCE,
            "rank {rank} is {} here, {} in llama.cpp",
            mine["id"],
            reference[rank]["id"]
        );
    }
}
