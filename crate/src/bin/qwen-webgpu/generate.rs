//! `generate` (one completion of a raw prompt or a chat message, streamed or as JSON) and
//! `chat` (an interactive conversation in the terminal).

use std::path::Path;

use qwen_webgpu::generation::{CancelFlag, Delta};
use qwen_webgpu::protocol::{ChatMessage, Usage};
use qwen_webgpu::request::completion_params;
use serde_json::json;

use crate::args::{EngineArgs, FormatArgs, RunArgs, SamplingArgs};
use crate::output::{write_stdout, write_stdout_flush};

pub fn generate(
    run: &RunArgs,
    chat: bool,
    system: Option<&str>,
    sampling: &SamplingArgs,
    format: &FormatArgs,
    json: bool,
) -> Result<(), String> {
    let mut session = run.engine.session(&run.model)?;
    let cancel = CancelFlag::new();
    let mut stream_error = None;
    let mut on_text = |text: &str| {
        if !json && stream_error.is_none() {
            stream_error = write_stdout_flush(text).err();
        }
    };
    let (text, tool_calls, finish_reason, done) = if chat {
        let Some(prompt) = &run.prompt else {
            return Err("--chat needs --prompt TEXT".into());
        };
        let mut messages: Vec<ChatMessage> = system.map(ChatMessage::system).into_iter().collect();
        messages.push(ChatMessage::user(prompt.as_str()));
        let request = format.request(messages, sampling)?;
        let mut on_delta = |delta: Delta| on_text(delta.text);
        let reply = pollster::block_on(session.chat_completion(&request, &cancel, &mut on_delta))
            .map_err(|e| e.to_string())?;
        // The CLI asks for one choice.
        let reply = reply
            .choices
            .into_iter()
            .next()
            .ok_or("the engine returned no reply")?;
        (
            reply.content,
            reply.tool_calls,
            reply.finish_reason,
            reply.completion,
        )
    } else {
        if format.tools.is_some() {
            return Err(
                "--tools needs --chat (tools are declared through the chat template)".into(),
            );
        }
        let prompt_ids = run.prompt_ids(|text| {
            session
                .tokenizer()
                .encode(text, false)
                .map_err(|e| e.to_string())
        })?;
        // The raw prompt's settings come from the same request the chat path sends.
        let params =
            completion_params(&format.request(Vec::new(), sampling)?).map_err(|e| e.to_string())?;
        let done =
            pollster::block_on(session.generate(&prompt_ids, &params, &cancel, &mut on_text))
                .map_err(|e| e.to_string())?;
        (done.text.clone(), Vec::new(), done.finish_reason, done)
    };
    if let Some(e) = stream_error {
        return Err(e);
    }
    if json {
        let mut doc = json!({
            "prompt_ids": done.prompt_ids,
            "generated_ids": done.generated_ids,
            "text": text,
            "finish_reason": finish_reason.as_str(),
            "usage": done.usage,
        });
        if !tool_calls.is_empty() {
            doc["tool_calls"] = json!(tool_calls);
        }
        write_stdout(&(doc.to_string() + "\n"))
    } else {
        for call in &tool_calls {
            write_stdout(&format!("\n[tool call] {}", json!(call)))?;
        }
        write_stdout("\n")?;
        eprintln!("[{} | {}]", finish_reason.as_str(), usage_line(&done.usage));
        Ok(())
    }
}

fn usage_line(u: &Usage) -> String {
    format!(
        "{} prompt tokens ({} cached), {} generated; prefill {:.1} tok/s, decode {:.1} tok/s",
        u.prompt_tokens,
        u.cached_prompt_tokens,
        u.completion_tokens,
        u.prefill_tokens_per_s,
        u.decode_tokens_per_s
    )
}

pub fn chat(
    model: &Path,
    system: Option<&str>,
    sampling: &SamplingArgs,
    engine: &EngineArgs,
) -> Result<(), String> {
    let params = sampling.params()?;
    let mut session = engine.session(model)?;
    let cancel = CancelFlag::new();
    let handler_flag = cancel.clone();
    ctrlc::set_handler(move || handler_flag.cancel()).map_err(|e| e.to_string())?;
    let mut messages: Vec<ChatMessage> = system.map(ChatMessage::system).into_iter().collect();
    let stdin = std::io::stdin();
    eprintln!("qwen-webgpu chat: Ctrl-C stops a reply, Ctrl-D quits, /reset starts over.");
    loop {
        eprint!("\n> ");
        let mut line = String::new();
        if stdin.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Ok(());
        }
        // A Ctrl-C while typing must not cancel the reply to come.
        cancel.reset();
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        if line.trim() == "/reset" {
            messages.truncate(usize::from(system.is_some()));
            session.reset();
            eprintln!("(conversation cleared)");
            continue;
        }
        messages.push(ChatMessage::user(line));
        let mut on_text = |text: &str| {
            let _ = write_stdout_flush(text);
        };
        let result =
            pollster::block_on(session.chat(&messages, None, &params, &cancel, &mut on_text));
        match result {
            Ok(done) => {
                println!();
                eprintln!(
                    "[{} | {}]",
                    done.finish_reason.as_str(),
                    usage_line(&done.usage)
                );
                messages.push(ChatMessage::assistant(done.text));
            }
            Err(e) => {
                messages.pop();
                eprintln!("\nerror: {e}");
            }
        }
    }
}
