//! The OpenAI chat-completion shapes this crate speaks: messages, tool definitions and calls,
//! finish reasons and usage. Field names are OpenAI's, so JSON from an OpenAI or WebLLM client
//! deserializes as it is.

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of a conversation. Absent fields stay absent in the chat template (a template
/// tests `message.tool_calls is defined`, so `None` is never rendered as a null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    /// Text, or OpenAI's list of content parts (only `text` parts: the models are text-only),
    /// joined into one string when deserialized.
    #[serde(
        default,
        deserialize_with = "content_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For `role: tool`: which call this is the result of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role,
            content: Some(content.into()),
            tool_calls: None,
            tool_call_id: None,
            name: None,
        }
    }

    pub fn system(content: impl Into<String>) -> ChatMessage {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> ChatMessage {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        Self::new(Role::Assistant, content)
    }
}

/// A call the assistant made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// OpenAI always sends one; templates' own examples often have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

/// The function and arguments of a [`ToolCall`]. OpenAI sends `arguments` as a JSON string;
/// templates also see objects, so either is kept as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: serde_json::Value,
}

/// A tool the model may call (OpenAI's `{"type": "function", "function": {...}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionDefinition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The arguments' JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

fn function_type() -> String {
    "function".into()
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-turn token or a stop string.
    Stop,
    /// `max_tokens`, or the context is full.
    Length,
    /// The caller cancelled.
    Abort,
    /// The reply is tool calls.
    ToolCalls,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
            FinishReason::ToolCalls => "tool_calls",
        }
    }
}

/// What a completion cost. `prompt_tokens` counts the whole prompt; `cached_prompt_tokens` of
/// them were already in the KV cache and were not computed again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub cached_prompt_tokens: usize,
    /// Prompt tokens computed per second (the uncached ones).
    pub prefill_tokens_per_s: f64,
    /// Generated tokens per second after the first.
    pub decode_tokens_per_s: f64,
    /// With a grammar: the time computing token masks and advancing the grammar, per token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar_ms_per_token: Option<f64>,
}

/// An OpenAI chat-completion request, with llama.cpp's extra sampling fields (`top_k`, `min_p`,
/// `repetition_penalty`). Absent sampling fields take Qwen2.5's recommended values
/// ([`ChatCompletionRequest::DEFAULT_SAMPLING`]); `temperature: 0` is greedy. Fields this crate
/// has no use for (`model`, `stream`, `user`, ...) are accepted and ignored; `n` other than 1
/// is refused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ChatCompletionRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    #[serde(alias = "max_completion_tokens")]
    pub max_tokens: Option<usize>,
    pub seed: Option<u64>,
    pub stop: Option<Stop>,
    /// Token id (as a string, as JSON object keys are) → bias.
    pub logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    pub n: Option<usize>,
    pub response_format: Option<ResponseFormat>,
    pub tool_choice: Option<crate::tools::ToolChoice>,
}

/// OpenAI's `response_format`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JsonSchemaFormat {
    #[serde(default)]
    pub name: Option<String>,
    pub schema: serde_json::Value,
    /// Always strict here: the output is constrained either way.
    #[serde(default)]
    pub strict: Option<bool>,
}

