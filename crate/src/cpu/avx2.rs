//! x86-64 AVX2 forms of the integer dot products in [`super::quant_dot`] (the same sums, as
//! ggml's `mul_sum_i8_pairs`: |w| × sign-adjusted activations through `maddubs`), called only
//! where the CPU has AVX2 and FMA.

use std::arch::x86_64::*;

use super::quant_dot::{Quantized, Unpacked};

/// 8 lanes, lane `k` = `Σ x[4k..4k+4] × y[4k..4k+4]`.
#[inline(always)]
unsafe fn mul_sum_i8_pairs(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    let pairs = _mm256_maddubs_epi16(ax, sy);
    _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
}

#[inline(always)]
unsafe fn load(p: &[i8]) -> __m256i {
    debug_assert!(p.len() >= 32);
    _mm256_loadu_si256(p.as_ptr() as *const __m256i)
}

#[inline(always)]
unsafe fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[inline(always)]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01));
    _mm_cvtsi128_si32(s)
}

/// [`super::quant_dot::dot_block32`] in AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_block32(w: &Unpacked, a: &Quantized) -> f32 {
    let blocks = w.d.len().min(a.d.len());
    let (wq, aq) = (&w.q[..blocks * 32], &a.qs[..blocks * 32]);
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    for b in 0..blocks {
        let sums = mul_sum_i8_pairs(load(&wq[b * 32..]), load(&aq[b * 32..]));
        let d = _mm256_set1_ps(w.d[b] * a.d[b]);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc);
        mins += w.m[b] * a.sums[b];
    }
    hsum_ps(acc) + mins
}

/// [`super::quant_dot::dot_super256`] in AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_super256(w: &Unpacked, a: &Quantized) -> f32 {
    let blocks = w.d.len().min(a.d.len());
    let (wq, aq) = (&w.q[..blocks * 256], &a.qs[..blocks * 256]);
    let mut sum = 0f32;
    for b in 0..blocks {
        let mut isum = _mm256_setzero_si256();
        let scales = &w.scales[b * 16..b * 16 + 16];
        for pair in 0..8 {
            let at = b * 256 + pair * 32;
            let products = mul_sum_i8_pairs(load(&wq[at..]), load(&aq[at..]));
            let (s0, s1) = (scales[2 * pair], scales[2 * pair + 1]);
            let factors = _mm256_setr_epi32(s0, s0, s0, s0, s1, s1, s1, s1);
            isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(products, factors));
        }
        let mut msum = 0f32;
        for g in 0..16 {
            msum += w.mins[b * 16 + g] as f32 * a.sums[b * 16 + g];
        }
        sum += (w.d[b] * a.d[b]) * hsum_epi32(isum) as f32 - (w.m[b] * a.d[b]) * msum;
    }
    sum
}

/// An f16's bits to f32 through F16C.
#[inline(always)]
unsafe fn f16_bits_to_f32(lo: u8, hi: u8) -> f32 {
    let bits = i32::from(u16::from_le_bytes([lo, hi]));
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
}

/// 16 bytes of nibbles → 32 bytes: the low nibbles, then the high ones (ggml's layout).
#[inline(always)]
unsafe fn bytes_from_nibbles_32(p: &[u8]) -> __m256i {
    debug_assert!(p.len() >= 16);
    let packed = _mm_loadu_si128(p.as_ptr() as *const __m128i);
    let both =
        _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1);
    _mm256_and_si256(_mm256_set1_epi8(0x0f), both)
}

/// Byte `i` is 0xff where bit `i` of `x` is set, else 0.
#[inline(always)]
unsafe fn bytes_from_bits_32(x: u32) -> __m256i {
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(x as i32),
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    let bits = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(bits, _mm256_set1_epi64x(-1))
}

