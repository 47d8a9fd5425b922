// WebLLM's engine API over this package's engines, so code written for @mlc-ai/web-llm runs by
// changing its import and model id: CreateMLCEngine / CreateWebWorkerMLCEngine, the MLCEngine
// methods (reload, interruptGenerate, getMessage, runtimeStatsText, ...), WebLLM's progress
// reports, and its engine and chat options, each accepted where it means something here and
// refused by name where it does not (a silently ignored option would change behaviour unseen).

import { InvalidRequestError } from './errors.js';
import { createEngine } from './engine.js';
import { createWorkerEngine } from './worker-engine.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
  Engine,
  EngineOptions,
  LoadProgress,
} from './types.js';

/** WebLLM's load progress (`progress` from 0 to 1), with this package's own fields beside it while bytes move. */
export interface InitProgressReport extends Partial<LoadProgress> {
  progress: number;
  /** Seconds since loading began. */
  timeElapsed: number;
  text: string;
}

export type InitProgressCallback = (report: InitProgressReport) => void;

/** WebLLM's log levels: INFO and more verbose log each load's end and each request's speeds. */
export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';

/**
 * WebLLM's engine config, less what has no meaning here (`appConfig`: models are GGUF URLs;
 * `logitProcessorRegistry`), plus this package's own options.
 */
export interface MLCEngineConfig extends Omit<EngineOptions, 'model' | 'onProgress'> {
  initProgressCallback?: InitProgressCallback;
  logLevel?: LogLevel;
}

/**
 * WebLLM's chat options that mean something here: `context_window_size` is the KV-cache length
 * (contextLength); the sampling fields are defaults for requests that leave them out.
 * `sliding_window_size` can only be -1 (none: the engine keeps the whole context).
 */
export interface ChatOptions {
  context_window_size?: number;
  sliding_window_size?: number;
  temperature?: number;
  top_p?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  repetition_penalty?: number;
}

