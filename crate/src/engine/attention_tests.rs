//! Flash attention on the GPU path against causal softmax attention computed in f64 on the CPU:
//! decode and prefill steps over several splits, GQA group shapes of the Qwen2 family, f32, f16
//! and q8_0 KV caches; and the q8_0 cache store against quantization on the CPU.

use half::f16;

use super::recording::{record, Builder, StepStats};
use super::tests::noise;
use crate::gpu::{GpuContext, GpuOptions};
use crate::kernels::attention::{
    AttentionReduce, AttentionReduceBindings, FlashAttention, FlashAttentionBindings, HeadParams,
    MIN_SPLIT_LEN,
};
use crate::kernels::common::StepUniform;
use crate::kernels::kv_cache::KvCacheType;
use crate::kernels::rope_store::{RopeStore, RopeStoreBindings};

struct Shape {
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

/// q8_0 blocks of `values` as the cache holds them: the bytes (four to a word) and then one f32
/// scale per 32 values; and the values they stand for.
fn quantize_q8_0(values: &[f32]) -> (Vec<u32>, Vec<f32>) {
    let mut bytes = Vec::with_capacity(values.len());
    let mut scales = Vec::new();
    let mut dequantized = Vec::with_capacity(values.len());
    for block in values.chunks(32) {
        let d = block.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
        scales.push(d);
        for x in block {
            let q = if d > 0.0 {
                (x / d).round_ties_even() as i8
            } else {
                0
            };
            bytes.push(q as u8);
            dequantized.push(f32::from(q) * d);
        }
    }
    let mut words: Vec<u32> = bytes
        .chunks(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    words.extend(scales.iter().map(|d| d.to_bits()));
    (words, dequantized)
}

/// The bytes of `values` in a cache of type `cache`, and the values the kernels will read.
fn cache_contents(cache: KvCacheType, values: &[f32]) -> (Vec<u8>, Vec<f32>) {
    match cache {
        KvCacheType::F32 => (bytemuck::cast_slice(values).to_vec(), values.to_vec()),
        KvCacheType::F16 => (
            values
                .iter()
                .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                .collect(),
            values.iter().map(|x| f16::from_f32(*x).to_f32()).collect(),
        ),
        KvCacheType::Q8_0 => {
            let (words, dequantized) = quantize_q8_0(values);
            (bytemuck::cast_slice(&words).to_vec(), dequantized)
        }
    }
}

/// Runs one attention step of `n_tokens` queries at cache position `pos` over a cache of
/// `pos + n_tokens` random keys and values and compares every output with the CPU.
fn check(ctx: &GpuContext, shape: &Shape, cache: KvCacheType, pos: usize, n_tokens: usize) {
    let Shape {
        n_heads,
        n_kv_heads,
        head_dim,
    } = *shape;
    let seq_len = pos + n_tokens;
    let kv_width = n_kv_heads * head_dim;
    // Scaled so that softmax weights spread unevenly over many positions.
    let q: Vec<f32> = noise(n_tokens * n_heads * head_dim, 1)
        .iter()
        .map(|x| x * 3.0)
        .collect();
    let (k_bytes, k) = cache_contents(cache, &noise(seq_len * kv_width, 2));
    let (v_bytes, v) = cache_contents(cache, &noise(seq_len * kv_width, 3));
    let buffer = |label: &str, bytes: &[u8]| {
        let b = ctx.storage_buffer(label, bytes.len() as u64).unwrap();
        ctx.queue.write_buffer(&b, 0, bytes);
        b
    };
    let q_buf = buffer("q", bytemuck::cast_slice(&q));
    let k_buf = buffer("k", &k_bytes);
    let v_buf = buffer("v", &v_bytes);
    let n = n_tokens as u64;
    let (heads, dim) = (n_heads as u64, head_dim as u64);
    let partial_o = ctx
        .storage_buffer("o", FlashAttention::partial_rows(n, heads) * dim * 4)
        .unwrap();
    let partial_ml = ctx
        .storage_buffer("ml", FlashAttention::partial_rows(n, heads) * 2 * 4)
        .unwrap();
    let out_len = n_tokens * n_heads * head_dim;
    let out = ctx.storage_buffer("out", out_len as u64 * 4).unwrap();

    let step_value = StepUniform {
        n_tokens: n_tokens as u32,
        pos: pos as u32,
        seq_len: seq_len as u32,
        _pad: 0,
    };
    let step = ctx.uniform("step", &step_value);
    let mut b = Builder::new(ctx, &step).unwrap();
    let head_uniform = b.uniform(
        "heads",
        &HeadParams {
            n_heads: n_heads as u32,
            n_kv_heads: n_kv_heads as u32,
            head_dim: head_dim as u32,
            scale: 1.0 / (head_dim as f32).sqrt(),
            kv_scales_at: (seq_len * kv_width / 4) as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        },
    );
    let pair = FlashAttention::pair(cache, (n_heads / n_kv_heads) as u32, head_dim as u32);
    b.dispatch_pair(
        pair.map(|kernel| (kernel, kernel.grid(n_kv_heads as u32))),
        &FlashAttentionBindings {
            q: &q_buf,
            k_cache: &k_buf,
            v_cache: &v_buf,
            partial_o: &partial_o,
            partial_ml: &partial_ml,
            heads: &head_uniform,
            step: &step,
        },
    )
    .unwrap();
    b.dispatch(
        AttentionReduce,
        &AttentionReduceBindings {
            partial_o: &partial_o,
            partial_ml: &partial_ml,
            out: &out,
            heads: &head_uniform,
            step: &step,
        },
        AttentionReduce::grid(n_heads as u32),
    )
    .unwrap();
    let dispatches = b.take();
    let staging = ctx.staging_buffer("staging", out_len as u64 * 4);
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        let mut stats = StepStats::default();
        record(
            &mut pass,
            &dispatches,
            n_tokens as u32,
            seq_len as u32,
            &mut stats,
        );
    }
    encoder.copy_buffer_to_buffer(&out, 0, &staging, 0, out_len as u64 * 4);
    ctx.queue.submit([encoder.finish()]);
    let bytes = pollster::block_on(ctx.read_staging(&staging, out_len as u64 * 4)).unwrap();
    let got: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);

