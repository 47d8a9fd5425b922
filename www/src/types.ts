// The public shapes of the package: engine options and load progress, the OpenAI/WebLLM-style
// chat-completion request and response objects, and the Engine interface that both the
// in-page engine and the worker-backed engine implement.

/** Options of {@link createEngine} (and of createWorkerEngine, less what cannot cross to a worker). */
export interface EngineOptions {
  /** The GGUF model: one URL, or the shard URLs of a gguf-split model in order. */
  model: string | readonly string[];
  /** SHA-256 (hex) of the model file, or of each shard in order; checked when downloading. */
  sha256?: string | readonly string[];
  /**
   * The key the model is stored under in the cache (default: its absolute URLs). Give one when
   * the URLs change between loads (signed URLs whose query differs each time).
   */
  cacheKey?: string;
  /** KV-cache length in tokens (default: the engine's choice for the model). */
  contextLength?: number;
  /**
   * RoPE scaling over the file's, as llama.cpp's `--rope-scaling/--rope-scale/--yarn-orig-ctx`:
   * e.g. `{ type: 'yarn', factor: 4, originalContextLength: 32768 }` serves 131,072 tokens on
   * Qwen2.5-7B, as Qwen's model card advises. Fields left out keep the file's values.
   */
  ropeScaling?: RopeScaling;
  /**
   * The KV cache's element type: 'f16' (the default where the adapter has shader-f16), 'f32',
   * or 'q8_0' (8-bit blocks, about half of f16's memory: long contexts on smaller GPUs).
   */
  kvCache?: 'f16' | 'f32' | 'q8_0';
  /** Most prompt tokens per GPU submission while prefilling (default 256). */
  prefillChunk?: number;
  /** Use an f32 KV cache even where the adapter has shader-f16. */
  disableF16?: boolean;
  /** Use the kernels without subgroup operations even where the adapter has them. */
  disableSubgroups?: boolean;
  /** Called as bytes arrive and as tensors reach the GPU. */
  onProgress?: (progress: LoadProgress) => void;
  /** Aborts loading; createEngine then rejects with an AbortedError. */
  signal?: AbortSignal;
}

/** See {@link EngineOptions.ropeScaling}. */
export interface RopeScaling {
  type?: 'none' | 'linear' | 'yarn';
  /** Context stretch (frequencies are divided by it); at least 1. */
  factor?: number;
  /** The context the model was trained on, which YaRN's ramp is measured against. */
  originalContextLength?: number;
}

/**
 * Load progress. `phase` says what `bytesDone`/`bytesTotal` count: for 'download' and
 * 'cache-read', the model file bytes obtained (from the network / from IndexedDB); for 'upload',
 * the tensor bytes on the GPU. `tensorsDone`/`tensorsTotal` always count tensors on the GPU.
 */
export interface LoadProgress {
  phase: 'download' | 'cache-read' | 'upload';
  bytesDone: number;
  bytesTotal: number;
  tensorsDone: number;
  tensorsTotal: number;
}

/** OpenAI's text content part (the models read text only). */
export interface TextContentPart {
  type: 'text';
  text: string;
}

