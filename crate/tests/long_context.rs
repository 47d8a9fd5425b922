//! Long contexts against llama.cpp (tests/fixtures/golden/long_context.json, made by
//! scripts/golden/make-long-goldens.py): prompts of more than 3,000 tokens through flash
//! attention's splits, with the file's RoPE and with YaRN forced (factor 4 over 32,768) on
//! both sides; and the q8_0 KV cache against llama.cpp's. The real model's long prompts take
//! many minutes on a CPU rasterizer, so they are `#[ignore]`d here and run by
//! `scripts/test --long`; CI runs the tiny model's long prompt and the real model's short ones.

mod support;

use std::path::Path;

use qwen_webgpu::engine::{Engine, EngineOptions, KvCacheType};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::load_engine;
use qwen_webgpu::rope::{RopeScalingOverride, RopeScalingType};
use serde_json::Value;
use support::golden::{
    check_greedy, check_logits_within, golden, ids, logits_after, LOGIT_TOLERANCE,
};

fn case(name: &str) -> Value {
    let doc = golden("long_context.json");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("long_context.json has no case {name}"))
        .clone()
}

/// The engine with a 4,096-token context, the case's RoPE scaling and KV cache type, as
/// llama.cpp ran it.
fn load(model: &Path, case: &Value) -> Engine {
    let rope_scaling = match &case["rope_scaling"] {
        Value::Null => None,
        r => {
            assert_eq!(r["type"], "yarn", "fixture RoPE scaling");
            Some(RopeScalingOverride {
                kind: Some(RopeScalingType::Yarn),
                factor: r["factor"].as_f64().map(|f| f as f32),
                original_context_length: r["original_context_length"].as_u64().map(|n| n as usize),
            })
        }
    };
    load_engine(
        model,
        &GpuOptions::default(),
        &EngineOptions {
            context_length: 4096,
            rope_scaling,
            kv_cache: case["kv_cache"]
                .as_str()
                .map(|name| name.parse::<KvCacheType>().expect("fixture KV cache type")),
            ..EngineOptions::default()
        },
    )
    .expect("model loads (GPU adapter: lavapipe via scripts/setup)")
}

/// Last-position logits and the greedy continuation of one case.
fn check_case(model: &Path, name: &str, min_tokens: usize) {
    let case = case(name);
    let prompt = ids(&case["prompt_ids"]);
    assert!(
        prompt.len() >= min_tokens,
        "{name}: {} tokens",
        prompt.len()
    );
    let mut engine = load(model, &case);
    let mut cached = Vec::new();
    let logits = logits_after(&mut engine, &mut cached, &prompt);
    // With a q8_0 K cache llama.cpp's CPU flash attention also quantizes the queries to 8 bits
    // for its K dot products (ggml's vec_dot_q8_0_q8_0), an error our f32 queries do not add:
    // measured 0.24 on short_q8_0_cache (against llama.cpp's plain q8_0 cache: the fixture is
    // made without its Hadamard rotation, see make-long-goldens.py).
    let tolerance = match case["kv_cache"].as_str() {
        Some("q8_0") => LOGIT_TOLERANCE + 0.1,
        _ => LOGIT_TOLERANCE,
    };
    check_logits_within(
        name,
        &logits,
        case["top"].as_array().expect("top"),
        tolerance,
    );
    let compared = check_greedy(&mut engine, &mut cached, std::slice::from_ref(&case), 16);
    assert!(
        compared >= 4,
        "{name}: only {compared} greedy tokens compared"
    );
}

#[test]
fn tiny_model_long_prompt_matches_llama_cpp() {
    check_case(&support::tiny_model(), "tiny_long", 3000);
}

#[test]
fn real_model_with_yarn_matches_llama_cpp() {
    check_case(&support::real_model(), "short_yarn", 1);
}

#[test]
fn real_model_with_q8_0_kv_cache_matches_llama_cpp() {
    check_case(&support::real_model(), "short_q8_0_cache", 1);
}

#[test]
#[ignore = "minutes on a CPU rasterizer: scripts/test --long"]
fn real_model_long_prompt_matches_llama_cpp() {
    check_case(&support::real_model(), "long_default", 3000);
}

#[test]
#[ignore = "minutes on a CPU rasterizer: scripts/test --long"]
fn real_model_long_prompt_with_yarn_matches_llama_cpp() {
    check_case(&support::real_model(), "long_yarn", 3000);
}
