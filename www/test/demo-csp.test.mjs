// The demo's Content-Security-Policy as its server sends it (Node only): a header on the page
// and on each worker script (a worker obeys only its own script's header, never the page's
// meta tag), the same policy as index.html's meta tag, and none on the package's test page.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DEMO_CSP, serve } from '../demo/serve.mjs';
import { REPO_ROOT } from './browser.mjs';

let server;
let origin;

before(async () => {
  server = await serve({ port: 0 });
  origin = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

test('the policy lets the engine worker compile WebAssembly, and connect only to this site and Hugging Face', () => {
  const directives = Object.fromEntries(DEMO_CSP.split(';').map((part) => {
    const [name, ...sources] = part.trim().split(/\s+/);
    return [name, sources];
  }));
  assert.deepEqual(directives['script-src'], ["'self'", "'wasm-unsafe-eval'"]);
  assert.deepEqual(directives['worker-src'], ["'self'"]);
  assert.deepEqual(directives['connect-src'], ["'self'", 'https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co']);
  assert.deepEqual(directives['default-src'], ["'self'"]);
  assert.deepEqual(directives['object-src'], ["'none'"]);
});

test('the page and its worker scripts carry the policy as a header, equal to the page\'s meta tag', async () => {
  const html = await readFile(path.join(REPO_ROOT, 'www/demo/index.html'), 'utf8');
  const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
  assert.equal(meta, DEMO_CSP);
  for (const url of [
    '/www/demo/',
    '/www/demo/index.html',
    '/www/demo/engine-worker.js',
    '/www/demo/doc-worker.js',
    '/www/node_modules/pdfjs-dist/build/pdf.worker.min.mjs',
  ]) {
    const response = await fetch(`${origin}${url}`, { method: 'HEAD' });
    assert.equal(response.status, 200, url);
    assert.equal(response.headers.get('content-security-policy'), DEMO_CSP, url);
  }
});

test('other pages of the repository (the package\'s test page) get no policy', async () => {
  const response = await fetch(`${origin}/www/test/page.html`, { method: 'HEAD' });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-security-policy'), null);
});
