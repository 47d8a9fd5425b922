//! Test support: a GGUF writer for synthetic files, the locations of the test models, and
//! comparisons with llama.cpp's golden fixtures ([`golden`]).
#![allow(dead_code)] // each test binary uses a different part

pub mod golden;

use std::path::PathBuf;

use qwen_webgpu::gguf::{GgmlType, MetadataArray, MetadataValue};

/// Builds GGUF files byte by byte, so tests can make valid files and precisely broken ones.
pub struct GgufWriter {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, MetadataValue)>,
    pub tensors: Vec<(String, GgmlType, Vec<u64>)>,
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter {
            version: 3,
            alignment: 32,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub fn kv(mut self, key: &str, value: MetadataValue) -> Self {
        self.metadata.push((key.into(), value));
        self
    }

    pub fn tensor(mut self, name: &str, ty: GgmlType, shape: &[u64]) -> Self {
        self.tensors.push((name.into(), ty, shape.to_vec()));
        self
    }

    /// The file: header, then each tensor's data (bytes counting up from its index) in order.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut out, key);
            put_value(&mut out, value);
        }
        let mut offset = 0u64;
        let mut sizes = Vec::new();
        for (name, ty, shape) in &self.tensors {
            put_string(&mut out, name);
            out.extend_from_slice(&(shape.len() as u32).to_le_bytes());
            for d in shape {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            let rows: u64 = shape.iter().skip(1).product();
            let bytes = ty.row_bytes(shape[0]).expect("whole blocks") * rows;
            sizes.push(bytes);
            offset = (offset + bytes).next_multiple_of(self.alignment);
        }
        pad_to(&mut out, self.alignment);
        for (i, bytes) in sizes.iter().enumerate() {
            out.extend((0..*bytes).map(|b| (b as u8).wrapping_add(i as u8)));
            if i + 1 < sizes.len() {
                pad_to(&mut out, self.alignment);
            }
        }
        out
    }
}

fn pad_to(out: &mut Vec<u8>, alignment: u64) {
    while out.len() as u64 % alignment != 0 {
        out.push(0);
    }
}

pub fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn type_id(value: &MetadataValue) -> u32 {
    match value {
        MetadataValue::U8(_) => 0,
        MetadataValue::I8(_) => 1,
        MetadataValue::U16(_) => 2,
        MetadataValue::I16(_) => 3,
        MetadataValue::U32(_) => 4,
        MetadataValue::I32(_) => 5,
        MetadataValue::F32(_) => 6,
        MetadataValue::Bool(_) => 7,
        MetadataValue::String(_) => 8,
        MetadataValue::Array(_) => 9,
        MetadataValue::U64(_) => 10,
        MetadataValue::I64(_) => 11,
        MetadataValue::F64(_) => 12,
    }
}

fn array_elements(a: &MetadataArray) -> Vec<MetadataValue> {
    match a {
        MetadataArray::U8(v) => v.iter().map(|&x| MetadataValue::U8(x)).collect(),
        MetadataArray::I8(v) => v.iter().map(|&x| MetadataValue::I8(x)).collect(),
        MetadataArray::U16(v) => v.iter().map(|&x| MetadataValue::U16(x)).collect(),
        MetadataArray::I16(v) => v.iter().map(|&x| MetadataValue::I16(x)).collect(),
        MetadataArray::U32(v) => v.iter().map(|&x| MetadataValue::U32(x)).collect(),
        MetadataArray::I32(v) => v.iter().map(|&x| MetadataValue::I32(x)).collect(),
        MetadataArray::F32(v) => v.iter().map(|&x| MetadataValue::F32(x)).collect(),
        MetadataArray::Bool(v) => v.iter().map(|&x| MetadataValue::Bool(x)).collect(),
        MetadataArray::String(v) => v.iter().map(|x| MetadataValue::String(x.clone())).collect(),
        MetadataArray::U64(v) => v.iter().map(|&x| MetadataValue::U64(x)).collect(),
        MetadataArray::I64(v) => v.iter().map(|&x| MetadataValue::I64(x)).collect(),
        MetadataArray::F64(v) => v.iter().map(|&x| MetadataValue::F64(x)).collect(),
        MetadataArray::Array(v) => v.iter().map(|x| MetadataValue::Array(x.clone())).collect(),
    }
}

