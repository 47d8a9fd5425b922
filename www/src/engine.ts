// The engine in this JavaScript realm (page or worker): loads a model through the cache into
// the wasm WebEngine (headers first, then every tensor byte, streamed) and serves the
// OpenAI-shaped chat API over it, one request at a time.

import { CancelToken, ModelHeaders, WebEngine } from '../pkg/qwen_webgpu.js';
import { ChunkStream } from './chunk-stream.js';
import { OperationQueue } from './operation-queue.js';
import { Completions, type CompletionBackend } from './completions.js';
import {
  AbortedError,
  BadModelError,
  InvalidRequestError,
  WebGpuUnavailableError,
  toQwenWebGpuError,
} from './errors.js';
import { CachedModel, type ModelPiece } from './model-cache.js';
import type {
  AdapterInfo,
  AssistantToolCall,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
  CompletionUsage,
  Engine,
  EngineOptions,
  FinishReason,
  LoadProgress,
  RuntimeStats,
} from './types.js';
import { createWasmHasher, initWasm } from './wasm.js';

/** First guess at a header's size: Qwen2 vocabularies put it at ~6 MB. */
const HEADER_PROBE_BYTES = 8 * 1024 * 1024;
/** Largest slice handed to pushBytes at once (each is copied into wasm memory). */
const PUSH_BYTES = 8 * 1024 * 1024;

/** `dataRanges()`'s entries: bytes [start, end) of a shard hold tensor data. */
interface DataRange {
  shard: number;
  start: number;
  end: number;
}

/** `pushBytes()`'s answer. */
interface UploadProgress {
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/** The wasm engine's usage: `prompt_tokens` counts the whole prompt, cached tokens included. */
type WasmUsage = Omit<CompletionUsage, 'extra'>;

/** `chatCompletion()`'s answer (`tool_calls`: empty, or absent from engines without tools). */
interface WasmCompletion {
  content: string;
  tool_calls?: AssistantToolCall[];
  finish_reason: FinishReason;
  generated_ids: number[];
  usage: WasmUsage;
}

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
 * Loads a model and returns the engine. Checks WebGPU first, reads each shard's header (from
 * the cache when stored), opens the GPU, then streams every tensor byte to it.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  const urls = typeof options.model === 'string' ? [options.model] : [...options.model];
  const sha256 = shardHashes(options.sha256, urls.length);
  const createOptions = engineCreateOptions(options);
  const { signal, onProgress } = options;
  // Checked before any download; TypeScript's DOM library does not declare navigator.gpu yet.
  if (!globalThis.navigator || !('gpu' in globalThis.navigator) || !globalThis.navigator.gpu) {
    throw new WebGpuUnavailableError('this browser has no WebGPU (navigator.gpu is missing)');
  }
  await initWasm();
  const adapter = await adapterFacts();
  const model = await CachedModel.open({
    urls,
    ...(sha256 ? { sha256 } : {}),
    createHasher: createWasmHasher,
    ...(signal ? { signal } : {}),
  });

  // Each header is parsed once, in wasm, as its bytes arrive; the engine takes the result.
  const headers = new ModelHeaders(urls.length);
  try {
    for (let shard = 0; shard < urls.length; shard++) {
      await readHeader(model, shard, headers);
    }
  } catch (error) {
    headers.free();
    throw error;
  }
  let webEngine: WebEngine;
  try {
    webEngine = await WebEngine.create(headers, JSON.stringify(createOptions));
  } catch (error) {
    throw toQwenWebGpuError(error);
  }
  try {
    await uploadModel(webEngine, model, onProgress, signal);
    if (signal?.aborted) throw new AbortedError('model loading was aborted', { cause: signal.reason });
    await webEngine.finishLoad();
  } catch (error) {
    webEngine.free();
    throw toQwenWebGpuError(error);
  }
  return new LocalEngine(webEngine, modelName(model.urls[0] as string), adapter);
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
  const { contextLength, ropeScaling, kvCache } = options;
  if (contextLength !== undefined && !(Number.isInteger(contextLength) && contextLength > 0)) {
    throw new InvalidRequestError(`contextLength must be a positive integer, got ${contextLength}`);
  }
  return {
    ...(contextLength !== undefined ? { contextLength } : {}),
    // The wasm side checks the fields (unknown ones, a factor below 1) with typed errors.
    ...(ropeScaling !== undefined ? { ropeScaling } : {}),
    ...(kvCache !== undefined ? { kvCache } : {}),
    disableF16: options.disableF16 === true,
    disableSubgroups: options.disableSubgroups === true,
  };
}

/** The model's name in responses: its (first) file's name. */
function modelName(url: string): string {
  const path = new URL(url).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}

/** Reads a prefix of a shard that holds its whole GGUF header into `headers`. */
async function readHeader(model: CachedModel, shard: number, headers: ModelHeaders): Promise<void> {
  let length = HEADER_PROBE_BYTES;
  for (;;) {
    const { bytes, fileSize } = await model.readPrefix(shard, length);
    let needBytes: number;
    try {
      needBytes = headers.offer(shard, bytes, fileSize);
    } catch (error) {
      throw toQwenWebGpuError(error);
    }
    if (needBytes === 0) return;
    if (needBytes > fileSize || needBytes <= bytes.byteLength) {
      throw new BadModelError(
        `${model.urls[shard]}: the GGUF header needs ${needBytes} bytes but the file has ${fileSize}`);
    }
    // At least doubling: a header of many short strings asks for a few bytes more each time,
    // and each probe re-reads from byte 0. The parser's own cap (256 MiB) bounds the growth.
    length = Math.min(fileSize, Math.max(needBytes, length * 2));
  }
}