    let group = n_heads / n_kv_heads;
    let scale = 1.0 / (head_dim as f64).sqrt();
    for t in 0..n_tokens {
        for h in 0..n_heads {
            let kv_h = h / group;
            let qv = &q[(t * n_heads + h) * head_dim..][..head_dim];
            let visible = pos + t + 1;
            let scores: Vec<f64> = (0..visible)
                .map(|p| {
                    let kp = &k[p * kv_width + kv_h * head_dim..][..head_dim];
                    qv.iter()
                        .zip(kp)
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::MIN, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for d in 0..head_dim {
                let exact: f64 = (0..visible)
                    .map(|p| weights[p] * v[p * kv_width + kv_h * head_dim + d] as f64)
                    .sum::<f64>()
                    / total;
                let g = got[(t * n_heads + h) * head_dim + d] as f64;
                assert!(
                    (g - exact).abs() < 2e-5,
                    "{n_heads}x{head_dim} {cache:?}, pos {pos}, {n_tokens} tokens: token \
                     {t} head {h} dim {d}: gpu {g} cpu {exact}"
                );
            }
        }
    }
}

#[test]
fn flash_attention_matches_cpu_softmax_attention() {
    let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))
        .expect("a GPU adapter (lavapipe: apt-get install mesa-vulkan-drivers, via scripts/setup)");
    assert!(ctx.f16, "the test adapter has shader-f16");
    let split = MIN_SPLIT_LEN as usize;
    let shapes = [
        // Qwen2.5-0.5B: 14 heads over 2 KV heads of 64.
        Shape {
            n_heads: 14,
            n_kv_heads: 2,
            head_dim: 64,
        },
        // Qwen2.5-7B's heads of 128 (two of its four KV heads, groups of 7).
        Shape {
            n_heads: 14,
            n_kv_heads: 2,
            head_dim: 128,
        },
        // The tiny test model: heads of 16, four positions summed side by side.
        Shape {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
        },
    ];
    for shape in &shapes {
        for cache in KvCacheType::ALL {
            if !cache.supports_head_dim(shape.head_dim) {
                continue;
            }
            // Decode: one split, then several (split-K), the last one partly filled.
            check(&ctx, shape, cache, 5, 1);
            check(&ctx, shape, cache, 3 * split + 40, 1);
            // Prefill: a chunk starting at 0, and one whose keys span several splits.
            check(&ctx, shape, cache, 0, 37);
            check(&ctx, shape, cache, 2 * split - 10, 21);
        }
    }
}

