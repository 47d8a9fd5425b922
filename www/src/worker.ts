// The worker side of worker mode: answers the page's protocol messages with an engine that
// lives in the worker, so loading and generation never block the page's main thread.
// A module worker script is just:
//   import { serveEngineInWorker } from 'qwen-webgpu';
//   serveEngineInWorker();
// or, in WebLLM's form:
//   const handler = new WebWorkerMLCEngineHandler();
//   self.onmessage = (message) => handler.onmessage(message);

import { createEngine } from './engine.js';
import { InvalidRequestError, serializeError } from './errors.js';
import type { MessageEndpoint, WorkerRequest, WorkerResponse } from './protocol.js';
import type {
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  Engine,
} from './types.js';

/** Serves one engine over `scope`'s messages (the worker's global scope by default). */
export function serveEngineInWorker(scope: MessageEndpoint = globalThis as unknown as MessageEndpoint): void {
  const handler = new WebWorkerMLCEngineHandler(scope);
  scope.addEventListener('message', (event) => handler.onmessage(event));
}

/**
 * WebLLM's worker-side handler: give it every message the worker receives (`onmessage`); it
 * answers on `scope` (the worker's global scope by default).
 */
export class WebWorkerMLCEngineHandler {
  /** Handles one message from the page. */
  readonly onmessage: (event: MessageEvent) => void;

  constructor(scope: Pick<MessageEndpoint, 'postMessage'> = globalThis as unknown as MessageEndpoint) {
    this.onmessage = messageHandler(scope);
  }
}

/** The protocol's worker side over `scope`: a function taking each message event. */
function messageHandler(scope: Pick<MessageEndpoint, 'postMessage'>): (event: MessageEvent) => void {
  let engine: Engine | null = null;
  let loading = false;
  /** Running loads and chats, by request id, for 'cancel'. */
  const cancellers = new Map<number, AbortController>();

  const post = (message: WorkerResponse) => scope.postMessage(message);

  const loadedEngine = (): Engine => {
    if (!engine) throw new InvalidRequestError('no model is loaded in this worker (never loaded, or unloaded)');
    return engine;
  };

  /** Runs one request's work; whatever it throws goes back as that request's error. */
  const answer = async (id: number, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      post({ type: 'error', id, error: serializeError(error) });
    }
  };

  const handle = async (message: WorkerRequest): Promise<void> => {
    const { id } = message;
    switch (message.type) {
      case 'load':
        return answer(id, async () => {
          if (engine || loading) throw new InvalidRequestError('this worker already has a model; unload it first');
          loading = true;
          const controller = new AbortController();
          cancellers.set(id, controller);
          try {
            engine = await createEngine({
              ...message.options,
              signal: controller.signal,
              onProgress: (progress) => post({ type: 'progress', id, progress }),
            });
          } finally {
            loading = false;
            cancellers.delete(id);
          }
          post({ type: 'loaded', id });
        });
      case 'chat':
      case 'text':
        return answer(id, async () => {
          const loaded = loadedEngine();
          const controller = new AbortController();
          cancellers.set(id, controller);
          try {
            const request = { ...message.request, signal: controller.signal };
            if (request.stream === true) {
              const chunks = message.type === 'chat'
                ? await loaded.chat.completions.create(request as ChatCompletionRequestStreaming)
                : await loaded.completions.create(request as CompletionCreateParamsStreaming);
              for await (const chunk of chunks) post({ type: 'chunk', id, chunk });
              post({ type: 'stream-end', id });
            } else if (message.type === 'chat') {
              const completion = await loaded.chat.completions.create(request as ChatCompletionRequestNonStreaming);
              post({ type: 'completion', id, completion });
            } else {
              const completion = await loaded.completions.create(request as CompletionCreateParamsNonStreaming);
              post({ type: 'text-completion', id, completion });
            }
          } finally {
            cancellers.delete(id);
          }
        });
      case 'cancel':
        cancellers.get(message.target)?.abort();
        return;
      case 'reset-chat':
        return answer(id, async () => {
          await loadedEngine().resetChat();
          post({ type: 'done', id });
        });
      case 'runtime-stats':
        return answer(id, async () => {
          post({ type: 'runtime-stats', id, stats: await loadedEngine().runtimeStats() });
        });
      case 'unload':
        return answer(id, async () => {
          const unloading = engine;
          engine = null;
          await unloading?.unload();
          post({ type: 'done', id });
        });
    }
  };

  return (event) => {
    void handle(event.data as WorkerRequest);
  };
}
