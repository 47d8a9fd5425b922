// Worker mode end to end with the tiny model: the engine runs in a module worker
// (www/test/engine-worker.mjs) behind createWorkerEngine; progress, chat, streaming, abort and
// errors cross the message protocol. Its greedy text must equal the in-page engine's.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TINY_MODEL, openSuite } from './browser.mjs';

const WORKER_URL = '/www/test/engine-worker.mjs';
const MESSAGES = [{ role: 'user', content: 'Explain what a hash map is in two sentences.' }];

let suite;

before(async () => {
  suite = await openSuite('worker', { models: [TINY_MODEL.file] });
});

after(async () => {
  await suite?.close();
});

const helpers = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/test/page-helpers.mjs'))[n](...a), [name, args]);

test('(g) worker mode: load with progress, chat, stream, abort, typed errors, stats, unload', async (t) => {
  let inPageText;
  await suite.withPage(t, async (page) => {
    const loaded = await helpers(page, 'loadEngine', { model: TINY_MODEL.url });
    assert.equal(loaded.ok, true, JSON.stringify(loaded.error));
    const reply = await helpers(page, 'complete', { messages: MESSAGES, temperature: 0, max_tokens: 6 });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    inPageText = reply.completion.choices[0].message.content;
  });

  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    const loaded = await helpers(page, 'loadEngine', { model: TINY_MODEL.url }, WORKER_URL);
    assert.equal(loaded.ok, true, JSON.stringify(loaded.error));
    // Progress crossed from the worker: the model came from the cache the page filled.
    assert.deepEqual(loaded.sources, ['cache-read']);
    assert.equal(loaded.last.phase, 'upload');
    assert.equal(loaded.last.tensorsDone, loaded.last.tensorsTotal);
    assert.deepEqual(suite.server.requestsFor(TINY_MODEL.url), []);
    assert.equal(suite.server.requestsFor(WORKER_URL).length, 1);

    const reply = await helpers(page, 'complete', { messages: MESSAGES, temperature: 0, max_tokens: 6 });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    assert.equal(reply.completion.object, 'chat.completion');
    assert.equal(reply.completion.model, TINY_MODEL.file);
    assert.equal(reply.completion.choices[0].message.content, inPageText);
    assert.equal(reply.completion.usage.prompt_tokens, 40);

    await page.evaluate(() => globalThis.engine.resetChat());
    const streamed = await helpers(page, 'collectStream', { messages: MESSAGES, temperature: 0, max_tokens: 6 });
    assert.equal(streamed.ok, true, JSON.stringify(streamed.error));
    assert.equal(streamed.text, inPageText);
    assert.equal(streamed.chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(streamed.last.choices[0].finish_reason, reply.completion.choices[0].finish_reason);
    assert.equal(streamed.last.usage.completion_tokens, reply.completion.usage.completion_tokens);

    const aborted = await helpers(page, 'collectStream', { messages: MESSAGES, temperature: 0, max_tokens: 64 }, { abortAfterChunks: 1 });
    assert.equal(aborted.ok, true, JSON.stringify(aborted.error));
    assert.equal(aborted.last.choices[0].finish_reason, 'abort');
    assert.ok(aborted.last.usage.completion_tokens < 64);

    const after = await helpers(page, 'complete', { messages: MESSAGES, temperature: 0, max_tokens: 2 });
    assert.equal(after.ok, true, JSON.stringify(after.error));
    assert.equal(after.completion.usage.completion_tokens, 2);

    const invalid = await helpers(page, 'complete', { messages: [] });
    assert.equal(invalid.error.code, 'invalid-request');
    assert.equal(invalid.error.className, 'InvalidRequestError');
    assert.equal(invalid.error.isQwenError, true);

    const stats = await page.evaluate(() => globalThis.engine.runtimeStats());
    assert.equal(stats.contextLength > 0, true);
    assert.deepEqual(stats.lastUsage, after.completion.usage);

    await page.evaluate(() => globalThis.engine.unload());
    const unloaded = await helpers(page, 'complete', { messages: MESSAGES, max_tokens: 1 });
    assert.equal(unloaded.error.code, 'invalid-request');
  });
});

test('(g) worker mode: load errors come back as the same classes (integrity from a wrong SHA-256)', async (t) => {
  await suite.withPage(t, async (page) => {
    const result = await helpers(page, 'loadEngine', { model: TINY_MODEL.url, sha256: '0'.repeat(64) }, WORKER_URL);
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'integrity');
    assert.equal(result.error.className, 'IntegrityError');
    assert.equal(result.error.isQwenError, true);
  });
});

test('(g) worker mode: an aborted load rejects with AbortedError', async (t) => {
  await suite.withPage(t, async (page) => {
    const result = await helpers(page, 'loadEngine', { model: TINY_MODEL.url }, WORKER_URL, 0);
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'aborted');
    assert.equal(result.error.className, 'AbortedError');
  });
});
