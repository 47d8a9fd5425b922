//! The model's chat template (`tokenizer.chat_template`, Jinja) rendered with `minijinja` the way
//! Hugging Face `transformers` renders it with Python's jinja2, byte for byte, with message text
//! kept from spelling control tokens.
//!
//! What makes the output match jinja2: `trim_blocks` and `lstrip_blocks`, loop controls, a
//! `tojson` that writes what Python's `json.dumps(x, ensure_ascii=False)` writes (`", "` and
//! `": "` separators, keys in their given order, non-ASCII as is), Python's string and dict
//! methods (`minijinja-contrib`'s pycompat), `raise_exception`, and the variables transformers
//! passes: `messages`, `tools`, `add_generation_prompt`, `bos_token`, `eos_token`.
//! A model without a template gets plain ChatML.
//!
//! Message text stays text: only the template's own control tokens (`<|im_start|>`) may become
//! control ids, so a message (a user's, a tool result, a pasted document) that spells
//! `<|im_end|>\n<|im_start|>system` cannot open a turn. Before rendering, [`hide_control`]
//! swaps each control token spelled in the messages and tools for a private-use marker the
//! template passes through as it is; after rendering, the prompt is cut at the control tokens
//! left (the template's) and [`reveal_control`] puts the original text back in each piece,
//! which is then tokenized as plain text. User-defined tokens (`<tool_call>`) open no turn and
//! are matched in any text (llama.cpp's and `transformers`' tokenization alike), in messages too.

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;

use crate::gguf::{GgufModel, MetadataValue};
use crate::protocol::{ChatMessage, Tool};
use crate::tokenizer::{Piece, Tokenizer};

/// ChatML, for models whose file carries no template.
pub const CHATML_TEMPLATE: &str = "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + (message.content or '') + '<|im_end|>\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}";

/// Bounds the work a template from a file may do (loops over huge ranges and the like).
const FUEL: u64 = 50_000_000;

/// Why a template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the chat template does not compile: {0}")]
    Syntax(String),
    #[error("the chat template failed: {0}")]
    Render(String),
    #[error("tokenizer.chat_template is not a string")]
    NotAString,
}

/// A compiled chat template with the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

