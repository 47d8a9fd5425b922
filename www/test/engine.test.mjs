// The engine in the page, end to end in Chromium (WebGPU on SwiftShader) with the tiny random
// model: download with a resumed interruption, loads from IndexedDB, greedy chat, streaming,
// abort, and the typed errors (integrity, quota, WebGPU missing, context overflow, bad request).
// The tests share one browser profile, in file order: the first one leaves the model cached.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MODELS_DIR, TINY_MODEL, openSuite } from './browser.mjs';

let suite;
let tiny;
let tinyUrl;

/** Explain-a-hash-map is 40 prompt tokens with the template's default system message. */
const HASH_MAP_MESSAGES = [{ role: 'user', content: 'Explain what a hash map is in two sentences.' }];
const HASH_MAP_PROMPT_TOKENS = 40;

before(async () => {
  suite = await openSuite('engine', { models: [TINY_MODEL.file] });
  const bytes = await readFile(path.join(MODELS_DIR, TINY_MODEL.file));
  tiny = { url: TINY_MODEL.url, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  tinyUrl = `${suite.server.origin}${tiny.url}`;
});

after(async () => {
  await suite?.close();
});

const helpers = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/test/page-helpers.mjs'))[n](...a), [name, args]);
const api = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/dist/index.js'))[n](...a), [name, args]);

function assertLoaded(result) {
  assert.equal(result.ok, true, `load failed: ${JSON.stringify(result.error)}`);
  assert.deepEqual(result.last.phase, 'upload');
  assert.equal(result.last.tensorsDone, result.last.tensorsTotal);
  assert.equal(result.last.bytesDone, result.last.bytesTotal);
}

function assertCompletion(completion, { maxTokens }) {
  assert.match(completion.id, /^chatcmpl-/);
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.model, TINY_MODEL.file);
  assert.ok(Math.abs(completion.created - Date.now() / 1000) < 600);
  assert.equal(completion.choices.length, 1);
  const [choice] = completion.choices;
  assert.equal(choice.index, 0);
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  const { usage } = completion;
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  if (choice.finish_reason === 'length') assert.equal(usage.completion_tokens, maxTokens);
  else assert.equal(choice.finish_reason, 'stop');
}

test('(c) an interrupted download resumes with a Range request, and the model then works', async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    suite.server.cutAt(tiny.url, 10_000_000);
    const loaded = await helpers(page, 'loadEngine', { model: tiny.url, sha256: tiny.sha256 });
    assertLoaded(loaded);
    assert.deepEqual(loaded.sources, ['download']);
    const requests = suite.server.requestsFor(tiny.url);
    // The header probe, the download cut at 10 MB, and its resumption from the first unstored
    // chunk (the tiny model is one 32 MiB chunk, so byte 0) that carries the rest.
    assert.deepEqual(requests.map(({ range, status, cut }) => ({ range, status, cut })), [
      { range: `bytes=0-${8 * 1024 * 1024 - 1}`, status: 206, cut: false },
      { range: 'bytes=0-', status: 206, cut: true },
      { range: 'bytes=0-', status: 206, cut: false },
    ]);
    assert.equal(requests[1].bytesSent, 10_000_000);
    assert.equal(requests[2].bytesSent, tiny.size);
    assert.deepEqual(await api(page, 'listCachedModels'), [{ urls: [tinyUrl], bytes: tiny.size, totalBytes: tiny.size, complete: true }]);

    const reply = await helpers(page, 'complete', { messages: HASH_MAP_MESSAGES, temperature: 0, max_tokens: 3 });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    assertCompletion(reply.completion, { maxTokens: 3 });
    assert.equal(reply.completion.usage.prompt_tokens, HASH_MAP_PROMPT_TOKENS);
  });
});

test('(b) a second load comes from IndexedDB without any request for the model', async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.resetFaults();
    suite.server.clearLog();
    const loaded = await helpers(page, 'loadEngine', { model: tiny.url, sha256: tiny.sha256 });
    assertLoaded(loaded);
    assert.deepEqual(loaded.sources, ['cache-read']);
    assert.deepEqual(suite.server.requestsFor(tiny.url), []);
    const mbPerS = tiny.size / 1e6 / (loaded.streamMs / 1000);
    t.diagnostic(`tiny model IndexedDB → GPU: ${(tiny.size / 1e6).toFixed(1)} MB in ${loaded.streamMs.toFixed(0)} ms = ${mbPerS.toFixed(1)} MB/s (whole load ${loaded.loadMs.toFixed(0)} ms)`);
  });
});

