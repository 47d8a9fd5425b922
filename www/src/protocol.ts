// The messages between a page and the worker that runs its engine (worker.ts serves them,
// worker-engine.ts sends them). Every request carries an id; every response names the request
// it belongs to. Only structured-clonable data crosses: no functions, no AbortSignals, errors
// as SerializedError.

import type { SerializedError } from './errors.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  Completion,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  EngineOptions,
  LoadProgress,
  RuntimeStats,
} from './types.js';

/** Engine options as they cross to the worker: URLs absolute, callbacks and signal left behind. */
export type WorkerEngineOptions = Omit<EngineOptions, 'onProgress' | 'signal' | 'model'> & { model: string[] };

/** A chat request as it crosses to the worker (its signal becomes a 'cancel' message). */
export type WorkerChatRequest =
  | Omit<ChatCompletionRequestNonStreaming, 'signal'>
  | Omit<ChatCompletionRequestStreaming, 'signal'>;

/** A legacy completion request as it crosses to the worker. */
export type WorkerTextRequest =
  | Omit<CompletionCreateParamsNonStreaming, 'signal'>
  | Omit<CompletionCreateParamsStreaming, 'signal'>;

/** Page → worker. */
export type WorkerRequest =
  | { type: 'load'; id: number; options: WorkerEngineOptions }
  | { type: 'chat'; id: number; request: WorkerChatRequest }
  | { type: 'text'; id: number; request: WorkerTextRequest }
  /** Cancels request `target`: a load (it fails with 'aborted') or a chat or text request (it finishes with 'abort'). */
  | { type: 'cancel'; id: number; target: number }
  | { type: 'reset-chat'; id: number }
  | { type: 'runtime-stats'; id: number }
  | { type: 'unload'; id: number };

/** Worker → page. `id` is the request's. */
export type WorkerResponse =
  | { type: 'progress'; id: number; progress: LoadProgress }
  | { type: 'loaded'; id: number }
  | { type: 'completion'; id: number; completion: ChatCompletion }
  | { type: 'text-completion'; id: number; completion: Completion }
  | { type: 'chunk'; id: number; chunk: ChatCompletionChunk | Completion }
  /** A streaming chat or text request's last message (after its final chunk). */
  | { type: 'stream-end'; id: number }
  | { type: 'runtime-stats'; id: number; stats: RuntimeStats }
  /** A reset-chat or unload finished. */
  | { type: 'done'; id: number }
  | { type: 'error'; id: number; error: SerializedError };

/** The side of a MessagePort-like object each end uses (a Worker, or the worker's global scope). */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}
