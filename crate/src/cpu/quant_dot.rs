//! Quantized dot products as llama.cpp's CPU backend computes them: activations quantized per
//! token to 8 bits (q8_0/q8_1 blocks of 32, q8_K super-blocks of 256), weight rows unpacked to
//! 8-bit integers, integer sums per block, one f32 scale multiply per block. Weight types
//! without an integer form (F32, F16, BF16) are dequantized and dotted in f32.
//!
//! The unpacking follows `crate::dequant` (itself bit-exact with ggml); the integer sums are
//! exact, so results differ from ggml's only by the order of f32 additions.

use half::f16;

use crate::dequant::dequantize;
use crate::gguf::GgmlType;

/// How a weight type's rows meet the activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// Blocks of 32 with a scale (and for Q4_1/Q5_1 a min): against q8_0/q8_1 activations.
    Block32,
    /// Super-blocks of 256 with 16 scaled groups of 16 (K-quants): against q8_K activations.
    Super256,
    /// Dequantized to f32: against f32 activations.
    Float,
}

pub(crate) fn form(ty: GgmlType) -> Form {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => {
            Form::Block32
        }
        GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K => Form::Super256,
        _ => Form::Float,
    }
}

/// One token's activations in the integer form of [`Form::Block32`] or [`Form::Super256`]:
/// `qs` the 8-bit values, `d` the scale per block, `sums` per block of 32 `d × Σ qs` (q8_1's
/// `s`) or per group of 16 `Σ qs` (q8_K's `bsums`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Quantized {
    pub qs: Vec<i8>,
    pub d: Vec<f32>,
    pub sums: Vec<f32>,
}

/// f32 through f16, as ggml stores q8_0/q8_1 scales.
fn via_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// `x` (a whole number of blocks of 32) as q8_0/q8_1 blocks (ggml's `quantize_row_q8_1_ref`).
pub(crate) fn quantize_block32(x: &[f32], out: &mut Quantized) {
    out.qs.resize(x.len(), 0);
    out.d.clear();
    out.sums.clear();
    for (xb, qb) in x.chunks_exact(32).zip(out.qs.chunks_exact_mut(32)) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in qb.iter_mut().zip(xb) {
            *q = (v * id).round() as i8;
            sum += i32::from(*q);
        }
        out.d.push(via_f16(d));
        out.sums.push(via_f16(sum as f32 * d));
    }
}

/// `x` (a whole number of blocks of 256) as q8_K blocks (ggml's `quantize_row_q8_K_ref`):
/// the value of largest magnitude maps to -127, others round to nearest even, capped at 127.
pub(crate) fn quantize_super256(x: &[f32], out: &mut Quantized) {
    out.qs.resize(x.len(), 0);
    out.d.clear();
    out.sums.clear();
    for (xb, qb) in x.chunks_exact(256).zip(out.qs.chunks_exact_mut(256)) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            qb.fill(0);
            out.d.push(0.0);
            out.sums.extend([0.0; 16]);
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in qb.iter_mut().zip(xb) {
            *q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
        }
        for group in qb.chunks_exact(16) {
            out.sums
                .push(group.iter().map(|&q| i32::from(q)).sum::<i32>() as f32);
        }
        out.d.push(1.0 / iscale);
    }
}