/// A Q8_0 block's 32 values and scale.
#[inline(always)]
unsafe fn q8_0_block(block: &[u8]) -> (__m256i, f32) {
    let w = _mm256_loadu_si256(block[2..34].as_ptr() as *const __m256i);
    (w, f16_bits_to_f32(block[0], block[1]))
}

/// A Q5_0 block's 32 values and scale: nibbles with the 5th bit's absence as 0xf0, which is
/// the value minus 16 as a signed byte.
#[inline(always)]
unsafe fn q5_0_block(block: &[u8]) -> (__m256i, f32) {
    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let high = _mm256_andnot_si256(bytes_from_bits_32(qh), _mm256_set1_epi8(0xf0u8 as i8));
    let w = _mm256_or_si256(bytes_from_nibbles_32(&block[6..22]), high);
    (w, f16_bits_to_f32(block[0], block[1]))
}

/// A raw row of blocks of 32 (`block_bytes` each, read by `decode`) · `T` tokens' q8_0
/// activations: each weight block is decoded once for the `T` tokens.
#[inline(always)]
unsafe fn dot_blocks<const T: usize>(
    row: &[u8],
    block_bytes: usize,
    decode: impl Fn(&[u8]) -> (__m256i, f32),
    a: [&Quantized; T],
) -> [f32; T] {
    let mut acc = [_mm256_setzero_ps(); T];
    for (b, block) in row.chunks_exact(block_bytes).enumerate() {
        let (w, wd) = decode(block);
        for t in 0..T {
            let sums = mul_sum_i8_pairs(w, load(&a[t].qs[b * 32..]));
            let d = _mm256_set1_ps(wd * a[t].d[b]);
            acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[t]);
        }
    }
    acc.map(|v| hsum_ps(v))
}

/// A raw Q8_0, Q5_0, Q4_K or Q6_K row · each token's activations in `q` (q8_0, q8_K), into
/// `out`, without unpacking; `None` for other types.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_row_from_blocks(
    ty: crate::gguf::GgmlType,
    row: &[u8],
    q: &[Quantized],
    out: &mut [f32],
) -> Option<()> {
    use crate::gguf::GgmlType;
    match ty {
        GgmlType::Q8_0 => for_tokens(row, 34, |b| q8_0_block(b), q, out),
        GgmlType::Q5_0 => for_tokens(row, 22, |b| q5_0_block(b), q, out),
        // Several tokens are better served by unpacking the K-quant row once.
        GgmlType::Q4K | GgmlType::Q6K if q.len() >= 4 => return None,
        GgmlType::Q4K => {
            for (a, o) in q.iter().zip(out) {
                *o = dot_q4_k(row, a);
            }
        }
        GgmlType::Q6K => {
            for (a, o) in q.iter().zip(out) {
                *o = dot_q6_k(row, a);
            }
        }
        _ => return None,
    }
    Some(())
}

/// 16 lanes of i16: the low 8 `lo`, the high 8 `hi` (the two groups of 16 values a
/// `maddubs` of 32 bytes yields).
#[inline(always)]
unsafe fn scales_16x2(lo: i32, hi: i32) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi as i16), _mm_set1_epi16(lo as i16))
}

