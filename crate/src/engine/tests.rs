//! Kernel checks on the real GPU path (lavapipe in CI): each weight type's mat-mul and embedding
//! lookup against the CPU dequantization reference, on real and synthetic blocks, in the decode
//! and prefill tilings and with weights split into pieces.

use bytemuck::Zeroable;

use super::recording::{record, Builder, StepStats, SHORT_PREFILL_TOKENS};
use super::weights::Matrix;
use crate::dequant::dequantize;
use crate::gguf::{GgmlType, ModelTensor, TensorInfo};
use crate::gpu::{GpuContext, GpuOptions};
use crate::kernels::common::StepUniform;
use crate::kernels::dequant::SUPPORTED;

/// The adapter as it is (lavapipe: a software adapter, whose kernels need no subgroups), and
/// treated as a hardware GPU with its 8-invocation subgroups, with SwiftShader's 4, and without
/// subgroups; each test runs on all four.
fn contexts() -> [GpuContext; 4] {
    [
        (false, false, None),
        (true, false, None),
        (true, false, Some(4)),
        (true, true, None),
    ]
    .map(|(treat_as_hardware, disable_subgroups, cap)| {
        let ctx = pollster::block_on(GpuContext::new(&GpuOptions {
            disable_subgroups,
            subgroup_size_cap: cap,
            treat_as_hardware,
            ..GpuOptions::default()
        }))
        .expect("a GPU adapter (lavapipe: apt-get install mesa-vulkan-drivers, via scripts/setup)");
        assert_eq!(
            ctx.software, !treat_as_hardware,
            "the test adapter is lavapipe"
        );
        let expected = (!disable_subgroups).then_some(cap.unwrap_or(8));
        assert_eq!(
            ctx.subgroup_min_size, expected,
            "lavapipe has subgroups of 8"
        );
        ctx
    })
}

/// Blocks of `ty` from the dequantization fixtures (real model blocks first).
fn fixture_blocks(ty: GgmlType) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dequant.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dequant.json")).expect("json");
    let mut bytes = Vec::new();
    for case in doc["cases"].as_array().expect("cases") {
        if case["type"] == ty.name() {
            let hex = case["bytes_hex"].as_str().expect("hex");
            bytes.extend(
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")),
            );
        }
    }
    assert!(!bytes.is_empty(), "no fixture blocks for {ty}");
    bytes
}

/// A deterministic pseudo-random sequence in [-1, 1).
pub(super) fn noise(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn tensor(name: &str, ty: GgmlType, cols: u64, rows: u64) -> ModelTensor {
    let bytes = ty.row_bytes(cols).expect("whole blocks") * rows;
    ModelTensor {
        info: TensorInfo {
            name: name.into(),
            ggml_type: ty,
            shape: vec![cols, rows],
            offset: 0,
            bytes,
        },
        shard: 0,
        file_offset: 0,
    }
}

/// Rows of 256 values where there are enough, so K-quant blocks and several rows both occur.
fn matrix_shape(ty: GgmlType, values: usize) -> (u64, u64) {
    let cols = [256u64, 64, 32]
        .into_iter()
        .find(|&c| c % ty.block_size() == 0 && values as u64 / c >= 2)
        .expect("enough fixture values");
    (cols, values as u64 / cols)
}

/// Runs the builder's dispatches for `n_tokens` tokens in one pass.
fn run(ctx: &GpuContext, mut b: Builder<'_>, step: &wgpu::Buffer, n_tokens: u32) {
    ctx.queue.write_buffer(
        step,
        0,
        bytemuck::bytes_of(&StepUniform {
            n_tokens,
            pos: 0,
            seq_len: n_tokens,
            _pad: 0,
        }),
    );
    let dispatches = b.take();
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    let mut stats = StepStats::default();
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        record(&mut pass, &dispatches, n_tokens, n_tokens, &mut stats);
    }
    ctx.queue.submit([encoder.finish()]);
}

fn read_f32(ctx: &GpuContext, buffer: &wgpu::Buffer, n: usize) -> Vec<f32> {
    let bytes = n as u64 * 4;
    let staging = ctx.staging_buffer("staging", bytes);
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
    ctx.queue.submit([encoder.finish()]);
    let bytes = pollster::block_on(ctx.read_staging(&staging, bytes)).expect("read back");
    bytemuck::pod_collect_to_vec(&bytes)
}

