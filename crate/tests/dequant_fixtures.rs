//! CPU dequantization against `gguf.quants.dequantize` (fixtures from
//! scripts/make-dequant-fixtures.py): bit for bit, on real tensors of the test model and on
//! synthetic blocks for the types the model lacks.

mod support;

use std::collections::BTreeSet;

use qwen_webgpu::dequant::{dequantize, SUPPORTED};
use qwen_webgpu::gguf::GgmlType;
use qwen_webgpu::native::read_at;
use serde_json::Value;

fn fixtures() -> Value {
    let path = support::repo_root().join("tests/fixtures/dequant.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("dequant.json is JSON")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn cases(doc: &Value) -> &Vec<Value> {
    doc["cases"].as_array().expect("cases")
}

#[test]
fn block_geometry_matches_gguf_python() {
    let doc = fixtures();
    let sizes = doc["quant_sizes"].as_object().expect("quant_sizes");
    let mut checked = 0;
    for (name, pair) in sizes {
        let ty =
            GgmlType::from_name(name).unwrap_or_else(|| panic!("gguf-py knows {name}, we do not"));
        if ty == GgmlType::Q8_1 {
            // gguf-py lists 40 bytes (two f32 scales); ggml's block_q8_1 has two f16 scales and
            // static_asserts 36. Files never store Q8_1 (it is a matmul scratch type).
            assert_eq!(ty.block_bytes(), 36);
            continue;
        }
        assert_eq!(
            (ty.block_size(), ty.block_bytes()),
            (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap()),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} types in the fixture");
}

#[test]
fn dequantization_is_bit_exact() {
    let doc = fixtures();
    let mut types = BTreeSet::new();
    for case in cases(&doc) {
        let ty = GgmlType::from_name(case["type"].as_str().unwrap()).unwrap();
        let bytes = hex(case["bytes_hex"].as_str().unwrap());
        let expected: Vec<u32> = case["values_f32_bits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got: Vec<u32> = dequantize(ty, &bytes)
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect();
        assert_eq!(got.len(), expected.len(), "{}", case["source"]);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g,
                e,
                "{} ({ty}) value {i}: got {} expected {}",
                case["source"],
                f32::from_bits(*g),
                f32::from_bits(*e)
            );
        }
        types.insert(ty);
    }
    for ty in SUPPORTED {
        assert!(types.contains(&ty), "no fixture covers {ty}");
    }
}

/// The fixture's real-model blocks are the model's bytes: the oracle covers real tensors.
#[test]
fn real_model_cases_are_the_model_bytes() {
    let doc = fixtures();
    let model = support::real_model();
    let mut real = 0;
    for case in cases(&doc) {
        let Some(offset) = case["file_offset"].as_u64() else {
            continue;
        };
        let bytes = hex(case["bytes_hex"].as_str().unwrap());
        assert_eq!(read_at(&model, offset, bytes.len()).unwrap(), bytes);
        real += 1;
    }
    assert!(real >= 10, "only {real} real-model cases");
}
