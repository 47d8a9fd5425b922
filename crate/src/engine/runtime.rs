//! Running the recorded forward pass: one step writes the step uniform and the token ids,
//! encodes its dispatches into one command buffer per prefill chunk, submits, and reads back
//! the argmax (8 bytes), the logits, or nothing.

use crate::gpu::GpuContext;
use crate::kernels::common::StepUniform;
use crate::model_config::Qwen2Config;

use super::error::EngineError;
use super::recording::{record, Dispatch, StepStats};
use super::step::{check_tokens, Readback, StepOutput};

/// The buffers a step writes and reads back, whatever the architecture.
pub(super) struct StepBuffers {
    /// The step's token ids.
    pub tokens: wgpu::Buffer,
    /// The [`StepUniform`].
    pub step: wgpu::Buffer,
    /// The last position's logits.
    pub logits: wgpu::Buffer,
    /// (token, logit) of the largest logit.
    pub argmax: wgpu::Buffer,
    pub logits_staging: wgpu::Buffer,
    pub argmax_staging: wgpu::Buffer,
}

impl StepBuffers {
    pub(super) fn new(ctx: &GpuContext, chunk: u64, vocab: u64) -> Result<Self, EngineError> {
        Ok(StepBuffers {
            tokens: ctx.storage_buffer("tokens", chunk * 4)?,
            step: ctx.uniform("step", &<StepUniform as bytemuck::Zeroable>::zeroed()),
            logits: ctx.storage_buffer("logits", vocab * 4)?,
            argmax: ctx.storage_buffer("argmax", 8)?,
            logits_staging: ctx.staging_buffer("logits-staging", vocab * 4),
            argmax_staging: ctx.staging_buffer("argmax-staging", 8),
        })
    }
}

/// A recorded forward pass: what an architecture's graph hands the runtime.
pub(super) struct RecordedModel {
    pub buffers: StepBuffers,
    /// The forward pass over a chunk, up to the last token's final norm.
    pub body: Vec<Dispatch>,
    /// Output projection of the last token into `buffers.logits`.
    pub head: Vec<Dispatch>,
    /// Argmax of `buffers.logits` into `buffers.argmax`.
    pub argmax: Vec<Dispatch>,
    /// Tokens the KV cache holds.
    pub capacity: usize,
    /// Most tokens per prefill submission.
    pub chunk: usize,
    pub dispatches_per_layer: usize,
    /// GPU buffers that must outlive the bind groups built over them.
    pub _keep: Vec<wgpu::Buffer>,
}

/// A model loaded on the GPU with its KV cache.
pub struct GpuEngine {
    ctx: GpuContext,
    config: Qwen2Config,
    model: RecordedModel,
    /// Tokens in the KV cache.
    pos: usize,
    stats: StepStats,
}

impl GpuEngine {
    pub(super) fn new(ctx: GpuContext, config: Qwen2Config, model: RecordedModel) -> GpuEngine {
        GpuEngine {
            ctx,
            config,
            model,
            pos: 0,
            stats: StepStats::default(),
        }
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
        self.model.capacity
    }

    /// Forgets cached tokens from `pos` on, so generation continues after the first `pos`.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    /// Most tokens one prefill submission processes.
    pub fn prefill_chunk(&self) -> usize {
        self.model.chunk
    }

    /// Kernel launches each transformer layer records (the same for prefill and decode).
    pub fn dispatches_per_layer(&self) -> usize {
        self.model.dispatches_per_layer
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
        let vocab = self.config.vocab_size;
        check_tokens(tokens, self.pos, self.model.capacity, vocab)?;
        self.ctx.check_lost()?;
        let mut stats = StepStats {
            tokens: tokens.len(),
            ..StepStats::default()
        };
        let chunks: Vec<&[u32]> = tokens.chunks(self.model.chunk).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let head = (last && readback != Readback::Nothing).then_some(readback);
            self.submit_chunk(chunk, head, &mut stats);
        }
        let out = match readback {
            Readback::Argmax => {
                let staging = &self.model.buffers.argmax_staging;
                let bytes = self.ctx.read_staging(staging, 8).await?;
                stats.bytes_read_back += 8;
                let token = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let logit = f32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                StepOutput::Argmax { token, logit }
            }
            Readback::Logits => {
                let n = vocab as u64 * 4;
                let staging = &self.model.buffers.logits_staging;
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

    fn submit_chunk(&mut self, tokens: &[u32], readback: Option<Readback>, stats: &mut StepStats) {
        let n = tokens.len() as u32;
        let seq_len = (self.pos + tokens.len()) as u32;
        let step = StepUniform {
            n_tokens: n,
            pos: self.pos as u32,
            seq_len,
            _pad: 0,
        };
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.model.buffers.step, 0, bytemuck::bytes_of(&step));
        queue.write_buffer(&self.model.buffers.tokens, 0, bytemuck::cast_slice(tokens));
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            record(&mut pass, &self.model.body, n, seq_len, stats);
            if let Some(readback) = readback {
                // The head reads only the last token.
                record(&mut pass, &self.model.head, n, seq_len, stats);
                if readback == Readback::Argmax {
                    record(&mut pass, &self.model.argmax, n, seq_len, stats);
                }
            }
        }
        // The result's copy to mappable memory rides in the same submission.
        let act = &self.model.buffers;
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
    }
}
