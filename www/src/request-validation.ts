// The checks every chat (and legacy completion) request passes before it goes anywhere, in both
// engines (in the page and through a worker: each `create` calls them): it must be an object with
// `messages` (or a string `prompt`), name only fields the engine honours, and hold no NaN or ±Infinity. The wasm engine
// reads the request as JSON, where those numbers become null, which it takes as "absent":
// `temperature: NaN` would silently sample at the default temperature instead of failing. A
// field it does not know would be dropped just as silently, so one is refused by name.

import { InvalidRequestError } from './errors.js';
import type { ChatCompletionRequest, CompletionCreateParams } from './types.js';

/** Throws an InvalidRequestError, naming the field, unless `request` is a request the engine can read as sent. */
export function validateChatRequest(request: unknown): asserts request is ChatCompletionRequest {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    const got = request === null ? 'null' : Array.isArray(request) ? 'an array' : typeof request;
    throw new InvalidRequestError(`a chat completion request must be an object, got ${got}`);
  }
  if (!Array.isArray((request as { messages?: unknown }).messages)) throw new InvalidRequestError('messages must be an array');
  checkFields(request, SUPPORTED_FIELDS);
}

/** The same checks for a legacy completion request: a string `prompt` and the fields the engine honours. */
export function validateCompletionRequest(request: unknown): asserts request is CompletionCreateParams {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    const got = request === null ? 'null' : Array.isArray(request) ? 'an array' : typeof request;
    throw new InvalidRequestError(`a completion request must be an object, got ${got}`);
  }
  if (typeof (request as { prompt?: unknown }).prompt !== 'string') {
    throw new InvalidRequestError('prompt must be a string (lists of prompts and token ids are not supported)');
  }
  checkFields(request, COMPLETION_FIELDS);
  const { echo } = request as Record<string, unknown>;
  if (echo !== undefined && typeof echo !== 'boolean') throw new InvalidRequestError('echo must be a boolean');
}

/** Checks what chat and legacy requests share: finite numbers, known fields, n, logprobs, stream options, format. */
function checkFields(request: object, supported: ReadonlySet<string>): void {
  for (const [key, value] of Object.entries(request)) requireFinite(value, key, new Set());
  const unsupported = Object.keys(request).filter((key) => !supported.has(key));
  if (unsupported.length > 0) {
    throw new InvalidRequestError(`unsupported request field${unsupported.length > 1 ? 's' : ''}: ${unsupported.join(', ')}`);
  }
  const { n, logprobs, top_logprobs: topLogprobs, stream, stream_options: streamOptions, response_format: format } = request as Record<string, unknown>;
  if (n !== undefined && !(Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 128)) {
    throw new InvalidRequestError(`n must be an integer from 1 to 128, got ${String(n)}`);
  }
  if (logprobs !== undefined && typeof logprobs !== 'boolean') {
    throw new InvalidRequestError(`logprobs must be a boolean (top_logprobs asks for alternatives), got ${String(logprobs)}`);
  }
  if (topLogprobs !== undefined) {
    if (!(Number.isInteger(topLogprobs) && (topLogprobs as number) >= 0 && (topLogprobs as number) <= 20)) {
      throw new InvalidRequestError(`top_logprobs must be an integer from 0 to 20, got ${String(topLogprobs)}`);
    }
    if (logprobs !== true && topLogprobs !== 0) throw new InvalidRequestError('top_logprobs needs logprobs: true');
  }
  if (streamOptions !== undefined) checkStreamOptions(streamOptions, stream);
  if (format !== undefined) checkResponseFormat(format);
}

/** Every request field the engine honours (ChatCompletionRequest in types.ts says how). */
const SUPPORTED_FIELDS = new Set([
  'messages', 'model', 'stream', 'stream_options', 'signal',
  'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'logit_bias',
  'presence_penalty', 'frequency_penalty', 'repetition_penalty',
  'max_tokens', 'max_completion_tokens', 'stop', 'n', 'logprobs', 'top_logprobs',
  'response_format', 'tools', 'tool_choice',
]);

/** Every legacy completion request field the engine honours (CompletionCreateParams in types.ts). */
const COMPLETION_FIELDS = new Set([
  'prompt', 'echo', 'model', 'stream', 'stream_options', 'signal',
  'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'logit_bias',
  'presence_penalty', 'frequency_penalty', 'repetition_penalty',
  'max_tokens', 'stop', 'n', 'logprobs', 'top_logprobs',
]);

function checkStreamOptions(options: unknown, stream: unknown): void {
  if (stream !== true) throw new InvalidRequestError('stream_options is only allowed with stream: true');
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidRequestError('stream_options must be an object');
  }
  for (const [key, value] of Object.entries(options)) {
    if (key !== 'include_usage') throw new InvalidRequestError(`unsupported stream_options field: ${key}`);
    if (typeof value !== 'boolean') throw new InvalidRequestError('stream_options.include_usage must be a boolean');
  }
}

/**
 * `response_format`'s WebLLM extensions: `json_object` with `schema` as a JSON string (parsed
 * here, so a bad one fails naming the field), and `grammar` with its GBNF text (the engine
 * translates it, refusing constructs it cannot enforce by name).
 */
function checkResponseFormat(format: unknown): void {
  if (typeof format !== 'object' || format === null || Array.isArray(format)) {
    throw new InvalidRequestError('response_format must be an object');
  }
  const { type, schema, grammar } = format as Record<string, unknown>;
  if (type === 'grammar' && typeof grammar !== 'string') throw new InvalidRequestError('response_format.grammar must be a GBNF grammar as a string');
  if (grammar !== undefined && type !== 'grammar') throw new InvalidRequestError(`response_format.grammar belongs to type grammar, not ${String(type)}`);
  if (schema === undefined) return;
  if (type !== 'json_object') throw new InvalidRequestError(`response_format.schema belongs to type json_object, not ${String(type)}`);
  if (typeof schema !== 'string') throw new InvalidRequestError('response_format.schema must be a JSON Schema as a JSON string (WebLLM\'s form)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(schema);
  } catch (error) {
    throw new InvalidRequestError(`response_format.schema is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidRequestError('response_format.schema must be a JSON object (a JSON Schema)');
  }
}

/**
 * Throws when `value` is, or holds at any depth, a number JSON cannot carry; `field` is its path
 * in the request ('logit_bias.42', 'messages[0].content'). `enclosing` holds the objects above it,
 * so a request that contains itself is refused instead of recursing forever.
 */
function requireFinite(value: unknown, field: string, enclosing: Set<object>): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidRequestError(`${field} must be a finite number, got ${value}`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (enclosing.has(value)) throw new InvalidRequestError(`${field} contains itself, so it cannot be sent as JSON`);
  enclosing.add(value);
  for (const [key, item] of Object.entries(value)) {
    requireFinite(item, Array.isArray(value) ? `${field}[${key}]` : `${field}.${key}`, enclosing);
  }
  enclosing.delete(value);
}
