// The checks every chat request passes before it goes anywhere, in both engines (in the page and
// through a worker: chat.completions.create calls them): it must be an object with a `messages`
// array, and hold no NaN or ±Infinity. The wasm engine reads the request as JSON, where those
// numbers become null, which it takes as "absent": `temperature: NaN` would silently sample at
// the default temperature instead of failing.

import { InvalidRequestError } from './errors.js';
import type { ChatCompletionRequest } from './types.js';

/** Throws an InvalidRequestError, naming the field, unless `request` is a request the engine can read as sent. */
export function validateChatRequest(request: unknown): asserts request is ChatCompletionRequest {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    const got = request === null ? 'null' : Array.isArray(request) ? 'an array' : typeof request;
    throw new InvalidRequestError(`a chat completion request must be an object, got ${got}`);
  }
  if (!Array.isArray((request as { messages?: unknown }).messages)) throw new InvalidRequestError('messages must be an array');
  for (const [key, value] of Object.entries(request)) requireFinite(value, key, new Set());
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