fn element_type_id(a: &MetadataArray) -> u32 {
    match a {
        MetadataArray::U8(_) => 0,
        MetadataArray::I8(_) => 1,
        MetadataArray::U16(_) => 2,
        MetadataArray::I16(_) => 3,
        MetadataArray::U32(_) => 4,
        MetadataArray::I32(_) => 5,
        MetadataArray::F32(_) => 6,
        MetadataArray::Bool(_) => 7,
        MetadataArray::String(_) => 8,
        MetadataArray::Array(_) => 9,
        MetadataArray::U64(_) => 10,
        MetadataArray::I64(_) => 11,
        MetadataArray::F64(_) => 12,
    }
}

pub fn put_value(out: &mut Vec<u8>, value: &MetadataValue) {
    out.extend_from_slice(&type_id(value).to_le_bytes());
    put_payload(out, value);
}

fn put_payload(out: &mut Vec<u8>, value: &MetadataValue) {
    match value {
        MetadataValue::U8(v) => out.push(*v),
        MetadataValue::I8(v) => out.push(*v as u8),
        MetadataValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::Bool(v) => out.push(u8::from(*v)),
        MetadataValue::String(s) => put_string(out, s),
        MetadataValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::Array(a) => {
            out.extend_from_slice(&element_type_id(a).to_le_bytes());
            let elements = array_elements(a);
            out.extend_from_slice(&(elements.len() as u64).to_le_bytes());
            for e in &elements {
                put_payload(out, e);
            }
        }
    }
}

/// A small but complete qwen2-shaped file covering every metadata type and nested arrays.
pub fn sample_file() -> GgufWriter {
    use MetadataValue as V;
    GgufWriter::new()
        .kv("general.architecture", V::String("qwen2".into()))
        .kv("general.alignment", V::U32(32))
        .kv("qwen2.block_count", V::U32(1))
        .kv("qwen2.context_length", V::U64(256))
        .kv("qwen2.embedding_length", V::U32(64))
        .kv("qwen2.feed_forward_length", V::U32(256))
        .kv("qwen2.attention.head_count", V::U16(4))
        .kv("qwen2.attention.head_count_kv", V::I32(2))
        .kv("qwen2.rope.freq_base", V::F32(1.0e6))
        .kv("qwen2.attention.layer_norm_rms_epsilon", V::F64(1e-6))
        .kv("test.u8", V::U8(7))
        .kv("test.i8", V::I8(-7))
        .kv("test.i16", V::I16(-300))
        .kv("test.i64", V::I64(-1 << 40))
        .kv("test.bool", V::Bool(true))
        .kv(
            "test.nested",
            V::Array(MetadataArray::Array(vec![
                MetadataArray::String(vec!["a".into(), "ü".into()]),
                MetadataArray::Array(vec![MetadataArray::F32(vec![1.5, -2.0])]),
            ])),
        )
        .kv(
            "tokenizer.ggml.tokens",
            V::Array(MetadataArray::String(
                (0..40).map(|i| format!("tok{i}")).collect(),
            )),
        )
        .tensor("token_embd.weight", GgmlType::Q8_0, &[64, 40])
        .tensor("blk.0.attn_norm.weight", GgmlType::F32, &[64])
        .tensor("blk.0.ffn_down.weight", GgmlType::Q4K, &[256, 64])
        .tensor("output_norm.weight", GgmlType::F32, &[64])
}

/// Where the project's caches live (scripts/fetch-test-model fills them).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("QWEN_WEBGPU_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/qwen-webgpu")
        }
    }
}

/// The real test model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M). Missing is a failure, not a skip.
pub fn real_model() -> PathBuf {
    let path = match std::env::var_os("QWEN_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => cache_dir().join("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
    };
    assert!(
        path.is_file(),
        "the test model {} is missing: run scripts/fetch-test-model",
        path.display()
    );
    path
}

/// The tiny random qwen2 model (2 layers, width 64, the real tokenizer), made by
/// scripts/fetch-test-model. Missing is a failure, not a skip.
pub fn tiny_model() -> PathBuf {
    let path = cache_dir().join("models/qwen2-tiny-random.gguf");
    assert!(
        path.is_file(),
        "the tiny test model {} is missing: run scripts/fetch-test-model",
        path.display()
    );
    path
}

/// The repository's top-level directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate/ has a parent")
        .to_owned()
}
