//! The `qwen-webgpu` command line: inspect model files, run the forward pass (logits, greedy
//! generation), tokenize text and benchmark it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use qwen_webgpu::engine::{Engine, EngineOptions, Readback, StepOutput};
use qwen_webgpu::gguf::{GgufModel, MetadataValue};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::model_config::Qwen2Config;
use qwen_webgpu::native::{load_engine, open_model};
use qwen_webgpu::tokenizer::Tokenizer;
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
    /// Continue a prompt greedily until EOS or the token limit.
    Generate {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// Only 0 (greedy) for now.
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        #[arg(long)]
        json: bool,
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
            max_tokens,
            temperature,
            json,
        } => generate(&run, max_tokens, temperature, json),
        Command::Tokenize {
            model,
            text,
            special,
            json,
        } => tokenize(&model, &text, special, json),
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

/// Token ids that end generation: the file's EOS and the ChatML end markers, where present.
fn stop_ids(engine_model: &GgufModel) -> Vec<u32> {
    let md = engine_model.metadata();
    let mut ids: Vec<u32> = md
        .get("tokenizer.ggml.eos_token_id")
        .and_then(MetadataValue::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .into_iter()
        .collect();
    if let Some(tokens) = md
        .get("tokenizer.ggml.tokens")
        .and_then(MetadataValue::as_array)
        .and_then(|a| a.as_strings())
    {
        for marker in ["<|im_end|>", "<|endoftext|>"] {
            if let Some(i) = tokens.iter().position(|t| t == marker) {
                ids.push(i as u32);
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn generate(run: &RunArgs, max_tokens: usize, temperature: f32, json: bool) -> Result<(), String> {
    if temperature != 0.0 {
        return Err("only --temperature 0 (greedy) is implemented by this command".into());
    }
    let (model, _) = open_model(&run.model).map_err(|e| e.to_string())?;
    let stops = stop_ids(&model);
    let prompt_ids = run.prompt_ids(&model)?;
    let mut engine = run.engine.load(&run.model)?;
    let mut generated = Vec::new();
    let start = Instant::now();
    let mut input = prompt_ids.clone();
    let mut prefill_s = 0.0;
    while generated.len() < max_tokens {
        let step_start = Instant::now();
        let token = match pollster::block_on(engine.step(&input, Readback::Argmax)) {
            Ok(StepOutput::Argmax { token, .. }) => token,
            Ok(other) => return Err(format!("unexpected step output {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
        if generated.is_empty() {
            prefill_s = step_start.elapsed().as_secs_f64();
        }
        generated.push(token);
        if !json {
            write_stdout(&format!("{token} "))?;
        }
        if stops.contains(&token) {
            break;
        }
        input = vec![token];
    }
    let total_s = start.elapsed().as_secs_f64();
    let decode_s = total_s - prefill_s;
    let timings = json!({
        "prefill_s": prefill_s,
        "prefill_tokens_per_s": prompt_ids.len() as f64 / prefill_s.max(1e-9),
        "decode_s": decode_s,
        "decode_tokens_per_s": (generated.len().saturating_sub(1)) as f64 / decode_s.max(1e-9),
    });
    if json {
        let doc = json!({
            "prompt_ids": prompt_ids,
            "generated_ids": generated,
            "timings": timings,
        });
        write_stdout(&(doc.to_string() + "\n"))
    } else {
        write_stdout(&format!("\n{timings}\n"))
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
