//! What can go wrong in the engine ([`EngineError`]) and what a caller chooses
//! ([`EngineOptions`]).

use crate::gguf::{GgmlType, GgufError};
use crate::gpu::GpuError;
use crate::kernels::kv_cache::KvCacheType;
use crate::model_config::ConfigError;
use crate::rope::RopeScalingOverride;

/// Why the engine could not load a model or run a step.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
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
    #[error(
        "a context of {context} tokens needs {needed} bytes for {what}; this device binds at most \
         {limit} bytes, which holds {fits} tokens"
    )]
    ContextTooLarge {
        context: usize,
        what: String,
        needed: u64,
        limit: u64,
        fits: usize,
    },
    #[error("the context holds {capacity} tokens; {needed} were needed")]
    ContextOverflow { needed: usize, capacity: usize },
    #[error("token id {token} is outside the vocabulary of {vocab}")]
    TokenOutOfRange { token: u32, vocab: usize },
    #[error("no tokens to process")]
    EmptyInput,
}

impl EngineError {
    /// The npm package's error code for this failure (its error classes are chosen by it).
    /// Exhaustive, so a new failure gets its code on purpose: what the model file is to blame
    /// for is `bad-model`; bytes that never arrived or a GPU that refused an operation are our
    /// failure, `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Gpu(GpuError::DeviceLost(_)) => "device-lost",
            EngineError::Gpu(GpuError::NoAdapter(_) | GpuError::Device(_)) => "webgpu-unavailable",
            EngineError::Gpu(
                GpuError::Rejected(_) | GpuError::Readback(_) | GpuError::TooLarge { .. },
            )
            | EngineError::Read { .. } => "internal",
            EngineError::ContextOverflow { .. } | EngineError::ContextTooLarge { .. } => {
                "context-overflow"
            }
            EngineError::TokenOutOfRange { .. } | EngineError::EmptyInput => "invalid-request",
            EngineError::Config(_)
            | EngineError::Gguf(_)
            | EngineError::MissingTensor { .. }
            | EngineError::BadShape { .. }
            | EngineError::UnsupportedType { .. }
            | EngineError::Unsupported { .. } => "bad-model",
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Tokens the KV cache holds (capped by the model's context: the trained one, stretched by
    /// RoPE scaling where it is in force).
    pub context_length: usize,
    /// Most tokens one prefill submission processes.
    pub prefill_chunk: usize,
    /// Overrides the file's RoPE scaling (e.g. YaRN ×4 for 128K on Qwen2.5-7B).
    pub rope_scaling: Option<RopeScalingOverride>,
    /// The KV cache's element type; by default f16 where the GPU has shader-f16, else f32.
    pub kv_cache: Option<KvCacheType>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            context_length: 4096,
            prefill_chunk: 256,
            rope_scaling: None,
            kv_cache: None,
        }
    }
}
