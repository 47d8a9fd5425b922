//! The Qwen2 architecture: its tensors (named once, with their shapes), the checks a model
//! must pass before anything touches the GPU, and its forward pass as recorded dispatches.
//!
//! A new architecture is a sibling of this file: its tensor list through [`TensorSource`],
//! its checks, and its graph recorded with the [`Builder`] into a [`RecordedModel`].

use crate::gguf::{GgufModel, ModelTensor};
use crate::gpu::GpuContext;
use crate::kernels::argmax::{Argmax, ArgmaxBindings, ArgmaxParams};
use crate::kernels::attention::{
    supports_head_dim, AttentionReduce, AttentionReduceBindings, FlashAttention,
    FlashAttentionBindings, HeadParams,
};
use crate::kernels::kv_cache::KvCacheType;
use crate::kernels::matmul::{ACCUMULATE, TIMES_SILU_OF_AUX};
use crate::kernels::rms_norm::{NormParams, RmsNorm, RmsNormBindings};
use crate::kernels::rope_store::{RopeStore, RopeStoreBindings};
use crate::model_config::Qwen2Config;
use crate::rope::Rope;

use super::error::{EngineError, EngineOptions};
use super::recording::Builder;
use super::runtime::{Engine, RecordedModel, StepBuffers};
use super::weights::{check_matrix, check_vector, Matrix, Weights};

/// Where the tensor list gets its tensors: the file's table (checked, nothing uploaded) or
/// the weights on the GPU.
pub(super) trait TensorSource {
    type Vector;
    type Matrix;
    fn vector(&mut self, name: &str, len: usize) -> Result<Self::Vector, EngineError>;
    /// A matrix of `rows` rows of `cols` values.
    fn matrix(&mut self, name: &str, cols: usize, rows: usize)
        -> Result<Self::Matrix, EngineError>;
    fn has(&self, name: &str) -> bool;
}

/// One transformer block's tensors.
struct Layer<V, M> {
    attn_norm: V,
    q: M,
    q_bias: V,
    k: M,
    k_bias: V,
    v: M,
    v_bias: V,
    o: M,
    ffn_norm: V,
    gate: M,
    up: M,
    down: M,
}

/// Every tensor the forward pass reads.
struct Tensors<V, M> {
    embedding: M,
    layers: Vec<Layer<V, M>>,
    output_norm: V,
    /// Absent when the output projection is tied to the embedding.
    output: Option<M>,
}

impl<V, M> Tensors<V, M> {
    /// The one list of Qwen2's tensors: GGUF names and shapes.
    fn from_source<S>(s: &mut S, c: &Qwen2Config) -> Result<Self, EngineError>
    where
        S: TensorSource<Vector = V, Matrix = M>,
    {
        let (h, kv, ffn) = (c.hidden_size, c.n_kv_heads * c.head_dim, c.ffn_size);
        let embedding = s.matrix("token_embd.weight", h, c.vocab_size)?;
        let mut layers = Vec::with_capacity(c.n_layers);
        for i in 0..c.n_layers {
            let b = |name: &str| format!("blk.{i}.{name}");
            layers.push(Layer {
                attn_norm: s.vector(&b("attn_norm.weight"), h)?,
                q: s.matrix(&b("attn_q.weight"), h, h)?,
                q_bias: s.vector(&b("attn_q.bias"), h)?,
                k: s.matrix(&b("attn_k.weight"), h, kv)?,
                k_bias: s.vector(&b("attn_k.bias"), kv)?,
                v: s.matrix(&b("attn_v.weight"), h, kv)?,
                v_bias: s.vector(&b("attn_v.bias"), kv)?,
                o: s.matrix(&b("attn_output.weight"), h, h)?,
                ffn_norm: s.vector(&b("ffn_norm.weight"), h)?,
                gate: s.matrix(&b("ffn_gate.weight"), h, ffn)?,
                up: s.matrix(&b("ffn_up.weight"), h, ffn)?,
                down: s.matrix(&b("ffn_down.weight"), ffn, h)?,
            });
        }
        let output_norm = s.vector("output_norm.weight", h)?;
        let output = match s.has("output.weight") {
            true => Some(s.matrix("output.weight", h, c.vocab_size)?),
            false => None,
        };
        Ok(Tensors {
            embedding,
            layers,
            output_norm,
            output,
        })
    }
}

/// Whether a tensor is uploaded as a matrix (quantized, split by rows) or a vector (f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TensorKind {
    Vector,
    Matrix,
}