impl ResponseFormat {
    /// The grammar this format asks for (with JSON laid out as the model writes it).
    pub fn grammar(&self) -> Result<Option<crate::constraint::Grammar>, InvalidRequest> {
        use crate::constraint::Grammar;
        let mut schema = match self {
            ResponseFormat::Text => return Ok(None),
            ResponseFormat::JsonObject => serde_json::json!({"type": "object"}),
            ResponseFormat::JsonSchema { json_schema } => json_schema.schema.clone(),
        };
        match &mut schema {
            serde_json::Value::Object(map) => {
                map.entry("x-guidance")
                    .or_insert_with(crate::tools::json_layout);
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
}

/// `stop`: one string or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// A request that cannot be served as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid request: {0}")]
pub struct InvalidRequest(pub String);

impl ChatCompletionRequest {
    /// Qwen2.5-Instruct's `generation_config.json`: temperature 0.7, top_p 0.8, top_k 20,
    /// repetition_penalty 1.05.
    pub const DEFAULT_SAMPLING: (f32, f32, usize, f32) = (0.7, 0.8, 20, 1.05);
    /// `max_tokens` when the request gives none.
    pub const DEFAULT_MAX_TOKENS: usize = 1024;

    /// The generation settings this request asks for.
    pub fn generate_params(&self) -> Result<crate::generation::GenerateParams, InvalidRequest> {
        use crate::sampling::SamplingParams;
        if self.n.is_some_and(|n| n != 1) {
            return Err(InvalidRequest("only n = 1 is supported".into()));
        }
        if self.messages.is_empty() {
            return Err(InvalidRequest("messages is empty".into()));
        }
        let (temperature, top_p, top_k, repetition_penalty) = Self::DEFAULT_SAMPLING;
        let logit_bias = match &self.logit_bias {
            None => Vec::new(),
            Some(map) => map
                .iter()
                .map(|(id, bias)| {
                    id.parse::<u32>().map(|id| (id, *bias)).map_err(|_| {
                        InvalidRequest(format!("logit_bias key {id:?} is not a token id"))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let sampling = SamplingParams {
            temperature: self.temperature.unwrap_or(temperature),
            top_p: self.top_p.unwrap_or(top_p),
            top_k: self.top_k.unwrap_or(top_k),
            min_p: self.min_p.unwrap_or(0.0),
            repetition_penalty: self.repetition_penalty.unwrap_or(repetition_penalty),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            logit_bias,
            seed: self.seed,
            ..SamplingParams::default()
        };
        sampling
            .validate()
            .map_err(|e| InvalidRequest(e.to_string()))?;
        let grammar = match &self.response_format {
            Some(format) => format.grammar()?,
            None => None,
        };
        Ok(crate::generation::GenerateParams {
            grammar,
            sampling,
            max_tokens: self.max_tokens.unwrap_or(Self::DEFAULT_MAX_TOKENS),
            stop: match &self.stop {
                None => Vec::new(),
                Some(Stop::One(s)) => vec![s.clone()],
                Some(Stop::Many(v)) => v.clone(),
            },
        })
    }
}

/// Accepts a string, null, or a list of `{"type": "text", "text": ...}` parts.
fn content_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Parts(Vec<Part>),
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        text: Option<String>,
    }
    match Option::<Content>::deserialize(d)? {
        None => Ok(None),
        Some(Content::Text(s)) => Ok(Some(s)),
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    (kind, _) => {
                        return Err(serde::de::Error::custom(format!(
                        "content part of type {kind:?} is not supported: the model reads text only"
                    )))
                    }
                }
            }
            Ok(Some(text))
        }
    }
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
        let p = r.generate_params().unwrap();
        assert!(p.sampling.temperature == 0.0 && p.max_tokens == 9 && p.stop == ["END"]);
        assert_eq!(
            (p.sampling.logit_bias.clone(), p.sampling.seed),
            (vec![(42, -100.0)], Some(3))
        );
        let r: ChatCompletionRequest =
            serde_json::from_str(r#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        let p = r.generate_params().unwrap();
        assert_eq!((p.sampling.temperature, p.sampling.top_k), (0.7, 20));
        assert_eq!(p.max_tokens, ChatCompletionRequest::DEFAULT_MAX_TOKENS);
        for bad in [
            r#"{"messages":[{"role":"user","content":"hi"}],"n":2}"#,
            r#"{"messages":[]}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"top_p":0}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"logit_bias":{"x":1}}"#,
        ] {
            let r: ChatCompletionRequest = serde_json::from_str(bad).unwrap();
            assert!(r.generate_params().is_err(), "{bad}");
        }
    }

    #[test]
    fn content_parts_join_and_images_are_refused() {
        let m: ChatMessage = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(m.content.as_deref(), Some("ab"));
        let err = serde_json::from_str::<ChatMessage>(
            r#"{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("image_url"), "{err}");
        let m: ChatMessage =
            serde_json::from_str(r#"{"role":"assistant","content":null}"#).unwrap();
        assert_eq!(m.content, None);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"role":"assistant"}"#
        );
    }
}
