//! The `qwen-webgpu` command line: inspect model files, run the forward pass (logits),
//! generate text and chat, tokenize text and benchmark it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use qwen_webgpu::constraint::Grammar;
use qwen_webgpu::engine::{Engine, EngineOptions, Readback, StepOutput};
use qwen_webgpu::generation::{CancelFlag, GenerateParams, Session};
use qwen_webgpu::gguf::{GgufModel, MetadataValue};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::model_config::Qwen2Config;
use qwen_webgpu::native::{load_engine, open_model};
use qwen_webgpu::protocol::{
    ChatCompletionRequest, ChatMessage, JsonSchemaFormat, ResponseFormat, Stop, Tool, Usage,
};
use qwen_webgpu::sampling::SamplingParams;
use qwen_webgpu::tokenizer::Tokenizer;
use qwen_webgpu::tools::ToolChoice;
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "qwen-webgpu",
    version,
    about = "Qwen2-family GGUF models on WebGPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a GGUF model's metadata and tensor table.
    Inspect {
        /// The model file (for a split model, its first shard).
        model: PathBuf,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the most likely next tokens after a prompt, with their logits.
    Logits {
        #[command(flatten)]
        run: RunArgs,
        /// How many of the highest logits to print.
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[arg(long)]
        json: bool,
    },
    /// Continue a prompt (or answer it as a chat message), streaming the text to stdout.
    Generate {
        #[command(flatten)]
        run: RunArgs,
        /// Wrap the prompt as a user message through the model's chat template.
        #[arg(long)]
        chat: bool,
        /// The system message for --chat (else the template's default).
        #[arg(long, requires = "chat")]
        system: Option<String>,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        format: FormatArgs,
        /// Print one JSON object at the end instead of streaming text.
        #[arg(long)]
        json: bool,
    },
    /// An interactive chat in the terminal; Ctrl-C stops the current reply, Ctrl-D quits.
    Chat {
        model: PathBuf,
        /// The system message (else the template's default).
        #[arg(long)]
        system: Option<String>,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Print the token ids of a text, tokenized with the model's own vocabulary.
    Tokenize {
        model: PathBuf,
        text: String,
        /// Match control tokens written in the text (`<|im_start|>`) as their ids.
        #[arg(long)]
        special: bool,
        /// Print `{"ids": [...]}` instead of space-separated ids.
        #[arg(long)]
        json: bool,
    },
    /// Measure tokenizer throughput (MB/s) on a text file.
    TokenizerBench {
        model: PathBuf,
        /// The text to encode (as one string).
        #[arg(long)]
        text: PathBuf,
        /// Timed runs; the best is reported.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Also write the tokenizer as a Hugging Face tokenizer.json here.
        #[arg(long)]
        save_hf_json: Option<PathBuf>,
    },
    /// Measure prefill and decode speed and what each decoded token costs.
    Bench {
        model: PathBuf,
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        gen_tokens: usize,
        #[command(flatten)]
        engine: EngineArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "prompt_ids"])))]
struct RunArgs {
    model: PathBuf,
    /// Prompt text, tokenized without recognising special tokens.
    #[arg(long)]
    prompt: Option<String>,
    /// Prompt token ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Vec<u32>,
    #[command(flatten)]
    engine: EngineArgs,
}

impl RunArgs {
    /// The prompt's token ids, from `--prompt-ids` or by tokenizing `--prompt`.
    fn prompt_ids(&self, model: &GgufModel) -> Result<Vec<u32>, String> {
        match &self.prompt {
            Some(text) => Tokenizer::from_model(model)
                .and_then(|t| t.encode(text, false))
                .map_err(|e| e.to_string()),
            None => Ok(self.prompt_ids.clone()),
        }
    }
}

#[derive(Args)]
struct SamplingArgs {
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// 0 keeps all tokens.
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 0.0)]
    presence_penalty: f32,
    #[arg(long, default_value_t = 0.0)]
    frequency_penalty: f32,
    #[arg(long)]
    seed: Option<u64>,
    /// A text that ends generation (repeatable); it is cut from the output.
    #[arg(long)]
    stop: Vec<String>,
}

