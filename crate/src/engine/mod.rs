//! The forward pass on the GPU: weights, KV cache, activation buffers and the recorded
//! sequence of kernel dispatches for prefill (token chunks) and decode (one token).
//!
//! Everything is allocated at load; a step writes one small uniform, encodes its dispatches into
//! one command buffer, submits once, and reads back either 8 bytes (greedy) or the logits.
//!
//! - [`error`]: errors and options;
//! - [`weights`], [`loader`]: quantized matrices on the GPU (split by rows past the binding
//!   limit) and the streaming upload;
//! - [`recording`]: dispatches recorded at load and replayed per step;
//! - [`runtime`]: the [`Engine`] and its steps;
//! - [`qwen2`]: the architecture: tensor list, checks, graph.

mod error;
mod loader;
mod qwen2;
mod recording;
mod runtime;
mod weights;

pub use crate::kernels::kv_cache::KvCacheType;
pub use error::{EngineError, EngineOptions};
pub use loader::{CheckedModel, DataRange, LoadProgress, ModelLoad, WeightLoader};
pub use qwen2::check_model;
pub use recording::StepStats;
pub use runtime::{Engine, Readback, StepOutput};
pub use weights::Matrix;

#[cfg(test)]
mod attention_tests;
#[cfg(test)]
mod tests;