export interface ToolCall {
  id?: string;
  type: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | TextContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  /** For `role: 'tool'`: the call this message answers. */
  tool_call_id?: string;
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** OpenAI's `tool_choice`: whether (and which) tools the reply must call. */
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

/**
 * OpenAI's `response_format`: JSON formats constrain the output to valid JSON (of the schema).
 * `json_object` may carry WebLLM's `schema`, a JSON Schema as a JSON string. WebLLM's `grammar`
 * is a GBNF grammar (llama.cpp's EBNF, `root` the start) the output must match; what cannot be
 * enforced (token references `<...>`) is refused with an InvalidRequestError naming it.
 */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object'; schema?: string }
  | { type: 'grammar'; grammar: string }
  | { type: 'json_schema'; json_schema: { name?: string; schema: Record<string, unknown>; strict?: boolean } };

/** OpenAI's `stream_options`: `include_usage` adds a last chunk with `choices: []` and the usage. */
export interface StreamOptions {
  include_usage?: boolean;
}

/** Fields shared by streaming and non-streaming requests. Absent sampling fields take Qwen2.5's defaults; `temperature: 0` is greedy. */
export interface ChatCompletionRequestBase {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  response_format?: ResponseFormat;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  max_tokens?: number;
  /** OpenAI's newer name for `max_tokens`. */
  max_completion_tokens?: number;
  seed?: number;
  stop?: string | string[];
  presence_penalty?: number;
  frequency_penalty?: number;
  repetition_penalty?: number;
  /** Token id → bias added to its logit. */
  logit_bias?: Record<string, number>;
  /** Accepted for OpenAI compatibility; the loaded model answers whatever it says. */
  model?: string;
  /** Replies to generate (1 to 128), sampled one after another from one prefill of the prompt. */
  n?: number;
  /** Whether each reply lists its tokens' log probabilities (choices[i].logprobs.content). */
  logprobs?: boolean;
  /** How many most likely alternatives each token lists (0 to 20; needs logprobs: true). */
  top_logprobs?: number;
  /** Stops generation within one step; the request then finishes with finish_reason 'abort'. */
  signal?: AbortSignal;
}

export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase {
  stream?: false;
}

export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase {
  stream: true;
  stream_options?: StreamOptions;
}

export type ChatCompletionRequest = ChatCompletionRequestNonStreaming | ChatCompletionRequestStreaming;

export type FinishReason = 'stop' | 'length' | 'abort' | 'tool_calls';

/** A tool call the model made: `arguments` is its JSON text, as OpenAI sends it. */
export interface AssistantToolCall {
  id?: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * The usage as WebLLM reports it: `prompt_tokens` counts the tokens prefilled for this request
 * (a later chat turn reuses the rest from the KV cache: `cached_prompt_tokens`), and `extra`
 * holds the speeds and latencies. The speeds also stand at the top level, where this package
 * has always put them.
 */
export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens already in the KV cache (a later chat turn), not computed again. */
  cached_prompt_tokens: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  extra: UsageExtra;
}

/** WebLLM's `usage.extra`. Times in seconds, from the moment the request started running. */
export interface UsageExtra {
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  /** Until the first generated text arrived. */
  time_to_first_token_s: number;
  /** Mean time per generated token after the first. */
  time_per_output_token_s: number;
  /** The whole request. */
  e2e_latency_s: number;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  /** Unix time in seconds. */
  created: number;
  model: string;
  /** One per `n`, in order (`index`). */
  choices: ChatCompletionChoice[];
  /** All choices together: the one prefill, and every choice's generated tokens. */
  usage: CompletionUsage;
}

export interface ChatCompletionChoice {
  index: number;
  /**
   * `tool_calls` is present when the reply is tool calls (finish_reason 'tool_calls'); `content`
   * is then the text before them, or null when there is none (OpenAI's shape).
   */
  message: { role: 'assistant'; content: string | null; tool_calls?: AssistantToolCall[] };
  finish_reason: FinishReason;
  /** With `logprobs: true`: each generated token's; else null. */
  logprobs: ChoiceLogprobs | null;
}

/** OpenAI's `choices[i].logprobs`. */
export interface ChoiceLogprobs {
  content: ChatCompletionTokenLogprob[];
}

/**
 * A generated token's log probability: the log-softmax of the logits it was drawn from (after
 * logit bias, penalties and the grammar mask, divided by the temperature; greedy decoding counts
 * as temperature 1), with the `top_logprobs` most likely alternatives at its position.
 */
export interface ChatCompletionTokenLogprob {
  token: string;
  logprob: number;
  /** The token's bytes (a token may hold part of a UTF-8 character). */
  bytes: number[];
  top_logprobs: TopLogprob[];
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /**
   * One choice (`index` says which of `n`); none in the usage chunk that
   * `stream_options.include_usage` adds at the end. Every delta carries the role. Each choice's
   * chunk with the finish reason carries no content, and the tool calls, if any, each whole in
   * one delta (a valid OpenAI stream of them). With `logprobs: true`, a chunk's logprobs are its
   * tokens' (a chunk may carry logprobs and empty content: tokens a stop string held back).
   */
  choices: {
    index: number;
    delta: { role: 'assistant'; content?: string; tool_calls?: (AssistantToolCall & { index: number })[] };
    finish_reason: FinishReason | null;
    logprobs: ChoiceLogprobs | null;
  }[];
  /**
   * With `stream_options.include_usage`: only on the last chunk (the one with no choices).
   * Without it: on the chunk with the finish reason.
   */
  usage?: CompletionUsage;
}

/** The browser's GPUAdapterInfo (strings the browser may leave empty). */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export interface RuntimeStats {
  /** The WebGPU adapter, named by its vendor, architecture, device and description. */
  adapter: string;
  adapterInfo: AdapterInfo;
  /** The adapter's maxStorageBufferBindingSize limit, in bytes. */
  maxStorageBufferBindingSize: number;
  /** Whether the KV cache is f16 (the adapter has shader-f16 and it was not disabled). */
  f16: boolean;
  /** Whether the kernels use subgroup operations. */
  subgroups: boolean;
  /** Invocations per subgroup the kernels rely on (null without subgroup kernels). */
  subgroupSize: number | null;
  /** Whether the adapter is a CPU rasterizer (SwiftShader), for which the kernels take their
   *  software variants. */
  softwareAdapter: boolean;
  contextLength: number;
  /** Tokens the KV cache holds (reused by the next request where its prefix matches). */
  cachedTokens: number;
  /** The engine's WebAssembly memory; it only grows, so this is its peak (loading included). */
  wasmMemoryBytes: number;
  /** Usage of the last finished request; null before the first. */
  lastUsage: CompletionUsage | null;
}

/**
 * OpenAI's legacy completion request (WebLLM's CompletionCreateParams): `prompt` is continued as
 * plain text, with no chat template (control tokens it spells are text). The sampling fields
 * mean what they mean in a chat request; `echo` starts each choice's text with the prompt.
 */
export interface CompletionCreateParamsBase {
  prompt: string;
  echo?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  max_tokens?: number;
  seed?: number;
  stop?: string | string[];
  presence_penalty?: number;
  frequency_penalty?: number;
  repetition_penalty?: number;
  logit_bias?: Record<string, number>;
  model?: string;
  n?: number;
  logprobs?: boolean;
  top_logprobs?: number;
  signal?: AbortSignal;
}

export interface CompletionCreateParamsNonStreaming extends CompletionCreateParamsBase {
  stream?: false;
}

export interface CompletionCreateParamsStreaming extends CompletionCreateParamsBase {
  stream: true;
  stream_options?: StreamOptions;
}

export type CompletionCreateParams = CompletionCreateParamsNonStreaming | CompletionCreateParamsStreaming;

/** A legacy completion (also each streamed chunk's shape, with a piece of text per choice). */
export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  /** On the whole completion; when streaming, as for chat chunks. */
  usage?: CompletionUsage;
}

