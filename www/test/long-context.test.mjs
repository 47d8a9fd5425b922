// Long contexts in Chromium (WebGPU on SwiftShader) with the tiny random model: a chat of more
// than 3,000 prompt tokens whose greedy reply must equal llama.cpp's
// (tests/fixtures/golden/long_context.json, case tiny_long, made by
// scripts/golden/make-long-goldens.py), and a 32,768-token context (YaRN x8 over the tiny
// model's 4,096) that the engine accepts and serves.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, TINY_MODEL, openSuite } from './browser.mjs';

/** Greedy tokens are compared only where llama.cpp's top-1/top-2 margin exceeds this. */
const NEAR_TIE = 0.05;

let suite;
let golden;

before(async () => {
  suite = await openSuite('long-context', { models: [TINY_MODEL.file] });
  const fixture = JSON.parse(await readFile(path.join(REPO_ROOT, 'tests/fixtures/golden/long_context.json'), 'utf8'));
  golden = fixture.cases.find((c) => c.name === 'tiny_long');
  assert.ok(golden, 'no case tiny_long in long_context.json');
  assert.ok(golden.n_tokens >= 3000, `tiny_long has ${golden.n_tokens} prompt tokens`);
  // The reply is compared as text, so every step of it must be clear of near-ties.
  assert.ok(golden.margins.every((m) => m > NEAR_TIE), `tiny_long has a near-tie: ${golden.margins}`);
  assert.equal(golden.stop_id, null, 'tiny_long runs its whole length');
});

after(async () => {
  await suite?.close();
});

const helpers = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/test/page-helpers.mjs'))[n](...a), [name, args]);

test('a chat of more than 3,000 tokens gets llama.cpp\'s greedy reply', { timeout: 15 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    const loaded = await helpers(page, 'loadEngine', { model: TINY_MODEL.url, contextLength: 4096 });
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    const started = Date.now();
    const reply = await helpers(page, 'complete', {
      messages: golden.messages,
      temperature: 0,
      max_tokens: golden.generated_ids.length,
    });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    const { completion } = reply;
    t.diagnostic(`${golden.n_tokens}-token prompt + ${golden.generated_ids.length} tokens in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(completion.usage)}`);
    assert.equal(completion.usage.prompt_tokens, golden.n_tokens);
    assert.equal(completion.usage.completion_tokens, golden.generated_ids.length);
    assert.equal(completion.choices[0].message.content, golden.generated_text);
  });
});

test('the engine opens a 32,768-token context (YaRN x8 over the tiny model\'s 4,096) and serves it', { timeout: 5 * 60 * 1000 }, async (t) => {
  await suite.withPage(t, async (page) => {
    const loaded = await helpers(page, 'loadEngine', {
      model: TINY_MODEL.url,
      contextLength: 32768,
      ropeScaling: { type: 'yarn', factor: 8, originalContextLength: 4096 },
    });
    assert.equal(loaded.ok, true, `load failed: ${JSON.stringify(loaded.error)}`);
    const stats = await page.evaluate(() => globalThis.engine.runtimeStats());
    assert.equal(stats.contextLength, 32768);
    const reply = await helpers(page, 'complete', { messages: [{ role: 'user', content: 'Hi' }], temperature: 0, max_tokens: 3 });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    assert.equal(reply.completion.usage.completion_tokens, 3);

    // A longer context than the stretched model reaches is capped at its limit.
    await page.evaluate(() => globalThis.engine.unload());
    const tooLong = await helpers(page, 'loadEngine', {
      model: TINY_MODEL.url,
      contextLength: 65536,
      ropeScaling: { type: 'yarn', factor: 8, originalContextLength: 4096 },
    });
    assert.equal(tooLong.ok, true, `load failed: ${JSON.stringify(tooLong.error)}`);
    const capped = await page.evaluate(() => globalThis.engine.runtimeStats());
    assert.equal(capped.contextLength, 32768);
  });
});
