// Both static servers (the demo's, www/demo/serve.mjs, and the browser tests', test/server.mjs)
// against hostile requests: undecodable paths, encoded slashes, non-Latin-1 directory names in
// redirects, symlinks out of the served directories and foreign Host headers (DNS rebinding).
// Each refusal is followed by a good request, since a refusal must never take a server down.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serve } from '../demo/serve.mjs';
import { startServer } from './server.mjs';

let scratch;
let root;
let models;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-static-'));
  root = path.join(scratch, 'root');
  models = path.join(scratch, 'models');
  await mkdir(path.join(root, 'sub'), { recursive: true });
  await mkdir(path.join(root, '文档'));
  await mkdir(models);
  await writeFile(path.join(root, 'index.html'), 'root page');
  await writeFile(path.join(root, 'sub/index.html'), 'sub page');
  await writeFile(path.join(root, '文档/index.html'), 'documents page');
  await writeFile(path.join(scratch, 'secret.txt'), 'outside the root');
  await writeFile(path.join(models, 'model.gguf'), 'GGUF');
  // Symlinks out of the root, out of a mount into the root, and one that stays inside the root.
  await symlink(path.join(scratch, 'secret.txt'), path.join(root, 'secret-link.txt'));
  await symlink(scratch, path.join(root, 'outside-dir'));
  await symlink(path.join(root, 'index.html'), path.join(models, 'root-link.html'));
  await symlink(path.join(root, 'sub/index.html'), path.join(root, 'inside-link.html'));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** A raw GET (the path is sent exactly as given) with optional headers: { status, headers, body }. */
function get(port, rawPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path: rawPath, headers }, (response) => {
      const parts = [];
      response.on('data', (part) => parts.push(part));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(parts).toString() }));
    });
    request.on('error', reject);
    request.end();
  });
}

const SERVERS = {
  'the demo server': async () => {
    const server = await serve({ port: 0, root, models });
    return {
      port: server.address().port,
      close: () => {
        server.closeAllConnections();
        return new Promise((resolve) => server.close(resolve));
      },
    };
  },
  'the test server': async () => {
    const server = await startServer({ root, mounts: { '/models/': models } });
    return { port: Number(new URL(server.origin).port), close: server.close };
  },
};

for (const [name, start] of Object.entries(SERVERS)) {
  describe(name, () => {
    let server;
    before(async () => {
      server = await start();
    });
    after(async () => {
      await server?.close();
    });

    /** The server still serves a good request. */
    async function assertAlive() {
      const page = await get(server.port, '/sub/index.html');
      assert.equal(page.status, 200);
      assert.equal(page.body, 'sub page');
    }

    test('an undecodable path is a 400', async () => {
      const response = await get(server.port, '/%E0%A4%A');
      assert.equal(response.status, 400);
      await assertAlive();
    });

    test('a directory redirect percent-encodes a non-Latin-1 name', async () => {
      const redirect = await get(server.port, '/%E6%96%87%E6%A1%A3');
      assert.equal(redirect.status, 301);
      assert.equal(redirect.headers.location, '/%E6%96%87%E6%A1%A3/');
      const page = await get(server.port, redirect.headers.location);
      assert.equal(page.status, 200);
      assert.equal(page.body, 'documents page');
    });

    test('redirects never lead off the origin (no protocol-relative //host/ Location)', async () => {
      const encoded = await get(server.port, '/%2Fsub');
      assert.equal(encoded.status, 404);
      // Empty segments are dropped from the redirect, so it is always one slash then a path.
      const doubled = await get(server.port, '//sub');
      assert.equal(doubled.status, 301);
      assert.equal(doubled.headers.location, '/sub/');
      const backslash = await get(server.port, '/%5Csub');
      assert.equal(backslash.status, 404);
      await assertAlive();
    });

    test('symlinks are followed only while their real path stays inside the root or mount', async () => {
      assert.equal((await get(server.port, '/secret-link.txt')).status, 404);
      assert.equal((await get(server.port, '/outside-dir/secret.txt')).status, 404);
      assert.equal((await get(server.port, '/outside-dir/models/model.gguf')).status, 404);
      // A mount is its own root: a link from it into the repository root is outside it.
      assert.equal((await get(server.port, '/models/root-link.html')).status, 404);
      const model = await get(server.port, '/models/model.gguf');
      assert.equal(model.status, 200);
      assert.equal(model.body, 'GGUF');
      const inside = await get(server.port, '/inside-link.html');
      assert.equal(inside.status, 200);
      assert.equal(inside.body, 'sub page');
    });

    test('only loopback Host names are answered (DNS rebinding); any port', async () => {
      for (const host of ['evil.example', `evil.example:${server.port}`, '127.0.0.1.evil.example', 'localhost.', '[::1].evil.example']) {
        const refused = await get(server.port, '/sub/index.html', { Host: host });
        assert.equal(refused.status, 400, host);
        assert.doesNotMatch(refused.body, /sub page/, host);
      }
      for (const host of ['localhost', `localhost:${server.port}`, `LOCALHOST:${server.port}`, `127.0.0.1:${server.port}`, '127.0.0.1:1', '[::1]', `[::1]:${server.port}`]) {
        const page = await get(server.port, '/sub/index.html', { Host: host });
        assert.equal(page.status, 200, host);
        assert.equal(page.body, 'sub page', host);
      }
    });
  });
}
