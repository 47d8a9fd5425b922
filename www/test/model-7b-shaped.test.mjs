// The model at the product's real size in Chromium: the random model shaped like
// Qwen2.5-7B-Instruct Q4_K_M (two gguf-split shards, 4.68 GB, from scripts/make-7b-shaped-model)
// loads through createEngine from its two shard URLs, into IndexedDB and the GPU (SwiftShader),
// with wasm memory staying small; a second load (in the page, then in a worker) sends no model
// bytes; a greedy raw-prompt completion there gives the native CLI's token ids
// (tests/fixtures/greedy_7b_shaped_native.json, from scripts/7b-shaped-native-greedy.py); too
// little storage fails with the typed quota error before the weights are downloaded.
//
// Minutes and 4.7 GB of disk, so only `scripts/test --7b` runs it: it sets QWEN_7B_SHAPED_MODEL
// to the first shard. Without the variable these tests are skipped, saying so; with it, a
// missing file fails them.

import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, openSuite } from './browser.mjs';

const FIRST_SHARD = process.env.QWEN_7B_SHAPED_MODEL;
const skip = FIRST_SHARD ? false : 'needs the 7B-shaped model: run scripts/test --7b';
const MiB = 2 ** 20;
/** What createEngine reads of each shard to check its header before downloading it. */
const HEADER_PREFIX = 8 * MiB;

let suite;
/** [{ url, size, sha256 }] of the two shards, from the golden fixture's provenance. */
let shards;
/** The native CLI's greedy continuation on the same shards. */
let nativeGreedy;

before(async () => {
  if (skip) return;
  const fixture = JSON.parse(await readFile(path.join(REPO_ROOT, 'tests/fixtures/golden/logits_7b_shaped.json'), 'utf8'));
  const dir = path.dirname(FIRST_SHARD);
  shards = fixture.provenance.shards.map((s) => {
    const file = path.join(dir, s.file);
    assert.ok(existsSync(file), `${file} is missing (scripts/make-7b-shaped-model makes it)`);
    assert.equal(statSync(file).size, s.size_bytes, `${file} is not the file the fixture was made from`);
    return { url: `/models-7b/${s.file}`, size: s.size_bytes, sha256: s.sha256 };
  });
  nativeGreedy = JSON.parse(await readFile(path.join(REPO_ROOT, 'tests/fixtures/greedy_7b_shaped_native.json'), 'utf8'));
  assert.deepEqual(nativeGreedy.provenance.shards.map((s) => s.sha256), shards.map((s) => s.sha256),
    'the native greedy fixture was made from other shards than the golden fixture');
  suite = await openSuite('model-7b-shaped', { mounts: { '/models-7b/': dir } });
});

after(async () => {
  await suite?.close();
});

const helpers = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/test/page-helpers.mjs'))[n](...a), [name, args]);
const api = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/dist/index.js'))[n](...a), [name, args]);
const urls = () => shards.map((s) => s.url);
const totalBytes = () => shards.reduce((sum, s) => sum + s.size, 0);
/** Every request the server saw for the shards: [url, Range header]. */
const shardRequests = () => urls().flatMap((url) => suite.server.requestsFor(url).map((r) => [url, r.range]));

test('with less free storage than the model, createEngine fails with quota-exceeded before downloading the weights', { skip }, async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    const free = 4_000_000_000;
    const result = await helpers(page, 'loadEngine', { model: urls() });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'quota-exceeded');
    assert.equal(result.error.className, 'QuotaExceededError');
    assert.equal(result.error.neededBytes, totalBytes());
    assert.equal(result.error.freeBytes, free);
    // Only each shard's header prefix was read (createEngine checks the model before it
    // downloads): requests from byte 0, of at most HEADER_PREFIX bytes.
    const requests = shardRequests();
    assert.ok(requests.length > 0);
    for (const [url, range] of requests) {
      const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(range) ?? [];
      assert.ok(start === '0' && Number(end) < HEADER_PREFIX, `${url}: ${range}`);
    }
    assert.deepEqual(await api(page, 'listCachedModels'), []);
  }, '?quota-free=4000000000');
});

