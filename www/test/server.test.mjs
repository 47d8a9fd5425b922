// The test server itself (no browser): ranges, 416, content types, the request log and the
// two fault injections, since every browser test relies on them.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseRange } from '../server/static-files.mjs';
import { startServer } from './server.mjs';

let server;
let root;
const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-server-'));
  await writeFile(path.join(root, 'data.bin'), body);
  await writeFile(path.join(root, 'module.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d]));
  await writeFile(path.join(root, 'script.mjs'), 'export {};');
  server = await startServer({ root });
});

after(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

/** GET with optional headers; resolves to { status, headers, body, error } (error: the connection failed mid-body). */
function get(urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const request = http.get(`${server.origin}${urlPath}`, { headers }, (response) => {
      const parts = [];
      response.on('data', (part) => parts.push(part));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(parts), error: null }));
      response.on('aborted', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(parts), error: 'aborted' }));
      response.on('error', () => undefined);
    });
    request.on('error', reject);
  });
}

test('parseRange: open, closed, suffix, clamped, unsatisfiable and unsupported ranges', () => {
  assert.deepEqual(parseRange('bytes=10-', 100), { start: 10, end: 99 });
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-500', 100), { start: 90, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-4', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), null);
  assert.equal(parseRange(undefined, 100), null);
});

test('whole files, ranges (206 + Content-Range) and 416', async () => {
  const whole = await get('/data.bin');
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['content-length'], '100000');
  assert.equal(whole.headers['accept-ranges'], 'bytes');
  assert.ok(whole.body.equals(body));

  const range = await get('/data.bin', { Range: 'bytes=1000-1999' });
  assert.equal(range.status, 206);
  assert.equal(range.headers['content-range'], 'bytes 1000-1999/100000');
  assert.equal(range.headers['content-length'], '1000');
  assert.ok(range.body.equals(body.subarray(1000, 2000)));

  const tail = await get('/data.bin', { Range: 'bytes=99990-' });
  assert.equal(tail.headers['content-range'], 'bytes 99990-99999/100000');
  assert.ok(tail.body.equals(body.subarray(99990)));

  const beyond = await get('/data.bin', { Range: 'bytes=100000-' });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers['content-range'], 'bytes */100000');

  assert.equal((await get('/missing.bin')).status, 404);
  assert.equal((await get('/../etc/passwd')).status, 404);
});

test('content types for wasm and JavaScript modules', async () => {
  assert.equal((await get('/module.wasm')).headers['content-type'], 'application/wasm');
  assert.match((await get('/script.mjs')).headers['content-type'], /^text\/javascript/);
});

test('the log records each request; a cut drops the connection at a file offset, for the responses that reach it', async () => {
  server.clearLog();
  server.cutAt('/data.bin', 30_000, 2);
  // Does not reach the offset: neither cut nor counted.
  const before = await get('/data.bin', { Range: 'bytes=0-99' });
  assert.equal(before.error, null);
  const cut = await get('/data.bin');
  assert.equal(cut.error, 'aborted');
  assert.ok(cut.body.equals(body.subarray(0, 30_000)));
  const cutAgain = await get('/data.bin', { Range: 'bytes=20000-' });
  assert.equal(cutAgain.error, 'aborted');
  assert.ok(cutAgain.body.equals(body.subarray(20_000, 30_000)));
  const next = await get('/data.bin', { Range: 'bytes=20000-' });
  assert.equal(next.error, null);
  assert.ok(next.body.equals(body.subarray(20_000)));
  assert.deepEqual(server.requestsFor('/data.bin').map(({ range, status, bytesSent, cut: wasCut }) => ({ range, status, bytesSent, cut: wasCut })), [
    { range: 'bytes=0-99', status: 206, bytesSent: 100, cut: false },
    { range: null, status: 200, bytesSent: 30_000, cut: true },
    { range: 'bytes=20000-', status: 206, bytesSent: 10_000, cut: true },
    { range: 'bytes=20000-', status: 206, bytesSent: 80_000, cut: false },
  ]);
});

test('injected failures answer the ranges from an offset on with a status, a number of times', async () => {
  server.failFrom('/data.bin', 1000, 503, 1);
  assert.equal((await get('/data.bin', { Range: 'bytes=0-9' })).status, 206);
  assert.equal((await get('/data.bin', { Range: 'bytes=1000-' })).status, 503);
  assert.equal((await get('/data.bin', { Range: 'bytes=1000-' })).status, 206);
  server.resetFaults();
});

test('corruption flips exactly one byte at a file offset, in whole and ranged responses', async () => {
  server.corrupt('/data.bin', 50_000);
  try {
    const whole = await get('/data.bin');
    const expected = Buffer.from(body);
    expected[50_000] ^= 0xff;
    assert.ok(whole.body.equals(expected));
    const range = await get('/data.bin', { Range: 'bytes=49999-50001' });
    assert.deepEqual([...range.body], [body[49_999], body[50_000] ^ 0xff, body[50_001]]);
  } finally {
    server.resetFaults();
  }
  assert.ok((await get('/data.bin')).body.equals(body));
});
