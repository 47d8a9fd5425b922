//! Qwen2 hyper-parameters read from a GGUF model's metadata and tensor table.

use serde::Serialize;

use crate::gguf::{GgufModel, MetadataValue};

const ARCH: &str = "qwen2";

/// Why a model's hyper-parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("general.architecture is {found:?}, not \"qwen2\"")]
    WrongArchitecture { found: String },
    #[error("metadata key {key} is missing")]
    MissingKey { key: String },
    #[error("metadata key {key} is a {found}, expected {expected}")]
    WrongType {
        key: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("metadata key {key} = {value} is invalid: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("tensor {name} is missing")]
    MissingTensor { name: String },
}

/// Context-extension settings (`{arch}.rope.scaling.*`), present in long-context Qwen2.5 files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RopeScaling {
    /// `none`, `linear` or `yarn`.
    pub kind: String,
    pub factor: f32,
    pub original_context_length: Option<u64>,
}

/// The shape of a Qwen2 transformer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Qwen2Config {
    pub n_layers: usize,
    pub hidden_size: usize,
    pub ffn_size: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_base: f32,
    pub rope_scaling: Option<RopeScaling>,
    pub rms_eps: f32,
    /// Training context length; the engine may use less.
    pub context_length: usize,
    pub vocab_size: usize,
    /// True when there is no `output.weight` and the embedding matrix doubles as the output
    /// projection.
    pub tied_embeddings: bool,
}

struct Keys<'a> {
    model: &'a GgufModel,
}

impl Keys<'_> {
    fn value(&self, key: &str) -> Result<&MetadataValue, ConfigError> {
        self.model
            .metadata()
            .get(key)
            .ok_or_else(|| ConfigError::MissingKey { key: key.into() })
    }

    fn usize(&self, key: &str) -> Result<usize, ConfigError> {
        let v = self.value(key)?;
        let n = v.as_u64().ok_or_else(|| ConfigError::WrongType {
            key: key.into(),
            found: v.type_name(),
            expected: "non-negative integer",
        })?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n > 0 && n <= 1 << 24)
            .ok_or_else(|| ConfigError::Invalid {
                key: key.into(),
                value: n.to_string(),
                reason: "must be between 1 and 2^24".into(),
            })
    }

    fn positive_f32(&self, key: &str) -> Result<f32, ConfigError> {
        let v = self.value(key)?;
        let x = v.as_f64().ok_or_else(|| ConfigError::WrongType {
            key: key.into(),
            found: v.type_name(),
            expected: "number",
        })? as f32;
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            Err(ConfigError::Invalid {
                key: key.into(),
                value: x.to_string(),
                reason: "must be a positive finite number".into(),
            })
        }
    }

    fn optional<T>(
        &self,
        key: &str,
        read: impl Fn(&str) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        if self.model.metadata().contains(key) {
            read(key).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl Qwen2Config {
    pub fn from_model(model: &GgufModel) -> Result<Qwen2Config, ConfigError> {
        let keys = Keys { model };
        let arch_value = keys.value("general.architecture")?;
        let arch = arch_value.as_str().ok_or_else(|| ConfigError::WrongType {
            key: "general.architecture".into(),
            found: arch_value.type_name(),
            expected: "string",
        })?;
        if arch != ARCH {
            return Err(ConfigError::WrongArchitecture { found: arch.into() });
        }
        let k = |suffix: &str| format!("{ARCH}.{suffix}");

        let n_layers = keys.usize(&k("block_count"))?;
        let hidden_size = keys.usize(&k("embedding_length"))?;
        let ffn_size = keys.usize(&k("feed_forward_length"))?;
        let n_heads = keys.usize(&k("attention.head_count"))?;
        let n_kv_heads = keys
            .optional(&k("attention.head_count_kv"), |key| keys.usize(key))?
            .unwrap_or(n_heads);
        let head_dim = keys
            .optional(&k("attention.key_length"), |key| keys.usize(key))?
            .unwrap_or(hidden_size / n_heads);
        let invalid = |key: String, value: usize, reason: String| ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason,
        };
        if n_heads % n_kv_heads != 0 {
            return Err(invalid(
                k("attention.head_count_kv"),
                n_kv_heads,
                format!("must divide the head count {n_heads}"),
            ));
        }
        if head_dim % 2 != 0 || head_dim * n_heads != hidden_size {
            return Err(invalid(
                k("attention.key_length"),
                head_dim,
                format!("must be even and times {n_heads} heads equal the width {hidden_size}"),
            ));
        }
        let rope_base = keys
            .optional(&k("rope.freq_base"), |key| keys.positive_f32(key))?
            .unwrap_or(10_000.0);
        let rms_eps = keys.positive_f32(&k("attention.layer_norm_rms_epsilon"))?;
        let context_length = keys.usize(&k("context_length"))?;

        let rope_scaling = match keys.optional(&k("rope.scaling.type"), |key| {
            let v = keys.value(key)?;
            v.as_str().map(str::to_owned).ok_or(ConfigError::WrongType {
                key: key.into(),
                found: v.type_name(),
                expected: "string",
            })
        })? {
            None => None,
            Some(kind) if kind == "none" => None,
            Some(kind) => Some(RopeScaling {
                kind,
                factor: keys
                    .optional(&k("rope.scaling.factor"), |key| keys.positive_f32(key))?
                    .unwrap_or(1.0),
                original_context_length: keys
                    .optional(&k("rope.scaling.original_context_length"), |key| {
                        keys.usize(key).map(|n| n as u64)
                    })?,
            }),
        };

        let embedding =
            model
                .tensor("token_embd.weight")
                .ok_or_else(|| ConfigError::MissingTensor {
                    name: "token_embd.weight".into(),
                })?;
        let vocab_size = usize::try_from(embedding.info.rows()).unwrap_or(usize::MAX);
        let tied_embeddings = model.tensor("output.weight").is_none();

        Ok(Qwen2Config {
            n_layers,
            hidden_size,
            ffn_size,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_base,
            rope_scaling,
            rms_eps,
            context_length,
            vocab_size,
            tied_embeddings,
        })
    }
}