/** The WebLLM engine methods this package implements, over either engine. */
export interface MLCEngineInterface extends Engine {
  /** Same as chat.completions.create. */
  chatCompletion(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  chatCompletion(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>>;
  chatCompletion(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterableIterator<ChatCompletionChunk>>;
  /** Unloads the model and loads `model` (URL or shard URLs) with the same engine config. */
  reload(model: string | string[], chatOpts?: ChatOptions): Promise<void>;
  /** Stops the running request (it finishes with finish_reason 'abort') and the queued ones. */
  interruptGenerate(): void;
  /** The text of the last reply (as far as it has been generated). */
  getMessage(): Promise<string>;
  /** "prefill: X tokens/sec, decoding: Y tokens/sec" of the last request. */
  runtimeStatsText(): Promise<string>;
  getGPUVendor(): Promise<string>;
  getMaxStorageBufferBindingSize(): Promise<number>;
}

const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'];
const ENGINE_CONFIG_FIELDS = new Set(['initProgressCallback', 'logLevel', 'sha256', 'contextLength', 'ropeScaling', 'kvCache', 'disableF16', 'disableSubgroups', 'signal']);
const CHAT_OPTION_DEFAULTS = ['temperature', 'top_p', 'presence_penalty', 'frequency_penalty', 'repetition_penalty'] as const;

/** WebLLM's CreateMLCEngine: loads the model (a GGUF URL, or its shard URLs) in this page. */
export async function CreateMLCEngine(model: string | string[], engineConfig: MLCEngineConfig = {}, chatOpts?: ChatOptions): Promise<MLCEngine> {
  const engine = new MLCEngine(engineConfig);
  await engine.reload(model, chatOpts);
  return engine;
}

/** WebLLM's CreateWebWorkerMLCEngine: the same, in `worker` (one running WebWorkerMLCEngineHandler or serveEngineInWorker). */
export async function CreateWebWorkerMLCEngine(
  worker: Worker,
  model: string | string[],
  engineConfig: MLCEngineConfig = {},
  chatOpts?: ChatOptions,
): Promise<WebWorkerMLCEngine> {
  const engine = new WebWorkerMLCEngine(worker, engineConfig);
  await engine.reload(model, chatOpts);
  return engine;
}

/** WebLLM's MLCEngine: `new MLCEngine(engineConfig)`, then `reload(model)`; the engine runs in this page. */
export class MLCEngine implements MLCEngineInterface {
  readonly chat: { readonly completions: ChatCompletions };
  private engine: Engine | null = null;
  private readonly logLevel: LogLevel;
  /** Request defaults from the chat options. */
  private defaults: Partial<Record<(typeof CHAT_OPTION_DEFAULTS)[number], number>> = {};
  /** Aborts every request this engine has running or queued (interruptGenerate). */
  private readonly inFlight = new Set<AbortController>();
  private lastMessage = '';

  constructor(private readonly engineConfig: MLCEngineConfig = {}) {
    const unknown = Object.keys(engineConfig).filter((key) => !ENGINE_CONFIG_FIELDS.has(key));
    if (unknown.length > 0) throw new InvalidRequestError(`unsupported engine config field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
    const { logLevel = 'WARN' } = engineConfig;
    if (!LOG_LEVELS.includes(logLevel)) throw new InvalidRequestError(`logLevel must be one of ${LOG_LEVELS.join(', ')}, got ${String(logLevel)}`);
    this.logLevel = logLevel;
    const create = ((request: ChatCompletionRequest) => this.create(request)) as ChatCompletions['create'];
    this.chat = { completions: { create } };
  }

  chatCompletion(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  chatCompletion(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>>;
  chatCompletion(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterableIterator<ChatCompletionChunk>>;
  chatCompletion(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterableIterator<ChatCompletionChunk>> {
    return this.create(request);
  }

  async reload(model: string | string[], chatOpts: ChatOptions = {}): Promise<void> {
    const { contextLength, defaults } = chatOptions(chatOpts);
    const { initProgressCallback, logLevel: _logLevel, ...options } = this.engineConfig;
    await this.unload();
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    let progress = 0;
    const onProgress = (load: LoadProgress) => {
      // The tensor bytes on the GPU measure the whole load: they trail the download, which
      // feeds them as it goes.
      if (load.phase === 'upload' && load.bytesTotal > 0) progress = load.bytesDone / load.bytesTotal;
      const source = load.phase === 'upload' ? 'Loading model onto the GPU' : load.phase === 'download' ? 'Fetching model' : 'Reading model from cache';
      initProgressCallback?.({ ...load, progress, timeElapsed: elapsed(), text: `${source}: ${Math.floor(progress * 100)}% (${elapsed().toFixed(0)} s elapsed)` });
    };
    this.engine = await this.loadEngine({
      ...options,
      ...(contextLength !== undefined && options.contextLength === undefined ? { contextLength } : {}),
      model,
      onProgress,
    });
    this.defaults = defaults;
    this.lastMessage = '';
    const text = `Finish loading on WebGPU - ${(await this.engine.runtimeStats()).adapter}`;
    initProgressCallback?.({ progress: 1, timeElapsed: elapsed(), text });
    this.log('INFO', text);
  }

  async unload(): Promise<void> {
    const engine = this.engine;
    this.engine = null;
    this.interruptGenerate();
    await engine?.unload();
  }

  resetChat(): Promise<void> {
    this.lastMessage = '';
    return this.loaded().resetChat();
  }

  runtimeStats() {
    return this.loaded().runtimeStats();
  }

  interruptGenerate(): void {
    for (const controller of this.inFlight) controller.abort();
  }

  async getMessage(): Promise<string> {
    return this.lastMessage;
  }

  async runtimeStatsText(): Promise<string> {
    const usage = (await this.loaded().runtimeStats()).lastUsage;
    if (!usage) return 'no request has run yet';
    return `prefill: ${usage.prefill_tokens_per_s.toFixed(4)} tokens/sec, decoding: ${usage.decode_tokens_per_s.toFixed(4)} tokens/sec`;
  }

  async getGPUVendor(): Promise<string> {
    return (await this.loaded().runtimeStats()).adapterInfo.vendor;
  }

  async getMaxStorageBufferBindingSize(): Promise<number> {
    return (await this.loaded().runtimeStats()).maxStorageBufferBindingSize;
  }

  /** A request with the chat options' defaults, its own signal joined to interruptGenerate's. */
  private async create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterableIterator<ChatCompletionChunk>> {
    const engine = this.loaded();
    const controller = new AbortController();
    this.inFlight.add(controller);
    const signal = request.signal ? AbortSignal.any([request.signal, controller.signal]) : controller.signal;
    const withDefaults = { ...this.defaults, ...request, signal };
    try {
      if (withDefaults.stream === true) {
        const chunks = await engine.chat.completions.create(withDefaults);
        this.lastMessage = '';
        return this.tracked(chunks, controller);
      }
      const completion = await engine.chat.completions.create(withDefaults);
      this.lastMessage = completion.choices[0].message.content ?? '';
      this.afterRequest(completion.usage, controller);
      return completion;
    } catch (error) {
      this.inFlight.delete(controller);
      throw error;
    }
  }

  /** Passes the chunks on, keeping the reply's text for getMessage. */
  private async *tracked(chunks: AsyncIterableIterator<ChatCompletionChunk>, controller: AbortController): AsyncIterableIterator<ChatCompletionChunk> {
    try {
      for await (const chunk of chunks) {
        this.lastMessage += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) this.log('DEBUG', speeds(chunk.usage));
        yield chunk;
      }
    } finally {
      this.inFlight.delete(controller);
    }
  }

  private afterRequest(usage: ChatCompletion['usage'], controller: AbortController): void {
    this.inFlight.delete(controller);
    this.log('DEBUG', speeds(usage));
  }

  /** Loads the model into an engine of this kind. */
  protected loadEngine(options: EngineOptions): Promise<Engine> {
    return createEngine(options);
  }

  private loaded(): Engine {
    if (!this.engine) throw new InvalidRequestError('no model is loaded (unloaded, or reload has not finished)');
    return this.engine;
  }

  private log(level: LogLevel, text: string): void {
    if (LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(this.logLevel)) console.info(`[qwen-webgpu] ${text}`);
  }
}

/** WebLLM's WebWorkerMLCEngine: the same engine in `worker` (one running WebWorkerMLCEngineHandler). */
export class WebWorkerMLCEngine extends MLCEngine {
  constructor(private readonly worker: Worker, engineConfig: MLCEngineConfig = {}) {
    super(engineConfig);
  }

  protected override loadEngine(options: EngineOptions): Promise<Engine> {
    return createWorkerEngine(this.worker, options);
  }
}

function speeds(usage: ChatCompletion['usage']): string {
  return `prefill ${usage.prompt_tokens} tokens at ${usage.prefill_tokens_per_s.toFixed(1)} tok/s, decode ${usage.completion_tokens} at ${usage.decode_tokens_per_s.toFixed(1)} tok/s`;
}

/** The chat options' meaning here; any other option is refused by name. */
function chatOptions(options: ChatOptions): { contextLength: number | undefined; defaults: Partial<Record<(typeof CHAT_OPTION_DEFAULTS)[number], number>> } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidRequestError('chat options must be one object (one model per engine)');
  }
  const defaults: Partial<Record<(typeof CHAT_OPTION_DEFAULTS)[number], number>> = {};
  let contextLength: number | undefined;
  for (const [key, value] of Object.entries(options) as [string, unknown][]) {
    if (value === undefined) continue;
    if (key === 'context_window_size') {
      if (!(Number.isInteger(value) && (value as number) > 0)) throw new InvalidRequestError(`context_window_size must be a positive integer, got ${String(value)}`);
      contextLength = value as number;
    } else if (key === 'sliding_window_size') {
      if (value !== -1) throw new InvalidRequestError('sliding_window_size is not supported (only -1: no sliding window)');
    } else if ((CHAT_OPTION_DEFAULTS as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidRequestError(`chat option ${key} must be a finite number`);
      defaults[key as (typeof CHAT_OPTION_DEFAULTS)[number]] = value;
    } else {
      throw new InvalidRequestError(`unsupported chat option: ${key}`);
    }
  }
  return { contextLength, defaults };
}
