//! The Qwen2 forward pass on the GPU: weights, KV cache, activation buffers and the recorded
//! sequence of kernel dispatches for prefill (token chunks) and decode (one token).
//!
//! Everything is allocated at load; a step writes one small uniform, encodes its dispatches into
//! one command buffer, submits once, and reads back either 8 bytes (greedy) or the logits.

mod loader;
mod weights;

use bytemuck::{Pod, Zeroable};

use crate::gguf::{GgmlType, GgufModel, ModelTensor};
use crate::gpu::{GpuContext, GpuError, Kernel, Kernels, MATMUL_ROWS_PER_WORKGROUP, PREFILL_TILE};
use crate::model_config::{ConfigError, Qwen2Config};

use loader::Weights;
pub use loader::{DataRange, LoadProgress, WeightLoader};
pub use weights::Matrix;
use weights::{check_matrix, check_vector};

/// Why the engine could not load a model or run a step.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("tensor {name} is missing")]
    MissingTensor { name: String },
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    BadShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor {name} has type {ty}, which the GPU kernels do not support")]
    UnsupportedType { name: String, ty: GgmlType },
    #[error("tensor {name} could not be read: {message}")]
    Read { name: String, message: String },
    #[error("{message}")]
    Unsupported { message: String },
    #[error("the context holds {capacity} tokens; {needed} were needed")]
    ContextOverflow { needed: usize, capacity: usize },
    #[error("token id {token} is outside the vocabulary of {vocab}")]
    TokenOutOfRange { token: u32, vocab: usize },
    #[error("no tokens to process")]
    EmptyInput,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Tokens the KV cache holds (capped by the model's training context).
    pub context_length: usize,
    /// Most tokens one prefill submission processes.
    pub prefill_chunk: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            context_length: 4096,
            prefill_chunk: 64,
        }
    }
}

/// What a step reads back after its last token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readback {
    /// The most likely next token (8 bytes read back).
    Argmax,
    /// All logits of the last position.
    Logits,
    /// Nothing: the step only fills the KV cache (a prefill chunk before the last); it
    /// resolves when the GPU has finished it.
    Nothing,
}

/// The result of a step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutput {
    Argmax { token: u32, logit: f32 },
    Logits(Vec<f32>),
    Nothing,
}

/// Counters for benchmarks: what the last step cost.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StepStats {
    pub tokens: usize,
    pub dispatches: usize,
    pub submits: usize,
    pub weight_bytes_read: u64,
    pub bytes_read_back: u64,
}

/// Per-step values every kernel reads (one 16-byte uniform, written before each submission).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct StepUniform {
    n_tokens: u32,
    pos: u32,
    seq_len: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MatMulParams {
    k: u32,
    rows: u32,
    row_offset: u32,
    row_bytes: u32,
    y_stride: u32,
    x_stride: u32,
    x_token: u32,
    flags: u32,
}

