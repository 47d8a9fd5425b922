//! GGUF parsing on synthetic files: every value type, incremental parsing, split models, and
//! hostile input (truncations, byte flips, absurd counts) giving typed errors, never panics.

mod support;

use proptest::prelude::*;
use qwen_webgpu::gguf::{
    parse_header, shard_file_name, GgmlType, GgufError, GgufHeader, GgufModel, HeaderParse, Limits,
    MetadataArray, MetadataValue,
};
use qwen_webgpu::model_config::{ConfigError, Qwen2Config};
use support::{put_string, put_value, sample_file, GgufWriter};

fn parse_complete(bytes: &[u8]) -> Result<GgufHeader, GgufError> {
    match parse_header(bytes, Some(bytes.len() as u64), &Limits::default())? {
        HeaderParse::Complete(h) => Ok(*h),
        HeaderParse::NeedBytes(n) => panic!("a whole file cannot need more bytes ({n})"),
    }
}

#[test]
fn sample_file_round_trips_every_value_type() {
    let bytes = sample_file().build();
    let h = parse_complete(&bytes).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(h.alignment, 32);
    assert_eq!(h.data_offset % 32, 0);
    assert_eq!(h.data_end(), bytes.len() as u64);
    let md = &h.metadata;
    assert_eq!(md.get("test.i8"), Some(&MetadataValue::I8(-7)));
    assert_eq!(md.get("test.i16"), Some(&MetadataValue::I16(-300)));
    assert_eq!(md.get("test.i64"), Some(&MetadataValue::I64(-1 << 40)));
    assert_eq!(md.get("test.bool"), Some(&MetadataValue::Bool(true)));
    assert_eq!(
        md.get("test.nested"),
        Some(&MetadataValue::Array(MetadataArray::Array(vec![
            MetadataArray::String(vec!["a".into(), "ü".into()]),
            MetadataArray::Array(vec![MetadataArray::F32(vec![1.5, -2.0])]),
        ])))
    );
    let t = h.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(t.ggml_type, GgmlType::Q4K);
    assert_eq!(t.shape, vec![256, 64]);
    assert_eq!(t.bytes, 64 * 144);
    assert_eq!(t.rows(), 64);
    assert_eq!(t.row_bytes(), 144);
    let embd = h.tensor("token_embd.weight").unwrap();
    assert_eq!((embd.offset, embd.bytes), (0, 40 * 2 * 34));
}

#[test]
fn version_2_files_parse() {
    let mut w = sample_file();
    w.version = 2;
    assert_eq!(parse_complete(&w.build()).unwrap().version, 2);
}

#[test]
fn qwen2_config_from_sample() {
    let h = parse_complete(&sample_file().build()).unwrap();
    let model = GgufModel::from_shards(vec![h]).unwrap();
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
        (1, 64, 256, 4, 2, 16)
    );
    assert_eq!(
        (c.rope_base, c.rms_eps, c.context_length),
        (1.0e6, 1e-6, 256)
    );
    assert_eq!(c.vocab_size, 40);
    assert!(c.tied_embeddings, "the sample has no output.weight");
    assert_eq!(c.rope_scaling, None);
}

#[test]
fn qwen2_config_errors_are_typed() {
    let with = |key: &str, value: MetadataValue| {
        let mut w = sample_file();
        match w.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => w.metadata.push((key.into(), value)),
        }
        let h = parse_complete(&w.build()).unwrap();
        Qwen2Config::from_model(&GgufModel::from_shards(vec![h]).unwrap())
    };
    assert_eq!(
        with(
            "general.architecture",
            MetadataValue::String("llama".into())
        ),
        Err(ConfigError::WrongArchitecture {
            found: "llama".into()
        })
    );
    assert!(matches!(
        with("qwen2.attention.head_count_kv", MetadataValue::U32(3)),
        Err(ConfigError::Invalid { .. })
    ));
    assert!(matches!(
        with("qwen2.block_count", MetadataValue::String("24".into())),
        Err(ConfigError::WrongType { .. })
    ));
    assert!(matches!(
        with("qwen2.rope.freq_base", MetadataValue::F32(f32::NAN)),
        Err(ConfigError::Invalid { .. })
    ));
    let scaled = with(
        "qwen2.rope.scaling.type",
        MetadataValue::String("yarn".into()),
    )
    .unwrap();
    let scaling = scaled.rope_scaling.unwrap();
    assert_eq!((scaling.kind.as_str(), scaling.factor), ("yarn", 1.0));
}

