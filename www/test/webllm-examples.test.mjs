// WebLLM-style examples (www/examples/webllm: get-started, streaming, json-mode, json-schema,
// function-calling, multi-round chat, text completion, web worker), written against WebLLM's API
// with only the import and the model changed, in a fresh app with the packed package installed:
// `tsc` type-checks them against the package's published types and against WebLLM's own
// (@mlc-ai/web-llm, a dev dependency for this alone), and they run with their own
// checks in headless Chromium with the tiny model under Vite's dev server (no config), after
// `vite build`, and (get-started) bundled by esbuild.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { build as esbuild } from 'esbuild';
import { MODELS_DIR, REPO_ROOT, TINY_MODEL, openSuite } from './browser.mjs';
import { makeApp, packPackage, runApp } from './bundled-app.mjs';
import { startServer } from './server.mjs';

const run = promisify(execFile);
const EXAMPLES = path.join(REPO_ROOT, 'www/examples/webllm');
const NAMES = ['get-started', 'streaming', 'json-mode', 'json-schema', 'function-calling', 'multi-round-chat', 'text-completion', 'web-worker'];
const TIMEOUT_MS = 900_000;

let suite;
let packDir;
let app;

before(async () => {
  suite = await openSuite('webllm-examples', { models: [TINY_MODEL.file] });
  packDir = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-pack-'));
  const pack = await packPackage(packDir);
  app = await makeApp(EXAMPLES, pack.tarball);
});

after(async () => {
  await app?.remove();
  if (packDir) await rm(packDir, { recursive: true, force: true });
  await suite?.close();
});

test('tsc --noEmit over the examples, against the installed package\'s types, reports no error', async () => {
  const tsc = path.join(REPO_ROOT, 'www/node_modules/typescript/bin/tsc');
  const { stdout, stderr } = await run(process.execPath, [tsc, '-p', app.root], { cwd: app.root }).catch((error) => error);
  assert.equal(`${stdout}${stderr}`, '');
});

test('tsc --noEmit over the examples against WebLLM\'s own published types (@mlc-ai/web-llm for the import) reports no error', async () => {
  // What keeps them WebLLM programs: only WebLLM's API, and its looser types (optional `usage`,
  // nullable `logprobs.content`) handled. skipLibCheck: WebLLM's declarations name its runtime's
  // types, which its package does not ship.
  const tsc = path.join(REPO_ROOT, 'www/node_modules/typescript/bin/tsc');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-webllm-types-'));
  try {
    await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({
      extends: path.join(EXAMPLES, 'tsconfig.json'),
      compilerOptions: { skipLibCheck: true, paths: { 'qwen-webgpu': [path.join(REPO_ROOT, 'www/node_modules/@mlc-ai/web-llm')] } },
      include: [path.join(EXAMPLES, 'src/**/*.ts')],
    }));
    const { stdout, stderr } = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).catch((error) => error);
    assert.equal(`${stdout}${stderr}`, '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Checks an app run: every example ran its own checks and printed something. */
function assertRan(result, names) {
  assert.equal(result.ok, true, result.error);
  assert.deepEqual(Object.keys(result.outputs), names);
  for (const name of names) assert.ok(result.outputs[name].length > 0, name);
}

for (const [serving, serve] of [['vite dev', (a) => a.serveDev()], ['vite build', (a) => a.serveBuild()]]) {
  test(`${serving}: every example runs and passes its checks`, { timeout: TIMEOUT_MS }, async () => {
    const server = await serve(app);
    try {
      const { result } = await runApp(suite.context, `${server.origin}/`, TIMEOUT_MS);
      assertRan(result, NAMES);
      // The JSON examples' outputs parse; the schema's fields have their types.
      const schemaOutput = JSON.parse(result.outputs['json-schema'][0]);
      assert.equal(typeof schemaOutput.is_accepted, 'boolean');
    } finally {
      await server.close();
    }
  });
}

test('esbuild: get-started bundled with no configuration runs', { timeout: TIMEOUT_MS }, async () => {
  const outdir = path.join(app.root, 'esbuild-out');
  await esbuild({
    entryPoints: [path.join(app.root, 'src/main.ts')],
    bundle: true,
    splitting: true,
    format: 'esm',
    outdir,
    absWorkingDir: app.root,
    logLevel: 'silent',
  });
  await writeFile(path.join(outdir, 'index.html'),
    '<!doctype html><p id="init-label"></p><pre id="output"></pre><script type="module" src="./main.js"></script>\n');
  const server = await startServer({ root: outdir, mounts: { '/models/': MODELS_DIR } });
  try {
    const { result } = await runApp(suite.context, `${server.origin}/?example=get-started`, TIMEOUT_MS);
    assertRan(result, ['get-started']);
  } finally {
    await server.close();
  }
});
