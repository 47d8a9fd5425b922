//! The mapping from an OpenAI chat or legacy completion request to what generation runs:
//! sampling defaults, `n` and `logprobs`, `response_format` → grammar, `tools`/`tool_choice` →
//! grammar and logit bias, and the replies' tool calls and summed usage. It sits above the wire types ([`crate::protocol`], a leaf) and the generation
//! machinery ([`crate::generation`], [`crate::tools`], [`crate::constraint`]); every request
//! default is defined here or in [`crate::generation::DEFAULT_MAX_TOKENS`].

use crate::constraint::Grammar;
use crate::gbnf::gbnf_to_lark;
use crate::generation::{
    CancelFlag, ChatReply, Completion, Delta, GenerateParams, GenerationError, Session,
    DEFAULT_MAX_TOKENS, MAX_CHOICES,
};
use crate::logprobs::MAX_TOP_LOGPROBS;
use crate::protocol::{
    ChatCompletionRequest, ChatMessage, CompletionRequest, FinishReason, InvalidRequest,
    ResponseFormat, Stop, ToolChoice, Usage,
};
use crate::sampling::SamplingParams;
use crate::stop::StopMatcher;
use crate::tools::{call_grammar, json_layout, parse_tool_calls, CALL_OPEN};

/// Qwen2.5-Instruct's `generation_config.json` (temperature 0.7, top_p 0.8, top_k 20,
/// repetition_penalty 1.05): the sampling of a request that names none.
pub const DEFAULT_SAMPLING: SamplingDefaults = SamplingDefaults {
    temperature: 0.7,
    top_p: 0.8,
    top_k: 20,
    repetition_penalty: 1.05,
};

/// The sampling fields a request may leave out and the values they then take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingDefaults {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub repetition_penalty: f32,
}

/// The generation settings a chat request asks for (its tools aside: see
/// [`Session::chat_completion`]).
pub fn generate_params(request: &ChatCompletionRequest) -> Result<GenerateParams, InvalidRequest> {
    if request.messages.is_empty() {
        return Err(InvalidRequest("messages is empty".into()));
    }
    completion_params(request)
}

/// The generation settings of a request's sampling, stop and format fields, its messages aside
/// (the CLI continues a raw prompt with them).
pub fn completion_params(
    request: &ChatCompletionRequest,
) -> Result<GenerateParams, InvalidRequest> {
    choice_count(request.n)?;
    if request.max_tokens == Some(0) {
        return Err(InvalidRequest("max_tokens must be at least 1".into()));
    }
    let defaults = DEFAULT_SAMPLING;
    let logit_bias = match &request.logit_bias {
        None => Vec::new(),
        Some(map) => map
            .iter()
            .map(|(id, bias)| {
                id.parse::<u32>()
                    .map(|id| (id, *bias))
                    .map_err(|_| InvalidRequest(format!("logit_bias key {id:?} is not a token id")))
            })
            .collect::<Result<_, _>>()?,
    };
    let sampling = SamplingParams {
        temperature: request.temperature.unwrap_or(defaults.temperature),
        top_p: request.top_p.unwrap_or(defaults.top_p),
        top_k: request.top_k.unwrap_or(defaults.top_k),
        min_p: request.min_p.unwrap_or(0.0),
        repetition_penalty: request
            .repetition_penalty
            .unwrap_or(defaults.repetition_penalty),
        presence_penalty: request.presence_penalty.unwrap_or(0.0),
        frequency_penalty: request.frequency_penalty.unwrap_or(0.0),
        logit_bias,
        seed: request.seed,
        ..SamplingParams::default()
    };
    sampling
        .validate()
        .map_err(|e| InvalidRequest(e.to_string()))?;
    let grammar = match &request.response_format {
        Some(format) => response_format_grammar(format)?,
        None => None,
    };
    Ok(GenerateParams {
        logprobs: logprobs_setting(request.logprobs, request.top_logprobs)?,
        grammar,
        sampling,
        max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        stop: match &request.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        },
    })
}

