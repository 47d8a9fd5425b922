//! The tokenizer, built from the GGUF's own metadata (`tokenizer.ggml.*`), matching llama.cpp.
//!
//! Encoding runs the `tokenizers` crate (built with `unstable_wasm`, so fancy-regex rather than
//! onig and the same code on wasm32): a byte-level BPE model from `tokenizer.ggml.tokens` (the
//! token string at index `i` has id `i`) and `tokenizer.ggml.merges` (`"a b"` → the pair
//! `(a, b)`), Qwen2's split regex as an isolating `Split` pre-tokenizer, then the `ByteLevel`
//! pre-tokenizer (no prefix space, no regex of its own). There is no normalizer: llama.cpp
//! applies none (Hugging Face's Qwen2 `tokenizer.json` has NFC; llama.cpp, and so this, does
//! not compose combining marks).
//!
//! Token types (`tokenizer.ggml.token_type`, llama.cpp's numbering): CONTROL (3) tokens such as
//! `<|im_start|>` are matched in the text only when the caller allows special tokens, as
//! llama.cpp's `special` flag; USER_DEFINED (4) tokens such as `<tool_call>` are always matched,
//! as in llama.cpp.
//!
//! Decoding does not go through `tokenizers`: each token's bytes come from GPT-2's
//! byte↔unicode table (normal tokens) or its text as it stands (control and user-defined tokens),
//! so the same bytes serve [`Tokenizer::decode`] and the streaming [`StreamDecoder`].

use std::sync::{Mutex, PoisonError};

use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::gguf::{GgufModel, Metadata, MetadataArray};

/// Qwen2's pre-tokenizer split regex (Hugging Face Qwen2 `tokenizer.json`, llama.cpp's
/// `LLAMA_VOCAB_PRE_TYPE_QWEN2`): unlike GPT-2's, digits split one by one.
pub const QWEN2_SPLIT_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;
const TYPE_UNUSED: i64 = 5;

/// Why a tokenizer could not be built, or a text or ids not converted.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("metadata key {0} is missing")]
    Missing(&'static str),
    #[error("metadata key {key} has the wrong type: expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("tokenizer.ggml.model is {0:?}: only \"gpt2\" (byte-level BPE) is supported")]
    UnsupportedModel(String),
    #[error("tokenizer.ggml.pre is {0:?}: only \"qwen2\" is supported")]
    UnsupportedPre(String),
    #[error("tokenizer.ggml.token_type has {types} entries but there are {tokens} tokens")]
    TypeCount { types: usize, tokens: usize },
    #[error("tokenizer.ggml.tokens has {0} entries, more than u32 ids can number")]
    TooManyTokens(usize),
    #[error("merge {index} ({merge:?}) is not two tokens separated by one space")]
    BadMerge { index: usize, merge: String },
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    UnknownId { id: u32, vocab: usize },
    #[error("tokenizers: {0}")]
    Library(String),
}

type HfTokenizer = tokenizers::Tokenizer;

/// A Qwen2 (byte-level BPE) tokenizer built from GGUF metadata.
pub struct Tokenizer {
    /// Holds the `encode_special_tokens` flag, set for each call (hence the lock).
    inner: Mutex<HfTokenizer>,
    /// Each id's raw bytes, as decoding emits them.
    bytes: Vec<Box<[u8]>>,
    /// Ids of CONTROL tokens (`<|im_end|>`), ascending.
    control: Vec<u32>,
    /// The texts of CONTROL tokens with their ids, longest first, each text once (its first
    /// id, as the vocabulary lookup gives).
    control_texts: Vec<(Box<str>, u32)>,
}

