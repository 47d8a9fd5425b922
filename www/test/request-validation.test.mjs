// chat.completions.create's request checks (Node only, on the compiled dist/: `npm run build`),
// through the Completions object both engines expose, with a backend that records what reaches
// it: a request that is not an object, holds NaN/±Infinity anywhere (JSON would turn them into
// null, which the wasm engine takes as the default), or names a field or value the engine does
// not honour, is refused with an InvalidRequestError that names the field, and never reaches
// the engine.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, test } from 'node:test';

let Completions;
let LegacyCompletions;
let InvalidRequestError;
/** The requests that reached the backend, as [method, request]. */
const reached = [];
let completions;

before(async () => {
  if (!existsSync(new URL('../dist/completions.js', import.meta.url))) throw new Error('missing www/dist (run npm run build in www/)');
  ({ Completions, LegacyCompletions } = await import('../dist/completions.js'));
  ({ InvalidRequestError } = await import('../dist/errors.js'));
  completions = new Completions({
    complete: async (request) => {
      reached.push(['complete', request]);
      return 'completion';
    },
    stream: async (request) => {
      reached.push(['stream', request]);
      return 'stream';
    },
  });
});

const MESSAGES = [{ role: 'user', content: 'Hi' }];
const NUMERIC_FIELDS = [
  'temperature', 'top_p', 'top_k', 'min_p', 'max_tokens', 'max_completion_tokens', 'seed',
  'presence_penalty', 'frequency_penalty', 'repetition_penalty',
];

/** Asserts that `create(request)` rejects with an InvalidRequestError whose message is `message`, and reaches nothing. */
async function assertRefused(request, message) {
  reached.length = 0;
  await assert.rejects(completions.create(request), (error) => {
    assert.ok(error instanceof InvalidRequestError, `${error.name}: ${error.message}`);
    assert.equal(error.code, 'invalid-request');
    assert.equal(error.message, message);
    return true;
  });
  assert.deepEqual(reached, []);
}

test('a request that is not an object is an InvalidRequestError, not a TypeError', async () => {
  await assertRefused(undefined, 'a chat completion request must be an object, got undefined');
  await assertRefused(null, 'a chat completion request must be an object, got null');
  await assertRefused('Hi', 'a chat completion request must be an object, got string');
  await assertRefused([MESSAGES], 'a chat completion request must be an object, got an array');
  await assertRefused({}, 'messages must be an array');
  await assertRefused({ messages: 'Hi', stream: true }, 'messages must be an array');
});

test('NaN and ±Infinity in any numeric field are refused by name, streaming or not', async () => {
  for (const field of NUMERIC_FIELDS) {
    for (const value of [NaN, Infinity, -Infinity]) {
      await assertRefused({ messages: MESSAGES, [field]: value }, `${field} must be a finite number, got ${value}`);
      await assertRefused({ messages: MESSAGES, stream: true, [field]: value }, `${field} must be a finite number, got ${value}`);
    }
  }
});

test('non-finite numbers deeper in the request are refused by their path', async () => {
  await assertRefused({ messages: MESSAGES, logit_bias: { 42: 1, 43: NaN } }, 'logit_bias.43 must be a finite number, got NaN');
  await assertRefused(
    { messages: MESSAGES, response_format: { type: 'json_schema', json_schema: { schema: { type: 'number', maximum: Infinity } } } },
    'response_format.json_schema.schema.maximum must be a finite number, got Infinity',
  );
  await assertRefused(
    { messages: [...MESSAGES, { role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'text', text: -Infinity }] }] },
    'messages[1].content[1].text must be a finite number, got -Infinity',
  );
  const looped = { type: 'object' };
  looped.properties = { self: looped };
  await assertRefused(
    { messages: MESSAGES, response_format: { type: 'json_schema', json_schema: { schema: looped } } },
    'response_format.json_schema.schema.properties.self contains itself, so it cannot be sent as JSON',
  );
});

test('valid requests reach the backend unchanged, by their stream flag', async () => {
  reached.length = 0;
  const plain = { messages: MESSAGES, temperature: 0, top_p: 0.9, seed: -1, max_tokens: 8, logit_bias: { 42: -100 } };
  const streaming = { messages: MESSAGES, stream: true, temperature: 0.7, signal: new AbortController().signal };
  assert.equal(await completions.create(plain), 'completion');
  assert.equal(await completions.create(streaming), 'stream');
  assert.deepEqual(reached, [['complete', plain], ['stream', streaming]]);
  assert.equal(reached[0][1], plain);
  assert.equal(reached[1][1], streaming);
});

