//! Text generation over an [`Engine`]: a chat session that keeps its KV cache across turns and
//! reuses the longest common token prefix, samples, streams UTF-8-safe text deltas, honours
//! stop strings and end-of-turn tokens, and can be cancelled between any two GPU steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use web_time::{Instant, SystemTime, UNIX_EPOCH};

use crate::chat_template::{
    hide_control_in_messages, hide_control_in_tools, reveal_control, ChatTemplate, TemplateError,
    TemplateInput,
};
use crate::constraint::{Constraint, ConstraintError, ConstraintVocab, Grammar};
use crate::engine::{Engine, EngineError, Readback, StepOutput};
use crate::gguf::{GgufModel, MetadataValue};
use crate::protocol::{ChatMessage, FinishReason, InvalidRequest, Tool, ToolCall, Usage};
use crate::sampling::{InvalidParam, Sampler, SamplingParams};
use crate::tokenizer::{Piece, StreamDecoder, Tokenizer, TokenizerError};

/// Why a generation could not run. The session stays usable after any of these.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    InvalidParam(#[from] InvalidParam),
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    #[error("the prompt has {prompt} tokens; the context holds {capacity}")]
    PromptTooLong { prompt: usize, capacity: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
}

/// `max_tokens` when neither the request nor the caller gives one (the chat API, the CLI and
/// [`GenerateParams::default`] alike).
pub const DEFAULT_MAX_TOKENS: usize = 1024;

/// Settings of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    pub sampling: SamplingParams,
    /// Most tokens to generate, at least 1; the context's end also stops generation.
    pub max_tokens: usize,
    /// Texts that end generation; the text is cut where the first one begins.
    pub stop: Vec<String>,
    /// A grammar the output must match; generation ends when it is complete.
    pub grammar: Option<Grammar>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            sampling: SamplingParams::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
            stop: Vec::new(),
            grammar: None,
        }
    }
}

/// A cancellation flag shared between the generating code and whoever may stop it (a Ctrl-C
/// handler, a JS `AbortSignal`). Generation checks it before every GPU step.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears the flag for the next generation.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub prompt_ids: Vec<u32>,
    /// Every sampled token, the end-of-turn token included when one ended generation.
    pub generated_ids: Vec<u32>,
    /// The generated text without the end-of-turn token, cut before a stop string.
    pub text: String,
    pub finish_reason: FinishReason,
    /// `completion_tokens` does not count the end-of-turn token (as llama.cpp and OpenAI).
    pub usage: Usage,
}

/// A chat reply in OpenAI's terms: text, tool calls, and why it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    /// The text (before the first tool call, when there are calls).
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// `tool_calls` when the reply is calls, else the completion's own reason.
    pub finish_reason: FinishReason,
    pub completion: Completion,
}