/// A run of text cut by [`Tokenizer::split_control`]: plain text, or a control token it spells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Control(u32),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.{model, pre, tokens, merges, token_type}`.
    /// `model` must be `"gpt2"`; `pre`, where present, `"qwen2"`; `token_type` is optional (all
    /// tokens normal without it).
    pub fn from_model(model: &GgufModel) -> Result<Tokenizer, TokenizerError> {
        Self::from_metadata(model.metadata())
    }

    /// As [`Tokenizer::from_model`], from the metadata alone.
    pub fn from_metadata(md: &Metadata) -> Result<Tokenizer, TokenizerError> {
        let kind = string(md, "tokenizer.ggml.model")?;
        if kind != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(kind.to_owned()));
        }
        match md.get("tokenizer.ggml.pre") {
            None => {}
            Some(v) => match v.as_str() {
                Some("qwen2") => {}
                Some(other) => return Err(TokenizerError::UnsupportedPre(other.to_owned())),
                None => {
                    return Err(TokenizerError::WrongType {
                        key: "tokenizer.ggml.pre",
                        expected: "string",
                    })
                }
            },
        }
        let tokens = strings(md, "tokenizer.ggml.tokens")?;
        if u32::try_from(tokens.len()).is_err() {
            return Err(TokenizerError::TooManyTokens(tokens.len()));
        }
        let types = token_types(md, tokens.len())?;
        let merges = strings(md, "tokenizer.ggml.merges")?
            .iter()
            .enumerate()
            .map(|(index, m)| match m.split_once(' ') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => {
                    Ok((a.to_owned(), b.to_owned()))
                }
                _ => Err(TokenizerError::BadMerge {
                    index,
                    merge: m.clone(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;

        // Where the vocabulary repeats a string, the first id wins.
        let mut vocab = Vocab::default();
        vocab.reserve(tokens.len());
        for (id, t) in tokens.iter().enumerate() {
            vocab.entry(t.clone()).or_insert(id as u32);
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(lib)?;
        let split = Split::new(
            SplitPattern::Regex(QWEN2_SPLIT_REGEX.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(lib)?;
        let pre = Sequence::new(vec![
            PreTokenizerWrapper::Split(split),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
        ]);
        let mut inner = HfTokenizer::new(bpe);
        inner
            .with_pre_tokenizer(Some(pre))
            .with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));

        // Added tokens keep their vocabulary ids (`tokenizers` looks the text up in the model).
        let added = |ty: i64, special: bool| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(&types)
                .filter(|&(_, &t)| t == ty)
                .map(|(text, _)| AddedToken::from(text.clone(), special).normalized(false))
                .collect()
        };
        inner.add_special_tokens(&added(TYPE_CONTROL, true));
        inner.add_tokens(&added(TYPE_USER_DEFINED, false));

        let table = unicode_to_byte();
        let bytes = tokens
            .iter()
            .zip(&types)
            .map(|(text, &ty)| match ty {
                TYPE_CONTROL | TYPE_USER_DEFINED => text.as_bytes().into(),
                TYPE_UNUSED => Box::default(),
                _ => byte_level_bytes(text, &table),
            })
            .collect();
        let control = types
            .iter()
            .enumerate()
            .filter(|&(_, &t)| t == TYPE_CONTROL)
            .map(|(id, _)| id as u32)
            .collect::<Vec<_>>();
        let mut control_texts: Vec<(Box<str>, u32)> = Vec::new();
        for &id in &control {
            let text = &tokens[id as usize];
            if !text.is_empty() && !control_texts.iter().any(|(t, _)| **t == **text) {
                control_texts.push((text.as_str().into(), id));
            }
        }
        control_texts.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        Ok(Tokenizer {
            inner: Mutex::new(inner),
            bytes,
            control,
            control_texts,
        })
    }

    /// The `tokenizers` tokenizer. A poisoned lock is taken anyway: the only state a call
    /// changes, the special-token flag, is set afresh by each `encode`.
    fn lock(&self) -> std::sync::MutexGuard<'_, HfTokenizer> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many ids the vocabulary has.
    pub fn vocab_size(&self) -> usize {
        self.bytes.len()
    }

    /// The ids of `text` (no BOS is added). With `allow_special` false, control tokens written
    /// in the text (`<|im_start|>`) are tokenized as plain text, as llama.cpp with
    /// `special = false`; with true they become their ids. User-defined tokens (`<tool_call>`)
    /// are matched either way.
    pub fn encode(&self, text: &str, allow_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut inner = self.lock();
        inner.set_encode_special_tokens(!allow_special);
        let encoding = inner.encode_fast(text, false).map_err(lib)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`. Control and user-defined tokens are rendered as their text
    /// (`<|im_end|>`), unused (padding) tokens as nothing; bytes that are not valid UTF-8
    /// (a cut-off character) become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let mut out = Vec::new();
        for &id in ids {
            out.extend_from_slice(self.token_bytes(id)?);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The id of a token by its vocabulary text, e.g. `"<|im_end|>"` (for normal tokens, the
    /// byte-level spelling: `"Ġthe"`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.lock().token_to_id(text)
    }

    /// The encoding pipeline as a Hugging Face `tokenizer.json`, for comparing against other
    /// `tokenizers` builds (Python's) on the same vocabulary.
    pub fn to_hf_json(&self) -> Result<String, TokenizerError> {
        self.lock().to_string(false).map_err(lib)
    }

    /// Whether `id` is a CONTROL token (`<|im_start|>`), which text never spells.
    pub fn is_control(&self, id: u32) -> bool {
        self.control.binary_search(&id).is_ok()
    }

    /// `text` cut at the control tokens it spells, matched leftmost and longest first as
    /// `tokenizers` (and llama.cpp) match special tokens before running BPE on the text
    /// between them. Encoding each text piece with `allow_special` false and putting the
    /// control ids between gives what `encode(text, true)` gives.
    pub fn split_control<'a>(&self, text: &'a str) -> Vec<Piece<'a>> {
        // Only positions holding some control text's first byte are tried (all of Qwen's
        // start with `<`), so long documents cost a byte scan.
        let mut first = [false; 256];
        for (t, _) in &self.control_texts {
            first[usize::from(t.as_bytes()[0])] = true;
        }
        let mut pieces = Vec::new();
        let mut start = 0; // where the current text piece began
        let mut at = 0;
        while let Some(skip) = text.as_bytes()[at..]
            .iter()
            .position(|&b| first[usize::from(b)])
        {
            at += skip;
            // A first byte of a text is never a UTF-8 continuation byte, so `at` is a char
            // boundary.
            let rest = &text[at..];
            match self
                .control_texts
                .iter()
                .find(|(t, _)| rest.starts_with(&**t))
            {
                Some((t, id)) => {
                    if start < at {
                        pieces.push(Piece::Text(&text[start..at]));
                    }
                    pieces.push(Piece::Control(*id));
                    at += t.len();
                    start = at;
                }
                None => at += 1,
            }
        }
        if start < text.len() {
            pieces.push(Piece::Text(&text[start..]));
        }
        pieces
    }

    /// The raw bytes a token decodes to (possibly part of a UTF-8 character).
    pub fn token_bytes(&self, id: u32) -> Result<&[u8], TokenizerError> {
        self.bytes
            .get(id as usize)
            .map(|b| &b[..])
            .ok_or(TokenizerError::UnknownId {
                id,
                vocab: self.bytes.len(),
            })
    }
}

/// Turns generated ids into text as they come, never splitting a UTF-8 character across two
/// pieces: the bytes of an incomplete character wait for the next token.
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token; returns the text it completes, or `None` while a character is still
    /// incomplete (or the token has no bytes). Byte sequences that can never become valid UTF-8
    /// are emitted as U+FFFD rather than held.
    pub fn push(
        &mut self,
        tokenizer: &Tokenizer,
        id: u32,
    ) -> Result<Option<String>, TokenizerError> {
        self.pending.extend_from_slice(tokenizer.token_bytes(id)?);
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Valid by construction: from_utf8 checked these bytes.
                    out.push_str(&String::from_utf8_lossy(
                        &self.pending[start..start + valid],
                    ));
                    start += valid;
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start += bad;
                        }
                        None => break, // an incomplete character at the end: keep it
                    }
                }
            }
        }
        self.pending.drain(..start);
        Ok((!out.is_empty()).then_some(out))
    }

    /// The bytes still held (an incomplete character), as U+FFFD; empties the decoder.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(s)
    }
}

fn lib(e: tokenizers::Error) -> TokenizerError {
    TokenizerError::Library(e.to_string())
}

fn string<'a>(md: &'a Metadata, key: &'static str) -> Result<&'a str, TokenizerError> {
    md.get(key)
        .ok_or(TokenizerError::Missing(key))?
        .as_str()
        .ok_or(TokenizerError::WrongType {
            key,
            expected: "string",
        })
}

fn strings<'a>(md: &'a Metadata, key: &'static str) -> Result<&'a [String], TokenizerError> {
    md.get(key)
        .ok_or(TokenizerError::Missing(key))?
        .as_array()
        .and_then(MetadataArray::as_strings)
        .ok_or(TokenizerError::WrongType {
            key,
            expected: "array of strings",
        })
}

/// `tokenizer.ggml.token_type` as i64s (GGUF writers use i32; any integer width is accepted),
/// or all normal (1) when absent.
fn token_types(md: &Metadata, tokens: usize) -> Result<Vec<i64>, TokenizerError> {
    const KEY: &str = "tokenizer.ggml.token_type";
    let Some(value) = md.get(KEY) else {
        return Ok(vec![1; tokens]);
    };
    let wrong = TokenizerError::WrongType {
        key: KEY,
        expected: "array of integers",
    };
    let types: Vec<i64> = match value.as_array().ok_or(wrong)? {
        MetadataArray::I32(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::U32(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::I8(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::U8(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::I16(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::U16(v) => v.iter().map(|&x| x.into()).collect(),
        MetadataArray::I64(v) => v.clone(),
        _ => {
            return Err(TokenizerError::WrongType {
                key: KEY,
                expected: "array of integers",
            })
        }
    };
    if types.len() != tokens {
        return Err(TokenizerError::TypeCount {
            types: types.len(),
            tokens,
        });
    }
    Ok(types)
}

/// GPT-2's byte↔unicode table, inverted: index = the char's code point (all below 324), value =
/// the byte it stands for.
fn unicode_to_byte() -> [Option<u8>; 324] {
    let mut table = [None; 324];
    let mut n = 0;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            usize::from(b)
        } else {
            n += 1;
            255 + n
        };
        table[c] = Some(b);
    }
    table
}

/// A byte-level token's bytes. A char outside the table (not produced by a byte-level
/// vocabulary) stands for its own UTF-8 bytes.
fn byte_level_bytes(text: &str, table: &[Option<u8>; 324]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match table.get(c as usize).copied().flatten() {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = unicode_to_byte();
        assert_eq!(t.iter().flatten().count(), 256);
        assert_eq!(t['Ġ' as usize], Some(b' '));
        assert_eq!(t['Ċ' as usize], Some(b'\n'));
        assert_eq!(t['ĉ' as usize], Some(b'\t'));
        assert_eq!(t['!' as usize], Some(b'!'));
        assert_eq!(&*byte_level_bytes("Ġhello", &t), b" hello");
    }
}