test('fields the engine does not honour are refused by name, never dropped', async () => {
  await assertRefused({ messages: MESSAGES, ignore_eos: true }, 'unsupported request field: ignore_eos');
  await assertRefused({ messages: MESSAGES, user: 'u', parallel_tool_calls: false }, 'unsupported request fields: user, parallel_tool_calls');
  await assertRefused({ messages: MESSAGES, n: 0 }, 'n must be an integer from 1 to 128, got 0');
  await assertRefused({ messages: MESSAGES, n: 1.5 }, 'n must be an integer from 1 to 128, got 1.5');
  await assertRefused({ messages: MESSAGES, n: 129 }, 'n must be an integer from 1 to 128, got 129');
  await assertRefused({ messages: MESSAGES, logprobs: 5 }, 'logprobs must be a boolean (top_logprobs asks for alternatives), got 5');
  await assertRefused({ messages: MESSAGES, logprobs: true, top_logprobs: 21 }, 'top_logprobs must be an integer from 0 to 20, got 21');
  await assertRefused({ messages: MESSAGES, top_logprobs: 2 }, 'top_logprobs needs logprobs: true');
  await assertRefused({ messages: MESSAGES, stream_options: { include_usage: true } }, 'stream_options is only allowed with stream: true');
  await assertRefused({ messages: MESSAGES, stream: true, stream_options: { continuous_usage: true } }, 'unsupported stream_options field: continuous_usage');
  await assertRefused({ messages: MESSAGES, stream: true, stream_options: { include_usage: 1 } }, 'stream_options.include_usage must be a boolean');
});

test('response_format: WebLLM\'s json_object schema must be a JSON string of an object; grammar a GBNF string', async () => {
  await assertRefused({ messages: MESSAGES, response_format: { type: 'json_object', schema: { type: 'object' } } },
    'response_format.schema must be a JSON Schema as a JSON string (WebLLM\'s form)');
  await assertRefused({ messages: MESSAGES, response_format: { type: 'json_object', schema: '{"type":' } },
    `response_format.schema is not valid JSON: ${jsonError('{"type":')}`);
  await assertRefused({ messages: MESSAGES, response_format: { type: 'json_object', schema: '[1]' } },
    'response_format.schema must be a JSON object (a JSON Schema)');
  await assertRefused({ messages: MESSAGES, response_format: { type: 'text', schema: '{}' } },
    'response_format.schema belongs to type json_object, not text');
  await assertRefused({ messages: MESSAGES, response_format: { type: 'grammar' } }, 'response_format.grammar must be a GBNF grammar as a string');
  await assertRefused({ messages: MESSAGES, response_format: { type: 'grammar', grammar: { root: 'a' } } }, 'response_format.grammar must be a GBNF grammar as a string');
  await assertRefused({ messages: MESSAGES, response_format: { type: 'json_object', grammar: 'root ::= "a"' } }, 'response_format.grammar belongs to type grammar, not json_object');
});

test('the WebLLM and OpenAI extras that are supported reach the backend unchanged', async () => {
  reached.length = 0;
  const request = {
    messages: MESSAGES, stream: true, stream_options: { include_usage: true }, n: 3, logprobs: true, top_logprobs: 20,
    response_format: { type: 'json_object', schema: '{"type":"object"}' },
  };
  const grammar = { messages: MESSAGES, response_format: { type: 'grammar', grammar: 'root ::= "a"' } };
  assert.equal(await completions.create(request), 'stream');
  assert.equal(await completions.create(grammar), 'completion');
  assert.deepEqual(reached, [['stream', request], ['complete', grammar]]);
});

test('legacy completions: a string prompt and the fields the engine honours', async () => {
  const reachedText = [];
  const legacy = new LegacyCompletions({
    completeText: async (request) => reachedText.push(['completeText', request]),
    streamText: async (request) => reachedText.push(['streamText', request]),
  });
  const refused = async (request, message) => {
    await assert.rejects(legacy.create(request), (error) => error instanceof InvalidRequestError && error.message === message);
  };
  await refused({ messages: MESSAGES }, 'prompt must be a string (lists of prompts and token ids are not supported)');
  await refused({ prompt: [1, 2] }, 'prompt must be a string (lists of prompts and token ids are not supported)');
  await refused({ prompt: 'a', suffix: 'b', best_of: 2 }, 'unsupported request fields: suffix, best_of');
  await refused({ prompt: 'a', tools: [] }, 'unsupported request field: tools');
  await refused({ prompt: 'a', echo: 'yes' }, 'echo must be a boolean');
  await refused({ prompt: 'a', temperature: NaN }, 'temperature must be a finite number, got NaN');
  assert.deepEqual(reachedText, []);
  const request = { prompt: 'a', echo: true, n: 2, logprobs: true, top_logprobs: 1, stop: ['x'], seed: 1 };
  await legacy.create(request);
  await legacy.create({ ...request, stream: true, stream_options: { include_usage: true } });
  assert.deepEqual(reachedText.map(([method]) => method), ['completeText', 'streamText']);
  assert.equal(reachedText[0][1], request);
});

/** The message JSON.parse gives for `text` in this Node (the same V8 as the check's). */
function jsonError(text) {
  try {
    JSON.parse(text);
  } catch (error) {
    return error.message;
  }
  throw new Error(`${text} parsed`);
}