/** Streams every byte of the model (cache or network) into the GPU, reporting progress. */
async function uploadModel(
  webEngine: WebEngine,
  model: CachedModel,
  onProgress: ((progress: LoadProgress) => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const ranges = JSON.parse(webEngine.dataRanges()) as DataRange[];
  let upload: UploadProgress = { tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0 };
  const pieces = model.read((source) => {
    onProgress?.({ ...source, tensorsDone: upload.tensorsDone, tensorsTotal: upload.tensorsTotal });
  });
  for await (const piece of pieces) {
    for (const [offset, bytes] of tensorSlices(piece, ranges)) {
      upload = JSON.parse(webEngine.pushBytes(piece.shard, offset, bytes)) as UploadProgress;
      onProgress?.({ phase: 'upload', ...upload });
    }
    if (signal?.aborted) throw new AbortedError('model loading was aborted', { cause: signal.reason });
  }
}

/**
 * The parts of a piece that lie in the tensor data ranges, as (file offset, bytes) slices of at
 * most PUSH_BYTES: the header and padding never need copying into wasm memory.
 */
function* tensorSlices(piece: ModelPiece, ranges: readonly DataRange[]): Generator<[number, Uint8Array]> {
  const pieceEnd = piece.offset + piece.bytes.byteLength;
  for (const range of ranges) {
    if (range.shard !== piece.shard || range.end <= piece.offset || range.start >= pieceEnd) continue;
    const end = Math.min(range.end, pieceEnd);
    for (let offset = Math.max(range.start, piece.offset); offset < end; offset += PUSH_BYTES) {
      const sliceEnd = Math.min(end, offset + PUSH_BYTES);
      yield [offset, piece.bytes.subarray(offset - piece.offset, sliceEnd - piece.offset)];
    }
  }
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
  }

  async complete(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion> {
    const requestJson = wasmRequestJson(request);
    const cancellation = this.cancellationFor(request.signal);
    const result = await this.run(requestJson, cancellation, () => undefined);
    return {
      id: completionId(),
      object: 'chat.completion',
      created: unixSeconds(),
      model: this.modelName,
      choices: [{
        index: 0,
        message: result.tool_calls?.length
          ? { role: 'assistant', content: result.content.trim() === '' ? null : result.content, tool_calls: result.tool_calls }
          : { role: 'assistant', content: result.content },
        finish_reason: result.finish_reason,
        logprobs: null,
      }],
      usage: result.usage,
    };
  }

  async stream(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>> {
    const requestJson = wasmRequestJson(request);
    const cancellation = this.cancellationFor(request.signal);
    const id = completionId();
    const created = unixSeconds();
    const chunk = (choices: ChatCompletionChunk['choices']): ChatCompletionChunk => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: this.modelName,
      choices,
    });
    const choice = (delta: Omit<ChatCompletionChunk['choices'][0]['delta'], 'role'>, finishReason: FinishReason | null) =>
      [{ index: 0 as const, delta: { role: 'assistant' as const, ...delta }, finish_reason: finishReason, logprobs: null }];
    const stream = new ChunkStream(() => cancellation.cancel());
    const onDelta = (text: string) => {
      if (text !== '') stream.push(chunk(choice({ content: text }, null)));
    };
    const separateUsage = request.stream_options?.include_usage === true;
    this.run(requestJson, cancellation, onDelta).then(
      (result) => {
        const toolCalls = result.tool_calls?.map((call, index) => ({ index, ...call })) ?? [];
        const last = chunk(choice(toolCalls.length ? { tool_calls: toolCalls } : {}, result.finish_reason));
        if (separateUsage) {
          stream.push(last);
          stream.push({ ...chunk([]), usage: result.usage });
        } else {
          stream.push({ ...last, usage: result.usage });
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

  /** Queues one chat completion and resolves to the wasm engine's answer, with WebLLM's usage. */
  private run(
    requestJson: string,
    cancellation: Cancellation,
    onDelta: (text: string) => void,
  ): Promise<Omit<WasmCompletion, 'usage'> & { usage: CompletionUsage }> {
    return this.queue.run(async () => {
      const engine = this.loaded();
      const token = new CancelToken();
      cancellation.attach(token);
      this.running = cancellation;
      const timing: RequestTiming = { start: performance.now(), firstText: null, end: 0 };
      const timedDelta = (text: string) => {
        if (text !== '') timing.firstText ??= performance.now();
        onDelta(text);
      };
      try {
        const result = JSON.parse(await engine.chatCompletion(requestJson, timedDelta, token)) as WasmCompletion;
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
 * stream flag and options, `logprobs`, which can only be false here), and with WebLLM's
 * `json_object` schema string as OpenAI's `json_schema`. chat.completions.create has checked it
 * (request-validation.ts), the schema string included.
 */
function wasmRequestJson(request: ChatCompletionRequest): string {
  const { signal: _signal, stream: _stream, logprobs: _logprobs, ...fields } = request;
  const { stream_options: _streamOptions, ...rest } = fields as typeof fields & { stream_options?: unknown };
  const format = rest.response_format;
  if (format?.type === 'json_object' && format.schema !== undefined) {
    rest.response_format = { type: 'json_schema', json_schema: { schema: JSON.parse(format.schema) as Record<string, unknown> } };
  }
  return JSON.stringify(rest);
}

function completionId(): string {
  return `chatcmpl-${crypto.randomUUID()}`;
}

function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
