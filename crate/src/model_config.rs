//! Qwen2 hyper-parameters read from a GGUF model's metadata and tensor table.

use serde::Serialize;

use crate::gguf::{GgufModel, MetadataValue};

const ARCH: &str = "qwen2";

/// Largest width, count or length a model may have. The engine hands sizes to shaders as u32
/// (some as f32, exact up to 2^24), and on wasm32 `usize` is 32 bits, so sizes and the products
/// the engine forms from them must stay well inside 32 bits. Real Qwen2 models are far below: the
/// widest layer is Qwen2.5-72B's FFN of 29,568, the longest context 131,072.
const MAX_SIZE: u64 = 1 << 24;

/// Most query plus key-value heads. The engine dispatches one workgroup per query and key head
/// along one dimension (rotary embedding), and WebGPU guarantees only 65,535 workgroups per
/// dimension (`maxComputeWorkgroupsPerDimension`). Qwen2.5-72B has 64 + 8.
const MAX_HEAD_WORKGROUPS: u64 = 65_535;

/// Token embeddings may have more rows than the tokenizer has tokens: trainers pad the matrix so
/// it splits evenly across devices, and a converter need not pad the token list to match. The
/// Qwen2.5 tokenizer has 151,665 tokens and its embeddings 151,936 rows (0.5B to 3B, a multiple
/// of 128) or 152,064 (7B to 72B, a multiple of 256): 271 and 399 rows of padding. Rounding the
/// token count up to a multiple of 1,024 (152,576) admits both with room to spare; more rows than
/// that means the tokenizer belongs to another model.
const EMBEDDING_ROW_ROUNDING: u64 = 1024;

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
    #[error("{what} is {value}, more than the limit of {limit}")]
    TooLarge {
        what: String,
        value: u64,
        limit: u64,
    },
    #[error(
        "token_embd.weight has {rows} rows for the tokenizer's {tokens} tokens: it needs one row \
         per token, and at most {max_rows} with padding"
    )]
    EmbeddingRows {
        rows: u64,
        tokens: u64,
        max_rows: u64,
    },
}

/// `value` as a `usize`, when it is at most `limit` (itself at most [`MAX_SIZE`], so the value
/// fits a `usize` on every target).
fn within(what: &str, value: u64, limit: u64) -> Result<usize, ConfigError> {
    usize::try_from(value)
        .ok()
        .filter(|_| value <= limit)
        .ok_or_else(|| ConfigError::TooLarge {
            what: what.into(),
            value,
            limit,
        })
}

/// Context-extension settings (`{arch}.rope.scaling.*`), present in long-context Qwen2.5 files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RopeScaling {
    /// `none`, `linear` or `yarn`.
    pub kind: String,
    pub factor: f32,
    pub original_context_length: Option<u64>,
    /// YaRN's parameters where the file sets them (`rope.scaling.yarn_*`); llama.cpp's defaults
    /// otherwise.
    pub yarn_ext_factor: Option<f32>,
    pub yarn_attn_factor: Option<f32>,
    pub yarn_beta_fast: Option<f32>,
    pub yarn_beta_slow: Option<f32>,
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
            .filter(|&n| n > 0 && n as u64 <= MAX_SIZE)
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
        within(
            "the query plus key-value head count",
            n_heads as u64 + n_kv_heads as u64,
            MAX_HEAD_WORKGROUPS,
        )?;
        // In u64: on wasm32 this product could wrap around to the width. The key-value width is
        // no larger, as the key-value head count divides the head count.
        let attention_width = within(
            "the attention width (heads times head dimension)",
            (n_heads as u64).saturating_mul(head_dim as u64),
            MAX_SIZE,
        )?;
        if head_dim % 2 != 0 || attention_width != hidden_size {
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
                yarn_ext_factor: keys.optional(&k("rope.scaling.yarn_ext_factor"), |key| {
                    keys.positive_f32(key)
                })?,
                yarn_attn_factor: keys.optional(&k("rope.scaling.yarn_attn_factor"), |key| {
                    keys.positive_f32(key)
                })?,
                yarn_beta_fast: keys.optional(&k("rope.scaling.yarn_beta_fast"), |key| {
                    keys.positive_f32(key)
                })?,
                yarn_beta_slow: keys.optional(&k("rope.scaling.yarn_beta_slow"), |key| {
                    keys.positive_f32(key)
                })?,
            }),
        };

        let embedding =
            model
                .tensor("token_embd.weight")
                .ok_or_else(|| ConfigError::MissingTensor {
                    name: "token_embd.weight".into(),
                })?;
        let vocab_size = within(
            "token_embd.weight's row count",
            embedding.info.rows(),
            MAX_SIZE,
        )?;
        check_vocabulary(model, vocab_size as u64)?;
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

/// Checks the token embedding's `rows` against the tokenizer's token count: fewer rows would let
/// the tokenizer produce ids without an embedding, and many more mean a mismatched tokenizer
/// (see [`EMBEDDING_ROW_ROUNDING`]). A model without a token list has no tokenizer to disagree
/// with: the tokenizer refuses it, and callers passing ids directly are checked by the engine.
fn check_vocabulary(model: &GgufModel, rows: u64) -> Result<(), ConfigError> {
    const KEY: &str = "tokenizer.ggml.tokens";
    let Some(value) = model.metadata().get(KEY) else {
        return Ok(());
    };
    let tokens = value.as_array().ok_or_else(|| ConfigError::WrongType {
        key: KEY.into(),
        found: value.type_name(),
        expected: "array",
    })?;
    let tokens = tokens.len() as u64;
    let max_rows = tokens
        .checked_next_multiple_of(EMBEDDING_ROW_ROUNDING)
        .unwrap_or(u64::MAX);
    if rows < tokens || rows > max_rows {
        return Err(ConfigError::EmbeddingRows {
            rows,
            tokens,
            max_rows,
        });
    }
    Ok(())
}
