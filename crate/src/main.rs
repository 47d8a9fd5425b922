//! The `qwen-webgpu` command line: inspect model files (more commands join as the engine grows).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qwen_webgpu::gguf::{GgufModel, MetadataValue};
use qwen_webgpu::model_config::Qwen2Config;
use qwen_webgpu::native::open_model;

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
}

/// Arrays longer than this are summarised rather than printed whole.
const MAX_ARRAY: usize = 16;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model, json } => inspect(&model, json),
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