/// GPU `W·X (+ bias)` for the fixture blocks of `ty` against f64 sums of the CPU dequantization.
/// With `one_row_pieces`, every row goes to its own buffer.
/// Single-token calls run the decode kernel, short ones the mat-vec per token, longer ones the
/// prefill tiles.
fn check_matmul(ctx: &GpuContext, ty: GgmlType, n_tokens: u32, one_row_pieces: bool) {
    let blocks = fixture_blocks(ty);
    let values = dequantize(ty, &blocks).expect("dequantize");
    let (cols, rows) = matrix_shape(ty, values.len());
    assert!(rows >= 2, "{ty}: too few fixture values");
    let t = tensor("w", ty, cols, rows);
    let bytes = &blocks[..t.info.bytes as usize];
    let piece_limit = if one_row_pieces {
        t.info.row_bytes() + 4
    } else {
        u64::MAX
    };
    let m = Matrix::upload(ctx, &t, bytes, piece_limit).expect("upload");
    if one_row_pieces {
        assert_eq!(m.pieces.len() as u64, rows);
    }
    let x = noise(cols as usize * n_tokens as usize, 7);
    let bias = noise(rows as usize, 11);

    let x_buf = ctx.storage_buffer("x", x.len() as u64 * 4).unwrap();
    ctx.queue.write_buffer(&x_buf, 0, bytemuck::cast_slice(&x));
    let bias_buf = ctx.storage_buffer("bias", rows * 4).unwrap();
    ctx.queue
        .write_buffer(&bias_buf, 0, bytemuck::cast_slice(&bias));
    let y_buf = ctx
        .storage_buffer("y", rows * u64::from(n_tokens) * 4)
        .unwrap();
    let step = ctx.uniform("step", &StepUniform::zeroed());
    let mut b = Builder::new(ctx, &step).unwrap();
    b.matmul(&m, &x_buf, &y_buf, Some(&bias_buf), 0, 0)
        .expect("matmul");
    run(ctx, b, &step, n_tokens);
    let got = read_f32(ctx, &y_buf, (rows * u64::from(n_tokens)) as usize);

    for tok in 0..n_tokens as usize {
        for r in 0..rows as usize {
            let w = &values[r * cols as usize..(r + 1) * cols as usize];
            let xs = &x[tok * cols as usize..(tok + 1) * cols as usize];
            let exact: f64 = w
                .iter()
                .zip(xs)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
                + bias[r] as f64;
            let magnitude: f64 = w
                .iter()
                .zip(xs)
                .map(|(&a, &b)| (a as f64 * b as f64).abs())
                .sum();
            let g = got[tok * rows as usize + r] as f64;
            // f32 accumulation over 256 products in a different order than the f64 sum.
            let tolerance = 1e-5 * (magnitude + 1.0);
            assert!(
                (g - exact).abs() <= tolerance,
                "{ty} token {tok} row {r}: gpu {g} cpu {exact} (tolerance {tolerance})"
            );
        }
    }
}

#[test]
fn matmul_decode_matches_cpu_reference_for_every_type() {
    for ctx in contexts() {
        for ty in SUPPORTED {
            check_matmul(&ctx, ty, 1, false);
        }
    }
}

#[test]
fn matmul_prefill_tiles_match_cpu_reference() {
    for ctx in contexts() {
        for ty in SUPPORTED {
            // 45 tokens: one full tile of 32 and a partial one.
            check_matmul(&ctx, ty, 45, false);
        }
    }
}

#[test]
fn matmul_short_prefill_runs_the_matvec_per_token() {
    for ctx in contexts() {
        for ty in SUPPORTED {
            check_matmul(&ctx, ty, SHORT_PREFILL_TOKENS, false);
        }
    }
}

#[test]
fn matrices_split_into_pieces_when_over_the_binding_limit() {
    let contexts = contexts();
    for ty in [GgmlType::Q8_0, GgmlType::Q6K, GgmlType::Q5_0, GgmlType::F16] {
        for ctx in &contexts {
            check_matmul(ctx, ty, 1, true);
        }
        check_matmul(&contexts[3], ty, 3, true);
        check_matmul(&contexts[3], ty, 9, true);
    }
    let t = tensor("w", GgmlType::Q8_0, 256, 3);
    let blocks = fixture_blocks(GgmlType::Q8_0);
    let m = Matrix::upload(
        &contexts[0],
        &t,
        &blocks[..t.info.bytes as usize],
        2 * 272 + 4,
    )
    .unwrap();
    assert_eq!(
        m.pieces
            .iter()
            .map(|p| (p.first_row, p.rows))
            .collect::<Vec<_>>(),
        vec![(0, 2), (2, 1)]
    );
}

#[test]
fn embedding_rows_match_cpu_reference() {
    let [ctx, ..] = contexts();
    for ty in [GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::Q4K, GgmlType::F16] {
        let blocks = fixture_blocks(ty);
        let values = dequantize(ty, &blocks).unwrap();
        let (cols, rows) = matrix_shape(ty, values.len());
        let t = tensor("embd", ty, cols, rows);
        // One row per piece, so lookups cross pieces.
        let m = Matrix::upload(
            &ctx,
            &t,
            &blocks[..t.info.bytes as usize],
            t.info.row_bytes() + 4,
        )
        .unwrap();
        assert!(m.pieces.len() >= 2);
        let tokens: Vec<u32> = (0..rows as u32).rev().collect();
        let tok_buf = ctx
            .storage_buffer("tokens", tokens.len() as u64 * 4)
            .unwrap();
        ctx.queue
            .write_buffer(&tok_buf, 0, bytemuck::cast_slice(&tokens));
        let out = ctx.storage_buffer("out", rows * cols * 4).unwrap();
        let step = ctx.uniform("step", &StepUniform::zeroed());
        let mut b = Builder::new(&ctx, &step).unwrap();
        b.embed(&m, &tok_buf, &out).unwrap();
        run(&ctx, b, &step, tokens.len() as u32);
        let got = read_f32(&ctx, &out, (rows * cols) as usize);
        for (i, &tok) in tokens.iter().enumerate() {
            let want = &values[tok as usize * cols as usize..(tok as usize + 1) * cols as usize];
            let have = &got[i * cols as usize..(i + 1) * cols as usize];
            for (j, (h, w)) in have.iter().zip(want).enumerate() {
                assert!(
                    (h - w).abs() <= 1e-6 * w.abs().max(1e-3),
                    "{ty} token {tok} value {j}: {h} vs {w}"
                );
            }
        }
    }
}
