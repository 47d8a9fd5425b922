//! Models the engine cannot run are rejected with a typed error naming the problem before any
//! GPU work; steps that would overflow the context or use unknown tokens are errors, not
//! corruption.

mod support;

use qwen_webgpu::engine::{check_model, EngineError, EngineOptions, Readback, StepOutput};
use qwen_webgpu::gguf::{
    parse_header, GgmlType, GgufModel, HeaderParse, Limits, MetadataValue as V,
};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::model_config::ConfigError;
use qwen_webgpu::native::load_engine;
use support::GgufWriter;

/// A complete one-layer qwen2 model (width 64, 4 heads of 16, 2 KV heads, FFN 256, vocab 40),
/// with the tensor `replace` given another type and shape when set.
fn model(replace: Option<(&str, GgmlType, &[u64])>, drop: Option<&str>) -> GgufModel {
    let mut w = GgufWriter::new()
        .kv("general.architecture", V::String("qwen2".into()))
        .kv("qwen2.block_count", V::U32(1))
        .kv("qwen2.context_length", V::U32(256))
        .kv("qwen2.embedding_length", V::U32(64))
        .kv("qwen2.feed_forward_length", V::U32(256))
        .kv("qwen2.attention.head_count", V::U32(4))
        .kv("qwen2.attention.head_count_kv", V::U32(2))
        .kv("qwen2.attention.layer_norm_rms_epsilon", V::F32(1e-6));
    let tensors: [(&str, GgmlType, &[u64]); 15] = [
        ("token_embd.weight", GgmlType::Q8_0, &[64, 40]),
        ("blk.0.attn_norm.weight", GgmlType::F32, &[64]),
        ("blk.0.attn_q.weight", GgmlType::Q8_0, &[64, 64]),
        ("blk.0.attn_q.bias", GgmlType::F32, &[64]),
        ("blk.0.attn_k.weight", GgmlType::Q8_0, &[64, 32]),
        ("blk.0.attn_k.bias", GgmlType::F32, &[32]),
        ("blk.0.attn_v.weight", GgmlType::Q8_0, &[64, 32]),
        ("blk.0.attn_v.bias", GgmlType::F32, &[32]),
        ("blk.0.attn_output.weight", GgmlType::Q8_0, &[64, 64]),
        ("blk.0.ffn_norm.weight", GgmlType::F32, &[64]),
        ("blk.0.ffn_gate.weight", GgmlType::Q8_0, &[64, 256]),
        ("blk.0.ffn_up.weight", GgmlType::Q8_0, &[64, 256]),
        ("blk.0.ffn_down.weight", GgmlType::Q4K, &[256, 64]),
        ("output_norm.weight", GgmlType::F32, &[64]),
        ("output.weight", GgmlType::Q8_0, &[64, 40]),
    ];
    for (name, ty, shape) in tensors {
        if Some(name) == drop {
            continue;
        }
        w = match replace {
            Some((r, rty, rshape)) if r == name => w.tensor(name, rty, rshape),
            _ => w.tensor(name, ty, shape),
        };
    }
    let bytes = w.build();
    match parse_header(&bytes, Some(bytes.len() as u64), &Limits::default()) {
        Ok(HeaderParse::Complete(h)) => GgufModel::from_shards(vec![*h]).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn complete_models_pass_the_checks() {
    let config = check_model(&model(None, None)).unwrap();
    assert!(!config.tied_embeddings);
    let tied = check_model(&model(None, Some("output.weight"))).unwrap();
    assert!(
        tied.tied_embeddings,
        "no output.weight: the embedding is the output projection"
    );
}

#[test]
fn bad_tensors_are_named() {
    assert_eq!(
        check_model(&model(None, Some("blk.0.attn_v.bias"))),
        Err(EngineError::MissingTensor {
            name: "blk.0.attn_v.bias".into()
        })
    );
    assert_eq!(
        check_model(&model(
            Some(("blk.0.ffn_up.weight", GgmlType::Q8_0, &[64, 128])),
            None
        )),
        Err(EngineError::BadShape {
            name: "blk.0.ffn_up.weight".into(),
            expected: vec![64, 256],
            found: vec![64, 128],
        })
    );
    assert_eq!(
        check_model(&model(
            Some(("blk.0.ffn_down.weight", GgmlType::Q2K, &[256, 64])),
            None
        )),
        Err(EngineError::UnsupportedType {
            name: "blk.0.ffn_down.weight".into(),
            ty: GgmlType::Q2K,
        })
    );
    assert_eq!(
        check_model(&model(
            Some(("output_norm.weight", GgmlType::Iq4Nl, &[64])),
            None
        )),
        Err(EngineError::UnsupportedType {
            name: "output_norm.weight".into(),
            ty: GgmlType::Iq4Nl,
        })
    );
}

#[test]
fn other_architectures_are_rejected() {
    let bytes = GgufWriter::new()
        .kv("general.architecture", V::String("llama".into()))
        .build();
    let header = match parse_header(&bytes, Some(bytes.len() as u64), &Limits::default()) {
        Ok(HeaderParse::Complete(h)) => *h,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        check_model(&GgufModel::from_shards(vec![header]).unwrap()),
        Err(EngineError::Config(ConfigError::WrongArchitecture {
            found: "llama".into()
        }))
    );
}

#[test]
fn context_overflow_and_bad_tokens_are_errors_and_leave_the_engine_usable() {
    let mut engine = load_engine(
        &support::tiny_model(),
        &GpuOptions::default(),
        &EngineOptions {
            context_length: 8,
            prefill_chunk: 4,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    assert_eq!(engine.capacity(), 8);
    let first = pollster::block_on(engine.step(&[785, 6722, 315], Readback::Argmax)).unwrap();
    assert_eq!(
        pollster::block_on(engine.step(&[1; 6], Readback::Argmax)),
        Err(EngineError::ContextOverflow {
            needed: 9,
            capacity: 8
        })
    );
    assert_eq!(
        pollster::block_on(engine.step(&[151_936], Readback::Argmax)),
        Err(EngineError::TokenOutOfRange {
            token: 151_936,
            vocab: 151_936
        })
    );
    assert_eq!(
        pollster::block_on(engine.step(&[], Readback::Argmax)),
        Err(EngineError::EmptyInput)
    );
    assert_eq!(engine.position(), 3, "failed steps change nothing");
    // Re-running the same prompt from the start gives the same answer: nothing was corrupted.
    engine.truncate(0);
    let again = pollster::block_on(engine.step(&[785, 6722, 315], Readback::Argmax)).unwrap();
    assert_eq!(first, again);
    // Chunked prefill (4 + 4 tokens) fills the context exactly.
    engine.truncate(0);
    let full = pollster::block_on(engine.step(&[785; 8], Readback::Logits)).unwrap();
    assert!(
        matches!(full, StepOutput::Logits(l) if l.len() == 151_936 && l.iter().all(|x| x.is_finite()))
    );
}

/// Without `output.weight` the embedding matrix is the output projection: the tiny model with
/// its output matrix removed must give exactly the logits of the same model whose output
/// matrix is replaced by the embedding's bytes.
#[test]
fn tied_embeddings_project_through_the_embedding_matrix() {
    use qwen_webgpu::engine::CheckedModel;
    use qwen_webgpu::gpu::GpuContext;
    use qwen_webgpu::native::open_model;

    let path = support::tiny_model();
    let (untied, _) = open_model(&path).unwrap();
    // The output matrix has the embedding's type and shape in the tiny model: its bytes are
    // replaced by the embedding's, so both models project through the same values.
    let mut file = std::fs::read(&path).unwrap();
    let embedding = untied.tensor("token_embd.weight").unwrap();
    let output = untied.tensor("output.weight").unwrap();
    assert_eq!(embedding.info.bytes, output.info.bytes);
    let from = embedding.file_offset as usize;
    file.copy_within(
        from..from + embedding.info.bytes as usize,
        output.file_offset as usize,
    );
    let read = |_shard: usize, offset: u64, buf: &mut [u8]| {
        let start = offset as usize;
        buf.copy_from_slice(&file[start..start + buf.len()]);
        Ok(())
    };
    let mut header = untied.shards()[0].clone();
    header.tensors.retain(|t| t.name != "output.weight");
    let tied = GgufModel::from_shards(vec![header]).unwrap();
    assert!(check_model(&tied).unwrap().tied_embeddings);

    let options = EngineOptions {
        context_length: 16,
        prefill_chunk: 16,
        ..EngineOptions::default()
    };
    let mut logits = Vec::new();
    for model in [&untied, &tied] {
        let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default())).unwrap();
        let (_, mut engine) = CheckedModel::new(model.shards().to_vec())
            .unwrap()
            .start(ctx, &options)
            .unwrap()
            .read_all(read)
            .unwrap();
        match pollster::block_on(engine.step(&[785, 6722, 315], Readback::Logits)).unwrap() {
            StepOutput::Logits(l) => logits.push(l),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(logits[0], logits[1]);
}

#[test]
fn contexts_reach_the_trained_length_or_its_yarn_stretch_and_oversized_ones_fail_before_loading() {
    use qwen_webgpu::native::LoadError;
    use qwen_webgpu::rope::{RopeScalingOverride, RopeScalingType};

    let open = |context_length, rope_scaling, max_binding_bytes| {
        load_engine(
            &support::tiny_model(),
            &GpuOptions {
                max_binding_bytes,
                ..GpuOptions::default()
            },
            &EngineOptions {
                context_length,
                rope_scaling,
                ..EngineOptions::default()
            },
        )
    };
    // The tiny model's file says 4,096 tokens: a larger ask is capped there, and YaRN ×4
    // stretches it to 16,384 (the 0.5B model's 32,768 to 131,072 the same way).
    assert_eq!(open(100_000, None, None).unwrap().capacity(), 4096);
    let yarn = RopeScalingOverride {
        kind: Some(RopeScalingType::Yarn),
        factor: Some(4.0),
        original_context_length: None,
    };
    let mut engine = open(100_000, Some(yarn.clone()), None).unwrap();
    assert_eq!(engine.capacity(), 16_384);
    assert!(matches!(
        pollster::block_on(engine.step(&[785, 6722, 315], Readback::Argmax)),
        Ok(StepOutput::Argmax { .. })
    ));
    // A 64 KiB binding cannot hold a layer's f16 KV cache of 16,384 × 2 heads × 16 dims × 2
    // bytes: refused before any weight is allocated, saying that 1,024 tokens fit.
    match open(16_384, Some(yarn), Some(64 * 1024)) {
        Err(LoadError::Engine(EngineError::ContextTooLarge {
            context,
            what,
            needed,
            fits,
            ..
        })) => {
            assert_eq!((context, needed, fits), (16_384, 16_384 * 64, 1024));
            assert!(what.contains("KV cache"), "{what}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a 16,384-token context loaded within 64 KiB bindings"),
    }
}

/// What the npm package's error classes are chosen by: a load whose bytes never all arrived is
/// our failure (`internal`, it used to say `bad-model`), a file the model is to blame for is
/// `bad-model`, a context too large for the device is `context-overflow`.
#[test]
fn load_failures_carry_the_code_of_who_is_to_blame() {
    use qwen_webgpu::engine::CheckedModel;
    use qwen_webgpu::gpu::GpuContext;
    use qwen_webgpu::native::open_model;

    let (tiny, _) = open_model(&support::tiny_model()).unwrap();
    let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default())).unwrap();
    let load = CheckedModel::new(tiny.shards().to_vec())
        .unwrap()
        .start(ctx, &EngineOptions::default())
        .unwrap();
    let unfinished = load.finish().err().expect("no byte was pushed");
    assert!(
        matches!(unfinished, EngineError::Read { .. }),
        "{unfinished}"
    );
    assert_eq!(unfinished.code(), "internal");

    let mut header = tiny.shards()[0].clone();
    header.tensors.retain(|t| t.name != "blk.1.ffn_up.weight");
    let missing = CheckedModel::new(vec![header])
        .err()
        .expect("a tensor is missing");
    assert_eq!(missing.code(), "bad-model", "{missing}");

    let too_large = EngineError::ContextTooLarge {
        context: 1 << 20,
        what: "a layer's KV cache".into(),
        needed: 1 << 30,
        limit: 1 << 27,
        fits: 1 << 17,
    };
    assert_eq!(too_large.code(), "context-overflow");
}
