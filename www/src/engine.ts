// The engine in this JavaScript realm (page or worker): has the wasm WebEngine load a model
// (the crate fetches, caches and uploads it; no model byte passes through this code) and serves
// the OpenAI-shaped chat and legacy completion APIs over it, one request at a time.

import { CancelToken, WebEngine } from '../pkg/qwen_webgpu.js';
import { ChunkStream } from './chunk-stream.js';
import { OperationQueue } from './operation-queue.js';
import { Completions, LegacyCompletions, type CompletionBackend } from './completions.js';
import {
  AbortedError,
  InvalidRequestError,
  WebGpuUnavailableError,
  toQwenWebGpuError,
} from './errors.js';
import type {
  AdapterInfo,
  AssistantToolCall,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
  ChoiceLogprobs,
  Completion,
  CompletionCreateParams,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  CompletionUsage,
  Engine,
  EngineOptions,
  FinishReason,
  LoadProgress,
  RuntimeStats,
  TextCompletions,
} from './types.js';
import { initWasm } from './wasm.js';

/** The wasm engine's usage: `prompt_tokens` counts the whole prompt, cached tokens included. */
type WasmUsage = Omit<CompletionUsage, 'extra'>;

/** A choice of `chatCompletion()`'s answer (`tool_calls`: empty, or absent from engines without tools). */
interface WasmChatChoice {
  content: string;
  tool_calls?: AssistantToolCall[];
  finish_reason: FinishReason;
  generated_ids: number[];
  logprobs: ChoiceLogprobs | null;
}

/** A choice of `completion()`'s answer. */
interface WasmTextChoice {
  text: string;
  finish_reason: FinishReason;
  generated_ids: number[];
  logprobs: ChoiceLogprobs | null;
}

/** `chatCompletion()`'s or `completion()`'s answer: the choices, and their usage together. */
interface WasmCompletion<Choice> {
  choices: Choice[];
  usage: WasmUsage;
}

/** What a wasm request streams: a piece of choice `choice`'s text, with its tokens' logprobs (JSON) when asked for. */
type DeltaCallback = (choice: number, text: string, logprobs?: ChoiceLogprobs) => void;

/** `stats()`'s answer (its `adapter` is wgpu's, which knows only the description). */
type WasmStats = Omit<RuntimeStats, 'lastUsage' | 'adapterInfo' | 'maxStorageBufferBindingSize'>;

/** What this side reads of the WebGPU adapter (TypeScript's DOM library has no WebGPU types yet). */
interface GpuAdapterFacts {
  info: AdapterInfo;
  maxStorageBufferBindingSize: number;
}

/** When a request ran: from its start (its turn in the queue) to its first text and its end, in ms. */
interface RequestTiming {
  start: number;
  firstText: number | null;
  end: number;
}

/**
 * Loads a model and returns the engine. Checks WebGPU first; the wasm side then reads each
 * shard's header (from the cache when stored), checks the model and opens the GPU, then streams
 * every byte from the cache or the network into it.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  const urls = typeof options.model === 'string' ? [options.model] : [...options.model];
  const sha256 = shardHashes(options.sha256, urls.length);
  const engine = engineCreateOptions(options);
  const { signal, onProgress, cacheKey } = options;
  // Checked before any download; TypeScript's DOM library does not declare navigator.gpu yet.
  if (!globalThis.navigator || !('gpu' in globalThis.navigator) || !globalThis.navigator.gpu) {
    throw new WebGpuUnavailableError('this browser has no WebGPU (navigator.gpu is missing)');
  }
  if (signal?.aborted) throw new AbortedError('model loading was aborted', { cause: signal.reason });
  await initWasm();
  const adapter = await adapterFacts();
  const model = { urls, ...(sha256 ? { sha256 } : {}), ...(cacheKey !== undefined ? { cacheKey } : {}) };
  let webEngine: WebEngine;
  try {
    webEngine = await WebEngine.load(
      JSON.stringify({ model, engine }),
      (json: string) => onProgress?.(JSON.parse(json) as LoadProgress),
      signal,
    );
  } catch (error) {
    throw toQwenWebGpuError(error);
  }
  return new LocalEngine(webEngine, modelName(new URL(urls[0] as string, globalThis.location?.href).href), adapter);
}

/**
 * The adapter the engine's wgpu device will use (same power preference), asked of the browser
 * directly: wgpu's adapter info on the web keeps only the description. Null where the browser
 * offers none; creating the engine then fails with the wasm side's typed error.
 */
