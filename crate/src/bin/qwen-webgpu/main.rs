//! The `qwen-webgpu` command line: the subcommands, parsing, dispatch and the exit code.
//! Inspect model files, run the forward pass (logits), generate text and chat, tokenize text
//! and benchmark it; each command lives in its own module.

mod args;
mod bench;
mod generate;
mod inspect;
mod logits;
mod output;
mod tokenize;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use args::{EngineArgs, FormatArgs, RunArgs, SamplingArgs};

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
        /// Then fill the context to each of these lengths (ascending, comma-separated) and
        /// decode `--gen-tokens` there.
        #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
        context_sweep: Vec<usize>,
        #[command(flatten)]
        engine: EngineArgs,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model, json } => inspect::inspect(&model, json),
        Command::Logits { run, top, json } => logits::logits(&run, top, json),
        Command::Generate {
            run,
            chat,
            system,
            sampling,
            format,
            json,
        } => generate::generate(&run, chat, system.as_deref(), &sampling, &format, json),
        Command::Chat {
            model,
            system,
            sampling,
            engine,
        } => generate::chat(&model, system.as_deref(), &sampling, &engine),
        Command::Tokenize {
            model,
            text,
            special,
            json,
        } => tokenize::tokenize(&model, &text, special, json),
        Command::TokenizerBench {
            model,
            text,
            repeat,
            save_hf_json,
        } => tokenize::tokenizer_bench(&model, &text, repeat, save_hf_json.as_deref()),
        Command::Bench {
            model,
            prompt_tokens,
            gen_tokens,
            context_sweep,
            engine,
            json,
        } => {
            let plan = bench::BenchPlan {
                prompt_tokens,
                gen_tokens,
                context_sweep,
            };
            bench::bench(&model, &plan, &engine, json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("qwen-webgpu: {message}");
            ExitCode::FAILURE
        }
    }
}
