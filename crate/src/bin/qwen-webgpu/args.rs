//! The flags several commands share (run, sampling, format, engine) and what they map to:
//! the sampling and format flags become one OpenAI [`ChatCompletionRequest`], the engine flags
//! a loaded [`Engine`] or [`Session`].

use std::path::{Path, PathBuf};

use clap::Args;
use qwen_webgpu::engine::{Engine, EngineOptions, KvCacheType};
use qwen_webgpu::generation::{GenerateParams, Session, DEFAULT_MAX_TOKENS};
use qwen_webgpu::gpu::GpuOptions;
use qwen_webgpu::native::{load_cpu_engine, load_engine, open_model};
use qwen_webgpu::protocol::{
    ChatCompletionRequest, ChatMessage, JsonSchemaFormat, ResponseFormat, Stop, Tool, ToolChoice,
};
use qwen_webgpu::request::completion_params;
use qwen_webgpu::rope::{RopeScalingOverride, RopeScalingType};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "prompt_ids"])))]
pub struct RunArgs {
    pub model: PathBuf,
    /// Prompt text, tokenized without recognising special tokens.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Prompt token ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Vec<u32>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

impl RunArgs {
    /// The prompt's token ids: `--prompt-ids`, or `--prompt` put through `encode` (called only
    /// for a text prompt, so ids alone need no tokenizer).
    pub fn prompt_ids(
        &self,
        encode: impl FnOnce(&str) -> Result<Vec<u32>, String>,
    ) -> Result<Vec<u32>, String> {
        match &self.prompt {
            Some(text) => encode(text),
            None => Ok(self.prompt_ids.clone()),
        }
    }
}

#[derive(Args)]
pub struct SamplingArgs {
    /// The library's default, as for API requests.
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
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
    /// The OpenAI request for `messages` (empty for a raw prompt) with these sampling flags:
    /// the one place they are mapped. Every field is set, so no request default applies.
    pub fn request(&self, messages: Vec<ChatMessage>) -> ChatCompletionRequest {
        ChatCompletionRequest {
            messages,
            temperature: Some(self.temperature),
            top_p: Some(self.top_p),
            top_k: Some(self.top_k),
            min_p: Some(self.min_p),
            repetition_penalty: Some(self.repeat_penalty),
            presence_penalty: Some(self.presence_penalty),
            frequency_penalty: Some(self.frequency_penalty),
            max_tokens: Some(self.max_tokens),
            seed: self.seed,
            stop: Some(Stop::Many(self.stop.clone())),
            ..ChatCompletionRequest::default()
        }
    }

    /// The generation settings of these flags alone, derived from [`Self::request`].
    pub fn params(&self) -> Result<GenerateParams, String> {
        completion_params(&self.request(Vec::new())).map_err(|e| e.to_string())
    }
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("constraint").args(["json_mode", "json_schema"])))]
pub struct FormatArgs {
    /// The output is one JSON object (grammar-constrained).
    #[arg(long)]
    json_mode: bool,
    /// The output is JSON valid against the schema in FILE (grammar-constrained).
    #[arg(long, value_name = "FILE")]
    json_schema: Option<PathBuf>,
    /// OpenAI function tools (a JSON array) offered through the chat template.
    #[arg(long, value_name = "FILE")]
    pub tools: Option<PathBuf>,
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

    /// The OpenAI request for `messages` (empty for a raw prompt) with these formats and the
    /// sampling flags ([`SamplingArgs::request`]).
    pub fn request(
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
            tools,
            tool_choice: Some(tool_choice),
            response_format: self.response_format()?,
            ..sampling.request(messages)
        })
    }
}

/// Where the forward pass runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// WebGPU through wgpu (Vulkan, Metal, DX12).
    Gpu,
    /// The CPU, with llama.cpp's 8-bit quantized dot products.
    Cpu,
}

#[derive(Args)]
pub struct EngineArgs {
    /// Where the forward pass runs.
    #[arg(long, value_enum, default_value_t = Backend::Gpu)]
    pub backend: Backend,
    /// CPU backend threads (default: the machine's available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Tokens the KV cache holds.
    #[arg(long, default_value_t = 4096)]
    context: usize,
    /// Tokens per prefill submission.
    #[arg(long, default_value_t = 256)]
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
    /// The KV cache's element type: f16 (default where the GPU has shader-f16), f32, or q8_0
    /// (8-bit blocks: about half of f16's memory, for long contexts).
    #[arg(long, value_name = "TYPE")]
    kv_cache: Option<KvCacheType>,
    /// RoPE scaling (none, linear or yarn) instead of the file's, as llama.cpp's flag.
    #[arg(long, value_name = "TYPE")]
    rope_scaling: Option<RopeScalingType>,
    /// RoPE context stretch factor (frequencies are divided by it), instead of the file's.
    #[arg(long, value_name = "F")]
    rope_scale: Option<f32>,
    /// The context the model was trained on, for YaRN (default: the file's).
    #[arg(long, value_name = "N")]
    yarn_orig_ctx: Option<usize>,
}

impl EngineArgs {
    /// The engine for `model` with these settings.
    pub fn load(&self, model: &Path) -> Result<Engine, String> {
        let options = EngineOptions {
            context_length: self.context,
            prefill_chunk: self.prefill_chunk,
            rope_scaling: self.rope_override(),
            kv_cache: self.kv_cache,
        };
        match self.backend {
            Backend::Gpu => load_engine(
                model,
                &GpuOptions {
                    max_binding_bytes: self.max_binding_bytes,
                    disable_subgroups: self.no_subgroups,
                    disable_f16: self.no_f16,
                    ..GpuOptions::default()
                },
                &options,
            ),
            Backend::Cpu => load_cpu_engine(model, &options, self.threads()),
        }
        .map_err(|e| e.to_string())
    }

    /// `--threads`, or the machine's available parallelism.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The RoPE flags, when any is given.
    fn rope_override(&self) -> Option<RopeScalingOverride> {
        let over = RopeScalingOverride {
            kind: self.rope_scaling,
            factor: self.rope_scale,
            original_context_length: self.yarn_orig_ctx,
        };
        (over != RopeScalingOverride::default()).then_some(over)
    }

    /// A generation session on `model` (its engine and tokenizer).
    pub fn session(&self, model_path: &Path) -> Result<Session, String> {
        let (model, _) = open_model(model_path).map_err(|e| e.to_string())?;
        let engine = self.load(model_path)?;
        Session::new(engine, &model).map_err(|e| e.to_string())
    }
}
