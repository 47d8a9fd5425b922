// chat.completions.create's request checks (Node only, on the compiled dist/: `npm run build`),
// through the Completions object both engines expose, with a backend that records what reaches
// it: a request that is not an object, or holds NaN/±Infinity anywhere (JSON would turn them into
// null, which the wasm engine takes as the default), is refused with an InvalidRequestError that
// names the field, and never reaches the engine.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, test } from 'node:test';

let Completions;
let InvalidRequestError;
/** The requests that reached the backend, as [method, request]. */
const reached = [];
let completions;

before(async () => {
  if (!existsSync(new URL('../dist/completions.js', import.meta.url))) throw new Error('missing www/dist (run npm run build in www/)');
  ({ Completions } = await import('../dist/completions.js'));
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
