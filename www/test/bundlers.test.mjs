// The packed package in a fresh app with zero configuration: Vite 7's dev server (which
// pre-bundles the package into node_modules/.vite/deps/) and `vite build`, each in page and
// worker mode, load the tiny model and answer with the same greedy text as the package's own
// build served as files. Also what the tarball holds (licences, declarations, sources of the
// source maps) and does not (the raw .wasm: the package embeds it).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { TINY_MODEL, openSuite } from './browser.mjs';
import { makeApp, packPackage, runApp } from './bundled-app.mjs';

const APP_SOURCES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bundled-app');
const MESSAGES = [{ role: 'user', content: 'Explain what a hash map is in two sentences.' }];

let suite;
let packDir;
let pack;
let app;
let expectedText;

before(async () => {
  suite = await openSuite('bundlers', { models: [TINY_MODEL.file] });
  packDir = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-pack-'));
  pack = await packPackage(packDir);
  app = await makeApp(APP_SOURCES, pack.tarball);
  // The reference: the package's own dist/ served as files, in the test page.
  const page = await suite.openPage();
  try {
    expectedText = await page.evaluate(async ([model, messages]) => {
      const { createEngine } = await import('/www/dist/index.js');
      const engine = await createEngine({ model });
      const reply = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 5 });
      await engine.unload();
      return reply.choices[0].message.content;
    }, [TINY_MODEL.url, MESSAGES]);
  } finally {
    await page.close();
  }
});

after(async () => {
  await app?.remove();
  if (packDir) await rm(packDir, { recursive: true, force: true });
  await suite?.close();
});

test('the tarball holds the licences, the worker entry, declarations and the maps\' sources, and no raw .wasm', () => {
  const files = new Set(pack.files);
  for (const file of ['LICENSE-MIT', 'LICENSE-APACHE', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/worker-entry.js',
    'dist/index.js.map', 'src/index.ts', 'pkg/qwen_webgpu.js', 'pkg/qwen_webgpu_wasm_base64.js']) {
    assert.ok(files.has(file), `${file} missing from the tarball`);
  }
  assert.deepEqual(pack.files.filter((file) => file.endsWith('.wasm')), []);
});

for (const [serving, serve] of [['vite dev', (a) => a.serveDev()], ['vite build', (a) => a.serveBuild()]]) {
  for (const mode of ['page', 'worker']) {
    test(`${serving}, ${mode} mode: the installed package loads the model and replies`, async () => {
      const server = await serve(app);
      try {
        const { result } = await runApp(suite.context, `${server.origin}/?mode=${mode}`);
        assert.equal(result.ok, true, result.error);
        assert.equal(result.mode, mode);
        assert.equal(result.reply, expectedText);
        assert.equal(result.usage.completion_tokens, 5);
      } finally {
        await server.close();
      }
    });
  }
}
