// scripts/serve-demo end to end: it starts the demo's server on the asked port, prints the demo
// URLs for the test models, and serves the page, its modules with JavaScript types, the models
// under /models/ with Range requests, and nothing outside the repository or hidden (.git).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MODELS_DIR, REPO_ROOT, TINY_MODEL, requirePrerequisites } from './browser.mjs';

let child;
let origin;
let output = '';

/** A port that was free a moment ago. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

before(async () => {
  requirePrerequisites({ models: [TINY_MODEL.file] });
  if (!existsSync(path.join(REPO_ROOT, 'www/node_modules/marked'))) throw new Error('missing www/node_modules (cd www && npm ci)');
  const port = await freePort();
  child = spawn(path.join(REPO_ROOT, 'scripts/serve-demo'), ['--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (data) => { output += data; });
  child.stderr.on('data', (data) => { output += data; });
  const started = Date.now();
  while (!output.includes('Press Ctrl-C to stop.')) {
    if (child.exitCode !== null) throw new Error(`serve-demo exited (${child.exitCode}):\n${output}`);
    if (Date.now() - started > 10_000) throw new Error(`serve-demo did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  origin = `http://localhost:${port}`;
});

after(() => {
  child?.kill('SIGTERM');
});

test('serve-demo prints the demo URL with the tiny model mapped under /models/', () => {
  const lines = output.trim().split('\n');
  assert.equal(lines[0], `Serving ${REPO_ROOT} on ${origin} (models from ${MODELS_DIR} at /models/)`);
  assert.ok(lines.includes(`Demo with the tiny test model (random weights, fast): ${origin}/www/demo/?model=/models/${TINY_MODEL.file}`), output);
});

test('the page, its modules and its libraries are served with the right types', async () => {
  const page = await fetch(`${origin}/www/demo/?model=/models/${TINY_MODEL.file}`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(await page.text(), /<script type="module" src="app.js"><\/script>/);
  for (const [url, type] of [
    ['/www/demo/app.js', 'text/javascript; charset=utf-8'],
    ['/www/demo/styles.css', 'text/css; charset=utf-8'],
    ['/www/dist/index.js', 'text/javascript; charset=utf-8'],
    ['/www/pkg/qwen_webgpu_bg.wasm', 'application/wasm'],
    ['/www/node_modules/pdfjs-dist/build/pdf.worker.min.mjs', 'text/javascript; charset=utf-8'],
    ['/www/node_modules/dompurify/dist/purify.es.mjs', 'text/javascript; charset=utf-8'],
  ]) {
    const response = await fetch(`${origin}${url}`, { method: 'HEAD' });
    assert.equal(response.status, 200, url);
    assert.equal(response.headers.get('content-type'), type, url);
  }
  const redirect = await fetch(`${origin}/www/demo`, { redirect: 'manual' });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.get('location'), '/www/demo/');
});

test('models are served with Range requests and validators', async () => {
  const size = (await stat(path.join(MODELS_DIR, TINY_MODEL.file))).size;
  const head = await fetch(`${origin}/models/${TINY_MODEL.file}`, { headers: { Range: 'bytes=0-3' } });
  assert.equal(head.status, 206);
  assert.equal(head.headers.get('content-range'), `bytes 0-3/${size}`);
  assert.equal(Buffer.from(await head.arrayBuffer()).toString('latin1'), 'GGUF');
  assert.match(head.headers.get('etag'), /^"[0-9a-f]+-[0-9a-f]+"$/);
  const tail = await fetch(`${origin}/models/${TINY_MODEL.file}`, { headers: { Range: `bytes=${size - 10}-` } });
  assert.equal(tail.status, 206);
  assert.equal((await tail.arrayBuffer()).byteLength, 10);
  const past = await fetch(`${origin}/models/${TINY_MODEL.file}`, { headers: { Range: `bytes=${size}-` } });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get('content-range'), `bytes */${size}`);
});

test('nothing outside the repository, the models or hidden is served', async () => {
  for (const url of ['/.git/config', '/models/../../.bashrc', '/%2e%2e/%2e%2e/etc/passwd', '/www/demo/missing.js']) {
    const response = await fetch(`${origin}${url}`);
    assert.equal(response.status, 404, url);
  }
  const post = await fetch(`${origin}/www/demo/`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
});