#[test]
fn q8_0_cache_store_matches_cpu_quantization() {
    let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))
        .expect("a GPU adapter (lavapipe: apt-get install mesa-vulkan-drivers, via scripts/setup)");
    let (n_heads, n_kv_heads, head_dim) = (4usize, 2usize, 128usize);
    let (pos, n_tokens, capacity) = (3usize, 5usize, 8usize);
    let kv_width = n_kv_heads * head_dim;
    let k = noise(n_tokens * kv_width, 4);
    let v: Vec<f32> = noise(n_tokens * kv_width, 5)
        .iter()
        .map(|x| x * 9.0)
        .collect();
    let buffer = |label: &str, bytes: &[u8]| {
        let b = ctx.storage_buffer(label, bytes.len() as u64).unwrap();
        ctx.queue.write_buffer(&b, 0, bytes);
        b
    };
    let q_buf = buffer(
        "q",
        bytemuck::cast_slice(&noise(n_tokens * n_heads * head_dim, 6)),
    );
    let k_buf = buffer("k", bytemuck::cast_slice(&k));
    let v_buf = buffer("v", bytemuck::cast_slice(&v));
    // No rotation (cos 1, sin 0): the cache holds K as given.
    let rope: Vec<f32> = (0..capacity * head_dim / 2)
        .flat_map(|_| [1.0, 0.0])
        .collect();
    let rope_buf = buffer("rope", bytemuck::cast_slice(&rope));
    let cache_bytes = KvCacheType::Q8_0.bytes((capacity * kv_width) as u64);
    let k_cache = ctx.storage_buffer("k-cache", cache_bytes).unwrap();
    let v_cache = ctx.storage_buffer("v-cache", cache_bytes).unwrap();
    let scales_at = capacity * kv_width / 4;

    let step = ctx.uniform(
        "step",
        &StepUniform {
            n_tokens: n_tokens as u32,
            pos: pos as u32,
            seq_len: (pos + n_tokens) as u32,
            _pad: 0,
        },
    );
    let mut b = Builder::new(&ctx, &step).unwrap();
    let heads = b.uniform(
        "heads",
        &HeadParams {
            n_heads: n_heads as u32,
            n_kv_heads: n_kv_heads as u32,
            head_dim: head_dim as u32,
            scale: 1.0,
            kv_scales_at: scales_at as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        },
    );
    b.dispatch(
        RopeStore {
            cache: KvCacheType::Q8_0,
        },
        &RopeStoreBindings {
            q: &q_buf,
            k: &k_buf,
            v: &v_buf,
            k_cache: &k_cache,
            v_cache: &v_cache,
            rope: &rope_buf,
            heads: &heads,
            step: &step,
        },
        RopeStore::grid(head_dim as u32, (n_heads + n_kv_heads) as u32),
    )
    .unwrap();
    let dispatches = b.take();
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        let mut stats = StepStats::default();
        let seq_len = (pos + n_tokens) as u32;
        record(&mut pass, &dispatches, n_tokens as u32, seq_len, &mut stats);
    }
    ctx.queue.submit([encoder.finish()]);
    for (name, cache, values) in [("K", &k_cache, &k), ("V", &v_cache, &v)] {
        let staging = ctx.staging_buffer("staging", cache_bytes);
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.copy_buffer_to_buffer(cache, 0, &staging, 0, cache_bytes);
        ctx.queue.submit([encoder.finish()]);
        let bytes = pollster::block_on(ctx.read_staging(&staging, cache_bytes)).unwrap();
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        let (expected, _) = quantize_q8_0(values);
        let expected_scales = &expected[values.len() / 4..];
        let first_block = pos * kv_width / 32;
        for (i, &want) in expected_scales.iter().enumerate() {
            let (got, want) = (
                f32::from_bits(words[scales_at + first_block + i]),
                f32::from_bits(want),
            );
            assert!(
                (got - want).abs() <= want * 1e-6,
                "{name} block {i}: scale {got}, CPU {want}"
            );
        }
        let first_word = pos * kv_width / 4;
        for (i, &want) in expected[..values.len() / 4].iter().enumerate() {
            let got = words[first_word + i].to_le_bytes();
            for (j, w) in want.to_le_bytes().into_iter().enumerate() {
                // The GPU's division may round a value at a half step the other way.
                let diff = (i16::from(got[j] as i8) - i16::from(w as i8)).abs();
                assert!(
                    diff <= 1,
                    "{name} value {}: {} vs CPU {}",
                    4 * i + j,
                    got[j] as i8,
                    w as i8
                );
            }
        }
    }
}
