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

use qwen_webgpu::engine::EngineOptions;
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::load_engine;
use serde_json::Value;
use support::golden::{check_greedy, check_logits, golden, ids, logits_after};

fn first_shard() -> PathBuf {
    let path = PathBuf::from(std::env::var_os("QWEN_7B_SHAPED_MODEL").expect(
        "QWEN_7B_SHAPED_MODEL must name the 7B-shaped model's first shard (scripts/test --7b \
         generates it with scripts/make-7b-shaped-model and sets it)",
    ));
    assert!(path.is_file(), "{} is missing", path.display());
    path
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

/// The largest difference between our logits and llama.cpp's listed ones (for the log).
fn largest_difference(ours: &[f32], top: &[Value]) -> f64 {
    top.iter()
        .map(|t| {
            let id = t["id"].as_u64().expect("id") as usize;
            (f64::from(ours[id]) - t["logit"].as_f64().expect("logit")).abs()
        })
        .fold(0.0, f64::max)
}

#[test]
#[ignore = "minutes and a 4.7 GB model: run by scripts/test --7b"]
fn seven_b_shaped_model_matches_llama_cpp() {
    let path = first_shard();
    let doc = golden("logits_7b_shaped.json");
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
        engine
            .gpu()
            .map_or("the CPU".into(), |gpu| gpu.adapter_description()),
        peak as f64 / 1e9
    );
    assert!(
        peak < model_bytes + model_bytes / 4,
        "peak RSS {peak} bytes for a {model_bytes}-byte model"
    );

    let mut cached = Vec::new();
    for case in doc["logits"].as_array().expect("logits") {
        let name = case["name"].as_str().expect("name");
        let top = case["top"].as_array().expect("top");
        let start = Instant::now();
        let logits = logits_after(&mut engine, &mut cached, &ids(&case["prompt_ids"]));
        println!(
            "{name}: prefill {:.1} s, largest logit difference {:.3}",
            start.elapsed().as_secs_f64(),
            largest_difference(&logits, top)
        );
        assert_eq!(logits.len(), 152_064);
        check_logits(name, &logits, top);
    }

    let start = Instant::now();
    let greedy = [doc["greedy"].clone()];
    let compared = check_greedy(&mut engine, &mut cached, &greedy, 2);
    println!(
        "greedy: {compared} tokens in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(compared, 2, "greedy steps compared");
}