const MATMUL_BIAS: u32 = 1;
const MATMUL_ACCUMULATE: u32 = 2;
const MATMUL_TIMES_SILU_OF_AUX: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct EmbedParams {
    k: u32,
    rows: u32,
    row_offset: u32,
    row_bytes: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NormParams {
    n: u32,
    eps: f32,
    last_only: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct HeadParams {
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    ctx: u32,
    scale: f32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CountParams {
    n: u32,
    _pad: [u32; 3],
}

/// How many workgroups a dispatch launches, given the step's token count and sequence length.
#[derive(Debug, Clone, Copy)]
enum Grid {
    /// A mat-mul over `rows` rows: rows spread over x and y, token tiles over z (one tile when
    /// it reads a single token).
    MatRows { rows: u32, single_token: bool },
    /// (x, y, tokens).
    PerToken { x: u32, y: u32 },
    /// (x, tokens, 1).
    TokensY { x: u32 },
    /// (tokens, 1, 1).
    Tokens,
    /// (ceil(seq_len / 64), heads, tokens).
    Scores { heads: u32 },
    /// One workgroup (argmax, the last token's final norm).
    Single,
}

const MAX_GROUPS: u32 = 65_535;

impl Grid {
    fn size(self, n_tokens: u32, seq_len: u32, tile: u32) -> [u32; 3] {
        match self {
            Grid::MatRows { rows, single_token } => {
                let groups = rows.div_ceil(MATMUL_ROWS_PER_WORKGROUP);
                let x = groups.min(MAX_GROUPS);
                let tiles = if single_token {
                    1
                } else {
                    n_tokens.div_ceil(tile)
                };
                [x, groups.div_ceil(x), tiles]
            }
            Grid::PerToken { x, y } => [x, y, n_tokens],
            Grid::TokensY { x } => [x, n_tokens, 1],
            Grid::Tokens => [n_tokens, 1, 1],
            Grid::Scores { heads } => [seq_len.div_ceil(64), heads, n_tokens],
            Grid::Single => [1, 1, 1],
        }
    }
}

/// One recorded kernel launch. Mat-mul kernels pick their tile (decode or prefill) per step.
struct Dispatch {
    kernel: Kernel,
    bind_group: wgpu::BindGroup,
    grid: Grid,
    /// Weight bytes each workgroup layer (z slice) of this launch reads.
    weight_bytes: u64,
}

/// Activation buffers, sized for one prefill chunk.
struct Activations {
    tokens: wgpu::Buffer,
    residual: wgpu::Buffer,
    normed: wgpu::Buffer,
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    attention: wgpu::Buffer,
    scores: wgpu::Buffer,
    gate: wgpu::Buffer,
    up: wgpu::Buffer,
    final_normed: wgpu::Buffer,
    logits: wgpu::Buffer,
    argmax: wgpu::Buffer,
    step: wgpu::Buffer,
    logits_staging: wgpu::Buffer,
    argmax_staging: wgpu::Buffer,
}

/// A Qwen2 model loaded on the GPU with its KV cache.
pub struct Engine {
    ctx: GpuContext,
    config: Qwen2Config,
    kernels: Kernels,
    activations: Activations,
    /// The forward pass over a chunk, up to the last token's final norm.
    body: Vec<Dispatch>,
    /// Output projection of the last token.
    head: Vec<Dispatch>,
    argmax: Dispatch,
    /// Tokens the KV cache holds.
    capacity: usize,
    /// Most tokens per prefill submission.
    chunk: usize,
    dispatches_per_layer: usize,
    /// Tokens in the KV cache.
    pos: usize,
    /// GPU buffers that must outlive the bind groups built over them.
    _keep: Vec<wgpu::Buffer>,
    stats: StepStats,
}

/// The names and checks of every tensor the forward pass reads.
fn required_tensors<'m>(
    model: &'m GgufModel,
    c: &Qwen2Config,
) -> Result<Vec<(&'m ModelTensor, Shape)>, EngineError> {
    let get = |name: String| {
        model
            .tensor(&name)
            .ok_or(EngineError::MissingTensor { name })
    };
    let (h, kv, ffn) = (c.hidden_size, c.n_kv_heads * c.head_dim, c.ffn_size);
    let mut out = vec![(
        get("token_embd.weight".into())?,
        Shape::Matrix(h, c.vocab_size),
    )];
    for i in 0..c.n_layers {
        let b = |s: &str| format!("blk.{i}.{s}");
        out.extend([
            (get(b("attn_norm.weight"))?, Shape::Vector(h)),
            (get(b("attn_q.weight"))?, Shape::Matrix(h, h)),
            (get(b("attn_q.bias"))?, Shape::Vector(h)),
            (get(b("attn_k.weight"))?, Shape::Matrix(h, kv)),
            (get(b("attn_k.bias"))?, Shape::Vector(kv)),
            (get(b("attn_v.weight"))?, Shape::Matrix(h, kv)),
            (get(b("attn_v.bias"))?, Shape::Vector(kv)),
            (get(b("attn_output.weight"))?, Shape::Matrix(h, h)),
            (get(b("ffn_norm.weight"))?, Shape::Vector(h)),
            (get(b("ffn_gate.weight"))?, Shape::Matrix(h, ffn)),
            (get(b("ffn_up.weight"))?, Shape::Matrix(h, ffn)),
            (get(b("ffn_down.weight"))?, Shape::Matrix(ffn, h)),
        ]);
    }
    out.push((get("output_norm.weight".into())?, Shape::Vector(h)));
    if let Some(output) = model.tensor("output.weight") {
        out.push((output, Shape::Matrix(h, c.vocab_size)));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Vector(usize),
    /// (cols, rows)
    Matrix(usize, usize),
}

/// Checks that a model can run here (architecture, tensors, shapes, types) without touching
/// the GPU.
pub fn check_model(model: &GgufModel) -> Result<Qwen2Config, EngineError> {
    let config = Qwen2Config::from_model(model)?;
    if let Some(scaling) = &config.rope_scaling {
        if scaling.kind != "linear" || scaling.factor != 1.0 {
            return Err(EngineError::Unsupported {
                message: format!(
                    "RoPE scaling {:?} with factor {} is not supported yet",
                    scaling.kind, scaling.factor
                ),
            });
        }
    }
    if config.head_dim % 4 != 0 {
        return Err(EngineError::Unsupported {
            message: format!("head dimension {} is not a multiple of 4", config.head_dim),
        });
    }
    for (tensor, shape) in required_tensors(model, &config)? {
        match shape {
            Shape::Vector(n) => check_vector(tensor, n)?,
            Shape::Matrix(cols, rows) => check_matrix(tensor, cols, rows)?,
        }
    }
    Ok(config)
}

impl Engine {
    /// Loads `model` onto `ctx`'s device. `read` returns a tensor's bytes (from a file or a
    /// cache); every tensor is checked before anything is uploaded. To stream bytes as they
    /// arrive instead, use [`WeightLoader`].
    pub fn load(
        ctx: GpuContext,
        model: &GgufModel,
        options: &EngineOptions,
        mut read: impl FnMut(&ModelTensor) -> Result<Vec<u8>, String>,
    ) -> Result<Engine, EngineError> {
        let mut loader = WeightLoader::new(ctx, model, options)?;
        let config = loader.config().clone();
        for (tensor, _) in required_tensors(model, &config)? {
            let bytes = read(tensor).map_err(|message| EngineError::Read {
                name: tensor.info.name.clone(),
                message,
            })?;
            if bytes.len() as u64 != tensor.info.bytes {
                return Err(EngineError::Read {
                    name: tensor.info.name.clone(),
                    message: format!("got {} bytes, expected {}", bytes.len(), tensor.info.bytes),
                });
            }
            loader.push(tensor.shard, tensor.file_offset, &bytes)?;
        }
        loader.finish()
    }

    /// Wires uploaded weights into the forward pass: activations, KV cache, pipelines and the
    /// recorded dispatches.
    fn assemble(
        ctx: GpuContext,
        config: Qwen2Config,
        options: &EngineOptions,
        mut weights: Weights,
    ) -> Result<Engine, EngineError> {
        let c = &config;
        let capacity = options.context_length.min(c.context_length).max(1);
        let h = c.hidden_size as u64;
        let kv_width = (c.n_kv_heads * c.head_dim) as u64;
        let ffn = c.ffn_size as u64;
        let heads = c.n_heads as u64;
        // The attention score scratch holds chunk × heads × capacity floats.
        let max_chunk_for_scores = (ctx.max_binding_bytes / (heads * capacity as u64 * 4)).max(1);
        let chunk = (options.prefill_chunk.max(1) as u64).min(max_chunk_for_scores) as usize;
        let n = chunk as u64;

        let embedding = weights.matrix("token_embd.weight")?;
        let output = if weights.has_matrix("output.weight") {
            Some(weights.matrix("output.weight")?)
        } else {
            None
        };
        struct Layer {
            attn_norm: wgpu::Buffer,
            q: Matrix,
            q_bias: wgpu::Buffer,
            k: Matrix,
            k_bias: wgpu::Buffer,
            v: Matrix,
            v_bias: wgpu::Buffer,
            o: Matrix,
            ffn_norm: wgpu::Buffer,
            gate: Matrix,
            up: Matrix,
            down: Matrix,
            k_cache: wgpu::Buffer,
            v_cache: wgpu::Buffer,
        }
        let f16_cache = ctx.f16;
        let cache_bytes = capacity as u64 * kv_width * if f16_cache { 2 } else { 4 };
        let mut layers = Vec::new();
        for i in 0..c.n_layers {
            let m = |s: &str| format!("blk.{i}.{s}");
            layers.push(Layer {
                attn_norm: weights.vector(&m("attn_norm.weight"))?,
                q: weights.matrix(&m("attn_q.weight"))?,
                q_bias: weights.vector(&m("attn_q.bias"))?,
                k: weights.matrix(&m("attn_k.weight"))?,
                k_bias: weights.vector(&m("attn_k.bias"))?,
                v: weights.matrix(&m("attn_v.weight"))?,
                v_bias: weights.vector(&m("attn_v.bias"))?,
                o: weights.matrix(&m("attn_output.weight"))?,
                ffn_norm: weights.vector(&m("ffn_norm.weight"))?,
                gate: weights.matrix(&m("ffn_gate.weight"))?,
                up: weights.matrix(&m("ffn_up.weight"))?,
                down: weights.matrix(&m("ffn_down.weight"))?,
                k_cache: ctx.storage_buffer(&m("k_cache"), cache_bytes)?,
                v_cache: ctx.storage_buffer(&m("v_cache"), cache_bytes)?,
            });
        }
        let output_norm = weights.vector("output_norm.weight")?;
        let act = Activations {
            tokens: ctx.storage_buffer("tokens", n * 4)?,
            residual: ctx.storage_buffer("residual", n * h * 4)?,
            normed: ctx.storage_buffer("normed", n * h * 4)?,
            q: ctx.storage_buffer("q", n * h * 4)?,
            k: ctx.storage_buffer("k", n * kv_width * 4)?,
            v: ctx.storage_buffer("v", n * kv_width * 4)?,
            attention: ctx.storage_buffer("attention", n * h * 4)?,
            scores: ctx.storage_buffer("scores", n * heads * capacity as u64 * 4)?,
            gate: ctx.storage_buffer("gate", n * ffn * 4)?,
            up: ctx.storage_buffer("up", n * ffn * 4)?,
            final_normed: ctx.storage_buffer("final_normed", h * 4)?,
            logits: ctx.storage_buffer("logits", c.vocab_size as u64 * 4)?,
            argmax: ctx.storage_buffer("argmax", 8)?,
            logits_staging: ctx.staging_buffer("logits-staging", c.vocab_size as u64 * 4),
            argmax_staging: ctx.staging_buffer("argmax-staging", 8),
            step: ctx.uniform(
                "step",
                &StepUniform {
                    n_tokens: 0,
                    pos: 0,
                    seq_len: 0,
                    _pad: 0,
                },
            ),
        };
        let rope = ctx.storage_buffer("rope", capacity as u64 * c.head_dim as u64 * 4)?;
        ctx.queue.write_buffer(
            &rope,
            0,
            bytemuck::cast_slice(&rope_table(capacity, c.head_dim, c.rope_base)),
        );

        let mut b = Builder {
            ctx: &ctx,
            kernels: Kernels::default(),
            keep: Vec::new(),
            dispatches: Vec::new(),
            step: &act.step,
            no_bias: ctx.storage_buffer("no-bias", 4)?,
        };
        b.dispatch_embed(&embedding, &act.tokens, &act.residual)?;
        let head_params = HeadParams {
            n_heads: c.n_heads as u32,
            n_kv_heads: c.n_kv_heads as u32,
            head_dim: c.head_dim as u32,
            ctx: capacity as u32,
            scale: 1.0 / (c.head_dim as f32).sqrt(),
            _pad: [0; 3],
        };
        let head_uniform = ctx.uniform("heads", &head_params);
        let norm = |last_only: bool| NormParams {
            n: c.hidden_size as u32,
            eps: c.rms_eps,
            last_only: u32::from(last_only),
            _pad: 0,
        };
        let norm_all = ctx.uniform("norm", &norm(false));
        let norm_last = ctx.uniform("norm-last", &norm(true));
        let before_layers = b.dispatches.len();
        for layer in &layers {
            b.simple(
                Kernel::RmsNorm,
                &[&act.residual, &layer.attn_norm, &act.normed, &norm_all],
                Grid::Tokens,
            );
            b.matmul(&layer.q, &act.normed, &act.q, Some(&layer.q_bias), 0, 0)?;
            b.matmul(&layer.k, &act.normed, &act.k, Some(&layer.k_bias), 0, 0)?;
            b.matmul(&layer.v, &act.normed, &act.v, Some(&layer.v_bias), 0, 0)?;
            b.simple(
                Kernel::RopeStore { f16_cache },
                &[
                    &act.q,
                    &act.k,
                    &act.v,
                    &layer.k_cache,
                    &layer.v_cache,
                    &rope,
                    &head_uniform,
                ],
                Grid::PerToken {
                    x: (c.head_dim as u32 / 2).div_ceil(32),
                    y: (c.n_heads + c.n_kv_heads) as u32,
                },
            );
            b.simple(
                Kernel::AttentionScores { f16_cache },
                &[&act.q, &layer.k_cache, &act.scores, &head_uniform],
                Grid::Scores {
                    heads: c.n_heads as u32,
                },
            );
            b.simple(
                Kernel::AttentionOutput { f16_cache },
                &[&act.scores, &layer.v_cache, &act.attention, &head_uniform],
                Grid::TokensY {
                    x: c.n_heads as u32,
                },
            );
            b.matmul(
                &layer.o,
                &act.attention,
                &act.residual,
                None,
                MATMUL_ACCUMULATE,
                0,
            )?;
            b.simple(
                Kernel::RmsNorm,
                &[&act.residual, &layer.ffn_norm, &act.normed, &norm_all],
                Grid::Tokens,
            );
            b.matmul(&layer.gate, &act.normed, &act.gate, None, 0, 0)?;
            b.matmul_with(
                &layer.up,
                &act.normed,
                &act.up,
                &act.gate,
                MATMUL_TIMES_SILU_OF_AUX,
                0,
            )?;
            b.matmul(
                &layer.down,
                &act.up,
                &act.residual,
                None,
                MATMUL_ACCUMULATE,
                0,
            )?;
        }
        let dispatches_per_layer = (b.dispatches.len() - before_layers) / c.n_layers.max(1);
        b.simple(
            Kernel::RmsNorm,
            &[&act.residual, &output_norm, &act.final_normed, &norm_last],
            Grid::Single,
        );
        let body = std::mem::take(&mut b.dispatches);
        let output_matrix = output.as_ref().unwrap_or(&embedding);
        b.matmul(output_matrix, &act.final_normed, &act.logits, None, 0, 1)?;
        let head = std::mem::take(&mut b.dispatches);
        let argmax_params = ctx.uniform(
            "argmax",
            &CountParams {
                n: c.vocab_size as u32,
                _pad: [0; 3],
            },
        );
        b.simple(
            Kernel::Argmax,
            &[&act.logits, &act.argmax, &argmax_params],
            Grid::Single,
        );
        let argmax = b.dispatches.pop().ok_or_else(|| EngineError::Unsupported {
            message: "argmax dispatch missing".into(),
        })?;
        let Builder {
            kernels,
            mut keep,
            no_bias,
            ..
        } = b;
        keep.extend([
            head_uniform,
            norm_all,
            norm_last,
            argmax_params,
            rope,
            output_norm,
            no_bias,
        ]);
        let mut matrices = vec![embedding];
        matrices.extend(output);
        for layer in layers {
            keep.extend([
                layer.attn_norm,
                layer.q_bias,
                layer.k_bias,
                layer.v_bias,
                layer.ffn_norm,
                layer.k_cache,
                layer.v_cache,
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
        Ok(Engine {
            ctx,
            config,
            kernels,
            activations: act,
            body,
            head,
            argmax,
            capacity,
            chunk,
            dispatches_per_layer,
            pos: 0,
            _keep: keep,
            stats: StepStats::default(),
        })
    }

    pub fn config(&self) -> &Qwen2Config {
        &self.config
    }

    pub fn gpu(&self) -> &GpuContext {
        &self.ctx
    }

    /// Tokens currently in the KV cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Tokens the KV cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets cached tokens from `pos` on, so generation continues after the first `pos`.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    /// Most tokens one prefill submission processes.
    pub fn prefill_chunk(&self) -> usize {
        self.chunk
    }

    /// Kernel launches each transformer layer records (the same for prefill and decode).
    pub fn dispatches_per_layer(&self) -> usize {
        self.dispatches_per_layer
    }

    pub fn last_step_stats(&self) -> &StepStats {
        &self.stats
    }

    /// Runs `tokens` through the model at the current position (prefill in chunks, or one
    /// decode step) and reads back the last position's argmax or logits.
    pub async fn step(
        &mut self,
        tokens: &[u32],
        readback: Readback,
    ) -> Result<StepOutput, EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::EmptyInput);
        }
        let needed = self.pos + tokens.len();
        if needed > self.capacity {
            return Err(EngineError::ContextOverflow {
                needed,
                capacity: self.capacity,
            });
        }
        let vocab = self.config.vocab_size;
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(EngineError::TokenOutOfRange { token, vocab });
        }
        self.ctx.check_lost()?;
        let mut stats = StepStats {
            tokens: tokens.len(),
            ..StepStats::default()
        };
        let chunks: Vec<&[u32]> = tokens.chunks(self.chunk).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let head = (last && readback != Readback::Nothing).then_some(readback);
            self.submit_chunk(chunk, head, &mut stats)?;
        }
        let out = match readback {
            Readback::Argmax => {
                let staging = &self.activations.argmax_staging;
                let bytes = self.ctx.read_staging(staging, 8).await?;
                stats.bytes_read_back += 8;
                let token = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let logit = f32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                StepOutput::Argmax { token, logit }
            }
            Readback::Logits => {
                let n = vocab as u64 * 4;
                let staging = &self.activations.logits_staging;
                let bytes = self.ctx.read_staging(staging, n).await?;
                stats.bytes_read_back += n;
                StepOutput::Logits(bytemuck::pod_collect_to_vec(&bytes))
            }
            Readback::Nothing => {
                self.ctx.wait_idle().await?;
                StepOutput::Nothing
            }
        };
        self.stats = stats;
        Ok(out)
    }

    fn submit_chunk(
        &mut self,
        tokens: &[u32],
        readback: Option<Readback>,
        stats: &mut StepStats,
    ) -> Result<(), EngineError> {
        let n = tokens.len() as u32;
        let seq_len = (self.pos + tokens.len()) as u32;
        let step = StepUniform {
            n_tokens: n,
            pos: self.pos as u32,
            seq_len,
            _pad: 0,
        };
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.activations.step, 0, bytemuck::bytes_of(&step));
        queue.write_buffer(&self.activations.tokens, 0, bytemuck::cast_slice(tokens));
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        let tile = if n == 1 { 1 } else { PREFILL_TILE };
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            let mut rec = Recorder {
                kernels: &self.kernels,
                pass: &mut pass,
                n_tokens: n,
                seq_len,
                stats,
            };
            rec.record(&self.body, tile)?;
            if let Some(readback) = readback {
                rec.record(&self.head, 1)?;
                if readback == Readback::Argmax {
                    rec.record(std::slice::from_ref(&self.argmax), 1)?;
                }
            }
        }
        // The result's copy to mappable memory rides in the same submission.
        let act = &self.activations;
        match readback {
            Some(Readback::Argmax) => {
                encoder.copy_buffer_to_buffer(&act.argmax, 0, &act.argmax_staging, 0, 8)
            }
            Some(Readback::Logits) => encoder.copy_buffer_to_buffer(
                &act.logits,
                0,
                &act.logits_staging,
                0,
                self.config.vocab_size as u64 * 4,
            ),
            Some(Readback::Nothing) | None => {}
        }
        queue.submit([encoder.finish()]);
        stats.submits += 1;
        self.pos += tokens.len();
        Ok(())
    }
}