test('(a) greedy chat: the streamed text equals the non-streamed text; a follow-up turn reuses the KV cache', async (t) => {
  await suite.withPage(t, async (page) => {
    assertLoaded(await helpers(page, 'loadEngine', { model: tiny.url }));
    const request = { messages: HASH_MAP_MESSAGES, temperature: 0, max_tokens: 8 };
    const whole = await helpers(page, 'complete', request);
    assert.equal(whole.ok, true, JSON.stringify(whole.error));
    assertCompletion(whole.completion, { maxTokens: 8 });
    const { usage } = whole.completion;
    assert.equal(usage.prompt_tokens, HASH_MAP_PROMPT_TOKENS);
    assert.equal(usage.cached_prompt_tokens, 0);
    assert.ok(whole.completion.choices[0].message.content.length > 0);

    await page.evaluate(() => globalThis.engine.resetChat());
    const streamed = await helpers(page, 'collectStream', request);
    assert.equal(streamed.ok, true, JSON.stringify(streamed.error));
    assert.equal(streamed.text, whole.completion.choices[0].message.content);
    const [first] = streamed.chunks;
    assert.equal(first.object, 'chat.completion.chunk');
    assert.equal(first.choices[0].delta.role, 'assistant');
    assert.equal(first.choices[0].finish_reason, null);
    assert.ok(streamed.chunks.every((c) => c.id === first.id && c.model === TINY_MODEL.file));
    assert.ok(streamed.chunks.slice(0, -1).every((c) => c.usage === undefined && c.choices[0].finish_reason === null));
    assert.deepEqual(streamed.last.choices[0].delta, { role: 'assistant' });
    assert.ok(streamed.chunks.every((c) => c.choices[0].delta.role === 'assistant'));
    assert.equal(streamed.last.choices[0].finish_reason, whole.completion.choices[0].finish_reason);
    assert.equal(streamed.last.usage.prompt_tokens, HASH_MAP_PROMPT_TOKENS);
    assert.equal(streamed.last.usage.completion_tokens, usage.completion_tokens);
    assert.equal(streamed.last.usage.cached_prompt_tokens, 0);

    const followUp = await helpers(page, 'complete', {
      messages: [...HASH_MAP_MESSAGES, { role: 'assistant', content: streamed.text }, { role: 'user', content: 'Shorter, please.' }],
      temperature: 0,
      max_tokens: 2,
    });
    assert.equal(followUp.ok, true, JSON.stringify(followUp.error));
    // Everything up to the first reply was already in the KV cache.
    assert.ok(followUp.completion.usage.cached_prompt_tokens >= HASH_MAP_PROMPT_TOKENS, JSON.stringify(followUp.completion.usage));
    const stats = await page.evaluate(() => globalThis.engine.runtimeStats());
    assert.equal(typeof stats.adapter, 'string');
    assert.equal(typeof stats.f16, 'boolean');
    assert.equal(stats.contextLength > 0, true);
    assert.equal(stats.cachedTokens > HASH_MAP_PROMPT_TOKENS, true);
    assert.deepEqual(stats.lastUsage, followUp.completion.usage);
    await page.evaluate(() => globalThis.engine.unload());
    const afterUnload = await helpers(page, 'complete', request);
    assert.equal(afterUnload.error.code, 'invalid-request');
  });
});

test('(f) aborting a stream ends it with finish_reason abort, and the engine serves the next request', async (t) => {
  await suite.withPage(t, async (page) => {
    assertLoaded(await helpers(page, 'loadEngine', { model: tiny.url }));
    const aborted = await helpers(page, 'collectStream', { messages: HASH_MAP_MESSAGES, temperature: 0, max_tokens: 64 }, { abortAfterChunks: 2 });
    assert.equal(aborted.ok, true, JSON.stringify(aborted.error));
    assert.equal(aborted.last.choices[0].finish_reason, 'abort');
    // Cancellation stops generation within one step of the abort.
    assert.ok(aborted.last.usage.completion_tokens <= 4, JSON.stringify(aborted.last.usage));

    const next = await helpers(page, 'complete', { messages: HASH_MAP_MESSAGES, temperature: 0, max_tokens: 3 });
    assert.equal(next.ok, true, JSON.stringify(next.error));
    assert.equal(next.completion.choices[0].finish_reason, 'length');
    assert.equal(next.completion.usage.completion_tokens, 3);

    // A signal that fired before the request's turn: nothing is generated.
    const preAborted = await page.evaluate(async (messages) => {
      const controller = new AbortController();
      controller.abort();
      const completion = await globalThis.engine.chat.completions.create({ messages, temperature: 0, max_tokens: 3, signal: controller.signal });
      return { finish: completion.choices[0].finish_reason, tokens: completion.usage.completion_tokens };
    }, HASH_MAP_MESSAGES);
    assert.deepEqual(preAborted, { finish: 'abort', tokens: 0 });

    // Leaving a `for await` early cancels too; requests queue behind it in call order.
    const order = await page.evaluate(async (messages) => {
      const engine = globalThis.engine;
      const events = [];
      const stream = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 64, stream: true });
      const queued = engine.chat.completions.create({ messages, temperature: 0, max_tokens: 1 }).then((c) => {
        events.push(`queued:${c.choices[0].finish_reason}`);
      });
      for await (const chunk of stream) {
        events.push('chunk');
        break;
      }
      await queued;
      return events;
    }, HASH_MAP_MESSAGES);
    assert.deepEqual(order, ['chunk', 'queued:length']);
  });
});