/// The sample's Qwen2 configuration with the metadata `changes` made.
fn config_with(changes: &[(&str, MetadataValue)]) -> Result<Qwen2Config, ConfigError> {
    let mut w = sample_file();
    for (key, value) in changes {
        match w.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.clone(),
            None => w.metadata.push((key.to_string(), value.clone())),
        }
    }
    let h = parse_complete(&w.build()).unwrap();
    Qwen2Config::from_model(&GgufModel::from_shards(vec![h]).unwrap())
}

#[test]
fn qwen2_config_products_cannot_wrap() {
    // 4,096 heads of 1,048,578 make 4,294,975,488 = 2^32 + 8,192: computed in a 32-bit usize
    // (wasm32) the width wraps around to 8,192 and would match this embedding length.
    let wrapping = [
        ("qwen2.embedding_length", MetadataValue::U32(8192)),
        ("qwen2.attention.head_count", MetadataValue::U32(4096)),
        ("qwen2.attention.key_length", MetadataValue::U32(1_048_578)),
    ];
    assert_eq!(
        config_with(&wrapping),
        Err(ConfigError::TooLarge {
            what: "the attention width (heads times head dimension)".into(),
            value: 4_294_975_488,
            limit: 1 << 24,
        })
    );
    // 65,534 query heads of 2 and 2 key-value heads: a consistent shape, but one workgroup per
    // query and key head is more than a dispatch dimension holds.
    let many_heads = [
        ("qwen2.embedding_length", MetadataValue::U32(131_068)),
        ("qwen2.attention.head_count", MetadataValue::U32(65_534)),
        ("qwen2.attention.key_length", MetadataValue::U32(2)),
    ];
    assert_eq!(
        config_with(&many_heads),
        Err(ConfigError::TooLarge {
            what: "the query plus key-value head count".into(),
            value: 65_536,
            limit: 65_535,
        })
    );
    // One head fewer on each side of the limit loads.
    let c = config_with(&[
        ("qwen2.embedding_length", MetadataValue::U32(131_066)),
        ("qwen2.attention.head_count", MetadataValue::U32(65_533)),
        ("qwen2.attention.head_count_kv", MetadataValue::U32(1)),
        ("qwen2.attention.key_length", MetadataValue::U32(2)),
    ])
    .unwrap();
    assert_eq!((c.n_heads, c.n_kv_heads, c.head_dim), (65_533, 1, 2));
}

/// The sample's configuration with `tokens` tokenizer tokens and `rows` embedding rows.
fn config_with_vocabulary(tokens: usize, rows: u64) -> Result<Qwen2Config, ConfigError> {
    let mut w = sample_file();
    for (key, value) in &mut w.metadata {
        if key == "tokenizer.ggml.tokens" {
            *value = MetadataValue::Array(MetadataArray::String(
                (0..tokens).map(|i| format!("tok{i}")).collect(),
            ));
        }
    }
    for (name, _, shape) in &mut w.tensors {
        if name == "token_embd.weight" {
            *shape = vec![64, rows];
        }
    }
    let h = parse_complete(&w.build()).unwrap();
    Qwen2Config::from_model(&GgufModel::from_shards(vec![h]).unwrap())
}

#[test]
fn embedding_rows_must_match_the_tokenizer() {
    // Rows padded to a multiple of 64 or of 32 load.
    assert_eq!(config_with_vocabulary(40, 64).map(|c| c.vocab_size), Ok(64));
    assert_eq!(config_with_vocabulary(70, 96).map(|c| c.vocab_size), Ok(96));
    // Qwen2.5's 151,665 tokens with the embeddings of its 0.5B and 7B models.
    assert_eq!(
        config_with_vocabulary(151_665, 151_936).map(|c| c.vocab_size),
        Ok(151_936)
    );
    assert_eq!(
        config_with_vocabulary(151_665, 152_064).map(|c| c.vocab_size),
        Ok(152_064)
    );
    // Far more rows than tokens: another model's tokenizer.
    assert_eq!(
        config_with_vocabulary(40, 4096),
        Err(ConfigError::EmbeddingRows {
            rows: 4096,
            tokens: 40,
            max_rows: 1024
        })
    );
    // Fewer rows than tokens: some token ids would have no embedding.
    assert_eq!(
        config_with_vocabulary(41, 40),
        Err(ConfigError::EmbeddingRows {
            rows: 40,
            tokens: 41,
            max_rows: 1024
        })
    );
    // A token list that is not an array.
    assert!(matches!(
        config_with(&[("tokenizer.ggml.tokens", MetadataValue::U32(40))]),
        Err(ConfigError::WrongType { key, expected: "array", .. }) if key == "tokenizer.ggml.tokens"
    ));
}