export interface CompletionChoice {
  index: number;
  text: string;
  /** Null in a streamed chunk before the choice's last. */
  finish_reason: FinishReason | null;
  logprobs: ChoiceLogprobs | null;
}

/** `engine.completions`: OpenAI's legacy completions. */
export interface TextCompletions {
  create(request: CompletionCreateParamsNonStreaming): Promise<Completion>;
  create(request: CompletionCreateParamsStreaming): Promise<AsyncIterableIterator<Completion>>;
  create(request: CompletionCreateParams): Promise<Completion | AsyncIterableIterator<Completion>>;
}

export interface ChatCompletions {
  create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  create(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterableIterator<ChatCompletionChunk>>;
}

/**
 * A loaded model. Requests run one at a time in call order; the conversation's KV cache is
 * kept between requests, so a follow-up turn computes only its new tokens.
 */
export interface Engine {
  readonly chat: { readonly completions: ChatCompletions };
  /** Raw-prompt completions (no chat template); they share the chat's KV cache. */
  readonly completions: TextCompletions;
  /** Forgets the conversation held in the KV cache. */
  resetChat(): Promise<void>;
  runtimeStats(): Promise<RuntimeStats>;
  /** Cancels the running request, fails queued ones, and releases the GPU memory. */
  unload(): Promise<void>;
}

// WebLLM's (and OpenAI's) names for the same shapes, so code written for WebLLM type-checks.
export type ChatCompletionMessageParam = ChatMessage;
export type ChatCompletionTool = ToolDefinition;
export type ChatCompletionToolChoiceOption = ToolChoice;
export type ChatCompletionMessageToolCall = AssistantToolCall;
export type ChatCompletionContentPartText = TextContentPart;
export type ChatCompletionFinishReason = FinishReason;