async function adapterFacts(): Promise<GpuAdapterFacts | null> {
  interface Gpu {
    requestAdapter(options: { powerPreference: string }): Promise<{ info?: Partial<AdapterInfo>; limits: { maxStorageBufferBindingSize: number } } | null>;
  }
  const adapter = await (navigator as unknown as { gpu: Gpu }).gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return null;
  const { vendor = '', architecture = '', device = '', description = '' } = adapter.info ?? {};
  return { info: { vendor, architecture, device, description }, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize };
}

/** "google swiftshader (SwiftShader Device)": the adapter info's non-empty parts. */
function adapterName({ vendor, architecture, device, description }: AdapterInfo): string {
  const name = [vendor, architecture, device].filter((part) => part !== '').join(' ');
  if (description === '') return name || 'unknown WebGPU adapter';
  return name === '' ? description : `${name} (${description})`;
}

/** WebLLM's usage from the wasm engine's: prompt tokens are those prefilled now; `extra` has the times. */
function requestUsage(usage: WasmUsage, timing: RequestTiming): CompletionUsage {
  const prefilled = usage.prompt_tokens - usage.cached_prompt_tokens;
  const seconds = (ms: number) => ms / 1000;
  const firstText = timing.firstText ?? timing.end;
  return {
    ...usage,
    prompt_tokens: prefilled,
    total_tokens: prefilled + usage.completion_tokens,
    extra: {
      prefill_tokens_per_s: usage.prefill_tokens_per_s,
      decode_tokens_per_s: usage.decode_tokens_per_s,
      time_to_first_token_s: seconds(firstText - timing.start),
      time_per_output_token_s: usage.completion_tokens > 1 ? seconds(timing.end - firstText) / (usage.completion_tokens - 1) : 0,
      e2e_latency_s: seconds(timing.end - timing.start),
    },
  };
}

/** Per-shard expected hashes from the options (one string for a single file). */
function shardHashes(sha256: EngineOptions['sha256'], shardCount: number): string[] | null {
  if (sha256 === undefined) return null;
  const hashes = typeof sha256 === 'string' ? [sha256] : [...sha256];
  if (hashes.length !== shardCount) {
    throw new InvalidRequestError(`${hashes.length} SHA-256 values given for ${shardCount} model files`);
  }
  return hashes;
}

function engineCreateOptions(options: EngineOptions): Record<string, unknown> {
  const { contextLength, ropeScaling, kvCache, prefillChunk } = options;
  for (const [name, value] of [['contextLength', contextLength], ['prefillChunk', prefillChunk]] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
      throw new InvalidRequestError(`${name} must be a positive integer, got ${value}`);
    }
  }
  return {
    ...(contextLength !== undefined ? { contextLength } : {}),
    // The wasm side checks the fields (unknown ones, a factor below 1) with typed errors.
    ...(ropeScaling !== undefined ? { ropeScaling } : {}),
    ...(kvCache !== undefined ? { kvCache } : {}),
    ...(prefillChunk !== undefined ? { prefillChunk } : {}),
    disableF16: options.disableF16 === true,
    disableSubgroups: options.disableSubgroups === true,
  };
}

/** The model's name in responses: its (first) file's name. */
function modelName(url: string): string {
  const path = new URL(url).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}

/**
 * A request's cancellation: set by its AbortSignal or by leaving its stream, possibly before
 * the request's turn comes; the wasm CancelToken exists only while the request runs.
 */
class Cancellation {
  private token: CancelToken | null = null;
  private cancelled = false;

  cancel(): void {
    this.cancelled = true;
    this.token?.cancel();
  }

  attach(token: CancelToken): void {
    this.token = token;
    if (this.cancelled) token.cancel();
  }

  detach(): void {
    this.token = null;
  }
}

class LocalEngine implements Engine, CompletionBackend {
  readonly chat: { readonly completions: ChatCompletions };
  readonly completions: TextCompletions;
  private webEngine: WebEngine | null;
  private readonly queue = new OperationQueue(() => {
    // The trapped instance's memory may be mid-update: never call into it again.
    this.webEngine = null;
  });
  private running: Cancellation | null = null;
  private lastUsage: CompletionUsage | null = null;