/// The file's tensor table as a source: each tensor checked against its expected shape and
/// collected, nothing uploaded.
struct TableCheck<'m> {
    model: &'m GgufModel,
    found: Vec<(&'m ModelTensor, TensorKind)>,
}

impl<'m> TableCheck<'m> {
    fn get(&self, name: &str) -> Result<&'m ModelTensor, EngineError> {
        self.model
            .tensor(name)
            .ok_or_else(|| EngineError::MissingTensor { name: name.into() })
    }
}

impl TensorSource for TableCheck<'_> {
    type Vector = ();
    type Matrix = ();

    fn vector(&mut self, name: &str, len: usize) -> Result<(), EngineError> {
        let tensor = self.get(name)?;
        check_vector(tensor, len)?;
        self.found.push((tensor, TensorKind::Vector));
        Ok(())
    }

    fn matrix(&mut self, name: &str, cols: usize, rows: usize) -> Result<(), EngineError> {
        let tensor = self.get(name)?;
        check_matrix(tensor, cols, rows)?;
        self.found.push((tensor, TensorKind::Matrix));
        Ok(())
    }

    fn has(&self, name: &str) -> bool {
        self.model.tensor(name).is_some()
    }
}

/// Every tensor the forward pass reads, checked, with how it is uploaded.
pub(super) fn required_tensors<'m>(
    model: &'m GgufModel,
    config: &Qwen2Config,
) -> Result<Vec<(&'m ModelTensor, TensorKind)>, EngineError> {
    let mut check = TableCheck {
        model,
        found: Vec::new(),
    };
    Tensors::from_source(&mut check, config)?;
    Ok(check.found)
}

/// Checks that a model can run here (architecture, tensors, shapes, types) without touching
/// the GPU.
pub fn check_model(model: &GgufModel) -> Result<Qwen2Config, EngineError> {
    let config = Qwen2Config::from_model(model)?;
    Rope::resolve(&config, None).map_err(|message| EngineError::Unsupported { message })?;
    if !supports_head_dim(config.head_dim) {
        return Err(EngineError::Unsupported {
            message: format!(
                "head dimension {} (the attention kernels take multiples of 64 and divisors of 64 \
                 from 4)",
                config.head_dim
            ),
        });
    }
    if config.n_kv_heads == 0 || config.n_heads % config.n_kv_heads != 0 {
        return Err(EngineError::Unsupported {
            message: format!(
                "{} query heads do not share {} KV heads evenly",
                config.n_heads, config.n_kv_heads
            ),
        });
    }
    required_tensors(model, &config)?;
    Ok(config)
}

impl TensorSource for Weights {
    type Vector = wgpu::Buffer;
    type Matrix = Matrix;

    // Shapes were checked against the table before the upload.
    fn vector(&mut self, name: &str, _len: usize) -> Result<wgpu::Buffer, EngineError> {
        self.take_vector(name)
    }

    fn matrix(&mut self, name: &str, _cols: usize, _rows: usize) -> Result<Matrix, EngineError> {
        self.take_matrix(name)
    }

    fn has(&self, name: &str) -> bool {
        self.has_matrix(name)
    }
}

/// The sizes a context needs, decided before any weight is allocated or downloaded.
pub(super) struct Plan {
    pub rope: Rope,
    /// Tokens the KV cache holds.
    pub capacity: usize,
    /// Most tokens per prefill submission (its scratch must fit one binding).
    pub chunk: usize,
    pub cache: KvCacheType,
}

