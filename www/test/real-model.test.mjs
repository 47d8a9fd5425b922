// The real test model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M) in Chromium: one load (download with
// SHA-256 check into IndexedDB, then to the GPU) and one greedy chat that must reproduce
// llama.cpp's reply from tests/fixtures/golden/chat_completion.json (SwiftShader runs WebGPU on
// the CPU, so this takes minutes); then a second load, from IndexedDB, for its throughput.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REAL_MODEL, REPO_ROOT, openSuite } from './browser.mjs';

const GOLDEN_CASE = 'multi_turn_system';
const MAX_TOKENS = 10;

let suite;
let golden;

before(async () => {
  suite = await openSuite('real-model', { models: [REAL_MODEL.file] });
  const fixture = JSON.parse(await readFile(path.join(REPO_ROOT, 'tests/fixtures/golden/chat_completion.json'), 'utf8'));
  golden = fixture.cases.find((c) => c.name === GOLDEN_CASE);
  assert.ok(golden, `no case ${GOLDEN_CASE} in chat_completion.json`);
  // The case fits in MAX_TOKENS: its reply and end-of-turn token are all generated.
  assert.ok(golden.generated_ids.length <= MAX_TOKENS);
  assert.equal(golden.finish_reason, 'stop');
});

after(async () => {
  await suite?.close();
});

const helpers = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/test/page-helpers.mjs'))[n](...a), [name, args]);

test(`(h) the real model's greedy reply to ${GOLDEN_CASE} equals llama.cpp's`, { timeout: 20 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    const loaded = await helpers(page, 'loadEngine', { model: REAL_MODEL.url, sha256: REAL_MODEL.sha256 });
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    assert.equal(loaded.last.tensorsDone, loaded.last.tensorsTotal);
    const mb = REAL_MODEL.size / 1e6;
    t.diagnostic(`real model network → IndexedDB + GPU: ${mb.toFixed(1)} MB in ${loaded.streamMs.toFixed(0)} ms = ${(mb / (loaded.streamMs / 1000)).toFixed(1)} MB/s (whole load ${(loaded.loadMs / 1000).toFixed(1)} s)`);

    // Streaming the 491 MB file kept wasm memory small: what remains is the parsed header, the
    // tokenizer and the chat template (wasm memory never shrinks, so this is the peak).
    const { wasmMemoryBytes } = await page.evaluate(() => globalThis.engine.runtimeStats());
    t.diagnostic(`wasm memory after loading the real model: ${(wasmMemoryBytes / 2 ** 20).toFixed(1)} MiB`);
    // The target: 64 MB plus the header (the first 8 MiB of the file hold it).
    assert.ok(wasmMemoryBytes <= 72 * 2 ** 20, `wasm memory ${wasmMemoryBytes}`);

    const reply = await helpers(page, 'complete', { messages: golden.messages, temperature: 0, max_tokens: MAX_TOKENS });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    const { completion } = reply;
    t.diagnostic(`usage: ${JSON.stringify(completion.usage)}`);
    assert.equal(completion.choices[0].message.content, golden.text);
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.equal(completion.usage.prompt_tokens, golden.prompt_ids.length);
  });
});

test('(h) a second load of the real model comes from IndexedDB', { timeout: 5 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    suite.server.clearLog();
    const loaded = await helpers(page, 'loadEngine', { model: REAL_MODEL.url, sha256: REAL_MODEL.sha256 });
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    assert.deepEqual(loaded.sources, ['cache-read']);
    assert.deepEqual(suite.server.requestsFor(REAL_MODEL.url), []);
    const mb = REAL_MODEL.size / 1e6;
    t.diagnostic(`real model IndexedDB → GPU: ${mb.toFixed(1)} MB in ${loaded.streamMs.toFixed(0)} ms = ${(mb / (loaded.streamMs / 1000)).toFixed(1)} MB/s (whole load ${(loaded.loadMs / 1000).toFixed(1)} s)`);
  });
});