/// Encodes recorded dispatches into a compute pass for one step.
struct Recorder<'a, 'p> {
    kernels: &'a Kernels,
    pass: &'a mut wgpu::ComputePass<'p>,
    n_tokens: u32,
    seq_len: u32,
    stats: &'a mut StepStats,
}

impl Recorder<'_, '_> {
    /// Mat-muls run with `tile` tokens per workgroup (1 for decode).
    fn record(&mut self, dispatches: &[Dispatch], tile: u32) -> Result<(), EngineError> {
        for d in dispatches {
            let kernel = match d.kernel {
                Kernel::MatMul { ty, subgroups, .. } => Kernel::MatMul {
                    ty,
                    tile,
                    subgroups,
                },
                other => other,
            };
            let pipeline =
                self.kernels
                    .pipeline(kernel)
                    .ok_or_else(|| EngineError::Unsupported {
                        message: format!("kernel {kernel:?} was not prepared"),
                    })?;
            let [x, y, z] = d.grid.size(self.n_tokens, self.seq_len, tile);
            self.pass.set_pipeline(pipeline);
            self.pass.set_bind_group(0, &d.bind_group, &[]);
            self.pass.dispatch_workgroups(x, y, z);
            self.stats.dispatches += 1;
            self.stats.weight_bytes_read += d.weight_bytes * u64::from(z);
        }
        Ok(())
    }
}

