// The `chat.completions` and `completions` objects both engines expose: OpenAI's one `create`
// method each, typed by its `stream` flag, which checks the request (request-validation.ts) and
// dispatches it to the engine's non-streaming or streaming implementation.

import { validateChatRequest, validateCompletionRequest } from './request-validation.js';
import type {
  Completion,
  CompletionCreateParams,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
  TextCompletions,
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
  completeText(request: CompletionCreateParamsNonStreaming): Promise<Completion>;
  streamText(request: CompletionCreateParamsStreaming): Promise<AsyncIterableIterator<Completion>>;
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

/** `completions.create`, checked the same way (validateCompletionRequest). */
export class LegacyCompletions implements TextCompletions {
  constructor(private readonly backend: CompletionBackend) {}

  create(request: CompletionCreateParamsNonStreaming): Promise<Completion>;
  create(request: CompletionCreateParamsStreaming): Promise<AsyncIterableIterator<Completion>>;
  create(request: CompletionCreateParams): Promise<Completion | AsyncIterableIterator<Completion>>;
  async create(request: CompletionCreateParams): Promise<Completion | AsyncIterableIterator<Completion>> {
    validateCompletionRequest(request);
    return request.stream === true ? this.backend.streamText(request) : this.backend.completeText(request);
  }
}
