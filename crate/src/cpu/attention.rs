//! Attention on the CPU: RoPE (NEOX pairs, from the shared [`crate::rope::Rope`] table) on
//! queries and keys, keys and values stored into the layer's KV cache (f32, holding values
//! rounded to f16 for an f16 cache as llama.cpp's default, which the goldens come from), and
//! causal grouped-query attention of each token and head over the cache.

use half::f16;

use super::parallel::for_each_chunk;
use super::quant_dot::dot_f32;

/// The attention shape of a model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// Rotates each head of each token in `x` (`n × heads × head_dim`), token `t` being at
/// position `pos + t`; `table` holds `[cos, sin]` per position and pair.
pub(crate) fn rope(x: &mut [f32], heads: usize, head_dim: usize, pos: usize, table: &[[f32; 2]]) {
    let half = head_dim / 2;
    for (t, token) in x.chunks_exact_mut(heads * head_dim).enumerate() {
        let angles = &table[(pos + t) * half..(pos + t + 1) * half];
        for head in token.chunks_exact_mut(head_dim) {
            let (lo, hi) = head.split_at_mut(half);
            for ((a, b), &[cos, sin]) in lo.iter_mut().zip(hi).zip(angles) {
                let (x0, x1) = (*a, *b);
                *a = x0 * cos - x1 * sin;
                *b = x0 * sin + x1 * cos;
            }
        }
    }
}

/// `x` rounded to the nearest f16.
pub(crate) fn through_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// `out[t][h] = softmax(q[t][h] · K[..=pos+t] × scale) · V[..=pos+t]` for every token `t` of
/// the chunk and query head `h`, over the KV heads the query heads share (grouped-query).
/// The caches hold `capacity × n_kv_heads × head_dim` values, the chunk's already stored.
///
/// With `f16_cache`, as llama.cpp over its default f16 cache: the query is rounded to f16 for
/// the products with the keys, and the softmax weights to f16 for the product with the values.
pub(crate) fn attend(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    pos: usize,
    heads: Heads,
    f16_cache: bool,
    out: &mut [f32],
) {
    let round = |x: f32| if f16_cache { through_f16(x) } else { x };
    let Heads {
        n_heads,
        n_kv_heads,
        head_dim,
    } = heads;
    let group = n_heads / n_kv_heads;
    let kv_width = n_kv_heads * head_dim;
    let scale = 1.0 / (head_dim as f32).sqrt();
    for_each_chunk(out, head_dim, |i, o| {
        let (t, h) = (i / n_heads, i % n_heads);
        let kv = (h / group) * head_dim;
        let query: Vec<f32> = q[i * head_dim..(i + 1) * head_dim]
            .iter()
            .map(|&x| round(x))
            .collect();
        let seq = pos + t + 1;
        let mut scores: Vec<f32> = (0..seq)
            .map(|j| dot_f32(&query, &k_cache[j * kv_width + kv..][..head_dim]) * scale)
            .collect();
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let mut sum = 0f32;
        for s in &mut scores {
            *s = (*s - max).exp();
            sum += *s;
        }
        o.fill(0.0);
        let inv = 1.0 / sum;
        for s in &mut scores {
            *s = round(*s * inv);
        }
        for (j, &p) in scores.iter().enumerate() {
            let v = &v_cache[j * kv_width + kv..][..head_dim];
            for (acc, &vj) in o.iter_mut().zip(v) {
                *acc += p * vj;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One query head over three cached positions, worked by hand.
    #[test]
    fn attention_weights_values_by_softmax_of_scaled_scores() {
        let heads = Heads {
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 2,
        };
        // Keys: (1,0), (0,1), (1,1); values: (1,0), (0,2), (3,3).
        let k = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let v = [1.0, 0.0, 0.0, 2.0, 3.0, 3.0];
        // Token at position 2; head 0 queries (2,0), head 1 queries (0,0) (uniform weights).
        let q = [2.0, 0.0, 0.0, 0.0];
        let s = 2.0 / 2f32.sqrt();
        let w = [s.exp(), 1.0, s.exp()];
        let total: f32 = w.iter().sum();
        let want0 = (w[0] * 1.0 + w[2] * 3.0) / total;
        let want1 = (w[1] * 2.0 + w[2] * 3.0) / total;
        // With an f16 cache the weights pass through f16: ~1e-3 relative.
        for (f16_cache, tolerance) in [(false, 1e-5), (true, 2e-3)] {
            let mut out = [0.0; 4];
            attend(&q, &k, &v, 2, heads, f16_cache, &mut out);
            for (got, want) in out.iter().zip([want0, want1, 4.0 / 3.0, 5.0 / 3.0]) {
                assert!((got - want).abs() < tolerance, "{f16_cache}: {out:?}");
            }
        }
    }

    #[test]
    fn rope_rotates_pairs_half_a_head_apart() {
        let (c, s) = (0.6f32, 0.8f32);
        // Position 1 of a table with one pair per position.
        let table = [[1.0, 0.0], [c, s]];
        let mut x = [1.0, 2.0];
        rope(&mut x, 1, 2, 1, &table);
        assert_eq!(x, [1.0 * c - 2.0 * s, 1.0 * s + 2.0 * c]);
    }
}
