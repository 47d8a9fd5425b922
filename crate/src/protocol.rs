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
/// `repetition_penalty`). Absent fields take the defaults of [`crate::request`], which turns a
/// request into generation settings; `temperature: 0` is greedy. Fields this crate
/// has no use for (`model`, `stream`, `user`, ...) are accepted and ignored.
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
    /// Replies to generate from the one prompt (1 to [`crate::request::MAX_CHOICES`]).
    pub n: Option<usize>,
    /// Whether each reply carries its tokens' log probabilities.
    pub logprobs: Option<bool>,
    /// How many most likely alternatives each token lists (0 to 20; needs `logprobs`).
    pub top_logprobs: Option<usize>,
    pub response_format: Option<ResponseFormat>,
    pub tool_choice: Option<ToolChoice>,
}

/// OpenAI's legacy completion request: a raw prompt continued as it is, with no chat template.
/// The sampling fields mean what they mean in [`ChatCompletionRequest`]; `echo` puts the prompt
/// before each reply's text.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CompletionRequest {
    /// Plain text: control tokens it spells (`<|im_start|>`) are tokenized as text.
    pub prompt: String,
    pub echo: Option<bool>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub max_tokens: Option<usize>,
    pub seed: Option<u64>,
    pub stop: Option<Stop>,
    pub logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    pub n: Option<usize>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<usize>,
    pub response_format: Option<ResponseFormat>,
}

/// One token of `choices[i].logprobs.content` (OpenAI's shape): its text, log probability,
/// bytes, and the most likely alternatives at its position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionTokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprob>,
}

/// An alternative in [`ChatCompletionTokenLogprob::top_logprobs`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

/// OpenAI's `response_format`, and WebLLM's `grammar` (GBNF text).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
    Grammar { grammar: String },
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

/// OpenAI's `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// Text or calls, as the model decides.
    #[default]
    Auto,
    /// No calls.
    None,
    /// At least one call of a declared tool.
    Required,
    /// A call of this tool.
    Function(String),
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Named {
            function: Name,
        }
        #[derive(Deserialize)]
        struct Name {
            name: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Named(Named),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) => match w.as_str() {
                "auto" => Ok(ToolChoice::Auto),
                "none" => Ok(ToolChoice::None),
                "required" => Ok(ToolChoice::Required),
                other => Err(serde::de::Error::custom(format!(
                    "tool_choice {other:?} is not auto, none, required or a function"
                ))),
            },
            Raw::Named(n) => Ok(ToolChoice::Function(n.function.name)),
        }
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