test('createEngine loads it from its two shard URLs, with progress, in little wasm memory', { skip, timeout: 40 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    const loaded = await helpers(page, 'loadEngine', { model: urls(), sha256: shards.map((s) => s.sha256) });
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    assert.deepEqual(loaded.sources, ['download']);
    assert.equal(loaded.last.tensorsDone, loaded.last.tensorsTotal);
    assert.equal(loaded.last.tensorsTotal, 339);
    const mb = totalBytes() / 1e6;
    t.diagnostic(`7B-shaped network → IndexedDB + GPU: ${mb.toFixed(0)} MB in ${(loaded.streamMs / 1000).toFixed(1)} s = ${(mb / (loaded.streamMs / 1000)).toFixed(1)} MB/s (whole load ${(loaded.loadMs / 1000).toFixed(1)} s)`);
    const stats = await page.evaluate(() => globalThis.engine.runtimeStats());
    t.diagnostic(`runtimeStats after loading: ${JSON.stringify(stats)}`);
    assert.ok(stats.wasmMemoryBytes <= 96 * MiB, `wasm memory ${stats.wasmMemoryBytes}`);
    assert.deepEqual(await api(page, 'listCachedModels'), [{
      urls: urls().map((url) => `${suite.server.origin}${url}`), bytes: totalBytes(), totalBytes: totalBytes(), complete: true,
    }]);
  });
});

test('a second load comes from IndexedDB and sends no model bytes', { skip, timeout: 30 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    const loaded = await helpers(page, 'loadEngine', { model: urls(), sha256: shards.map((s) => s.sha256) });
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    assert.deepEqual(loaded.sources, ['cache-read']);
    assert.deepEqual(shardRequests(), []);
    const mb = totalBytes() / 1e6;
    t.diagnostic(`7B-shaped IndexedDB → GPU: ${mb.toFixed(0)} MB in ${(loaded.streamMs / 1000).toFixed(1)} s = ${(mb / (loaded.streamMs / 1000)).toFixed(1)} MB/s (whole load ${(loaded.loadMs / 1000).toFixed(1)} s)`);
    const { wasmMemoryBytes } = await page.evaluate(() => globalThis.engine.runtimeStats());
    assert.ok(wasmMemoryBytes <= 96 * MiB, `wasm memory ${wasmMemoryBytes}`);
  });
});

test('in worker mode it loads from IndexedDB too, with the worker\'s wasm memory as small', { skip, timeout: 30 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    const loaded = await helpers(page, 'loadEngine', { model: urls(), sha256: shards.map((s) => s.sha256) }, '/www/test/engine-worker.mjs');
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    assert.deepEqual(loaded.sources, ['cache-read']);
    assert.equal(loaded.last.tensorsDone, 339);
    assert.deepEqual(shardRequests(), []);
    t.diagnostic(`7B-shaped IndexedDB → GPU in a worker: whole load ${(loaded.loadMs / 1000).toFixed(1)} s`);
    const { wasmMemoryBytes } = await page.evaluate(() => globalThis.engine.runtimeStats());
    assert.ok(wasmMemoryBytes <= 96 * MiB, `wasm memory ${wasmMemoryBytes}`);
  });
});

test('a greedy raw-prompt completion gives the native CLI\'s token ids', { skip, timeout: 40 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    const loaded = await helpers(page, 'loadEngine', { model: urls(), sha256: shards.map((s) => s.sha256) });
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    const { prompt, generated_ids: ids, generated_bytes: expectedBytes } = nativeGreedy;
    assert.ok(ids.length === 2 && expectedBytes.length === 2);
    const { completion, ms } = await page.evaluate(async (prompt) => {
      const started = performance.now();
      const completion = await globalThis.engine.completions.create({ prompt, max_tokens: 2, temperature: 0, logprobs: true, top_logprobs: 2 });
      return { completion, ms: performance.now() - started };
    }, prompt);
    const [choice] = completion.choices;
    assert.equal(completion.usage.prompt_tokens, nativeGreedy.prompt_ids.length);
    assert.equal(completion.usage.completion_tokens, 2);
    // The completion reports each token's bytes, not its id; distinct ids of this vocabulary have
    // distinct bytes, so these are the native ids exactly.
    assert.deepEqual(choice.logprobs.content.map((e) => e.bytes), expectedBytes, `native ids ${ids}`);
    assert.equal(choice.text, nativeGreedy.text);
    const margins = choice.logprobs.content.map((e) => (e.top_logprobs[0].logprob - e.top_logprobs[1].logprob).toFixed(3));
    t.diagnostic(`7B-shaped ${JSON.stringify(prompt)} + 2 greedy tokens on SwiftShader: ${(ms / 1000).toFixed(1)} s (time to first token ${completion.usage.extra.time_to_first_token_s.toFixed(1)} s, then one decode step); ids ${ids}, top-2 margins ${margins}`);
  });
});