test('(d) a corrupted byte with the right SHA-256 fails with integrity and caches nothing; the fixed file loads', async (t) => {
  await suite.withPage(t, async (page) => {
    assert.equal(await api(page, 'deleteCachedModel', tiny.url), true);
    suite.server.corrupt(tiny.url, tiny.size - 1000);
    const corrupted = await helpers(page, 'loadEngine', { model: tiny.url, sha256: tiny.sha256 });
    assert.equal(corrupted.ok, false);
    assert.equal(corrupted.error.code, 'integrity');
    assert.equal(corrupted.error.className, 'IntegrityError');
    assert.equal(corrupted.error.isQwenError, true);
    assert.deepEqual(await api(page, 'listCachedModels'), []);

    suite.server.resetFaults();
    assertLoaded(await helpers(page, 'loadEngine', { model: tiny.url, sha256: tiny.sha256 }));
    assert.deepEqual(await api(page, 'listCachedModels'), [{ urls: [tinyUrl], bytes: tiny.size, totalBytes: tiny.size, complete: true }]);
  });
});

test('(e) too little free storage fails with quota-exceeded (needed and free bytes), nothing cached', async (t) => {
  await suite.withPage(t, async (page) => {
    assert.equal(await api(page, 'deleteCachedModel', tiny.url), true);
    const result = await helpers(page, 'loadEngine', { model: tiny.url });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'quota-exceeded');
    assert.equal(result.error.className, 'QuotaExceededError');
    assert.equal(result.error.neededBytes, tiny.size);
    assert.equal(result.error.freeBytes, 1_000_000);
    assert.deepEqual(await api(page, 'listCachedModels'), []);
  }, '?quota-free=1000000');
});

test('(e) an IndexedDB write failing with QuotaExceededError fails with quota-exceeded and leaves nothing stored', async (t) => {
  await suite.withPage(t, async (page) => {
    const result = await helpers(page, 'loadEngine', { model: tiny.url });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'quota-exceeded');
    assert.equal(result.error.neededBytes, tiny.size);
    assert.deepEqual(await api(page, 'listCachedModels'), []);
    assert.equal(await helpers(page, 'storedChunkCount'), 0);
  }, '?fail-put-after=0');
});

test('aborting a load rejects with AbortedError', async (t) => {
  await suite.withPage(t, async (page) => {
    const result = await helpers(page, 'loadEngine', { model: tiny.url }, undefined, 0);
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'aborted');
    assert.equal(result.error.className, 'AbortedError');
  });
});

test('typed errors: no WebGPU, context overflow, invalid request', async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    const noGpu = await helpers(page, 'loadEngine', { model: tiny.url });
    assert.equal(noGpu.error.code, 'webgpu-unavailable');
    assert.equal(noGpu.error.className, 'WebGpuUnavailableError');
    // Found out before any byte of the model was asked for.
    assert.deepEqual(suite.server.requestsFor(tiny.url), []);
  }, '?no-webgpu');
  await suite.withPage(t, async (page) => {
    assertLoaded(await helpers(page, 'loadEngine', { model: tiny.url, contextLength: 64 }));
    const long = await helpers(page, 'complete', { messages: [{ role: 'user', content: 'word '.repeat(100) }], max_tokens: 4 });
    assert.equal(long.error.code, 'context-overflow');
    assert.equal(long.error.className, 'ContextOverflowError');
    const empty = await helpers(page, 'complete', { messages: [] });
    assert.equal(empty.error.code, 'invalid-request');
    assert.equal(empty.error.className, 'InvalidRequestError');
    const badOptions = await helpers(page, 'loadEngine', { model: tiny.url, contextLength: -1 });
    assert.equal(badOptions.error.code, 'invalid-request');
    // The engine is still usable after refused requests.
    const ok = await helpers(page, 'complete', { messages: HASH_MAP_MESSAGES, temperature: 0, max_tokens: 1 });
    assert.equal(ok.ok, true, JSON.stringify(ok.error));
  });
});