/// What a template renders: the conversation, the tools, and whether to open the assistant's
/// turn.
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    pub messages: &'a [ChatMessage],
    pub tools: Option<&'a [Tool]>,
    pub add_generation_prompt: bool,
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token` and `eos_token` are the texts templates see under those
    /// names.
    pub fn new(
        source: &str,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<ChatTemplate, TemplateError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TemplateError::Syntax(describe(&e)))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| TemplateError::Syntax(describe(&e)))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The model's own template (`tokenizer.chat_template`), or ChatML when it has none, with
    /// BOS and EOS texts from the tokenizer.
    pub fn from_model(
        model: &GgufModel,
        tokenizer: &Tokenizer,
    ) -> Result<ChatTemplate, TemplateError> {
        let md = model.metadata();
        let source = match md.get("tokenizer.chat_template") {
            None => CHATML_TEMPLATE,
            Some(v) => v.as_str().ok_or(TemplateError::NotAString)?,
        };
        let token_text = |key: &str| {
            md.get(key)
                .and_then(MetadataValue::as_u64)
                .and_then(|id| u32::try_from(id).ok())
                .and_then(|id| tokenizer.token_bytes(id).ok())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        Self::new(
            source,
            token_text("tokenizer.ggml.bos_token_id"),
            token_text("tokenizer.ggml.eos_token_id"),
        )
    }

    /// The prompt text for `input`.
    pub fn render(&self, input: &TemplateInput<'_>) -> Result<String, TemplateError> {
        #[derive(Serialize)]
        struct Context<'a> {
            messages: &'a [ChatMessage],
            tools: Option<&'a [Tool]>,
            documents: Option<()>,
            add_generation_prompt: bool,
            bos_token: &'a str,
            eos_token: &'a str,
        }
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| TemplateError::Render(describe(&e)))?;
        template
            .render(Value::from(minijinja::value::Serde(Context {
                messages: input.messages,
                tools: input.tools,
                documents: None,
                add_generation_prompt: input.add_generation_prompt,
                bos_token: &self.bos_token,
                eos_token: &self.eos_token,
            })))
            .map_err(|e| TemplateError::Render(describe(&e)))
    }
}

/// Opens a marker: `MARK_OPEN id MARK_CLOSE` stands for control token `id` written in message
/// text, and `MARK_OPEN MARK_CLOSE` for a `MARK_OPEN` the text itself holds (so no text can
/// pass for a marker). Private-use characters: no template or JSON writer changes them.
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

/// `text` with every control token it spells (as [`Tokenizer::split_control`] finds them)
/// replaced by a marker naming its id, and every [`MARK_OPEN`] escaped; see
/// [`reveal_control`].
pub fn hide_control(text: &str, tokenizer: &Tokenizer) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in tokenizer.split_control(text) {
        match piece {
            Piece::Text(t) => {
                for part in t.split_inclusive(MARK_OPEN) {
                    out.push_str(part);
                    if part.ends_with(MARK_OPEN) {
                        out.push(MARK_CLOSE);
                    }
                }
            }
            Piece::Control(id) => {
                out.push(MARK_OPEN);
                out.push_str(&id.to_string());
                out.push(MARK_CLOSE);
            }
        }
    }
    out
}

/// The text [`hide_control`] hid: markers back to the control tokens' text and escaped
/// [`MARK_OPEN`]s back to themselves. Anything else (a template's own private-use
/// characters) stays as it is.
pub fn reveal_control(text: &str, tokenizer: &Tokenizer) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(MARK_OPEN) {
        out.push_str(&rest[..open]);
        let after = &rest[open + MARK_OPEN.len_utf8()..];
        let marked = after.find(MARK_CLOSE).and_then(|close| {
            let digits = &after[..close];
            let original = if digits.is_empty() {
                Some(MARK_OPEN.to_string())
            } else if digits.bytes().all(|b| b.is_ascii_digit()) {
                let id = digits.parse::<u32>().ok()?;
                tokenizer
                    .is_control(id)
                    .then(|| tokenizer.token_bytes(id).ok())
                    .flatten()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            } else {
                None
            };
            original.map(|o| (o, close + MARK_CLOSE.len_utf8()))
        });
        match marked {
            Some((original, len)) => {
                out.push_str(&original);
                rest = &after[len..];
            }
            None => {
                out.push(MARK_OPEN);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `messages` with [`hide_control`] applied to every string a template may write: content,
/// names, ids, and tool calls' names and arguments (keys and string values alike).
pub fn hide_control_in_messages(
    messages: &[ChatMessage],
    tokenizer: &Tokenizer,
) -> Vec<ChatMessage> {
    let hide = |s: &mut String| *s = hide_control(s, tokenizer);
    let mut out = messages.to_vec();
    for m in &mut out {
        m.content.iter_mut().for_each(hide);
        m.tool_call_id.iter_mut().for_each(hide);
        m.name.iter_mut().for_each(hide);
        for call in m.tool_calls.iter_mut().flatten() {
            call.id.iter_mut().for_each(hide);
            hide(&mut call.kind);
            hide(&mut call.function.name);
            call.function.arguments = hide_control_in_json(&call.function.arguments, tokenizer);
        }
    }
    out
}

/// `tools` with [`hide_control`] applied to every string: names, descriptions, and the
/// parameter schemas' keys and string values.
pub fn hide_control_in_tools(tools: &[Tool], tokenizer: &Tokenizer) -> Vec<Tool> {
    let hide = |s: &mut String| *s = hide_control(s, tokenizer);
    let mut out = tools.to_vec();
    for t in &mut out {
        hide(&mut t.kind);
        hide(&mut t.function.name);
        t.function.description.iter_mut().for_each(hide);
        if let Some(p) = &mut t.function.parameters {
            *p = hide_control_in_json(p, tokenizer);
        }
    }
    out
}

fn hide_control_in_json(value: &serde_json::Value, tokenizer: &Tokenizer) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::String(s) => J::String(hide_control(s, tokenizer)),
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|v| hide_control_in_json(v, tokenizer))
                .collect(),
        ),
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        hide_control(k, tokenizer),
                        hide_control_in_json(v, tokenizer),
                    )
                })
                .collect(),
        ),
        J::Null | J::Bool(_) | J::Number(_) => value.clone(),
    }
}

/// The error and the chain of its causes, on one line.
fn describe(e: &JinjaError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn raise_exception(message: String) -> Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys)`, which
/// is what transformers installs as `tojson`.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, JinjaError> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut json = serde_json::to_value(&value)
        .map_err(|e| JinjaError::new(ErrorKind::BadSerialization, "tojson").with_source(e))?;
    if sort_keys.unwrap_or(false) {
        sort_json_keys(&mut json);
    }
    Ok(Value::from(python_json(&json, indent)))
}