/// Plans `options` for `config` on `ctx`'s device; a context whose KV cache or scratch cannot
/// be bound fails here, saying how many tokens fit.
pub(super) fn plan(
    ctx: &GpuContext,
    config: &Qwen2Config,
    options: &EngineOptions,
) -> Result<Plan, EngineError> {
    let c = config;
    let rope = Rope::resolve(c, options.rope_scaling.as_ref())
        .map_err(|message| EngineError::Unsupported { message })?;
    let capacity = options
        .context_length
        .min(rope.max_context(c.context_length))
        .max(1);
    let cache = match options.kv_cache {
        None if ctx.f16 => KvCacheType::F16,
        None => KvCacheType::F32,
        Some(KvCacheType::F16) if !ctx.f16 => {
            return Err(EngineError::Unsupported {
                message: "an f16 KV cache needs shader-f16, which this GPU lacks (use f32 or q8_0)"
                    .into(),
            })
        }
        Some(cache) => cache,
    };
    if !cache.supports_head_dim(c.head_dim) {
        return Err(EngineError::Unsupported {
            message: format!(
                "a {} KV cache needs heads of a multiple of 64 values; this model's have {}",
                cache.name(),
                c.head_dim
            ),
        });
    }
    let limit = ctx.max_binding_bytes;
    // Bytes per cached token of each buffer that grows with the context.
    let kv_per_token = cache.bytes((c.n_kv_heads * c.head_dim) as u64);
    let rope_per_token = c.head_dim as u64 * 4;
    for (what, per_token) in [
        ("a layer's KV cache", kv_per_token),
        ("the RoPE table", rope_per_token),
    ] {
        let needed = per_token * capacity as u64;
        if needed > limit {
            return Err(EngineError::ContextTooLarge {
                context: capacity,
                what: what.into(),
                needed,
                limit,
                fits: (limit / per_token) as usize,
            });
        }
    }
    // The largest per-token scratch: the FFN activations or the attention splits' partial sums.
    let (heads, head_dim) = (c.n_heads as u64, c.head_dim as u64);
    let scratch_bytes = |tokens: u64| {
        (FlashAttention::partial_rows(tokens, heads) * head_dim * 4)
            .max(tokens * c.ffn_size as u64 * 4)
    };
    let mut chunk = (options.prefill_chunk.max(1) as u64).min(capacity as u64);
    while chunk > 1 && scratch_bytes(chunk) > limit {
        chunk /= 2;
    }
    let chunk = chunk as usize;
    Ok(Plan {
        rope,
        capacity,
        chunk,
        cache,
    })
}