impl SamplingArgs {
    fn params(&self) -> GenerateParams {
        GenerateParams {
            sampling: SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repetition_penalty: self.repeat_penalty,
                presence_penalty: self.presence_penalty,
                frequency_penalty: self.frequency_penalty,
                seed: self.seed,
                ..SamplingParams::default()
            },
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            grammar: None,
        }
    }
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("constraint").args(["json_mode", "json_schema"])))]
struct FormatArgs {
    /// The output is one JSON object (grammar-constrained).
    #[arg(long)]
    json_mode: bool,
    /// The output is JSON valid against the schema in FILE (grammar-constrained).
    #[arg(long, value_name = "FILE")]
    json_schema: Option<PathBuf>,
    /// OpenAI function tools (a JSON array) offered through the chat template.
    #[arg(long, value_name = "FILE")]
    tools: Option<PathBuf>,
    /// auto, none, required, or a tool's name (a call of it is enforced).
    #[arg(long, default_value = "auto", requires = "tools")]
    tool_choice: String,
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl FormatArgs {
    fn response_format(&self) -> Result<Option<ResponseFormat>, String> {
        Ok(match (&self.json_schema, self.json_mode) {
            (Some(path), _) => Some(ResponseFormat::JsonSchema {
                json_schema: JsonSchemaFormat {
                    name: None,
                    schema: read_json(path)?,
                    strict: Some(true),
                },
            }),
            (None, true) => Some(ResponseFormat::JsonObject),
            (None, false) => None,
        })
    }

    fn grammar(&self) -> Result<Option<Grammar>, String> {
        match self.response_format()? {
            Some(format) => format.grammar().map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    /// The OpenAI request for `messages` with these formats and the sampling flags.
    fn request(
        &self,
        messages: Vec<ChatMessage>,
        sampling: &SamplingArgs,
    ) -> Result<ChatCompletionRequest, String> {
        let tools: Option<Vec<Tool>> = match &self.tools {
            Some(path) => Some(
                serde_json::from_value(read_json(path)?)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            None => None,
        };
        let tool_choice = match self.tool_choice.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            name => ToolChoice::Function(name.to_owned()),
        };
        Ok(ChatCompletionRequest {
            messages,
            tools,
            tool_choice: Some(tool_choice),
            response_format: self.response_format()?,
            temperature: Some(sampling.temperature),
            top_p: Some(sampling.top_p),
            top_k: Some(sampling.top_k),
            min_p: Some(sampling.min_p),
            repetition_penalty: Some(sampling.repeat_penalty),
            presence_penalty: Some(sampling.presence_penalty),
            frequency_penalty: Some(sampling.frequency_penalty),
            max_tokens: Some(sampling.max_tokens),
            seed: sampling.seed,
            stop: Some(Stop::Many(sampling.stop.clone())),
            ..ChatCompletionRequest::default()
        })
    }
}

#[derive(Args)]
struct EngineArgs {
    /// Tokens the KV cache holds.
    #[arg(long, default_value_t = 4096)]
    context: usize,
    /// Tokens per prefill submission.
    #[arg(long, default_value_t = 64)]
    prefill_chunk: usize,
    /// Cap on one GPU storage binding in bytes (forces weight splitting; for testing).
    #[arg(long)]
    max_binding_bytes: Option<u64>,
    /// Use the kernels without subgroup operations even where the adapter has them.
    #[arg(long)]
    no_subgroups: bool,
    /// Keep the KV cache in f32 even where the adapter has shader-f16.
    #[arg(long)]
    no_f16: bool,
}

impl EngineArgs {
    fn load(&self, model: &std::path::Path) -> Result<Engine, String> {
        load_engine(
            model,
            &GpuOptions {
                max_binding_bytes: self.max_binding_bytes,
                disable_subgroups: self.no_subgroups,
                disable_f16: self.no_f16,
            },
            &EngineOptions {
                context_length: self.context,
                prefill_chunk: self.prefill_chunk,
            },
        )
        .map_err(|e| e.to_string())
    }
}

/// Arrays longer than this are summarised rather than printed whole.
const MAX_ARRAY: usize = 16;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model, json } => inspect(&model, json),
        Command::Logits { run, top, json } => logits(&run, top, json),
        Command::Generate {
            run,
            chat,
            system,
            sampling,
            format,
            json,
        } => generate(&run, chat, system.as_deref(), &sampling, &format, json),
        Command::Chat {
            model,
            system,
            sampling,
            engine,
        } => chat(&model, system.as_deref(), &sampling, &engine),
        Command::Tokenize {
            model,
            text,
            special,
            json,
        } => tokenize(&model, &text, special, json),
        Command::TokenizerBench {
            model,
            text,
            repeat,
            save_hf_json,
        } => tokenizer_bench(&model, &text, repeat, save_hf_json.as_deref()),
        Command::Bench {
            model,
            prompt_tokens,
            gen_tokens,
            engine,
            json,
        } => bench(&model, prompt_tokens, gen_tokens, &engine, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("qwen-webgpu: {message}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(path: &std::path::Path, json: bool) -> Result<(), String> {
    let (model, paths) = open_model(path).map_err(|e| e.to_string())?;
    let mut out = if json {
        let doc = model.inspect_json(Some(MAX_ARRAY));
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    } else {
        text_report(&model, &paths)
    };
    out.push('\n');
    write_stdout(&out)
}

fn tokenize(path: &std::path::Path, text: &str, special: bool, json: bool) -> Result<(), String> {
    let (model, _) = open_model(path).map_err(|e| e.to_string())?;
    let tokenizer = Tokenizer::from_model(&model).map_err(|e| e.to_string())?;
    let ids = tokenizer.encode(text, special).map_err(|e| e.to_string())?;
    let out = if json {
        json!({ "ids": ids }).to_string()
    } else {
        ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
    };
    write_stdout(&(out + "\n"))
}

fn tokenizer_bench(
    path: &Path,
    text: &Path,
    repeat: usize,
    save_hf_json: Option<&Path>,
) -> Result<(), String> {
    let (model, _) = open_model(path).map_err(|e| e.to_string())?;
    let tokenizer = Tokenizer::from_model(&model).map_err(|e| e.to_string())?;
    if let Some(out) = save_hf_json {
        let json = tokenizer.to_hf_json().map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let text = std::fs::read_to_string(text).map_err(|e| format!("{}: {e}", text.display()))?;
    let mut best = f64::INFINITY;
    let mut tokens = 0;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        tokens = tokenizer
            .encode(&text, false)
            .map_err(|e| e.to_string())?
            .len();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let doc = json!({
        "implementation": "qwen-webgpu (tokenizers crate, fancy-regex)",
        "bytes": text.len(),
        "tokens": tokens,
        "best_s": best,
        "mb_per_s": text.len() as f64 / 1e6 / best.max(1e-9),
    });
    write_stdout(&(doc.to_string() + "\n"))
}

fn logits(run: &RunArgs, top: usize, json: bool) -> Result<(), String> {
    let (model, _) = open_model(&run.model).map_err(|e| e.to_string())?;
    let prompt_ids = run.prompt_ids(&model)?;
    let mut engine = run.engine.load(&run.model)?;
    let logits = match pollster::block_on(engine.step(&prompt_ids, Readback::Logits)) {
        Ok(StepOutput::Logits(l)) => l,
        Ok(other) => return Err(format!("unexpected step output {other:?}")),
        Err(e) => return Err(e.to_string()),
    };
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let top: Vec<serde_json::Value> = order
        .iter()
        .take(top)
        .map(|&i| json!({"id": i, "logit": logits[i]}))
        .collect();
    let out = if json {
        json!({"prompt_ids": prompt_ids, "top": top}).to_string()
    } else {
        top.iter()
            .map(|t| {
                format!(
                    "{:>8} {:>10.4}",
                    t["id"],
                    t["logit"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    write_stdout(&(out + "\n"))
}

fn open_session(model_path: &Path, args: &EngineArgs) -> Result<Session, String> {
    let (model, _) = open_model(model_path).map_err(|e| e.to_string())?;
    let engine = args.load(model_path)?;
    Session::new(engine, &model).map_err(|e| e.to_string())
}

fn generate(
    run: &RunArgs,
    chat: bool,
    system: Option<&str>,
    sampling: &SamplingArgs,
    format: &FormatArgs,
    json: bool,
) -> Result<(), String> {
    let mut session = open_session(&run.model, &run.engine)?;
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
        let reply = pollster::block_on(session.chat_completion(&request, &cancel, &mut on_text))
            .map_err(|e| e.to_string())?;
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
        let prompt_ids = match &run.prompt {
            Some(text) => session
                .tokenizer()
                .encode(text, false)
                .map_err(|e| e.to_string())?,
            None => run.prompt_ids.clone(),
        };
        let mut params = sampling.params();
        params.grammar = format.grammar()?;
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

fn chat(
    model: &Path,
    system: Option<&str>,
    sampling: &SamplingArgs,
    engine: &EngineArgs,
) -> Result<(), String> {
    let mut session = open_session(model, engine)?;
    let cancel = CancelFlag::new();
    let handler_flag = cancel.clone();
    ctrlc::set_handler(move || handler_flag.cancel()).map_err(|e| e.to_string())?;
    let params = sampling.params();
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

fn bench(
    model: &std::path::Path,
    prompt_tokens: usize,
    gen_tokens: usize,
    args: &EngineArgs,
    json: bool,
) -> Result<(), String> {
    let load_start = Instant::now();
    let mut engine = args.load(model)?;
    let load_s = load_start.elapsed().as_secs_f64();
    let vocab = engine.config().vocab_size as u32;
    // A fixed, varied prompt: the timing does not depend on which tokens they are.
    let prompt: Vec<u32> = (0..prompt_tokens as u32)
        .map(|i| (i * 7919 + 13) % vocab.min(150_000))
        .collect();
    let run = |engine: &mut Engine, tokens: &[u32]| -> Result<u32, String> {
        match pollster::block_on(engine.step(tokens, Readback::Argmax)) {
            Ok(StepOutput::Argmax { token, .. }) => Ok(token),
            Ok(other) => Err(format!("unexpected step output {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    };
    let prefill_start = Instant::now();
    let mut token = run(&mut engine, &prompt)?;
    let prefill_s = prefill_start.elapsed().as_secs_f64();
    let prefill_stats = engine.last_step_stats().clone();
    let decode_start = Instant::now();
    for _ in 0..gen_tokens {
        token = run(&mut engine, &[token])?;
    }
    let decode_s = decode_start.elapsed().as_secs_f64();
    let decode = engine.last_step_stats().clone();
    let decode_tps = gen_tokens as f64 / decode_s.max(1e-9);
    let doc = json!({
        "adapter": engine.gpu().adapter_description(),
        "model": model.display().to_string(),
        "load_s": load_s,
        "prompt_tokens": prompt_tokens,
        "gen_tokens": gen_tokens,
        "prefill_tokens_per_s": prompt_tokens as f64 / prefill_s.max(1e-9),
        "prefill_submits": prefill_stats.submits,
        "decode_tokens_per_s": decode_tps,
        "weight_bytes_per_token": decode.weight_bytes_read,
        "achieved_gb_per_s": decode.weight_bytes_read as f64 * decode_tps / 1e9,
        "dispatches_per_token": decode.dispatches,
        "dispatches_per_layer": engine.dispatches_per_layer(),
        "submits_per_token": decode.submits,
        "bytes_read_back_per_token": decode.bytes_read_back,
    });
    let out = if json {
        doc.to_string()
    } else {
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    };
    write_stdout(&(out + "\n"))
}

/// Writes to stdout and flushes, so streamed text shows as it comes.
fn write_stdout_flush(text: &str) -> Result<(), String> {
    write_stdout(text)?;
    match std::io::stdout().flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// Writes to stdout; a reader that went away (`| head`) ends output quietly.
fn write_stdout(text: &str) -> Result<(), String> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn text_report(model: &GgufModel, paths: &[PathBuf]) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut s, model, paths);
    s
}

fn write_report(s: &mut String, model: &GgufModel, paths: &[PathBuf]) -> std::fmt::Result {
    for (path, shard) in paths.iter().zip(model.shards()) {
        writeln!(
            s,
            "{}: GGUF v{}, {} tensors, data at bytes {}..{}",
            path.display(),
            shard.version,
            shard.tensors.len(),
            shard.data_offset,
            shard.data_end()
        )?;
    }
    writeln!(s, "\nmetadata ({} keys):", model.metadata().len())?;
    for (key, value) in model.metadata().iter() {
        writeln!(s, "  {key:<44} {}", describe(value))?;
    }
    match Qwen2Config::from_model(model) {
        Ok(config) => writeln!(s, "\nqwen2 configuration: {config:?}")?,
        Err(e) => writeln!(s, "\nnot usable as qwen2: {e}")?,
    }
    writeln!(s, "\ntensors ({}):", model.tensors().len())?;
    for t in model.tensors() {
        let shape: Vec<String> = t.info.shape.iter().map(u64::to_string).collect();
        writeln!(
            s,
            "  {:<32} {:<6} {:<18} offset {:>11} bytes {:>10}",
            t.info.name,
            t.info.ggml_type.name(),
            shape.join(" x "),
            t.file_offset,
            t.info.bytes
        )?;
    }
    Ok(())
}

/// One line for a metadata value: long strings and arrays are cut to their start.
fn describe(value: &MetadataValue) -> String {
    const MAX_CHARS: usize = 80;
    let text = match value {
        MetadataValue::String(s) => format!("{s:?}"),
        other => other.to_json(Some(MAX_ARRAY)).to_string(),
    };
    let mut line: String = text.chars().take(MAX_CHARS).collect();
    if line.len() < text.len() {
        line.push('…');
    }
    format!("{:<6} {line}", value.type_name())
}