#[test]
fn every_prefix_asks_for_more_then_completes() {
    let bytes = sample_file().build();
    let full = parse_complete(&bytes).unwrap();
    let header_end = full.data_offset as usize;
    for len in 0..header_end {
        match parse_header(&bytes[..len], None, &Limits::default()) {
            Ok(HeaderParse::NeedBytes(n)) => {
                assert!(
                    n > len as u64 && n <= header_end as u64,
                    "len {len} asked {n}"
                )
            }
            // The header proper may end before the alignment padding.
            Ok(HeaderParse::Complete(h)) => assert_eq!(*h, full, "len {len}"),
            Err(e) => panic!("prefix {len}: {e}"),
        }
        // Knowing the file length changes nothing while the prefix is short.
        assert!(matches!(
            parse_header(&bytes[..len], Some(bytes.len() as u64), &Limits::default()),
            Ok(HeaderParse::NeedBytes(_)) | Ok(HeaderParse::Complete(_))
        ));
    }
    // Following the parser's own requests reaches the full header in few steps.
    let (mut len, mut steps) = (0usize, 0);
    let header = loop {
        steps += 1;
        match parse_header(&bytes[..len], None, &Limits::default()).unwrap() {
            HeaderParse::NeedBytes(n) => len = n as usize,
            HeaderParse::Complete(h) => break h,
        }
    };
    assert_eq!(*header, full);
    assert!(steps < 200, "{steps} steps");
}

#[test]
fn truncation_at_every_offset_is_a_typed_error() {
    let bytes = sample_file().build();
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        match parse_header(cut, Some(len as u64), &Limits::default()) {
            Err(GgufError::Truncated { offset, .. }) => assert!(offset <= len as u64),
            Err(GgufError::TensorOutOfFile { file_len, .. }) => assert_eq!(file_len, len as u64),
            other => panic!("cut at {len}: {other:?}"),
        }
    }
}

#[test]
fn structural_errors_are_reported() {
    let good = sample_file().build();

    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(
        parse_complete(&bad),
        Err(GgufError::BadMagic { .. })
    ));

    let mut bad = good.clone();
    bad[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        parse_complete(&bad),
        Err(GgufError::UnsupportedVersion { version: 1 })
    );
    bad[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        parse_complete(&bad),
        Err(GgufError::BigEndian { version: 3 })
    );

    let dup = sample_file().kv("test.u8", MetadataValue::U8(1)).build();
    assert!(matches!(
        parse_complete(&dup),
        Err(GgufError::DuplicateKey { key, .. }) if key == "test.u8"
    ));

    let dup = sample_file()
        .tensor("output_norm.weight", GgmlType::F32, &[64])
        .build();
    assert!(matches!(
        parse_complete(&dup),
        Err(GgufError::DuplicateTensor { name, .. }) if name == "output_norm.weight"
    ));

    let mut w = sample_file();
    w.metadata[1].1 = MetadataValue::U32(48);
    assert!(matches!(
        parse_complete(&w.build()),
        Err(GgufError::BadAlignment { .. })
    ));
}

/// A file whose only tensor info is hand-written, to place bad shapes, types and offsets.
fn one_tensor_file(name: &str, dims: &[u64], type_id: u32, offset: u64, data: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    put_string(&mut out, name);
    out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&type_id.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.resize(out.len().next_multiple_of(32) + data, 0);
    out
}

