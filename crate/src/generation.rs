//! Text generation over an [`Engine`]: a chat session that keeps its KV cache across turns and
//! reuses the longest common token prefix, samples one or several choices from one prefill,
//! streams UTF-8-safe text deltas (with the tokens' log probabilities where asked), honours
//! stop strings and end-of-turn tokens, and can be cancelled between any two GPU steps.

use std::sync::Arc;

use web_time::{Instant, SystemTime, UNIX_EPOCH};

pub use crate::cancel::CancelFlag;
use crate::chat_template::{
    hide_control_in_messages, hide_control_in_tools, reveal_control, ChatTemplate, TemplateError,
    TemplateInput,
};
use crate::constraint::{Constraint, ConstraintError, ConstraintVocab, Grammar};
use crate::engine::{Engine, EngineError, Readback, StepOutput};
use crate::gguf::{GgufModel, MetadataValue};
use crate::logprobs::{token_logprob, TokenLogprob, MAX_TOP_LOGPROBS};
use crate::protocol::{ChatMessage, FinishReason, InvalidRequest, Tool, ToolCall, Usage};
use crate::sampling::{InvalidParam, Sampler, SamplingParams};
use crate::stop::StopMatcher;
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

/// The most choices one request may ask for (OpenAI's limit for `n`).
pub const MAX_CHOICES: usize = 128;

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
    /// With `Some(k)`: every generated token's log probability and its `k` (at most
    /// [`MAX_TOP_LOGPROBS`]) most likely alternatives, in [`Completion::logprobs`].
    pub logprobs: Option<usize>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            sampling: SamplingParams::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
            stop: Vec::new(),
            grammar: None,
            logprobs: None,
        }
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
    /// One per token counted in `completion_tokens`, when [`GenerateParams::logprobs`] asks.
    pub logprobs: Vec<TokenLogprob>,
    /// `completion_tokens` does not count the end-of-turn token (as llama.cpp and OpenAI).
    pub usage: Usage,
}

/// A piece of one choice's streamed output.
#[derive(Debug, Clone, Copy)]
pub struct Delta<'a> {
    /// Which of the request's choices it belongs to.
    pub choice: usize,
    /// Text now certain to be output; empty when only `logprobs` has news (tokens whose text
    /// a stop string held back or cut).
    pub text: &'a str,
    /// With logprobs asked for: the choice's tokens since its previous delta.
    pub logprobs: &'a [TokenLogprob],
}