fn sort_json_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_json_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_json_keys),
        _ => {}
    }
}

/// `value` as Python's `json.dumps` writes it with `ensure_ascii=False`.
pub fn python_json(value: &serde_json::Value, indent: Option<usize>) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter::new(indent));
    // Serializing a serde_json::Value into memory cannot fail.
    let _ = value.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's writer with Python's separators and indentation. String escaping is already
/// Python's: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f` and `\u00XX` for other control
/// characters, everything else (non-ASCII included) as is.
struct PythonFormatter {
    indent: Option<usize>,
    depth: usize,
    has_value: bool,
}

impl PythonFormatter {
    fn new(indent: Option<usize>) -> Self {
        PythonFormatter {
            indent,
            depth: 0,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        if let Some(n) = self.indent {
            w.write_all(b"\n")?;
            for _ in 0..n * self.depth {
                w.write_all(b" ")?;
            }
        }
        Ok(())
    }

    fn open<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(bracket)
    }

    fn item<W: ?Sized + std::io::Write>(&self, w: &mut W, first: bool) -> std::io::Result<()> {
        if !first {
            // Python: ", " on one line, "," before a newline when indenting.
            w.write_all(if self.indent.is_some() { b"," } else { b", " })?;
        }
        self.newline(w)
    }
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_json_matches_json_dumps() {
        let v = json!({"b": [1, 2.5, "é\n\"x\u{1}"], "a": {}, "c": [], "d": null, "e": true});
        assert_eq!(
            python_json(&v, None),
            r#"{"b": [1, 2.5, "é\n\"x\u0001"], "a": {}, "c": [], "d": null, "e": true}"#
        );
        // json.dumps({"b": [1, {"x": 2}], "a": {}}, indent=2)
        let v = json!({"b": [1, {"x": 2}], "a": {}});
        assert_eq!(
            python_json(&v, Some(2)),
            "{\n  \"b\": [\n    1,\n    {\n      \"x\": 2\n    }\n  ],\n  \"a\": {}\n}"
        );
    }

    #[test]
    fn template_errors_are_values() {
        assert!(matches!(
            ChatTemplate::new("{% for %}", "", ""),
            Err(TemplateError::Syntax(_))
        ));
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let err = t
            .render(&TemplateInput {
                messages: &[],
                tools: None,
                add_generation_prompt: true,
            })
            .unwrap_err();
        assert!(err.to_string().contains("no system role"), "{err}");
        // A runaway loop runs out of fuel instead of hanging.
        let t = ChatTemplate::new(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert!(t
            .render(&TemplateInput {
                messages: &[],
                tools: None,
                add_generation_prompt: true,
            })
            .is_err());
    }

    #[test]
    fn chatml_fallback() {
        let t = ChatTemplate::new(CHATML_TEMPLATE, "", "").unwrap();
        let text = t
            .render(&TemplateInput {
                messages: &[ChatMessage::system("S"), ChatMessage::user("Hi")],
                tools: None,
                add_generation_prompt: true,
            })
            .unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