/// How many choices `n` asks for (1 when absent).
pub fn choice_count(n: Option<usize>) -> Result<usize, InvalidRequest> {
    match n.unwrap_or(1) {
        n @ 1..=MAX_CHOICES => Ok(n),
        n => Err(InvalidRequest(format!(
            "n is {n}; it must be between 1 and {MAX_CHOICES}"
        ))),
    }
}

/// [`GenerateParams::logprobs`] from OpenAI's `logprobs` and `top_logprobs`.
fn logprobs_setting(
    logprobs: Option<bool>,
    top: Option<usize>,
) -> Result<Option<usize>, InvalidRequest> {
    match (logprobs.unwrap_or(false), top) {
        (_, Some(k)) if k > MAX_TOP_LOGPROBS => Err(InvalidRequest(format!(
            "top_logprobs is {k}; it must be between 0 and {MAX_TOP_LOGPROBS}"
        ))),
        (true, top) => Ok(Some(top.unwrap_or(0))),
        (false, Some(k)) if k > 0 => {
            Err(InvalidRequest("top_logprobs needs logprobs: true".into()))
        }
        (false, _) => Ok(None),
    }
}

/// The usage of a request's choices together: their one prefill, and every choice's generated
/// tokens (speeds and grammar time averaged over all of them).
pub fn choices_usage(choices: &[Completion]) -> Usage {
    let mut usage = choices.first().map(|c| c.usage.clone()).unwrap_or_default();
    let decoded = |c: &Completion| c.generated_ids.len().saturating_sub(1) as f64;
    let mut decode_s = 0.0;
    let mut grammar_ms = 0.0;
    for c in choices {
        if c.usage.decode_tokens_per_s > 0.0 {
            decode_s += decoded(c) / c.usage.decode_tokens_per_s;
        }
        grammar_ms += c.usage.grammar_ms_per_token.unwrap_or(0.0) * c.generated_ids.len() as f64;
    }
    usage.completion_tokens = choices.iter().map(|c| c.usage.completion_tokens).sum();
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    usage.decode_tokens_per_s = choices.iter().map(decoded).sum::<f64>() / decode_s.max(1e-9);
    let steps: usize = choices.iter().map(|c| c.generated_ids.len()).sum();
    if usage.grammar_ms_per_token.is_some() {
        usage.grammar_ms_per_token = Some(grammar_ms / steps.max(1) as f64);
    }
    usage
}

/// The replies to a chat request: `n` choices and their usage together.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCompletionReply {
    pub choices: Vec<ChatReply>,
    pub usage: Usage,
}

/// The replies to a legacy completion request: `n` continuations of the prompt (each `text`
/// starting with the prompt under `echo`) and their usage together.
#[derive(Debug, Clone, PartialEq)]
pub struct TextCompletionReply {
    pub choices: Vec<Completion>,
    pub usage: Usage,
}

/// The grammar a `response_format` asks for (with JSON laid out as the model writes it; GBNF
/// translated to Lark).
pub fn response_format_grammar(format: &ResponseFormat) -> Result<Option<Grammar>, InvalidRequest> {
    let mut schema = match format {
        ResponseFormat::Text => return Ok(None),
        ResponseFormat::JsonObject => serde_json::json!({"type": "object"}),
        ResponseFormat::JsonSchema { json_schema } => json_schema.schema.clone(),
        ResponseFormat::Grammar { grammar } => {
            return gbnf_to_lark(grammar)
                .map(|lark| Some(Grammar::Lark(lark)))
                .map_err(|e| InvalidRequest(format!("response_format.grammar: {e}")));
        }
    };
    match &mut schema {
        serde_json::Value::Object(map) => {
            map.entry("x-guidance").or_insert_with(json_layout);
        }
        serde_json::Value::Bool(_) => {}
        _ => {
            return Err(InvalidRequest(
                "json_schema.schema is not a JSON Schema object".into(),
            ))
        }
    }
    Ok(Some(Grammar::JsonSchema(schema)))
}

