//! The Qwen2 forward pass on the CPU over one chunk of tokens: embedding, per layer RMSNorm,
//! Q/K/V with biases, RoPE, the KV cache, attention, output projection, RMSNorm, SiLU-gated
//! feed-forward, residuals; then the last token's final norm and output projection.

use crate::dequant::dequantize;
use crate::engine::error::EngineError;
use crate::engine::qwen2::Tensors;
use crate::model_config::Qwen2Config;

use super::attention::{attend, rope, through_f16, Heads};
use super::matmul::{matmul, Activations};
use super::weights::CpuMatrix;

/// A model's weights with what its steps need beside them.
pub(crate) struct Model {
    pub config: Qwen2Config,
    pub tensors: Tensors<Vec<f32>, CpuMatrix>,
    /// `[cos, sin]` per cache position and rotation pair.
    pub rope: Vec<[f32; 2]>,
    /// The cache holds f16 values (llama.cpp's default), else f32.
    pub f16_cache: bool,
}

/// One layer's cached keys and values: `capacity × n_kv_heads × head_dim` each, for an f16
/// cache rounded to f16 (kept as f32 so attention reads them without conversion).
pub(crate) struct LayerCache {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

/// `y = x / rms(x) × weight` for each token of `x`, the sum of squares in f64 as ggml.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, y: &mut [f32]) {
    let width = weight.len();
    for (xt, yt) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)) {
        let sum: f64 = xt.iter().map(|&v| f64::from(v * v)).sum();
        let scale = 1.0 / ((sum / width as f64) as f32 + eps).sqrt();
        for ((o, &v), &w) in yt.iter_mut().zip(xt).zip(weight) {
            *o = v * scale * w;
        }
    }
}

/// Keys or values into the cache, rounded to f16 for an f16 cache.
fn store(cache: &mut [f32], values: &[f32], f16_cache: bool) {
    for (c, &v) in cache.iter_mut().zip(values) {
        *c = if f16_cache { through_f16(v) } else { v };
    }
}

fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

impl Model {
    /// The attention shape.
    pub fn heads(&self) -> Heads {
        Heads {
            n_heads: self.config.n_heads,
            n_kv_heads: self.config.n_kv_heads,
            head_dim: self.config.head_dim,
        }
    }

    /// Runs `tokens` at cache positions `pos..`, storing their keys and values in `cache`,
    /// and returns the last token's logits when `logits` is set. The caller checked that the
    /// tokens are in the vocabulary and fit the cache.
    pub fn run_chunk(
        &self,
        cache: &mut [LayerCache],
        pos: usize,
        tokens: &[u32],
        logits: bool,
    ) -> Result<Option<Vec<f32>>, EngineError> {
        let c = &self.config;
        let w = &self.tensors;
        let n = tokens.len();
        let (h, ffn) = (c.hidden_size, c.ffn_size);
        let kv_width = c.n_kv_heads * c.head_dim;
        let mut x = vec![0f32; n * h];
        for (&token, xt) in tokens.iter().zip(x.chunks_exact_mut(h)) {
            let row = w.embedding.row(token as usize);
            let values = dequantize(w.embedding.ty, row).map_err(|e| EngineError::Unsupported {
                message: e.to_string(),
            })?;
            xt.copy_from_slice(&values);
        }
        let mut normed = vec![0f32; n * h];
        let mut q = vec![0f32; n * h];
        let mut k = vec![0f32; n * kv_width];
        let mut v = vec![0f32; n * kv_width];
        let mut attention = vec![0f32; n * h];
        let mut projected = vec![0f32; n * h];
        let mut gate = vec![0f32; n * ffn];
        let mut up = vec![0f32; n * ffn];
        let stored = pos * kv_width..(pos + n) * kv_width;
        for (layer, layer_cache) in w.layers.iter().zip(cache.iter_mut()) {
            rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut normed);
            let a = Activations::new(&normed, h);
            matmul(&layer.q, &a, &mut q);
            matmul(&layer.k, &a, &mut k);
            matmul(&layer.v, &a, &mut v);
            add_bias(&mut q, &layer.q_bias);
            add_bias(&mut k, &layer.k_bias);
            add_bias(&mut v, &layer.v_bias);
            rope(&mut q, c.n_heads, c.head_dim, pos, &self.rope);
            rope(&mut k, c.n_kv_heads, c.head_dim, pos, &self.rope);
            store(&mut layer_cache.k[stored.clone()], &k, self.f16_cache);
            store(&mut layer_cache.v[stored.clone()], &v, self.f16_cache);
            attend(
                &q,
                &layer_cache.k,
                &layer_cache.v,
                pos,
                self.heads(),
                self.f16_cache,
                &mut attention,
            );
            matmul(&layer.o, &Activations::new(&attention, h), &mut projected);
            add(&mut x, &projected);

            rms_norm(&x, &layer.ffn_norm, c.rms_eps, &mut normed);
            let a = Activations::new(&normed, h);
            matmul(&layer.gate, &a, &mut gate);
            matmul(&layer.up, &a, &mut up);
            for (u, &g) in up.iter_mut().zip(&gate) {
                *u *= g / (1.0 + (-g).exp());
            }
            matmul(&layer.down, &Activations::new(&up, ffn), &mut projected);
            add(&mut x, &projected);
        }
        if !logits {
            return Ok(None);
        }
        let mut last = vec![0f32; h];
        rms_norm(&x[(n - 1) * h..], &w.output_norm, c.rms_eps, &mut last);
        let output = w.output.as_ref().unwrap_or(&w.embedding);
        let mut out = vec![0f32; c.vocab_size];
        matmul(output, &Activations::new(&last, h), &mut out);
        Ok(Some(out))
    }
}
