//! The [`Engine`] callers hold: the same steps on either backend, the GPU's recorded forward
//! pass or the CPU's.

use crate::cpu::CpuEngine;
use crate::gpu::GpuContext;
use crate::model_config::Qwen2Config;

use super::error::EngineError;
use super::recording::StepStats;
use super::runtime::GpuEngine;
use super::step::{Readback, StepOutput};

/// A loaded model with its KV cache, on the GPU or the CPU.
// A session holds one for its lifetime; the GPU variant's size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    Gpu(GpuEngine),
    Cpu(CpuEngine),
}

impl Engine {
    pub fn config(&self) -> &Qwen2Config {
        match self {
            Engine::Gpu(e) => e.config(),
            Engine::Cpu(e) => e.config(),
        }
    }

    /// The GPU the model runs on; `None` on the CPU backend.
    pub fn gpu(&self) -> Option<&GpuContext> {
        match self {
            Engine::Gpu(e) => Some(e.gpu()),
            Engine::Cpu(_) => None,
        }
    }

    /// Tokens currently in the KV cache.
    pub fn position(&self) -> usize {
        match self {
            Engine::Gpu(e) => e.position(),
            Engine::Cpu(e) => e.position(),
        }
    }

    /// Tokens the KV cache holds.
    pub fn capacity(&self) -> usize {
        match self {
            Engine::Gpu(e) => e.capacity(),
            Engine::Cpu(e) => e.capacity(),
        }
    }

    /// Forgets cached tokens from `pos` on, so generation continues after the first `pos`.
    pub fn truncate(&mut self, pos: usize) {
        match self {
            Engine::Gpu(e) => e.truncate(pos),
            Engine::Cpu(e) => e.truncate(pos),
        }
    }

    /// Most tokens one prefill step processes at once.
    pub fn prefill_chunk(&self) -> usize {
        match self {
            Engine::Gpu(e) => e.prefill_chunk(),
            Engine::Cpu(e) => e.prefill_chunk(),
        }
    }

    /// What the last step did (dispatches and submissions are 0 on the CPU).
    pub fn last_step_stats(&self) -> &StepStats {
        match self {
            Engine::Gpu(e) => e.last_step_stats(),
            Engine::Cpu(e) => e.last_step_stats(),
        }
    }

    /// Runs `tokens` through the model at the current position and returns the last
    /// position's argmax or logits.
    pub async fn step(
        &mut self,
        tokens: &[u32],
        readback: Readback,
    ) -> Result<StepOutput, EngineError> {
        match self {
            Engine::Gpu(e) => e.step(tokens, readback).await,
            Engine::Cpu(e) => e.step(tokens, readback),
        }
    }
}