/// A model with its tokenizer and chat template, holding one conversation's KV cache.
pub struct Session {
    engine: Engine,
    tokenizer: Arc<Tokenizer>,
    template: ChatTemplate,
    end_tokens: Vec<u32>,
    /// Built on the first constrained request (it walks the whole vocabulary).
    constraint_vocab: Option<ConstraintVocab>,
    /// The tokens whose keys and values are in the engine's cache, in order.
    cached: Vec<u32>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cached_tokens", &self.cached.len())
            .field("end_tokens", &self.end_tokens)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session over a loaded `engine` for `model`: tokenizer and template from its metadata.
    pub fn new(engine: Engine, model: &GgufModel) -> Result<Session, GenerationError> {
        let tokenizer = Tokenizer::from_model(model)?;
        let template = ChatTemplate::from_model(model, &tokenizer)?;
        let end_tokens = end_of_turn_tokens(model, &tokenizer);
        Ok(Session {
            engine,
            tokenizer: Arc::new(tokenizer),
            template,
            end_tokens,
            constraint_vocab: None,
            cached: Vec::new(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Tokens that end a turn: the file's EOS and ChatML's `<|im_end|>` and `<|endoftext|>`.
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// A matcher for `grammar` over this model's vocabulary.
    pub fn constraint(&mut self, grammar: &Grammar) -> Result<Constraint, GenerationError> {
        if self.constraint_vocab.is_none() {
            let end = self
                .tokenizer
                .token_id("<|im_end|>")
                .or_else(|| self.end_tokens.first().copied())
                .ok_or_else(|| {
                    ConstraintError::Compile("the vocabulary has no end-of-turn token".into())
                })?;
            self.constraint_vocab = Some(ConstraintVocab::new(self.tokenizer.clone(), end)?);
        }
        match &self.constraint_vocab {
            Some(vocab) => Ok(vocab.constraint(grammar)?),
            None => Err(ConstraintError::Compile("no vocabulary".into()).into()),
        }
    }

    /// How many tokens the KV cache holds for the next prompt to reuse.
    pub fn cached_tokens(&self) -> usize {
        self.cached.len()
    }

    /// Forgets the conversation's cache.
    pub fn reset(&mut self) {
        self.cached.clear();
        self.engine.truncate(0);
    }

    /// The prompt ids of a conversation through the chat template, with the assistant's turn
    /// opened: see [`chat_prompt_ids`].
    pub fn chat_prompt(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[Tool]>,
    ) -> Result<Vec<u32>, GenerationError> {
        chat_prompt_ids(&self.template, &self.tokenizer, messages, tools)
    }

    /// Continues `prompt_ids`, reusing the cached prefix they share with the previous
    /// generation, and streams text pieces to `on_text` as they are decided (stop strings may
    /// hold back a few characters until they are ruled out).
    pub async fn generate(
        &mut self,
        prompt_ids: &[u32],
        params: &GenerateParams,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion, GenerationError> {
        params.sampling.validate()?;
        // The first token is sampled before the limit is checked, so 0 would still give one;
        // OpenAI refuses it too.
        if params.max_tokens == 0 {
            return Err(InvalidParam {
                name: "max_tokens",
                value: "0".into(),
                range: "at least 1",
            }
            .into());
        }
        if prompt_ids.is_empty() {
            return Err(GenerationError::EmptyPrompt);
        }
        let capacity = self.engine.capacity();
        if prompt_ids.len() > capacity {
            return Err(GenerationError::PromptTooLong {
                prompt: prompt_ids.len(),
                capacity,
            });
        }
        let vocab = self.engine.config().vocab_size;
        if let Some(&token) = prompt_ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(EngineError::TokenOutOfRange { token, vocab }.into());
        }
        // Compiled before any GPU work, so a bad grammar leaves the cache as it was.
        let constraint = match &params.grammar {
            Some(grammar) => Some(self.constraint(grammar)?),
            None => None,
        };
        match self
            .run(prompt_ids, params, constraint, cancel, on_text)
            .await
        {
            Ok(done) => Ok(done),
            Err(e) => {
                // A failed step may have written part of the cache: trust none of it.
                self.reset();
                Err(e)
            }
        }
    }

    async fn run(
        &mut self,
        prompt_ids: &[u32],
        params: &GenerateParams,
        mut constraint: Option<Constraint>,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion, GenerationError> {
        let mut grammar_s = 0.0f64;
        let start = Instant::now();
        let greedy = params.sampling.is_plain_greedy() && constraint.is_none();
        let readback = if greedy {
            Readback::Argmax
        } else {
            Readback::Logits
        };
        // At least the last prompt token is computed again: its logits are not kept.
        let reused = common_prefix(&self.cached, prompt_ids).min(prompt_ids.len() - 1);
        self.cached.truncate(reused);
        self.engine.truncate(reused);

        let mut completion = Completion {
            prompt_ids: prompt_ids.to_vec(),
            generated_ids: Vec::new(),
            text: String::new(),
            finish_reason: FinishReason::Abort,
            usage: Usage {
                prompt_tokens: prompt_ids.len(),
                cached_prompt_tokens: reused,
                ..Usage::default()
            },
        };
        let chunk = self.engine.prefill_chunk();
        let pending: Vec<&[u32]> = prompt_ids[reused..].chunks(chunk).collect();
        let mut out = StepOutput::Nothing;
        for (i, piece) in pending.iter().enumerate() {
            if cancel.is_cancelled() {
                return Ok(completion);
            }
            let last = i + 1 == pending.len();
            out = self
                .engine
                .step(piece, if last { readback } else { Readback::Nothing })
                .await?;
            self.cached.extend_from_slice(piece);
        }
        let prefill_s = start.elapsed().as_secs_f64();
        completion.usage.prefill_tokens_per_s =
            (prompt_ids.len() - reused) as f64 / prefill_s.max(1e-9);

        let mut sampler = Sampler::new(params.sampling.clone(), clock_seed());
        let mut decoder = StreamDecoder::new();
        let mut stops = StopMatcher::new(&params.stop);
        let decode_start = Instant::now();
        let mut emit = |text: &str, completion: &mut Completion| {
            if !text.is_empty() {
                completion.text.push_str(text);
                on_text(text);
            }
        };
        let finish = loop {
            let token = match out {
                StepOutput::Argmax { token, .. } => token,
                StepOutput::Logits(mut logits) => {
                    if let Some(c) = constraint.as_mut() {
                        let t = Instant::now();
                        c.mask_logits(&mut logits)?;
                        grammar_s += t.elapsed().as_secs_f64();
                    }
                    sampler.sample(&mut logits, &completion.generated_ids)
                }
                StepOutput::Nothing => {
                    return Err(EngineError::Unsupported {
                        message: "a step that was asked for a token returned none".into(),
                    }
                    .into())
                }
            };
            completion.generated_ids.push(token);
            if self.end_tokens.contains(&token) {
                break FinishReason::Stop;
            }
            completion.usage.completion_tokens += 1;
            if let Some(c) = constraint.as_mut() {
                let t = Instant::now();
                c.advance(token)?;
                grammar_s += t.elapsed().as_secs_f64();
            }
            if let Some(piece) = decoder.push(&self.tokenizer, token)? {
                let (text, stopped) = stops.push(&piece);
                emit(&text, &mut completion);
                if stopped {
                    break FinishReason::Stop;
                }
            }
            if constraint.as_ref().is_some_and(Constraint::is_finished) {
                break FinishReason::Stop;
            }
            if completion.generated_ids.len() >= params.max_tokens
                || self.engine.position() >= self.engine.capacity()
            {
                break FinishReason::Length;
            }
            if cancel.is_cancelled() {
                break FinishReason::Abort;
            }
            out = self.engine.step(&[token], readback).await?;
            self.cached.push(token);
        };
        if finish != FinishReason::Stop || !stops.stopped {
            // Bytes of a cut-off character and text held back for a stop string that never
            // completed belong to the output.
            let tail = decoder.finish().unwrap_or_default();
            let (text, _) = stops.push(&tail);
            emit(&text, &mut completion);
            let held = stops.flush();
            emit(&held, &mut completion);
        }
        completion.finish_reason = finish;
        let decoded = completion.generated_ids.len().saturating_sub(1);
        completion.usage.decode_tokens_per_s =
            decoded as f64 / decode_start.elapsed().as_secs_f64().max(1e-9);
        completion.usage.total_tokens =
            completion.usage.prompt_tokens + completion.usage.completion_tokens;
        if constraint.is_some() {
            let steps = completion.generated_ids.len().max(1);
            completion.usage.grammar_ms_per_token = Some(grammar_s * 1e3 / steps as f64);
        }
        Ok(completion)
    }

    /// Renders `messages` through the template and generates the assistant's reply.
    pub async fn chat(
        &mut self,
        messages: &[ChatMessage],
        tools: Option<&[Tool]>,
        params: &GenerateParams,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion, GenerationError> {
        let prompt = self.chat_prompt(messages, tools)?;
        self.generate(&prompt, params, cancel, on_text).await
    }
}

/// The prompt ids of a conversation through `template`, with the assistant's turn opened.
/// Control tokens the template writes (`<|im_start|>`) become their ids; text inside the
/// messages and tools is always plain text, whatever it spells (see [`crate::chat_template`]).
pub fn chat_prompt_ids(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    messages: &[ChatMessage],
    tools: Option<&[Tool]>,
) -> Result<Vec<u32>, GenerationError> {
    let messages = hide_control_in_messages(messages, tokenizer);
    let tools = tools.map(|t| hide_control_in_tools(t, tokenizer));
    let text = template.render(&TemplateInput {
        messages: &messages,
        tools: tools.as_deref(),
        add_generation_prompt: true,
    })?;
    let mut ids = Vec::new();
    for piece in tokenizer.split_control(&text) {
        match piece {
            Piece::Control(id) => ids.push(id),
            Piece::Text(t) => ids.extend(tokenizer.encode(&reveal_control(t, tokenizer), false)?),
        }
    }
    Ok(ids)
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A seed for unseeded sampling: the clock's nanoseconds.
fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The file's EOS plus ChatML's end markers, where the vocabulary has them.
pub fn end_of_turn_tokens(model: &GgufModel, tokenizer: &Tokenizer) -> Vec<u32> {
    let mut ids: Vec<u32> = model
        .metadata()
        .get("tokenizer.ggml.eos_token_id")
        .and_then(MetadataValue::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .into_iter()
        .collect();
    ids.extend(
        ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_id(t)),
    );
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Finds stop strings in streamed text, across piece boundaries: text that could be the start
/// of a stop string is held back until the next piece rules it in or out.
#[derive(Debug, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
    stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
            stopped: false,
        }
    }

    /// Adds a piece; returns the text that is now certain to be output and whether a stop
    /// string was found (the text then ends where it began, and later pieces are ignored).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.held.push_str(piece);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_stop {
            self.held.truncate(at);
            self.stopped = true;
            return (std::mem::take(&mut self.held), true);
        }
        // Hold the longest tail that a stop string starts with.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_tail_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let out = self.held[..self.held.len() - keep].to_owned();
        self.held.drain(..self.held.len() - keep);
        (out, false)
    }

    /// The held text, when the stream ends without a stop string.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The length of the longest proper tail of `text` that `stop` begins with.
fn longest_tail_prefix(text: &str, stop: &str) -> usize {
    let longest = text.len().min(stop.len().saturating_sub(1));
    (1..=longest)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && stop
                    .as_bytes()
                    .starts_with(&text.as_bytes()[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let (text, stopped) = m.push(p);
            out.push_str(&text);
            if stopped {
                return (out, true);
            }
        }
        out.push_str(&m.flush());
        (out, false)
    }

    #[test]
    fn stop_strings_across_pieces() {
        assert_eq!(
            run(&["END"], &["abc E", "N", "D more"]),
            ("abc ".into(), true)
        );
        assert_eq!(
            run(&["END"], &["abc E", "N", "d"]),
            ("abc ENd".into(), false)
        );
        assert_eq!(run(&["\n\n"], &["a\n", "\nb"]), ("a".into(), true));
        // The earliest of several stops wins.
        assert_eq!(run(&["yz", "x"], &["wxyz"]), ("w".into(), true));
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        // Held text is cut at character boundaries.
        assert_eq!(run(&["é!"], &["café", "?"]), ("café?".into(), false));
        assert_eq!(run(&["é!"], &["café", "!"]), ("caf".into(), true));
    }

    #[test]
    fn stop_matcher_holds_only_possible_starts() {
        let mut m = StopMatcher::new(&["<|stop|>".to_string()]);
        assert_eq!(m.push("hello <|st"), ("hello ".into(), false));
        assert_eq!(m.push("art"), ("<|start".into(), false));
    }

    #[test]
    fn cancel_flag() {
        let flag = CancelFlag::new();
        let other = flag.clone();
        assert!(!flag.is_cancelled());
        other.cancel();
        assert!(flag.is_cancelled());
        flag.reset();
        assert!(!other.is_cancelled());
    }
}