impl Session {
    /// Serves an OpenAI chat request: sampling settings, `n`, `logprobs`, `response_format`
    /// and `tools` with `tool_choice` (a required or named call is enforced by grammar; `none`
    /// forbids calls). Streamed text stops at each choice's first tool call; the calls come in
    /// the reply.
    pub async fn chat_completion(
        &mut self,
        request: &ChatCompletionRequest,
        cancel: &CancelFlag,
        on_delta: &mut dyn FnMut(Delta),
    ) -> Result<ChatCompletionReply, GenerationError> {
        let mut params = generate_params(request)?;
        let n = choice_count(request.n)?;
        let tools = request.tools.as_deref().filter(|t| !t.is_empty());
        let choice = request.tool_choice.clone().unwrap_or_default();
        match tools {
            Some(tools) => {
                if let Some(grammar) = call_grammar(tools, &choice)? {
                    if params.grammar.is_some() {
                        return Err(InvalidRequest(
                            "response_format and a required tool call cannot be combined".into(),
                        )
                        .into());
                    }
                    params.grammar = Some(grammar);
                }
                if choice == ToolChoice::None {
                    if let Some(id) = self.tokenizer().token_id(CALL_OPEN) {
                        params.sampling.logit_bias.push((id, -100.0));
                    }
                }
            }
            None if matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) => {
                return Err(InvalidRequest(
                    "tool_choice requires a call but there are no tools".into(),
                )
                .into());
            }
            None => {}
        }
        let calls_possible = tools.is_some() && choice != ToolChoice::None;
        let messages = with_object_arguments(&request.messages);
        let prompt = self.chat_prompt(&messages, tools)?;
        // Each choice's text from its first `<tool_call>` on is held back: calls are not text.
        let mut held: Vec<StopMatcher> = (0..n)
            .map(|_| StopMatcher::new(&[CALL_OPEN.to_owned()]))
            .collect();
        let mut stream = |delta: Delta| match held.get_mut(delta.choice) {
            Some(matcher) if calls_possible => {
                let (text, _) = matcher.push(delta.text);
                if !text.is_empty() || !delta.logprobs.is_empty() {
                    on_delta(Delta {
                        text: &text,
                        ..delta
                    });
                }
            }
            _ => on_delta(delta),
        };
        let completions = self
            .generate_choices(&prompt, &params, n, cancel, &mut stream)
            .await?;
        let usage = choices_usage(&completions);
        let mut choices = Vec::with_capacity(completions.len());
        for (index, (completion, matcher)) in completions.into_iter().zip(&mut held).enumerate() {
            let (content, tool_calls) = if calls_possible {
                let tail = matcher.flush();
                if !tail.is_empty() {
                    on_delta(Delta {
                        choice: index,
                        text: &tail,
                        logprobs: &[],
                    });
                }
                parse_tool_calls(&completion.text)
            } else {
                (completion.text.clone(), Vec::new())
            };
            let finish_reason = if tool_calls.is_empty() {
                completion.finish_reason
            } else {
                FinishReason::ToolCalls
            };
            choices.push(ChatReply {
                content,
                tool_calls,
                finish_reason,
                completion,
            });
        }
        Ok(ChatCompletionReply { choices, usage })
    }

    /// Serves a legacy completion request: the prompt, tokenized as plain text, continued with
    /// no chat template; under `echo` each choice's text (streamed and whole) starts with it.
    pub async fn completion(
        &mut self,
        request: &CompletionRequest,
        cancel: &CancelFlag,
        on_delta: &mut dyn FnMut(Delta),
    ) -> Result<TextCompletionReply, GenerationError> {
        let params = completion_params(&chat_form(request))?;
        let n = choice_count(request.n)?;
        let prompt_ids = self.tokenizer().encode(&request.prompt, false)?;
        let echo = request.echo.unwrap_or(false);
        // Under echo each choice's stream opens with the prompt, sent with its first delta (or
        // at the end, for a choice that streamed nothing).
        let mut echoed = vec![!echo; n];
        let mut stream = |delta: Delta| {
            if let Some(done @ false) = echoed.get_mut(delta.choice) {
                *done = true;
                on_delta(Delta {
                    text: &request.prompt,
                    logprobs: &[],
                    ..delta
                });
            }
            on_delta(delta);
        };
        let mut choices = self
            .generate_choices(&prompt_ids, &params, n, cancel, &mut stream)
            .await?;
        for (choice, _) in echoed.iter().enumerate().filter(|(_, done)| !**done) {
            on_delta(Delta {
                choice,
                text: &request.prompt,
                logprobs: &[],
            });
        }
        if echo {
            for c in &mut choices {
                c.text.insert_str(0, &request.prompt);
            }
        }
        let usage = choices_usage(&choices);
        Ok(TextCompletionReply { choices, usage })
    }
}