/// cos and sin of each position and rotation pair, computed as llama.cpp does (f32 angle
/// `p * base^(-2i/d)` built by repeated multiplication).
fn rope_table(capacity: usize, head_dim: usize, base: f32) -> Vec<[f32; 2]> {
    let half = head_dim / 2;
    let theta_scale = base.powf(-2.0 / head_dim as f32);
    let mut table = Vec::with_capacity(capacity * half);
    for p in 0..capacity {
        let mut theta = p as f32;
        for _ in 0..half {
            table.push([theta.cos(), theta.sin()]);
            theta *= theta_scale;
        }
    }
    table
}

/// Records dispatches and their bind groups while the model loads.
struct Builder<'a> {
    ctx: &'a GpuContext,
    kernels: Kernels,
    keep: Vec<wgpu::Buffer>,
    dispatches: Vec<Dispatch>,
    step: &'a wgpu::Buffer,
    /// Bound in the auxiliary slot of mat-muls that read none.
    no_bias: wgpu::Buffer,
}

impl Builder<'_> {
    /// A kernel whose bindings are `buffers` followed by the step uniform (except argmax).
    fn simple(&mut self, kernel: Kernel, buffers: &[&wgpu::Buffer], grid: Grid) {
        self.kernels.prepare(&self.ctx.device, kernel);
        let mut all: Vec<&wgpu::Buffer> = buffers.to_vec();
        if kernel != Kernel::Argmax {
            all.push(self.step);
        }
        let bind_group = self.kernels.bind_group(&self.ctx.device, kernel, &all);
        self.dispatches.push(Dispatch {
            kernel,
            bind_group,
            grid,
            weight_bytes: 0,
        });
    }

    fn dispatch_embed(
        &mut self,
        m: &Matrix,
        tokens: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<(), EngineError> {
        let kernel = Kernel::Embed { ty: m.ty };
        if !self.kernels.prepare(&self.ctx.device, kernel) {
            return Err(EngineError::Unsupported {
                message: format!("embedding type {}", m.ty),
            });
        }
        for piece in &m.pieces {
            let params = self.ctx.uniform(
                "embed",
                &EmbedParams {
                    k: m.cols,
                    rows: piece.rows,
                    row_offset: piece.first_row,
                    row_bytes: m.row_bytes,
                },
            );
            let bind_group = self.kernels.bind_group(
                &self.ctx.device,
                kernel,
                &[&piece.buffer, tokens, out, &params, self.step],
            );
            self.keep.push(params);
            self.dispatches.push(Dispatch {
                kernel,
                bind_group,
                grid: Grid::TokensY {
                    x: (m.cols / 32).div_ceil(32),
                },
                weight_bytes: 0,
            });
        }
        Ok(())
    }

    /// `out (+)= m · x` (+ bias), one dispatch per weight piece. `x_token` is 0 to use every
    /// token of the step, or 1 + the one row of `x` to use.
    fn matmul(
        &mut self,
        m: &Matrix,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        flags: u32,
        x_token: u32,
    ) -> Result<(), EngineError> {
        match bias {
            Some(bias) => self.matmul_with(m, x, out, bias, flags | MATMUL_BIAS, x_token),
            None => {
                let no_aux = self.no_bias.clone();
                self.matmul_with(m, x, out, &no_aux, flags, x_token)
            }
        }
    }

    /// `out (+)= m · x` combined with `aux` as `flags` say (see shaders/matmul.wgsl).
    fn matmul_with(
        &mut self,
        m: &Matrix,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        aux: &wgpu::Buffer,
        flags: u32,
        x_token: u32,
    ) -> Result<(), EngineError> {
        let subgroups = self.ctx.subgroups;
        for tile in [1, PREFILL_TILE] {
            let kernel = Kernel::MatMul {
                ty: m.ty,
                tile,
                subgroups,
            };
            if !self.kernels.prepare(&self.ctx.device, kernel) {
                return Err(EngineError::Unsupported {
                    message: format!("mat-mul of {}", m.ty),
                });
            }
        }
        let kernel = Kernel::MatMul {
            ty: m.ty,
            tile: 1,
            subgroups,
        };
        for piece in &m.pieces {
            let params = self.ctx.uniform(
                "matmul",
                &MatMulParams {
                    k: m.cols,
                    rows: piece.rows,
                    row_offset: piece.first_row,
                    row_bytes: m.row_bytes,
                    y_stride: m.rows,
                    x_stride: m.cols / 4,
                    x_token,
                    flags,
                },
            );
            let bind_group = self.kernels.bind_group(
                &self.ctx.device,
                kernel,
                &[&piece.buffer, x, out, aux, &params, self.step],
            );
            self.keep.push(params);
            self.dispatches.push(Dispatch {
                kernel,
                bind_group,
                grid: Grid::MatRows {
                    rows: piece.rows,
                    single_token: x_token != 0,
                },
                weight_bytes: u64::from(piece.rows) * u64::from(m.row_bytes),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