/// What every choice of one generation decodes with.
#[derive(Clone, Copy)]
struct Decoding<'a> {
    params: &'a GenerateParams,
    readback: Readback,
    cancel: &'a CancelFlag,
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

    /// The tokenizer, for use while the session is busy generating (streamed logprobs' text).
    pub fn shared_tokenizer(&self) -> Arc<Tokenizer> {
        self.tokenizer.clone()
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
        let mut on_delta = |delta: Delta| {
            if !delta.text.is_empty() {
                on_text(delta.text);
            }
        };
        let choices = self
            .generate_choices(prompt_ids, params, 1, cancel, &mut on_delta)
            .await?;
        choices.into_iter().next().ok_or_else(|| {
            EngineError::Unsupported {
                message: "a generation of one choice returned none".into(),
            }
            .into()
        })
    }

    /// Generates `n` continuations of `prompt_ids` one after another, prefilling the prompt once:
    /// each choice after the first starts from the prompt's logits with the cache cut back to
    /// the prompt. The random stream runs on across choices, so a seed gives `n` different,
    /// reproducible replies. Deltas carry their choice's index.
    pub async fn generate_choices(
        &mut self,
        prompt_ids: &[u32],
        params: &GenerateParams,
        n: usize,
        cancel: &CancelFlag,
        on_delta: &mut dyn FnMut(Delta),
    ) -> Result<Vec<Completion>, GenerationError> {
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
        if !(1..=MAX_CHOICES).contains(&n) {
            return Err(InvalidParam {
                name: "n",
                value: n.to_string(),
                range: "between 1 and 128",
            }
            .into());
        }
        if let Some(top) = params.logprobs.filter(|&top| top > MAX_TOP_LOGPROBS) {
            return Err(InvalidParam {
                name: "top_logprobs",
                value: top.to_string(),
                range: "between 0 and 20",
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
            .run(prompt_ids, params, n, constraint, cancel, on_delta)
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

    /// Prefills the uncached part of the prompt once, then decodes each choice from its logits.
    async fn run(
        &mut self,
        prompt_ids: &[u32],
        params: &GenerateParams,
        n: usize,
        mut first_constraint: Option<Constraint>,
        cancel: &CancelFlag,
        on_delta: &mut dyn FnMut(Delta),
    ) -> Result<Vec<Completion>, GenerationError> {
        let start = Instant::now();
        let greedy = params.sampling.is_plain_greedy()
            && first_constraint.is_none()
            && params.logprobs.is_none();
        let readback = if greedy {
            Readback::Argmax
        } else {
            Readback::Logits
        };
        // At least the last prompt token is computed again: its logits are not kept.
        let reused = common_prefix(&self.cached, prompt_ids).min(prompt_ids.len() - 1);
        self.cached.truncate(reused);
        self.engine.truncate(reused);

        let mut unstarted = Completion {
            prompt_ids: prompt_ids.to_vec(),
            generated_ids: Vec::new(),
            text: String::new(),
            finish_reason: FinishReason::Abort,
            logprobs: Vec::new(),
            usage: Usage {
                prompt_tokens: prompt_ids.len(),
                cached_prompt_tokens: reused,
                ..Usage::default()
            },
        };
        let chunk = self.engine.prefill_chunk();
        let pending: Vec<&[u32]> = prompt_ids[reused..].chunks(chunk).collect();
        let mut prompt_out = StepOutput::Nothing;
        for (i, piece) in pending.iter().enumerate() {
            if cancel.is_cancelled() {
                return Ok(vec![unstarted; n]);
            }
            let last = i + 1 == pending.len();
            prompt_out = self
                .engine
                .step(piece, if last { readback } else { Readback::Nothing })
                .await?;
            self.cached.extend_from_slice(piece);
        }
        unstarted.usage.prefill_tokens_per_s =
            (prompt_ids.len() - reused) as f64 / start.elapsed().as_secs_f64().max(1e-9);

        let mut sampler = Sampler::new(params.sampling.clone(), clock_seed());
        let mut choices = Vec::with_capacity(n);
        for choice in 0..n {
            let mut completion = unstarted.clone();
            if choice > 0 {
                if cancel.is_cancelled() {
                    choices.push(completion);
                    continue;
                }
                self.cached.truncate(prompt_ids.len());
                self.engine.truncate(prompt_ids.len());
            }
            let constraint = match (&params.grammar, first_constraint.take()) {
                (_, Some(first)) => Some(first),
                (Some(grammar), None) => Some(self.constraint(grammar)?),
                (None, None) => None,
            };
            let mut on_choice_delta = |text: &str, logprobs: &[TokenLogprob]| {
                on_delta(Delta {
                    choice,
                    text,
                    logprobs,
                })
            };
            let decoding = Decoding {
                params,
                readback,
                cancel,
            };
            self.decode(
                prompt_out.clone(),
                &decoding,
                &mut sampler,
                constraint,
                &mut completion,
                &mut on_choice_delta,
            )
            .await?;
            choices.push(completion);
        }
        Ok(choices)
    }

    /// Samples one choice from `out`, the prompt's last step, until it ends; `completion` holds
    /// the prompt's usage and receives the tokens, text and logprobs.
    async fn decode(
        &mut self,
        mut out: StepOutput,
        decoding: &Decoding<'_>,
        sampler: &mut Sampler,
        mut constraint: Option<Constraint>,
        completion: &mut Completion,
        on_delta: &mut dyn FnMut(&str, &[TokenLogprob]),
    ) -> Result<(), GenerationError> {
        let Decoding {
            params,
            readback,
            cancel,
        } = *decoding;
        let mut grammar_s = 0.0f64;
        let mut decoder = StreamDecoder::new();
        let mut stops = StopMatcher::new(&params.stop);
        let decode_start = Instant::now();
        // How many of the completion's logprobs have gone out with a delta.
        let mut sent = 0;
        let mut emit = |text: &str, completion: &mut Completion| {
            if !text.is_empty() {
                completion.text.push_str(text);
                on_delta(text, &completion.logprobs[sent..]);
                sent = completion.logprobs.len();
            }
        };
        let finish = loop {
            let (token, logprob) = match out {
                StepOutput::Argmax { token, .. } => (token, None),
                StepOutput::Logits(mut logits) => {
                    if let Some(c) = constraint.as_mut() {
                        let t = Instant::now();
                        c.mask_logits(&mut logits)?;
                        grammar_s += t.elapsed().as_secs_f64();
                    }
                    let token = sampler.sample(&mut logits, &completion.generated_ids);
                    let temperature = sampler.params().temperature;
                    let logprob = params
                        .logprobs
                        .map(|top| token_logprob(&logits, temperature, token, top));
                    (token, logprob)
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
            completion.logprobs.extend(logprob);
            if let Some(c) = constraint.as_mut() {
                let t = Instant::now();
                c.advance(token)?;
                grammar_s += t.elapsed().as_secs_f64();
            }
            if let Some(piece) = decoder.push(&self.tokenizer, token)? {
                let (text, stopped) = stops.push(&piece);
                emit(&text, completion);
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
        if finish != FinishReason::Stop || !stops.stopped() {
            // Bytes of a cut-off character and text held back for a stop string that never
            // completed belong to the output.
            let tail = decoder.finish().unwrap_or_default();
            let (text, _) = stops.push(&tail);
            emit(&text, completion);
            let held = stops.flush();
            emit(&held, completion);
        }
        if sent < completion.logprobs.len() {
            // Tokens whose text was held back or cut by a stop string.
            on_delta("", &completion.logprobs[sent..]);
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
        Ok(())
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