#[test]
fn tensor_info_errors_name_the_tensor() {
    let f32_id = GgmlType::F32.id();
    let q4k_id = GgmlType::Q4K.id();
    assert!(parse_complete(&one_tensor_file("w", &[8, 2], f32_id, 0, 64)).is_ok());
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[8, 2], 99, 0, 64)),
        Err(GgufError::UnknownTensorType { type_id: 99, name, .. }) if name == "w"
    ));
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[], f32_id, 0, 64)),
        Err(GgufError::BadShape { .. })
    ));
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[1, 1, 1, 1, 1], f32_id, 0, 64)),
        Err(GgufError::BadShape { .. })
    ));
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[100, 2], q4k_id, 0, 64)),
        Err(GgufError::BadShape { .. })
    ));
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[u64::MAX, 2], f32_id, 0, 64)),
        Err(GgufError::BadShape { .. })
    ));
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[1 << 40, 1 << 22], f32_id, 0, 64)),
        Err(GgufError::BadShape { .. })
    ));
    // Four dimensions of 2^16, each harmless, make 2^64 elements: one more than u64 holds.
    assert_eq!(
        parse_complete(&one_tensor_file("w", &[1 << 16; 4], f32_id, 0, 64)),
        Err(GgufError::BadShape {
            offset: 24,
            name: "w".into(),
            reason: "[65536, 65536, 65536, 65536] has too many elements".into()
        })
    );
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[8, 2], f32_id, 16, 64)),
        Err(GgufError::Misaligned { offset: 16, .. })
    ));
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[8, 2], f32_id, 32, 64)),
        Err(GgufError::TensorOutOfFile { .. })
    ));
    assert!(matches!(
        parse_complete(&one_tensor_file("w", &[8, 2], f32_id, u64::MAX - 31, 64)),
        Err(GgufError::TensorOutOfFile { .. })
    ));
}

#[test]
fn overlapping_tensors_are_rejected() {
    let mut bytes = sample_file().build();
    let h = parse_complete(&bytes).unwrap();
    // Point the second tensor's offset at the first tensor's data.
    let name = b"blk.0.attn_norm.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
    let offset_at = at + name.len() + 4 + 8 + 4;
    let first = h.tensor("token_embd.weight").unwrap();
    bytes[offset_at..offset_at + 8].copy_from_slice(&(first.offset + 32).to_le_bytes());
    assert!(matches!(
        parse_complete(&bytes),
        Err(GgufError::TensorOverlap { .. })
    ));
}

/// The fixed header followed by one metadata entry whose payload is `value` (type included).
fn header_with_entry(metadata_count: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&metadata_count.to_le_bytes());
    put_string(&mut out, "k");
    out.extend_from_slice(value);
    out
}

#[test]
fn absurd_counts_fail_fast_without_allocating() {
    let limits = Limits::default();
    // 2^60 metadata entries in a tiny file.
    let bytes = header_with_entry(1 << 60, &[]);
    assert!(matches!(
        parse_header(&bytes, Some(bytes.len() as u64), &limits),
        Err(GgufError::TooLarge { .. })
    ));
    // Within the cap but more than the file can hold.
    let bytes = header_with_entry(1000, &[]);
    assert!(matches!(
        parse_header(&bytes, Some(bytes.len() as u64), &limits),
        Err(GgufError::Truncated { .. })
    ));
    // A string of 2^62 bytes.
    let mut value = 8u32.to_le_bytes().to_vec();
    value.extend_from_slice(&(1u64 << 62).to_le_bytes());
    let bytes = header_with_entry(1, &value);
    assert!(matches!(
        parse_header(&bytes, None, &limits),
        Err(GgufError::TooLarge { .. })
    ));
    // An array of 2^40 strings, with and without a known file length.
    let mut value = 9u32.to_le_bytes().to_vec();
    value.extend_from_slice(&8u32.to_le_bytes());
    value.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let bytes = header_with_entry(1, &value);
    assert!(parse_header(&bytes, None, &limits).is_err());
    assert!(parse_header(&bytes, Some(bytes.len() as u64), &limits).is_err());
    // 10 million u32s fit the caps, so an unknown-length stream asks for the bytes instead.
    let mut value = 9u32.to_le_bytes().to_vec();
    value.extend_from_slice(&4u32.to_le_bytes());
    value.extend_from_slice(&10_000_000u64.to_le_bytes());
    let bytes = header_with_entry(1, &value);
    assert_eq!(
        parse_header(&bytes, None, &limits),
        Ok(HeaderParse::NeedBytes(bytes.len() as u64 + 40_000_000))
    );
    // Deeply nested arrays stop at the depth limit.
    let mut value = 9u32.to_le_bytes().to_vec();
    for _ in 0..100 {
        value.extend_from_slice(&9u32.to_le_bytes());
        value.extend_from_slice(&1u64.to_le_bytes());
    }
    let bytes = header_with_entry(1, &value);
    assert!(matches!(
        parse_header(&bytes, None, &limits),
        Err(GgufError::TooLarge { what, .. }) if what.contains("depth")
    ));
    // Unknown value types and bad bools.
    let bytes = header_with_entry(1, &13u32.to_le_bytes());
    assert!(matches!(
        parse_header(&bytes, None, &limits),
        Err(GgufError::UnknownValueType { type_id: 13, .. })
    ));
    let mut value = 7u32.to_le_bytes().to_vec();
    value.push(2);
    let bytes = header_with_entry(1, &value);
    assert!(matches!(
        parse_header(&bytes, None, &limits),
        Err(GgufError::BadBool { value: 2, .. })
    ));
    let mut value = 8u32.to_le_bytes().to_vec();
    value.extend_from_slice(&2u64.to_le_bytes());
    value.extend_from_slice(&[0xff, 0xfe]);
    let bytes = header_with_entry(1, &value);
    assert!(matches!(
        parse_header(&bytes, None, &limits),
        Err(GgufError::BadUtf8 { .. })
    ));
    // A header that keeps going past the size cap.
    let small = Limits {
        max_header_bytes: 64,
        ..Limits::default()
    };
    let mut value = Vec::new();
    put_value(&mut value, &MetadataValue::String("x".repeat(100)));
    let bytes = header_with_entry(1, &value);
    assert!(matches!(
        parse_header(&bytes, None, &small),
        Err(GgufError::HeaderTooLarge { limit: 64, .. })
    ));
}