  constructor(webEngine: WebEngine, private readonly modelName: string, private readonly adapter: GpuAdapterFacts | null) {
    this.webEngine = webEngine;
    this.chat = { completions: new Completions(this) };
    this.completions = new LegacyCompletions(this);
  }

  async complete(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion> {
    const cancellation = this.cancellationFor(request.signal);
    const result = await this.run<WasmChatChoice>('chat', wasmRequestJson(request), cancellation, () => undefined);
    return {
      id: completionId('chatcmpl'),
      object: 'chat.completion',
      created: unixSeconds(),
      model: this.modelName,
      choices: result.choices.map((choice, index) => ({
        index,
        message: choice.tool_calls?.length
          ? { role: 'assistant', content: choice.content.trim() === '' ? null : choice.content, tool_calls: choice.tool_calls }
          : { role: 'assistant', content: choice.content },
        finish_reason: choice.finish_reason,
        logprobs: choice.logprobs,
      })),
      usage: result.usage,
    };
  }

  async stream(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>> {
    const id = completionId('chatcmpl');
    const created = unixSeconds();
    const chunk = (choices: ChatCompletionChunk['choices']): ChatCompletionChunk => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: this.modelName,
      choices,
    });
    return this.streamed<WasmChatChoice, ChatCompletionChunk>(request, wasmRequestJson(request), 'chat', {
      delta: (index, content, logprobs) => chunk([{ index, delta: { role: 'assistant', content }, finish_reason: null, logprobs }]),
      last: (index, choice) => {
        const toolCalls = choice.tool_calls?.map((call, callIndex) => ({ index: callIndex, ...call })) ?? [];
        const delta = { role: 'assistant' as const, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
        return chunk([{ index, delta, finish_reason: choice.finish_reason, logprobs: null }]);
      },
      usage: (usage) => ({ ...chunk([]), usage }),
    });
  }

  async completeText(request: CompletionCreateParamsNonStreaming): Promise<Completion> {
    const cancellation = this.cancellationFor(request.signal);
    const result = await this.run<WasmTextChoice>('text', wasmRequestJson(request), cancellation, () => undefined);
    return {
      id: completionId('cmpl'),
      object: 'text_completion',
      created: unixSeconds(),
      model: this.modelName,
      choices: result.choices.map((choice, index) => ({ index, text: choice.text, finish_reason: choice.finish_reason, logprobs: choice.logprobs })),
      usage: result.usage,
    };
  }

  async streamText(request: CompletionCreateParamsStreaming): Promise<AsyncIterableIterator<Completion>> {
    const id = completionId('cmpl');
    const created = unixSeconds();
    const chunk = (choices: Completion['choices']): Completion => ({ id, object: 'text_completion', created, model: this.modelName, choices });
    return this.streamed<WasmTextChoice, Completion>(request, wasmRequestJson(request), 'text', {
      delta: (index, text, logprobs) => chunk([{ index, text, finish_reason: null, logprobs }]),
      last: (index, choice) => chunk([{ index, text: '', finish_reason: choice.finish_reason, logprobs: null }]),
      usage: (usage) => ({ ...chunk([]), usage }),
    });
  }

  /**
   * Runs a streaming request: a chunk per delta, then each choice's last chunk (its finish
   * reason), and the usage on the very last chunk or, with `stream_options.include_usage`, as a
   * chunk of its own with no choices (OpenAI's and WebLLM's shapes).
   */
  private async streamed<Choice, Chunk extends { usage?: CompletionUsage }>(
    request: ChatCompletionRequestStreaming | CompletionCreateParamsStreaming,
    requestJson: string,
    kind: 'chat' | 'text',
    make: {
      delta: (index: number, text: string, logprobs: ChoiceLogprobs | null) => Chunk;
      last: (index: number, choice: Choice) => Chunk;
      usage: (usage: CompletionUsage) => Chunk;
    },
  ): Promise<AsyncIterableIterator<Chunk>> {
    const cancellation = this.cancellationFor(request.signal);
    const stream = new ChunkStream<Chunk>(() => cancellation.cancel());
    const onDelta: DeltaCallback = (index, text, logprobs) => {
      if (text !== '' || logprobs) stream.push(make.delta(index, text, logprobs ?? null));
    };
    const separateUsage = request.stream_options?.include_usage === true;
    this.run<Choice>(kind, requestJson, cancellation, onDelta).then(
      (result) => {
        const lasts = result.choices.map((choice, index) => make.last(index, choice));
        const final = lasts.pop() as Chunk;
        for (const last of lasts) stream.push(last);
        if (separateUsage) {
          stream.push(final);
          stream.push(make.usage(result.usage));
        } else {
          stream.push({ ...final, usage: result.usage });
        }
        stream.end();
      },
      (error: unknown) => stream.fail(error),
    );
    return stream;
  }

  resetChat(): Promise<void> {
    return this.queue.run(() => {
      this.loaded().resetChat();
    });
  }

  runtimeStats(): Promise<RuntimeStats> {
    return this.queue.run(() => {
      const stats = JSON.parse(this.loaded().stats()) as WasmStats;
      const adapterInfo = this.adapter?.info ?? { vendor: '', architecture: '', device: '', description: '' };
      return {
        ...stats,
        adapter: adapterName(adapterInfo),
        adapterInfo,
        maxStorageBufferBindingSize: this.adapter?.maxStorageBufferBindingSize ?? 0,
        lastUsage: this.lastUsage,
      };
    });
  }

  async unload(): Promise<void> {
    if (this.queue.closed) return this.queue.close();
    void this.queue.close();
    this.running?.cancel();
    await this.queue.runAlways(() => {
      this.webEngine?.free();
      this.webEngine = null;
    });
  }

  /** A request's cancellation, cancelled by its signal (now, if it already fired). */
  private cancellationFor(signal: AbortSignal | undefined): Cancellation {
    const cancellation = new Cancellation();
    if (signal?.aborted) cancellation.cancel();
    signal?.addEventListener('abort', () => cancellation.cancel(), { once: true });
    return cancellation;
  }

  /** Queues one chat or legacy completion and resolves to the wasm engine's answer, with WebLLM's usage. */
  private run<Choice>(
    kind: 'chat' | 'text',
    requestJson: string,
    cancellation: Cancellation,
    onDelta: DeltaCallback,
  ): Promise<{ choices: Choice[]; usage: CompletionUsage }> {
    return this.queue.run(async () => {
      const engine = this.loaded();
      const token = new CancelToken();
      cancellation.attach(token);
      this.running = cancellation;
      const timing: RequestTiming = { start: performance.now(), firstText: null, end: 0 };
      const timedDelta = (choice: number, text: string, logprobsJson?: string) => {
        if (text !== '') timing.firstText ??= performance.now();
        onDelta(choice, text, logprobsJson === undefined ? undefined : { content: JSON.parse(logprobsJson) as ChoiceLogprobs['content'] });
      };
      try {
        const answer = kind === 'chat'
          ? await engine.chatCompletion(requestJson, timedDelta, token)
          : await engine.completion(requestJson, timedDelta, token);
        const result = JSON.parse(answer) as WasmCompletion<Choice>;
        timing.end = performance.now();
        const usage = requestUsage(result.usage, timing);
        this.lastUsage = usage;
        return { ...result, usage };
      } finally {
        this.running = null;
        cancellation.detach();
        token.free();
      }
    });
  }

  /** The wasm engine, unless unload has begun (queued requests then fail instead of running). */
  private loaded(): WebEngine {
    this.queue.throwIfCrashed();
    if (this.queue.closed || !this.webEngine) throw new InvalidRequestError('the engine was unloaded');
    return this.webEngine;
  }
}

/**
 * The request as the wasm engine reads it, less what only this side handles (the signal, the
 * stream flag and options), and with WebLLM's `json_object` schema string as OpenAI's
 * `json_schema`. `create` has checked it (request-validation.ts), the schema string included.
 */
function wasmRequestJson(request: ChatCompletionRequest | CompletionCreateParams): string {
  const { signal: _signal, stream: _stream, ...fields } = request;
  const { stream_options: _streamOptions, ...rest } = fields as typeof fields & { stream_options?: unknown };
  const format = (rest as { response_format?: ChatCompletionRequest['response_format'] }).response_format;
  if (format?.type === 'json_object' && format.schema !== undefined) {
    (rest as { response_format?: unknown }).response_format = { type: 'json_schema', json_schema: { schema: JSON.parse(format.schema) as Record<string, unknown> } };
  }
  return JSON.stringify(rest);
}

function completionId(prefix: 'chatcmpl' | 'cmpl'): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