/// A completion request's sampling, stop and format fields as the chat request
/// [`completion_params`] reads (with no messages).
fn chat_form(request: &CompletionRequest) -> ChatCompletionRequest {
    ChatCompletionRequest {
        messages: Vec::new(),
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        min_p: request.min_p,
        repetition_penalty: request.repetition_penalty,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        max_tokens: request.max_tokens,
        seed: request.seed,
        stop: request.stop.clone(),
        logit_bias: request.logit_bias.clone(),
        n: request.n,
        logprobs: request.logprobs,
        top_logprobs: request.top_logprobs,
        response_format: request.response_format.clone(),
        ..ChatCompletionRequest::default()
    }
}

/// OpenAI clients send tool-call arguments as JSON strings; Qwen's template writes them with
/// `tojson`, which would quote them again, so they go to the template as the objects they
/// encode (as vLLM does).
fn with_object_arguments(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut out = messages.to_vec();
    for call in out
        .iter_mut()
        .flat_map(|m| m.tool_calls.iter_mut().flatten())
    {
        if let serde_json::Value::String(s) = &call.function.arguments {
            if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(s) {
                call.function.arguments = v;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_generation_settings() {
        let r: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"x","stream":true,"messages":[{"role":"user","content":"hi"}],
                "temperature":0,"max_completion_tokens":9,"stop":"END","logit_bias":{"42":-100},"seed":3}"#,
        )
        .unwrap();
        let p = generate_params(&r).unwrap();
        assert!(p.sampling.temperature == 0.0 && p.max_tokens == 9 && p.stop == ["END"]);
        assert_eq!(
            (p.sampling.logit_bias.clone(), p.sampling.seed),
            (vec![(42, -100.0)], Some(3))
        );
        let r: ChatCompletionRequest =
            serde_json::from_str(r#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        let p = generate_params(&r).unwrap();
        assert_eq!((p.sampling.temperature, p.sampling.top_k), (0.7, 20));
        assert_eq!(p.max_tokens, DEFAULT_MAX_TOKENS);
        let r: ChatCompletionRequest = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"hi"}],"n":3,"logprobs":true,"top_logprobs":4}"#,
        )
        .unwrap();
        assert_eq!(generate_params(&r).map(|p| p.logprobs), Ok(Some(4)));
        assert_eq!(choice_count(r.n), Ok(3));
        let r: ChatCompletionRequest = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"hi"}],"logprobs":true}"#,
        )
        .unwrap();
        assert_eq!(generate_params(&r).map(|p| p.logprobs), Ok(Some(0)));
        for bad in [
            r#"{"messages":[{"role":"user","content":"hi"}],"n":0}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"n":129}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"top_logprobs":2}"#,
            r#"{"messages":[]}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"top_p":0}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"logit_bias":{"x":1}}"#,
        ] {
            let r: ChatCompletionRequest = serde_json::from_str(bad).unwrap();
            assert!(generate_params(&r).is_err(), "{bad}");
        }
        // Both spellings of the limit refuse 0: a generation always samples one token.
        for zero in [
            r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":0}"#,
        ] {
            let r: ChatCompletionRequest = serde_json::from_str(zero).unwrap();
            assert_eq!(
                completion_params(&r),
                Err(InvalidRequest("max_tokens must be at least 1".into())),
                "{zero}"
            );
        }
        let r: ChatCompletionRequest =
            serde_json::from_str(r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}"#)
                .unwrap();
        assert_eq!(generate_params(&r).map(|p| p.max_tokens), Ok(1));
    }
}
