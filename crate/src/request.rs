//! The mapping from an OpenAI chat request to what generation runs: sampling defaults,
//! `response_format` → grammar, `tools`/`tool_choice` → grammar and logit bias, and the reply's
//! tool calls. It sits above the wire types ([`crate::protocol`], a leaf) and the generation
//! machinery ([`crate::generation`], [`crate::tools`], [`crate::constraint`]); every request
//! default is defined here or in [`crate::generation::DEFAULT_MAX_TOKENS`].

use crate::constraint::Grammar;
use crate::generation::{
    CancelFlag, ChatReply, GenerateParams, GenerationError, Session, StopMatcher,
    DEFAULT_MAX_TOKENS,
};
use crate::protocol::{
    ChatCompletionRequest, ChatMessage, FinishReason, InvalidRequest, ResponseFormat, Stop,
    ToolChoice,
};
use crate::sampling::SamplingParams;
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
    if request.n.is_some_and(|n| n != 1) {
        return Err(InvalidRequest("only n = 1 is supported".into()));
    }
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

/// The grammar a `response_format` asks for (with JSON laid out as the model writes it).
pub fn response_format_grammar(format: &ResponseFormat) -> Result<Option<Grammar>, InvalidRequest> {
    let mut schema = match format {
        ResponseFormat::Text => return Ok(None),
        ResponseFormat::JsonObject => serde_json::json!({"type": "object"}),
        ResponseFormat::JsonSchema { json_schema } => json_schema.schema.clone(),
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
    /// Serves an OpenAI chat request: sampling settings, `response_format` and `tools` with
    /// `tool_choice` (a required or named call is enforced by grammar; `none` forbids calls).
    /// Streamed text stops at the first tool call; the calls come in the reply.
    pub async fn chat_completion(
        &mut self,
        request: &ChatCompletionRequest,
        cancel: &CancelFlag,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<ChatReply, GenerationError> {
        let mut params = generate_params(request)?;
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
        let mut held = StopMatcher::new(&[CALL_OPEN.to_owned()]);
        let mut stream = |text: &str| {
            if !calls_possible {
                return on_text(text);
            }
            let (out, _) = held.push(text);
            if !out.is_empty() {
                on_text(&out);
            }
        };
        let completion = self
            .chat(&messages, tools, &params, cancel, &mut stream)
            .await?;
        let (content, tool_calls) = if calls_possible {
            let tail = held.flush();
            if !tail.is_empty() {
                on_text(&tail);
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
        Ok(ChatReply {
            content,
            tool_calls,
            finish_reason,
            completion,
        })
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
        for bad in [
            r#"{"messages":[{"role":"user","content":"hi"}],"n":2}"#,
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
