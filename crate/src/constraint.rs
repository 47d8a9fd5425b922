//! Grammar-constrained decoding: llguidance token masks over this model's own vocabulary, so
//! the output provably matches a JSON Schema, any JSON object, or a Lark grammar.
//!
//! The vocabulary goes to llguidance as each token's bytes (control tokens such as `<|im_end|>`
//! behind llguidance's 0xFF marker, so no grammar spells them as text); `<|im_end|>` is the end
//! token a grammar allows once it is complete.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use toktrie::{SimpleVob, TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::tokenizer::Tokenizer;

/// What the output must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// Any JSON object.
    JsonObject,
    /// A JSON value valid against this schema.
    JsonSchema(serde_json::Value),
    /// A Lark grammar in llguidance's dialect (`%json {...}` embeds a schema).
    Lark(String),
}

/// Why a grammar could not be compiled or followed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConstraintError {
    /// The schema or grammar is invalid or uses what llguidance does not support (the message
    /// lists the keywords).
    #[error("the grammar cannot be used: {0}")]
    Compile(String),
    #[error("constrained decoding failed: {0}")]
    Runtime(String),
}

/// The vocabulary as llguidance sees it, built once per model.
pub struct ConstraintVocab {
    factory: ParserFactory,
}

impl std::fmt::Debug for ConstraintVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConstraintVocab").finish_non_exhaustive()
    }
}

/// llguidance's view of our tokenizer: the token trie plus tokenization of forced text.
struct TokenizerBridge {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for TokenizerBridge {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        // llguidance also tokenizes byte strings that cut a character (forced bytes after a
        // partial token): those bytes must become byte tokens, not U+FFFD.
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer.encode(text, false).unwrap_or_default()
        })
    }
}

impl ConstraintVocab {
    /// Builds the token trie for `tokenizer`, with `end_token` (`<|im_end|>`) as the token that
    /// ends a completed grammar.
    pub fn new(
        tokenizer: Arc<Tokenizer>,
        end_token: u32,
    ) -> Result<ConstraintVocab, ConstraintError> {
        let vocab = tokenizer.vocab_size() as u32;
        let words: Vec<Vec<u8>> = (0..vocab)
            .map(|id| {
                let bytes = tokenizer.token_bytes(id).unwrap_or_default();
                if tokenizer.is_control(id) {
                    let mut marked = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    marked.extend_from_slice(bytes);
                    marked
                } else {
                    bytes.to_vec()
                }
            })
            .collect();
        let info = TokRxInfo {
            tok_end_of_turn: Some(end_token),
            ..TokRxInfo::new(vocab, end_token)
        };
        let trie = TokTrie::from(&info, &words);
        let env: TokEnv = Arc::new(TokenizerBridge { trie, tokenizer });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| ConstraintError::Compile(e.to_string()))?;
        factory.quiet();
        Ok(ConstraintVocab { factory })
    }

    /// Compiles `grammar` into a matcher at its start.
    pub fn constraint(&self, grammar: &Grammar) -> Result<Constraint, ConstraintError> {
        let top = match grammar {
            Grammar::JsonObject => {
                TopLevelGrammar::from_json_schema(serde_json::json!({"type": "object"}))
            }
            Grammar::JsonSchema(schema) => TopLevelGrammar::from_json_schema(schema.clone()),
            Grammar::Lark(lark) => TopLevelGrammar::from_lark(lark.clone()),
        };
        let parser = self
            .factory
            .create_parser(top)
            .map_err(|e| ConstraintError::Compile(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(ConstraintError::Compile(e));
        }
        Ok(Constraint { matcher })
    }
}

/// One generation's grammar state.
pub struct Constraint {
    matcher: Matcher,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint").finish_non_exhaustive()
    }
}

impl Constraint {
    /// Sets the logits of every token the grammar does not allow next to -∞. `logits` may be
    /// longer than the vocabulary (a model's embedding padded past the tokenizer's tokens):
    /// ids no token has are never allowed. Fewer logits than tokens is an error.
    pub fn mask_logits(&mut self, logits: &mut [f32]) -> Result<(), ConstraintError> {
        let mask: SimpleVob = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| ConstraintError::Runtime(e.to_string()))?;
        // The mask has one bit per token of the vocabulary the trie was built from.
        let vocab = mask.len();
        if logits.len() < vocab {
            return Err(ConstraintError::Runtime(format!(
                "the model gives {} logits for a vocabulary of {vocab} tokens",
                logits.len()
            )));
        }
        let (known, padding) = logits.split_at_mut(vocab);
        let mut allowed = 0usize;
        for (id, logit) in known.iter_mut().enumerate() {
            if mask.get(id) {
                allowed += 1;
            } else {
                *logit = f32::NEG_INFINITY;
            }
        }
        padding.fill(f32::NEG_INFINITY);
        if allowed == 0 {
            return Err(ConstraintError::Runtime(
                "the grammar allows no token".into(),
            ));
        }
        Ok(())
    }

    /// Advances the grammar past `token`.
    pub fn advance(&mut self, token: u32) -> Result<(), ConstraintError> {
        self.matcher
            .consume_token(token)
            .map_err(|e| ConstraintError::Runtime(e.to_string()))
    }

    /// Whether the grammar is complete and allows nothing more.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }
}
