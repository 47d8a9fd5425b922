// The `chat.completions` object both engines expose: OpenAI's one `create` method, typed by its
// `stream` flag, which checks the request (request-validation.ts) and dispatches it to the
// engine's non-streaming or streaming implementation.

import { validateChatRequest } from './request-validation.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
} from './types.js';

/** What an engine implements behind `chat.completions.create`. */
export interface CompletionBackend {
  complete(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  stream(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>>;
}

/** `create` rejects with an InvalidRequestError, before the engine sees it, a request it cannot read as sent. */
export class Completions implements ChatCompletions {
  constructor(private readonly backend: CompletionBackend) {}

  create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  create(request: ChatCompletionRequestStreaming): Promise<AsyncIterableIterator<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterableIterator<ChatCompletionChunk>>;
  async create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterableIterator<ChatCompletionChunk>> {
    validateChatRequest(request);
    return request.stream === true ? this.backend.stream(request) : this.backend.complete(request);
  }
}
