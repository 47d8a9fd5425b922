//! What a step of either backend takes and gives: the [`Readback`] a caller asks for, the
//! [`StepOutput`] it gets, and the checks every step's tokens pass first.

use super::error::EngineError;

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

/// Checks that `tokens` can run at cache position `pos`: at least one, all within the
/// vocabulary, and room for them in a cache of `capacity` tokens.
pub(crate) fn check_tokens(
    tokens: &[u32],
    pos: usize,
    capacity: usize,
    vocab: usize,
) -> Result<(), EngineError> {
    if tokens.is_empty() {
        return Err(EngineError::EmptyInput);
    }
    let needed = pos + tokens.len();
    if needed > capacity {
        return Err(EngineError::ContextOverflow { needed, capacity });
    }
    if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(EngineError::TokenOutOfRange { token, vocab });
    }
    Ok(())
}
