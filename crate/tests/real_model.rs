//! The GGUF reader and `inspect` CLI on the real test model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M).

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use qwen_webgpu::gguf::{parse_header, GgufError, HeaderParse, Limits};
use qwen_webgpu::model_config::Qwen2Config;
use qwen_webgpu::native::{open_model, read_at};
use serde_json::Value;

const FILE_LEN: u64 = 491_400_064;

#[test]
fn model_header_config_and_tensor_table() {
    let path = support::real_model();
    let (model, paths) = open_model(&path).unwrap();
    assert_eq!(paths, vec![path.clone()]);
    assert_eq!(model.tensors().len(), 291);
    assert_eq!(model.shards()[0].data_end(), FILE_LEN);
    let mut by_type = BTreeMap::new();
    for t in model.tensors() {
        *by_type.entry(t.info.ggml_type.name()).or_insert(0) += 1;
    }
    let expected: BTreeMap<&str, i32> = [
        ("Q5_0", 133),
        ("F32", 121),
        ("Q8_0", 13),
        ("Q6_K", 12),
        ("Q4_K", 12),
    ]
    .into();
    assert_eq!(by_type, expected);

    let c = Qwen2Config::from_model(&model).unwrap();
    assert_eq!(
        (
            c.n_layers,
            c.hidden_size,
            c.ffn_size,
            c.n_heads,
            c.n_kv_heads,
            c.head_dim
        ),
        (24, 896, 4864, 14, 2, 64)
    );
    assert_eq!((c.vocab_size, c.context_length), (151_936, 32_768));
    assert_eq!((c.rope_base, c.rms_eps), (1.0e6, 1e-6));
    assert!(!c.tied_embeddings);
    let out = model.tensor("output.weight").unwrap();
    assert_eq!(out.info.shape, vec![896, 151_936]);
    assert_eq!(out.info.ggml_type.name(), "Q8_0");
}

#[test]
fn inspect_json_cli() {
    let path = support::real_model();
    let output = Command::new(env!("CARGO_BIN_EXE_qwen-webgpu"))
        .args(["inspect", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["version"], 3);
    assert_eq!(doc["metadata"]["general.architecture"], "qwen2");
    assert_eq!(doc["metadata"]["tokenizer.ggml.tokens"]["len"], 151_936);
    let tensors = doc["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 291);
    let end = tensors
        .iter()
        .map(|t| t["offset"].as_u64().unwrap() + t["bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(end, FILE_LEN, "the data region ends at the file's end");
    let embd = tensors
        .iter()
        .find(|t| t["name"] == "token_embd.weight")
        .unwrap();
    assert_eq!(embd["type"], "Q5_0");
    assert_eq!(embd["shape"], serde_json::json!([896, 151_936]));

    let missing = Command::new(env!("CARGO_BIN_EXE_qwen-webgpu"))
        .args(["inspect", "/nonexistent.gguf"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.gguf"));
}

/// The real header cut at many offsets, as a truncated file and as a stream prefix.
#[test]
fn truncated_real_header() {
    let path = support::real_model();
    let (model, _) = open_model(&path).unwrap();
    let header_len = model.shards()[0].data_offset as usize;
    let bytes = read_at(&path, 0, header_len).unwrap();
    let limits = Limits::default();
    let mut cut = 0usize;
    while cut < header_len {
        let prefix = &bytes[..cut];
        assert!(
            matches!(
                parse_header(prefix, Some(cut as u64), &limits),
                Err(GgufError::Truncated { .. })
            ),
            "file cut at {cut}"
        );
        match parse_header(prefix, None, &limits) {
            Ok(HeaderParse::NeedBytes(n)) => assert!(n > cut as u64, "cut {cut} asked {n}"),
            other => panic!("stream prefix {cut}: {other:?}"),
        }
        cut = cut * 5 / 4 + 7919;
    }
    // A file cut inside the tensor data: the header parses, the tensors do not fit.
    assert!(matches!(
        parse_header(&bytes, Some(FILE_LEN - 1), &limits),
        Err(GgufError::TensorOutOfFile { .. })
    ));
}

#[test]
fn tiny_model_mixes_every_kernel_type() {
    let (model, _) = open_model(&support::tiny_model()).unwrap();
    let c = Qwen2Config::from_model(&model).unwrap();
    assert_eq!(
        (
            c.n_layers,
            c.hidden_size,
            c.ffn_size,
            c.n_heads,
            c.n_kv_heads,
            c.vocab_size
        ),
        (2, 64, 256, 4, 2, 151_936)
    );
    assert!(!c.tied_embeddings);
    let types: std::collections::BTreeSet<&str> = model
        .tensors()
        .iter()
        .map(|t| t.info.ggml_type.name())
        .collect();
    for ty in [
        "F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q6_K",
    ] {
        assert!(types.contains(ty), "the tiny model has no {ty} tensor");
    }
    let (real, _) = open_model(&support::real_model()).unwrap();
    assert_eq!(
        model.metadata().get("tokenizer.ggml.merges"),
        real.metadata().get("tokenizer.ggml.merges"),
        "the tiny model carries the real tokenizer"
    );
}