/// Wires uploaded weights into the forward pass: activations, KV cache, pipelines and the
/// recorded dispatches.
pub(super) fn assemble(
    ctx: GpuContext,
    config: Qwen2Config,
    options: &EngineOptions,
    mut weights: Weights,
) -> Result<Engine, EngineError> {
    let c = &config;
    let w = Tensors::from_source(&mut weights, c)?;
    let Plan {
        rope: rope_scaling,
        capacity,
        chunk,
        cache,
    } = plan(&ctx, c, options)?;
    let h = c.hidden_size as u64;
    let kv_width = (c.n_kv_heads * c.head_dim) as u64;
    let ffn = c.ffn_size as u64;
    let heads = c.n_heads as u64;
    let n = chunk as u64;

    let cache_bytes = cache.bytes(capacity as u64 * kv_width);
    let mut caches = Vec::with_capacity(c.n_layers);
    for i in 0..c.n_layers {
        caches.push((
            ctx.storage_buffer(&format!("blk.{i}.k_cache"), cache_bytes)?,
            ctx.storage_buffer(&format!("blk.{i}.v_cache"), cache_bytes)?,
        ));
    }
    let io = StepBuffers::new(&ctx, n, c.vocab_size as u64)?;
    let scratch = |label: &str, bytes: u64| ctx.storage_buffer(label, bytes);
    let residual = scratch("residual", n * h * 4)?;
    let normed = scratch("normed", n * h * 4)?;
    let q = scratch("q", n * h * 4)?;
    let k = scratch("k", n * kv_width * 4)?;
    let v = scratch("v", n * kv_width * 4)?;
    let attention = scratch("attention", n * h * 4)?;
    let head_dim = c.head_dim as u64;
    let partial_rows = FlashAttention::partial_rows(n, heads);
    let partial_o = scratch("attention-partial-o", partial_rows * head_dim * 4)?;
    let partial_ml = scratch("attention-partial-ml", partial_rows * 2 * 4)?;
    let gate = scratch("gate", n * ffn * 4)?;
    let up = scratch("up", n * ffn * 4)?;
    let final_normed = scratch("final_normed", h * 4)?;
    let rope = scratch("rope", capacity as u64 * c.head_dim as u64 * 4)?;
    ctx.queue.write_buffer(
        &rope,
        0,
        bytemuck::cast_slice(&rope_scaling.table(capacity, c.head_dim)),
    );

    let mut b = Builder::new(&ctx, &io.step)?;
    let step = b.step();
    b.embed(&w.embedding, &io.tokens, &residual)?;
    let head_uniform = b.uniform(
        "heads",
        &HeadParams {
            n_heads: c.n_heads as u32,
            n_kv_heads: c.n_kv_heads as u32,
            head_dim: c.head_dim as u32,
            scale: 1.0 / (c.head_dim as f32).sqrt(),
            kv_scales_at: match cache {
                KvCacheType::Q8_0 => (capacity as u64 * kv_width / 4) as u32,
                _ => 0,
            },
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        },
    );
    let flash = FlashAttention::pair(cache, (c.n_heads / c.n_kv_heads) as u32, c.head_dim as u32);
    let kv_heads = c.n_kv_heads as u32;
    let norm = |last_only: bool| NormParams {
        n: c.hidden_size as u32,
        eps: c.rms_eps,
        last_only: u32::from(last_only),
        _pad: 0,
    };
    let norm_all = b.uniform("norm", &norm(false));
    let norm_last = b.uniform("norm-last", &norm(true));
    let before_layers = b.recorded();
    for (layer, (k_cache, v_cache)) in w.layers.iter().zip(&caches) {
        let rms_norm = |x, weight, y| RmsNormBindings {
            x,
            weight,
            y,
            params: &norm_all,
            step,
        };
        b.dispatch(
            RmsNorm,
            &rms_norm(&residual, &layer.attn_norm, &normed),
            RmsNorm::grid(false),
        )?;
        b.matmul(&layer.q, &normed, &q, Some(&layer.q_bias), 0, 0)?;
        b.matmul(&layer.k, &normed, &k, Some(&layer.k_bias), 0, 0)?;
        b.matmul(&layer.v, &normed, &v, Some(&layer.v_bias), 0, 0)?;
        b.dispatch(
            RopeStore { cache },
            &RopeStoreBindings {
                q: &q,
                k: &k,
                v: &v,
                k_cache,
                v_cache,
                rope: &rope,
                heads: &head_uniform,
                step,
            },
            RopeStore::grid(c.head_dim as u32, (c.n_heads + c.n_kv_heads) as u32),
        )?;
        b.dispatch_pair(
            flash.map(|kernel| (kernel, kernel.grid(kv_heads))),
            &FlashAttentionBindings {
                q: &q,
                k_cache,
                v_cache,
                partial_o: &partial_o,
                partial_ml: &partial_ml,
                heads: &head_uniform,
                step,
            },
        )?;
        b.dispatch(
            AttentionReduce,
            &AttentionReduceBindings {
                partial_o: &partial_o,
                partial_ml: &partial_ml,
                out: &attention,
                heads: &head_uniform,
                step,
            },
            AttentionReduce::grid(c.n_heads as u32),
        )?;
        b.matmul(&layer.o, &attention, &residual, None, ACCUMULATE, 0)?;
        b.dispatch(
            RmsNorm,
            &rms_norm(&residual, &layer.ffn_norm, &normed),
            RmsNorm::grid(false),
        )?;
        b.matmul(&layer.gate, &normed, &gate, None, 0, 0)?;
        b.matmul_with(&layer.up, &normed, &up, &gate, TIMES_SILU_OF_AUX, 0)?;
        b.matmul(&layer.down, &up, &residual, None, ACCUMULATE, 0)?;
    }
    let dispatches_per_layer = (b.recorded() - before_layers) / c.n_layers.max(1);
    b.dispatch(
        RmsNorm,
        &RmsNormBindings {
            x: &residual,
            weight: &w.output_norm,
            y: &final_normed,
            params: &norm_last,
            step,
        },
        RmsNorm::grid(true),
    )?;
    let body = b.take();
    let output = w.output.as_ref().unwrap_or(&w.embedding);
    b.matmul(output, &final_normed, &io.logits, None, 0, 1)?;
    let head = b.take();
    let argmax_params = b.uniform(
        "argmax",
        &ArgmaxParams {
            n: c.vocab_size as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        },
    );
    b.dispatch(
        Argmax,
        &ArgmaxBindings {
            logits: &io.logits,
            out: &io.argmax,
            params: &argmax_params,
        },
        Argmax::grid(),
    )?;
    let argmax = b.take();
    let mut keep = b.into_kept();
    keep.extend([
        residual,
        normed,
        q,
        k,
        v,
        attention,
        partial_o,
        partial_ml,
        gate,
        up,
        final_normed,
        rope,
        w.output_norm,
    ]);
    for (k_cache, v_cache) in caches {
        keep.extend([k_cache, v_cache]);
    }
    let mut matrices = vec![w.embedding];
    matrices.extend(w.output);
    for layer in w.layers {
        keep.extend([
            layer.attn_norm,
            layer.q_bias,
            layer.k_bias,
            layer.v_bias,
            layer.ffn_norm,
        ]);
        matrices.extend([
            layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down,
        ]);
    }
    keep.extend(
        matrices
            .into_iter()
            .flat_map(|m| m.pieces)
            .map(|p| p.buffer),
    );
    ctx.check_lost()?;
    let recorded = RecordedModel {
        buffers: io,
        body,
        head,
        argmax,
        capacity,
        chunk,
        dispatches_per_layer,
        _keep: keep,
    };
    Ok(Engine::new(ctx, config, recorded))
}