/// A raw Q4_K row (blocks of 144 bytes) · one token's q8_K activations: unsigned nibbles
/// straight into `maddubs`, the 6-bit scales applied per 32 values, the mins through the
/// activations' group sums.
#[inline(always)]
unsafe fn dot_q4_k(row: &[u8], a: &Quantized) -> f32 {
    let mut sum = 0f32;
    let low_nibbles = _mm256_set1_epi8(0x0f);
    for (b, block) in row.chunks_exact(144).enumerate() {
        let (d, dmin) = (
            f16_bits_to_f32(block[0], block[1]),
            f16_bits_to_f32(block[2], block[3]),
        );
        let scales = &block[4..16];
        let aq = &a.qs[b * 256..];
        let mut isum = _mm256_setzero_si256();
        let mut msum = 0i32;
        for chunk in 0..4 {
            let q4 = _mm256_loadu_si256(block[16 + chunk * 32..].as_ptr() as *const __m256i);
            let lo = _mm256_and_si256(q4, low_nibbles);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low_nibbles);
            for (sub, values) in [(2 * chunk, lo), (2 * chunk + 1, hi)] {
                let (sc, m) = super::quant_dot::scale_min_k4(sub, scales);
                let products = _mm256_maddubs_epi16(values, load(&aq[sub * 32..]));
                let scale = scales_16x2(i32::from(sc), i32::from(sc));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(products, scale));
                let group_sums = a.sums[b * 16 + 2 * sub] + a.sums[b * 16 + 2 * sub + 1];
                msum += i32::from(m) * group_sums as i32;
            }
        }
        sum += (d * a.d[b]) * hsum_epi32(isum) as f32 - (dmin * a.d[b]) * msum as f32;
    }
    sum
}

/// A raw Q6_K row (blocks of 210 bytes) · one token's q8_K activations: the unsigned 6-bit
/// values into `maddubs`, their offset of 32 taken back through the activations' group sums.
#[inline(always)]
unsafe fn dot_q6_k(row: &[u8], a: &Quantized) -> f32 {
    let mut sum = 0f32;
    let (m4, m2) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(3));
    for (b, block) in row.chunks_exact(210).enumerate() {
        let d = f16_bits_to_f32(block[208], block[209]);
        let scales = &block[192..208];
        let aq = &a.qs[b * 256..];
        let mut isum = _mm256_setzero_si256();
        let mut offset = 0i32;
        for half in 0..2 {
            let ql0 = _mm256_loadu_si256(block[half * 64..].as_ptr() as *const __m256i);
            let ql1 = _mm256_loadu_si256(block[half * 64 + 32..].as_ptr() as *const __m256i);
            let qh = _mm256_loadu_si256(block[128 + half * 32..].as_ptr() as *const __m256i);
            let high = |shift: i32| {
                let bits = match shift {
                    0 => qh,
                    2 => _mm256_srli_epi16(qh, 2),
                    4 => _mm256_srli_epi16(qh, 4),
                    _ => _mm256_srli_epi16(qh, 6),
                };
                _mm256_slli_epi16(_mm256_and_si256(bits, m2), 4)
            };
            let values = [
                _mm256_or_si256(_mm256_and_si256(ql0, m4), high(0)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), high(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), high(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), high(6)),
            ];
            for (k, v) in values.into_iter().enumerate() {
                let g = half * 8 + 2 * k;
                let (s0, s1) = (i32::from(scales[g] as i8), i32::from(scales[g + 1] as i8));
                let products = _mm256_maddubs_epi16(v, load(&aq[g * 16..]));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(products, scales_16x2(s0, s1)));
                offset += s0 * a.sums[b * 16 + g] as i32 + s1 * a.sums[b * 16 + g + 1] as i32;
            }
        }
        sum += (d * a.d[b]) * (hsum_epi32(isum) - 32 * offset) as f32;
    }
    sum
}

/// [`dot_blocks`] for each group of 4 tokens, then each token left.
#[inline(always)]
unsafe fn for_tokens(
    row: &[u8],
    block_bytes: usize,
    decode: impl Fn(&[u8]) -> (__m256i, f32) + Copy,
    q: &[Quantized],
    out: &mut [f32],
) {
    let mut tokens = q.chunks_exact(4);
    let mut outs = out.chunks_exact_mut(4);
    for (a, o) in (&mut tokens).zip(&mut outs) {
        let group = [&a[0], &a[1], &a[2], &a[3]];
        o.copy_from_slice(&dot_blocks(row, block_bytes, decode, group));
    }
    for (a, o) in tokens.remainder().iter().zip(outs.into_remainder()) {
        *o = dot_blocks(row, block_bytes, decode, [a])[0];
    }
}