/// A weight row in the form its type meets activations in: `q` the integer values, `d`/`m`
/// the scale and min (Q4_1/Q5_1 per block of 32; K-quants' `d`/`dmin` per super-block),
/// `scales`/`mins` the K-quants' integer factors per group of 16, `f` a [`Form::Float`] row.
#[derive(Debug, Clone, Default)]
pub(crate) struct Unpacked {
    pub q: Vec<i8>,
    pub d: Vec<f32>,
    pub m: Vec<f32>,
    pub scales: Vec<i32>,
    pub mins: Vec<i32>,
    pub f: Vec<f32>,
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 5th bits of a Q5 block's 32 values, packed in a little-endian u32.
fn high_bits(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Scale and min of sub-block `j` from the 12 packed 6-bit scale bytes of Q4_K and Q5_K.
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Unpacks one row of `ty` (`cols` values in `bytes`) into `out`.
#[inline(always)]
pub(crate) fn unpack(ty: GgmlType, bytes: &[u8], cols: usize, out: &mut Unpacked) {
    out.q.resize(cols, 0);
    out.d.clear();
    out.m.clear();
    out.scales.clear();
    out.mins.clear();
    let block_bytes = ty.block_bytes() as usize;
    let block_size = ty.block_size() as usize;
    if form(ty) == Form::Float {
        // Rows were checked to hold whole blocks of a supported type at load.
        out.f = dequantize(ty, bytes).unwrap_or_default();
        return;
    }
    for (b, q) in bytes
        .chunks_exact(block_bytes)
        .zip(out.q.chunks_exact_mut(block_size))
    {
        match ty {
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                let (offset, qs) = match ty {
                    GgmlType::Q4_0 => (8, &b[2..18]),
                    _ => (0, &b[4..20]),
                };
                for j in 0..16 {
                    q[j] = (qs[j] & 0x0f) as i8 - offset;
                    q[j + 16] = (qs[j] >> 4) as i8 - offset;
                }
                out.d.push(f16_at(b, 0));
                out.m.push(if ty == GgmlType::Q4_1 {
                    f16_at(b, 2)
                } else {
                    0.0
                });
            }
            GgmlType::Q5_0 | GgmlType::Q5_1 => {
                let (offset, qh, qs) = match ty {
                    GgmlType::Q5_0 => (16, high_bits(b, 2), &b[6..22]),
                    _ => (0, high_bits(b, 4), &b[8..24]),
                };
                for j in 0..16 {
                    let h0 = (((qh >> j) << 4) & 0x10) as u8;
                    let h1 = ((qh >> (j + 12)) & 0x10) as u8;
                    q[j] = ((qs[j] & 0x0f) | h0) as i8 - offset;
                    q[j + 16] = ((qs[j] >> 4) | h1) as i8 - offset;
                }
                out.d.push(f16_at(b, 0));
                out.m.push(if ty == GgmlType::Q5_1 {
                    f16_at(b, 2)
                } else {
                    0.0
                });
            }
            GgmlType::Q8_0 => {
                for (qj, &byte) in q.iter_mut().zip(&b[2..34]) {
                    *qj = byte as i8;
                }
                out.d.push(f16_at(b, 0));
                out.m.push(0.0);
            }
            GgmlType::Q4K | GgmlType::Q5K => {
                let scales = &b[4..16];
                let (qh, qs) = match ty {
                    GgmlType::Q5K => (Some(&b[16..48]), &b[48..176]),
                    _ => (None, &b[16..144]),
                };
                for (chunk, ql) in qs.chunks_exact(32).enumerate() {
                    let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
                    let y = &mut q[chunk * 64..chunk * 64 + 64];
                    for l in 0..32 {
                        let (h1, h2) = match qh {
                            Some(qh) => (
                                if qh[l] & u1 != 0 { 16 } else { 0 },
                                if qh[l] & u2 != 0 { 16 } else { 0 },
                            ),
                            None => (0, 0),
                        };
                        y[l] = ((ql[l] & 0x0f) + h1) as i8;
                        y[l + 32] = ((ql[l] >> 4) + h2) as i8;
                    }
                    for sub in [2 * chunk, 2 * chunk + 1] {
                        let (sc, m) = scale_min_k4(sub, scales);
                        out.scales.extend([i32::from(sc); 2]);
                        out.mins.extend([i32::from(m); 2]);
                    }
                }
                out.d.push(f16_at(b, 0));
                out.m.push(f16_at(b, 2));
            }
            GgmlType::Q6K => {
                for half in 0..2 {
                    let ql = &b[half * 64..half * 64 + 64];
                    let qh = &b[128 + half * 32..128 + half * 32 + 32];
                    let y = &mut q[half * 128..half * 128 + 128];
                    for l in 0..32 {
                        y[l] = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
                        y[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                        y[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                        y[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                    }
                }
                // Group g of 16 values has scale byte g (see `dequant::q6_k`'s indices).
                out.scales
                    .extend(b[192..208].iter().map(|&s| i32::from(s as i8)));
                out.mins.extend([0; 16]);
                out.d.push(f16_at(b, 208));
                out.m.push(0.0);
            }
            _ => unreachable!("form() sends only integer types here"),
        }
    }
}

/// `Σ a[i] × b[i]` over `N` values. Wrapping arithmetic (|sum| ≤ N × 128², far from
/// overflow) so that builds with overflow checks (tests) vectorize it too.
#[inline(always)]
fn dot_i8<const N: usize>(a: &[i8], b: &[i8]) -> i32 {
    let (a, b) = (&a[..N], &b[..N]);
    let mut sum = 0i32;
    for i in 0..N {
        sum = sum.wrapping_add(i32::from(a[i]).wrapping_mul(i32::from(b[i])));
    }
    sum
}

/// An unpacked [`Form::Block32`] row · one token's q8_0/q8_1 activations.
#[inline(always)]
pub(crate) fn dot_block32(w: &Unpacked, a: &Quantized) -> f32 {
    let mut sum = 0f32;
    for (b, (wq, aq)) in w.q.chunks_exact(32).zip(a.qs.chunks_exact(32)).enumerate() {
        let isum = dot_i8::<32>(wq, aq);
        sum += (w.d[b] * a.d[b]) * isum as f32 + w.m[b] * a.sums[b];
    }
    sum
}

/// An unpacked [`Form::Super256`] row · one token's q8_K activations.
#[inline(always)]
pub(crate) fn dot_super256(w: &Unpacked, a: &Quantized) -> f32 {
    let mut sum = 0f32;
    for (b, (wq, aq)) in
        w.q.chunks_exact(256)
            .zip(a.qs.chunks_exact(256))
            .enumerate()
    {
        let mut isum = 0i32;
        let mut msum = 0f32;
        for g in 0..16 {
            let at = g * 16;
            isum = isum.wrapping_add(
                w.scales[b * 16 + g].wrapping_mul(dot_i8::<16>(&wq[at..], &aq[at..])),
            );
            msum += w.mins[b * 16 + g] as f32 * a.sums[b * 16 + g];
        }
        sum += (w.d[b] * a.d[b]) * isum as f32 - (w.m[b] * a.d[b]) * msum;
    }
    sum
}

/// `a · b` in f32 over 16 lanes (so it vectorizes; the order differs from a plain sum).
#[inline(always)]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes.
    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 11) as u8
            })
            .collect()
    }

    /// A row of `ty` with random quants and small, sane f16 scales.
    fn random_row(ty: GgmlType, cols: usize) -> Vec<u8> {
        let mut row = bytes(ty.row_bytes(cols as u64).unwrap() as usize, ty.id());
        let scale = f16::from_f32(0.01).to_le_bytes();
        let block_bytes = ty.block_bytes() as usize;
        let scale_at: &[usize] = match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
            GgmlType::Q6K => &[208],
            _ => &[],
        };
        for block in row.chunks_exact_mut(block_bytes) {
            for &at in scale_at {
                block[at..at + 2].copy_from_slice(&scale);
            }
        }
        row
    }

    /// Every integer form against the f32 reference: dequantized weights · activations that
    /// are exactly representable in the 8-bit form (so the only difference is rounding).
    #[test]
    fn integer_dots_match_dequantized_f32() {
        let cols = 512;
        let x: Vec<f32> = (0..cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
            .collect();
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q4K,
            GgmlType::Q5K,
            GgmlType::Q6K,
        ] {
            let row = random_row(ty, cols);
            let w = dequantize(ty, &row).unwrap();
            let mut a = Quantized::default();
            let mut u = Unpacked::default();
            unpack(ty, &row, cols, &mut u);
            let ours = match form(ty) {
                Form::Block32 => {
                    quantize_block32(&x, &mut a);
                    dot_block32(&u, &a)
                }
                _ => {
                    quantize_super256(&x, &mut a);
                    dot_super256(&u, &a)
                }
            };
            // The same dot over the dequantized activations, in f64.
            let xq: Vec<f64> = match form(ty) {
                Form::Block32 => (0..cols)
                    .map(|i| a.qs[i] as f64 * a.d[i / 32] as f64)
                    .collect(),
                _ => (0..cols)
                    .map(|i| a.qs[i] as f64 * a.d[i / 256] as f64)
                    .collect(),
            };
            let want: f64 = w.iter().zip(&xq).map(|(&w, x)| w as f64 * x).sum();
            let exact: f64 = w.iter().zip(&x).map(|(&w, &x)| w as f64 * x as f64).sum();
            let scale: f64 = w.iter().map(|w| w.abs() as f64).sum::<f64>() * 3.0;
            assert!(
                (ours as f64 - want).abs() <= 2e-5 * scale + 1e-4,
                "{ty}: {ours} vs {want}"
            );
            // And 8-bit activations stay close to the exact product.
            assert!(
                (ours as f64 - exact).abs() <= 0.01 * scale,
                "{ty}: {ours} vs exact {exact}"
            );
        }
    }

    /// The AVX2 dots (from unpacked rows, and straight from Q8_0/Q5_0 blocks) equal the
    /// portable ones up to f32 summation order.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_dots_match_the_portable_ones() {
        use crate::cpu::avx2;
        assert!(
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c"),
            "this test needs an x86-64 CPU with AVX2, FMA and F16C"
        );
        let cols = 512;
        let x: Vec<f32> = (0..cols)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 13.0)
            .collect();
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q4K,
            GgmlType::Q5K,
            GgmlType::Q6K,
        ] {
            let row = random_row(ty, cols);
            let mut a = Quantized::default();
            let mut u = Unpacked::default();
            unpack(ty, &row, cols, &mut u);
            let (portable, simd) = match form(ty) {
                Form::Block32 => {
                    quantize_block32(&x, &mut a);
                    // SAFETY: the features were asserted above.
                    (dot_block32(&u, &a), unsafe { avx2::dot_block32(&u, &a) })
                }
                _ => {
                    quantize_super256(&x, &mut a);
                    // SAFETY: as above.
                    (dot_super256(&u, &a), unsafe { avx2::dot_super256(&u, &a) })
                }
            };
            let close = |v: f32| (v - portable).abs() <= 1e-4 * portable.abs().max(1.0);
            assert!(close(simd), "{ty}: {simd} vs {portable}");
            // Five tokens: one group of four and one alone.
            let tokens = vec![a.clone(); 5];
            let mut fused = [0f32; 5];
            // SAFETY: as above.
            if unsafe { avx2::dot_row_from_blocks(ty, &row, &tokens, &mut fused) }.is_some() {
                for v in fused {
                    assert!(close(v), "{ty} from blocks: {v} vs {portable}");
                }
            }
        }
    }

    #[test]
    fn q8_k_maps_the_largest_magnitude_to_minus_127() {
        let mut x = vec![0.5f32; 256];
        x[3] = -2.0;
        let mut a = Quantized::default();
        quantize_super256(&x, &mut a);
        assert_eq!(a.qs[3], -127);
        // 0.5 × -127 / -2 = 31.75 → 32.
        assert_eq!(a.qs[0], 32);
        assert_eq!(a.d[0], 1.0 / 63.5);
        assert_eq!(a.sums[0], (32 * 15 - 127) as f32);
    }
}