fn split_shards(count: u16) -> Vec<GgufHeader> {
    (0..count)
        .map(|i| {
            let mut w = if i == 0 {
                sample_file()
            } else {
                GgufWriter::new().tensor(&format!("extra.{i}"), GgmlType::F16, &[32, 3])
            };
            w = w
                .kv("split.no", MetadataValue::U16(i))
                .kv("split.count", MetadataValue::U16(count))
                .kv(
                    "split.tensors.count",
                    MetadataValue::I32(4 + i32::from(count) - 1),
                );
            parse_complete(&w.build()).unwrap()
        })
        .collect()
}

#[test]
fn split_models_present_as_one() {
    let model = GgufModel::from_shards(split_shards(3)).unwrap();
    assert_eq!(model.tensors().len(), 6);
    let t = model.tensor("extra.2").unwrap();
    assert_eq!(t.shard, 2);
    assert_eq!(t.file_offset, model.shards()[2].data_offset);
    assert_eq!(
        model
            .metadata()
            .get("general.architecture")
            .and_then(|v| v.as_str()),
        Some("qwen2")
    );
    let json = model.inspect_json(Some(16));
    assert_eq!(json["tensors"][5]["shard"], 2);
    assert_eq!(json["shards"].as_array().map(Vec::len), Some(3));
    assert_eq!(shard_file_name("m", 1, 3), "m-00002-of-00003.gguf");
}

#[test]
fn inconsistent_splits_are_rejected() {
    let mut missing = split_shards(3);
    missing.pop();
    assert!(matches!(
        GgufModel::from_shards(missing),
        Err(GgufError::BadSplit { .. })
    ));
    let mut swapped = split_shards(3);
    swapped.swap(1, 2);
    assert!(matches!(
        GgufModel::from_shards(swapped),
        Err(GgufError::BadSplit { .. })
    ));
    let mut dup = split_shards(2);
    dup[1] = dup[0].clone();
    assert!(GgufModel::from_shards(dup).is_err());
    assert!(GgufModel::from_shards(vec![]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random byte flips anywhere in a valid file: a typed result, never a panic, and a
    /// complete parse only when every tensor still fits the file.
    #[test]
    fn byte_flips_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = sample_file().build();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(HeaderParse::Complete(h)) =
            parse_header(&bytes, Some(bytes.len() as u64), &Limits::default())
        {
            prop_assert!(h.data_end() <= bytes.len() as u64);
            let _ = GgufModel::from_shards(vec![*h]).map(|m| Qwen2Config::from_model(&m));
        }
        // Unknown length: the same bytes as a stream prefix.
        let _ = parse_header(&bytes, None, &Limits::default());
    }

    /// Arbitrary bytes after a valid magic and version.
    #[test]
    fn random_headers_never_panic(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"GGUF\x03\0\0\0".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = parse_header(&bytes, Some(bytes.len() as u64), &Limits::default());
        let _ = parse_header(&bytes, None, &Limits::default());
    }
}
