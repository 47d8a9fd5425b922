// The page side of worker mode: an Engine whose every call is a protocol message to a worker
// running serveEngineInWorker. Progress callbacks, streams and AbortSignals are carried across
// as messages; errors come back as the same error classes with the same codes.

import { ChunkStream } from './chunk-stream.js';
import { Completions, LegacyCompletions, type CompletionBackend } from './completions.js';
import { InternalError, deserializeError, serializeError } from './errors.js';
import type { WorkerChatRequest, WorkerRequest, WorkerResponse, WorkerTextRequest } from './protocol.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
  Completion,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  Engine,
  EngineOptions,
  RuntimeStats,
  TextCompletions,
} from './types.js';

type ResponseOf<T extends WorkerResponse['type']> = Extract<WorkerResponse, { type: T }>;

/**
 * Loads a model in `worker` (a module worker that called serveEngineInWorker) and returns an
 * engine that forwards to it. One engine per worker.
 */
export async function createWorkerEngine(worker: Worker, options: EngineOptions): Promise<Engine> {
  const engine = new WorkerEngine(worker);
  await engine.load(options);
  return engine;
}

class WorkerEngine implements Engine, CompletionBackend {
  readonly chat: { readonly completions: ChatCompletions };
  readonly completions: TextCompletions;
  private nextId = 1;
  /** Where each open request's responses go, by request id. */
  private readonly handlers = new Map<number, (response: WorkerResponse) => void>();

  constructor(private readonly worker: Worker) {
    this.chat = { completions: new Completions(this) };
    this.completions = new LegacyCompletions(this);
    worker.addEventListener('message', (event: MessageEvent) => {
      const response = event.data as WorkerResponse;
      this.handlers.get(response.id)?.(response);
    });
    // The worker script failed (to load, or with an uncaught error): nothing will answer.
    worker.addEventListener('error', (event: ErrorEvent) => {
      // A script that failed to load (404, a bad import) comes with no message at all.
      const what = event.message || 'its script could not be loaded (no reason given by the browser: check the worker URL and its imports)';
      const where = event.filename ? ` at ${event.filename}:${event.lineno}:${event.colno}` : '';
      this.failAll(new InternalError(`the engine worker failed: ${what}${where}`));
    });
    worker.addEventListener('messageerror', () => {
      this.failAll(new InternalError('a message from the engine worker could not be read'));
    });
  }

  async load(options: EngineOptions): Promise<void> {
    const { onProgress, signal, model, ...rest } = options;
    const base = globalThis.location?.href;
    // Relative URLs mean the page's location, not the worker script's.
    const urls = (typeof model === 'string' ? [model] : [...model]).map((url) => new URL(url, base).href);
    const id = this.nextId++;
    const done = this.request(id, { type: 'load', id, options: { ...rest, model: urls } }, 'loaded', (response) => {
      if (response.type === 'progress') onProgress?.(response.progress);
    });
    this.cancelOnAbort(signal, id);
    await done;
  }

  async complete(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion> {
    const id = this.nextId++;
    const { signal, ...rest } = request;
    const done = this.request(id, { type: 'chat', id, request: rest }, 'completion');
    this.cancelOnAbort(signal, id);
    return (await done).completion;
  }

  stream(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>> {
    const { signal, ...rest } = request;
    return Promise.resolve(this.streamed<ChatCompletionChunk>(signal, (id) => ({ type: 'chat', id, request: rest satisfies WorkerChatRequest })));
  }

  async completeText(request: CompletionCreateParamsNonStreaming): Promise<Completion> {
    const id = this.nextId++;
    const { signal, ...rest } = request;
    const done = this.request(id, { type: 'text', id, request: rest }, 'text-completion');
    this.cancelOnAbort(signal, id);
    return (await done).completion;
  }

  streamText(request: CompletionCreateParamsStreaming): Promise<AsyncIterableIterator<Completion>> {
    const { signal, ...rest } = request;
    return Promise.resolve(this.streamed<Completion>(signal, (id) => ({ type: 'text', id, request: rest satisfies WorkerTextRequest })));
  }

  /** Sends the streaming request `message(id)` and returns its chunks as they come back. */
  private streamed<Chunk extends ChatCompletionChunk | Completion>(signal: AbortSignal | undefined, message: (id: number) => WorkerRequest): AsyncIterableIterator<Chunk> {
    const id = this.nextId++;
    const stream = new ChunkStream<Chunk>(() => this.send({ type: 'cancel', id: this.nextId++, target: id }));
    this.handlers.set(id, (response) => {
      switch (response.type) {
        case 'chunk':
          stream.push(response.chunk as Chunk);
          return;
        case 'stream-end':
          this.handlers.delete(id);
          stream.end();
          return;
        case 'error':
          this.handlers.delete(id);
          stream.fail(deserializeError(response.error));
          return;
      }
    });
    this.send(message(id));
    this.cancelOnAbort(signal, id);
    return stream;
  }

  async resetChat(): Promise<void> {
    const id = this.nextId++;
    await this.request(id, { type: 'reset-chat', id }, 'done');
  }

  async runtimeStats(): Promise<RuntimeStats> {
    const id = this.nextId++;
    return (await this.request(id, { type: 'runtime-stats', id }, 'runtime-stats')).stats;
  }

  async unload(): Promise<void> {
    const id = this.nextId++;
    await this.request(id, { type: 'unload', id }, 'done');
  }

  /**
   * Sends a request that ends with one response of type `last` (or an error); the responses
   * before it go to `onOther`.
   */
  private request<T extends WorkerResponse['type']>(
    id: number,
    message: WorkerRequest,
    last: T,
    onOther?: (response: WorkerResponse) => void,
  ): Promise<ResponseOf<T>> {
    return new Promise((resolve, reject) => {
      this.handlers.set(id, (response) => {
        if (response.type === last) {
          this.handlers.delete(id);
          resolve(response as ResponseOf<T>);
        } else if (response.type === 'error') {
          this.handlers.delete(id);
          reject(deserializeError(response.error));
        } else {
          onOther?.(response);
        }
      });
      this.send(message);
    });
  }

  private cancelOnAbort(signal: AbortSignal | undefined, target: number): void {
    if (!signal) return;
    const cancel = () => this.send({ type: 'cancel', id: this.nextId++, target });
    if (signal.aborted) cancel();
    else signal.addEventListener('abort', cancel, { once: true });
  }

  private send(message: WorkerRequest): void {
    this.worker.postMessage(message);
  }

  /** Ends every open request with `error`. */
  private failAll(error: InternalError): void {
    const serialized = serializeError(error);
    for (const [id, handler] of [...this.handlers]) handler({ type: 'error', id, error: serialized });
  }
}
