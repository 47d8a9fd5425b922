//! The chat template through minijinja against Python jinja2's renderings (fixtures made by
//! scripts/golden/make-goldens.py), and the template + tokenizer path against llama.cpp's
//! chat-completion prompt ids.

mod support;

use qwen_webgpu::chat_template::{ChatTemplate, TemplateInput};
use qwen_webgpu::generation::chat_prompt_ids;
use qwen_webgpu::native::open_model;
use qwen_webgpu::protocol::{ChatMessage, Tool};
use qwen_webgpu::tokenizer::Tokenizer;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = support::repo_root()
        .join("tests/fixtures/golden")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn messages(case: &Value) -> Vec<ChatMessage> {
    serde_json::from_value(case["messages"].clone()).unwrap()
}

#[test]
fn renders_byte_identical_to_jinja2() {
    let doc = fixture("chat_template.json");
    let template = ChatTemplate::new(
        doc["template"].as_str().unwrap(),
        doc["bos_token"].as_str().unwrap(),
        doc["eos_token"].as_str().unwrap(),
    )
    .unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for case in cases {
        let msgs = messages(case);
        let tools: Option<Vec<Tool>> = serde_json::from_value(case["tools"].clone()).unwrap();
        let got = template
            .render(&TemplateInput {
                messages: &msgs,
                tools: tools.as_deref(),
                add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap(),
            })
            .unwrap();
        let want = case["rendered"].as_str().unwrap();
        if got != want {
            failures.push(format!("{}:\n got {got:?}\nwant {want:?}", case["name"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn model_template_and_tokenizer_give_llama_cpp_prompt_ids() {
    let (model, _) = open_model(&support::real_model()).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let template = ChatTemplate::from_model(&model, &tokenizer).unwrap();
    let doc = fixture("chat_completion.json");
    for case in doc["cases"].as_array().unwrap() {
        let text = template
            .render(&TemplateInput {
                messages: &messages(case),
                tools: None,
                add_generation_prompt: true,
            })
            .unwrap();
        assert_eq!(
            text,
            case["prompt_text"].as_str().unwrap(),
            "{}",
            case["name"]
        );
        let ids = tokenizer.encode(&text, true).unwrap();
        let want: Vec<u32> = serde_json::from_value(case["prompt_ids"].clone()).unwrap();
        assert_eq!(ids, want, "{}", case["name"]);
        // The prompt builder, which keeps message text from becoming control tokens, gives the
        // same ids when no message spells one.
        let built = chat_prompt_ids(&template, &tokenizer, &messages(case), None).unwrap();
        assert_eq!(built, want, "{}", case["name"]);
    }
}

/// Without control tokens in the messages, the prompt builder gives what tokenizing the whole
/// rendering with control tokens allowed gives, tools and tool calls included.
#[test]
fn plain_conversations_tokenize_as_the_whole_rendering() {
    let (model, _) = open_model(&support::real_model()).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let doc = fixture("chat_template.json");
    let template = ChatTemplate::new(
        doc["template"].as_str().unwrap(),
        doc["bos_token"].as_str().unwrap(),
        doc["eos_token"].as_str().unwrap(),
    )
    .unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let msgs = messages(case);
        let tools: Option<Vec<Tool>> = serde_json::from_value(case["tools"].clone()).unwrap();
        let text = template
            .render(&TemplateInput {
                messages: &msgs,
                tools: tools.as_deref(),
                add_generation_prompt: true,
            })
            .unwrap();
        let built = chat_prompt_ids(&template, &tokenizer, &msgs, tools.as_deref()).unwrap();
        assert_eq!(
            built,
            tokenizer.encode(&text, true).unwrap(),
            "{}",
            case["name"]
        );
    }
}
