//! Tool calling in Qwen2.5's format: the grammar that forces a call of declared tools with
//! valid arguments, and the parser that turns the output's
//! `<tool_call>{"name": ..., "arguments": ...}</tool_call>` blocks into OpenAI tool calls.

use serde_json::{json, Value};

use crate::constraint::Grammar;
use crate::protocol::{FunctionCall, InvalidRequest, Tool, ToolCall, ToolChoice};

pub const CALL_OPEN: &str = "<tool_call>";
pub const CALL_CLOSE: &str = "</tool_call>";

/// JSON-mode output settings: compact separators as the model writes them, no free
/// whitespace (small models otherwise pad with newlines).
pub fn json_layout() -> Value {
    json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
}

/// The grammar for `choice`, or none when the model may answer freely.
pub fn call_grammar(
    tools: &[Tool],
    choice: &ToolChoice,
) -> Result<Option<Grammar>, InvalidRequest> {
    let chosen: Vec<&Tool> = match choice {
        ToolChoice::Auto | ToolChoice::None => return Ok(None),
        ToolChoice::Required => tools.iter().collect(),
        ToolChoice::Function(name) => {
            let tool = tools
                .iter()
                .find(|t| &t.function.name == name)
                .ok_or_else(|| {
                    InvalidRequest(format!("tool_choice names {name:?}, which is not in tools"))
                })?;
            vec![tool]
        }
    };
    if chosen.is_empty() {
        return Err(InvalidRequest(
            "tool_choice requires a call but tools is empty".into(),
        ));
    }
    let calls: Vec<Value> = chosen
        .iter()
        .map(|t| {
            let parameters = t
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object"}));
            json!({
                "type": "object",
                "properties": {
                    "name": {"const": t.function.name},
                    "arguments": parameters,
                },
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    let mut schema = if calls.len() == 1 {
        calls.into_iter().next().unwrap_or_default()
    } else {
        json!({"anyOf": calls})
    };
    schema["x-guidance"] = json_layout();
    // A named tool is called once; `required` allows several calls, each on its own lines as
    // the chat template writes them.
    let repeat = if matches!(choice, ToolChoice::Function(_)) {
        ""
    } else {
        " (\"\\n\" call)*"
    };
    let lark = format!(
        "start: call{repeat}\ncall: \"{CALL_OPEN}\\n\" body \"\\n{CALL_CLOSE}\"\nbody: %json {schema}\n"
    );
    Ok(Some(Grammar::Lark(lark)))
}

/// Splits generated text into the text before the first call and the calls. Blocks whose JSON
/// is not `{"name": string, "arguments": ...}` leave the whole text as content.
pub fn parse_tool_calls(text: &str) -> (String, Vec<ToolCall>) {
    let Some(first) = text.find(CALL_OPEN) else {
        return (text.to_owned(), Vec::new());
    };
    let mut calls = Vec::new();
    let mut rest = &text[first..];
    while let Some(open) = rest.find(CALL_OPEN) {
        let after = &rest[open + CALL_OPEN.len()..];
        let (body, next) = match after.find(CALL_CLOSE) {
            Some(close) => (&after[..close], &after[close + CALL_CLOSE.len()..]),
            None => (after, ""),
        };
        let Some(call) = parse_call(body.trim(), calls.len()) else {
            return (text.to_owned(), Vec::new());
        };
        calls.push(call);
        rest = next;
    }
    (text[..first].trim_end().to_owned(), calls)
}

fn parse_call(body: &str, index: usize) -> Option<ToolCall> {
    let value: Value = serde_json::from_str(body).ok()?;
    let name = value.get("name")?.as_str()?.to_owned();
    let arguments = match value.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "{}".to_owned(),
    };
    Some(ToolCall {
        id: Some(format!("call_{index}")),
        kind: "function".into(),
        function: FunctionCall {
            name,
            arguments: Value::String(arguments),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FunctionDefinition;

    fn tool(name: &str) -> Tool {
        Tool {
            kind: "function".into(),
            function: FunctionDefinition {
                name: name.into(),
                description: None,
                parameters: Some(
                    json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
                ),
            },
        }
    }

    #[test]
    fn parses_calls_and_leading_text() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\", \"arguments\": \"{}\"}\n</tool_call>";
        let (content, calls) = parse_tool_calls(text);
        assert_eq!(content, "Let me check.");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].function.name, "f");
        assert_eq!(
            calls[0].function.arguments,
            Value::String("{\"x\":1}".into())
        );
        assert_eq!(calls[1].id.as_deref(), Some("call_1"));
        let (content, calls) = parse_tool_calls("<tool_call>\nnot json\n</tool_call>");
        assert!(calls.is_empty());
        assert_eq!(content, "<tool_call>\nnot json\n</tool_call>");
    }

    #[test]
    fn tool_choice_shapes() {
        let c: ToolChoice = serde_json::from_str(r#""required""#).unwrap();
        assert_eq!(c, ToolChoice::Required);
        let c: ToolChoice =
            serde_json::from_str(r#"{"type":"function","function":{"name":"f"}}"#).unwrap();
        assert_eq!(c, ToolChoice::Function("f".into()));
        assert!(serde_json::from_str::<ToolChoice>(r#""sometimes""#).is_err());
        let tools = [tool("f"), tool("g")];
        assert!(call_grammar(&tools, &ToolChoice::Auto).unwrap().is_none());
        assert!(call_grammar(&tools, &ToolChoice::Function("h".into())).is_err());
        let Some(Grammar::Lark(lark)) = call_grammar(&tools, &ToolChoice::Required).unwrap() else {
            panic!("a lark grammar")
        };
        assert!(
            lark.contains("anyOf") && lark.contains("\"const\":\"g\""),
            "{lark}"
        );
    }
}
