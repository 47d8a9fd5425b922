//! The forward pass on the CPU, for machines without a usable GPU: the same Qwen2 tensor list
//! and steps as the GPU engine, with llama.cpp's 8-bit quantized dot products, an f32 KV cache
//! and a thread pool.
//!
//! - [`weights`]: the tensors read from the file;
//! - [`quant_dot`]: activation quantization and per-type dot products; `avx2`: their x86-64
//!   AVX2 forms;
//! - [`matmul`]: rows across threads, AVX2 where the CPU has it;
//! - [`attention`]: RoPE, KV cache, attention;
//! - [`forward`]: the layers over a chunk of tokens;
//! - [`parallel`]: the threads.

mod attention;
#[cfg(target_arch = "x86_64")]
mod avx2;
mod forward;
mod matmul;
mod parallel;
mod quant_dot;
mod weights;

use crate::engine::error::{EngineError, EngineOptions};
use crate::engine::qwen2::{check_model, Tensors};
use crate::engine::recording::StepStats;
use crate::engine::step::{check_tokens, Readback, StepOutput};
use crate::gguf::GgufModel;
use crate::kernels::kv_cache::KvCacheType;
use crate::model_config::Qwen2Config;
use crate::rope::Rope;

use forward::{LayerCache, Model};
use parallel::Pool;
use weights::CpuWeights;

/// A model in CPU memory with its KV cache and threads.
pub struct CpuEngine {
    model: Model,
    cache: Vec<LayerCache>,
    /// Tokens the KV cache holds.
    capacity: usize,
    /// Most tokens per forward pass (bounds the activations' memory).
    chunk: usize,
    /// Tokens in the KV cache.
    pos: usize,
    /// Bytes of weight matrices one forward pass reads (the output projection included).
    weight_bytes: u64,
    stats: StepStats,
    pool: Pool,
}

/// `len` zeroed f32s, or an error naming `what` when memory cannot hold them.
fn zeroed(what: &str, len: usize) -> Result<Vec<f32>, EngineError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| EngineError::OutOfMemory {
            what: what.into(),
            bytes: len as u64 * 4,
        })?;
    v.resize(len, 0.0);
    Ok(v)
}

impl CpuEngine {
    /// Checks `model`, reads its tensors through `read(shard, offset, buf)` (see
    /// [`CpuWeights::read`]; `shard_bytes` are the shards' sizes) and allocates the KV cache.
    pub fn load(
        model: &GgufModel,
        options: &EngineOptions,
        threads: usize,
        shard_bytes: &[u64],
        read: impl FnMut(usize, u64, &mut [u8]) -> Result<(), String>,
    ) -> Result<CpuEngine, EngineError> {
        let config = check_model(model)?;
        let c = &config;
        let rope = Rope::resolve(c, options.rope_scaling.as_ref())
            .map_err(|message| EngineError::Unsupported { message })?;
        let capacity = options
            .context_length
            .min(rope.max_context(c.context_length))
            .max(1);
        let f16_cache = match options.kv_cache {
            None | Some(KvCacheType::F16) => true,
            Some(KvCacheType::F32) => false,
            Some(KvCacheType::Q8_0) => {
                return Err(EngineError::Unsupported {
                    message: "the CPU backend keeps its KV cache in f16 or f32, not q8_0".into(),
                })
            }
        };
        let pool = Pool::new(threads)?;
        let kv_values = capacity * c.n_kv_heads * c.head_dim;
        let mut cache = Vec::with_capacity(c.n_layers);
        for i in 0..c.n_layers {
            cache.push(LayerCache {
                k: zeroed(&format!("the KV cache of layer {i}"), kv_values)?,
                v: zeroed(&format!("the KV cache of layer {i}"), kv_values)?,
            });
        }
        let mut weights = CpuWeights::read(model, c, shard_bytes, read)?;
        let tensors: Tensors<Vec<f32>, _> = Tensors::from_source(&mut weights, c)?;
        let output = tensors.output.as_ref().unwrap_or(&tensors.embedding);
        let weight_bytes = tensors
            .layers
            .iter()
            .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down])
            .chain([output])
            .map(|m| m.data.len() as u64)
            .sum();
        let table = rope.table(capacity, c.head_dim);
        Ok(CpuEngine {
            model: Model {
                config,
                tensors,
                rope: table,
                f16_cache,
            },
            cache,
            capacity,
            chunk: options.prefill_chunk.max(1),
            pos: 0,
            weight_bytes,
            stats: StepStats::default(),
            pool,
        })
    }

    pub fn config(&self) -> &Qwen2Config {
        &self.model.config
    }

    /// Threads the steps run on.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Tokens currently in the KV cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Tokens the KV cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets cached tokens from `pos` on.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    /// Most tokens one forward pass processes.
    pub fn prefill_chunk(&self) -> usize {
        self.chunk
    }

    pub fn last_step_stats(&self) -> &StepStats {
        &self.stats
    }

    /// Runs `tokens` through the model at the current position (in chunks) and returns the
    /// last position's argmax or logits.
    pub fn step(&mut self, tokens: &[u32], readback: Readback) -> Result<StepOutput, EngineError> {
        check_tokens(
            tokens,
            self.pos,
            self.capacity,
            self.model.config.vocab_size,
        )?;
        let mut stats = StepStats {
            tokens: tokens.len(),
            ..StepStats::default()
        };
        let chunks: Vec<&[u32]> = tokens.chunks(self.chunk).collect();
        let mut logits = None;
        for (i, chunk) in chunks.iter().enumerate() {
            let head = i + 1 == chunks.len() && readback != Readback::Nothing;
            let (model, cache, pos) = (&self.model, &mut self.cache, self.pos);
            logits = self.pool.run(|| model.run_chunk(cache, pos, chunk, head))?;
            self.pos += chunk.len();
            stats.weight_bytes_read += self.weight_bytes;
        }
        self.stats = stats;
        Ok(match (readback, logits) {
            (Readback::Logits, Some(l)) => StepOutput::Logits(l),
            (Readback::Argmax, Some(l)) => {
                let (token, logit) = argmax(&l);
                StepOutput::Argmax { token, logit }
            }
            _ => StepOutput::Nothing,
        })
    }
}

/// The first largest logit and its id.
fn argmax(logits: &[f32]) -> (u32, f32) {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    (
        best as u32,
        logits.get(best).copied().unwrap_or(f32::NEG_INFINITY),
    )
}
