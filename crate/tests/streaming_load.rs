//! Streaming loads: file bytes pushed in chunks of awkward sizes (single bytes, odd lengths,
//! overlaps from a resumed stream) into matrices split at rows that are not 4-byte aligned give
//! the same model as whole-tensor loads; bytes out of order and missing bytes are typed errors.

mod support;

use qwen_webgpu::engine::{
    CheckedModel, Engine, EngineError, EngineOptions, Readback, StepOutput, WeightLoader,
};
use qwen_webgpu::gguf::GgufModel;
use qwen_webgpu::gpu::{GpuContext, GpuOptions};
use qwen_webgpu::native::open_model;

const PROMPT: [u32; 5] = [9707, 11, 1879, 0, 151645];

fn options() -> EngineOptions {
    EngineOptions {
        context_length: 32,
        prefill_chunk: 8,
        ..EngineOptions::default()
    }
}

fn gpu() -> GpuContext {
    pollster::block_on(GpuContext::new(&GpuOptions::default())).unwrap()
}

fn logits(engine: &mut Engine) -> Vec<f32> {
    match pollster::block_on(engine.step(&PROMPT, Readback::Logits)).unwrap() {
        StepOutput::Logits(l) => l,
        other => panic!("{other:?}"),
    }
}

fn tiny() -> (GgufModel, Vec<u8>) {
    let path = support::tiny_model();
    let (model, _) = open_model(&path).unwrap();
    (model, std::fs::read(&path).unwrap())
}

#[test]
fn chunked_pushes_load_the_same_model() {
    let (model, file) = tiny();
    let (_, mut whole) = CheckedModel::new(model.shards().to_vec())
        .unwrap()
        .start(gpu(), &options())
        .unwrap()
        .read_all(|_shard, offset, buf| {
            let start = offset as usize;
            buf.copy_from_slice(&file[start..start + buf.len()]);
            Ok(())
        })
        .unwrap();
    let want = logits(&mut whole);

    // Q6_K rows of the FFN down projection are 210 bytes: 3-row pieces start at byte 630.
    let mut loader =
        WeightLoader::with_piece_limit(gpu(), &model, &options(), 3 * 210 + 4).unwrap();
    let ranges = loader.data_ranges();
    assert_eq!(
        ranges.len(),
        1,
        "one shard, tensors back to back: {ranges:?}"
    );
    let total = loader.progress().bytes_total;
    // Chunk sizes cycle through awkward lengths; every 7th push goes back 100 bytes, as a
    // resumed download would.
    let sizes = [1usize, 2, 3, 5, 4093, 65_537, 1_000_003];
    let mut at = 0usize;
    let mut i = 0;
    while at < file.len() {
        let n = sizes[i % sizes.len()].min(file.len() - at);
        let start = if i % 7 == 6 {
            at.saturating_sub(100)
        } else {
            at
        };
        loader.push(0, start as u64, &file[start..at + n]).unwrap();
        at += n;
        i += 1;
    }
    let progress = loader.progress();
    assert_eq!(progress.bytes_done, total);
    assert_eq!(progress.tensors_done, progress.tensors_total);
    let mut streamed = loader.finish().unwrap();
    assert_eq!(logits(&mut streamed), want);
}

#[test]
fn gaps_and_missing_bytes_are_errors() {
    let (model, file) = tiny();
    let mut loader = WeightLoader::new(gpu(), &model, &options()).unwrap();
    let range = loader.data_ranges()[0];
    let start = range.start as usize;
    loader
        .push(0, range.start, &file[start..start + 1000])
        .unwrap();
    // Skipping ahead inside a tensor would leave a hole.
    let err = loader
        .push(0, range.start + 2000, &file[start + 2000..start + 3000])
        .unwrap_err();
    assert!(matches!(err, EngineError::Read { .. }), "{err}");
    assert!(err.to_string().contains("arrived before"), "{err}");
    // Finishing before every byte arrived names the first incomplete tensor.
    let err = loader.finish().err().unwrap();
    assert!(err.to_string().contains("only 1000 of its"), "{err}");
}
