// Loading through the crate's cache in Chromium, for what must be decided from the GGUF header
// alone: a header larger than the first 8 MiB probe grows geometrically (a few requests, not
// thousands), and a context the device cannot hold fails before any byte after the header.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TINY_MODEL, openSuite } from './browser.mjs';

const MiB = 1024 * 1024;
const HEADER_PROBE = 8 * MiB;
/** 480k short strings: an 8.6 MB header, the case that once took thousands of requests. */
const STRING_COUNT = 480_000;

let suite;
let fixtureDir;
let bigHeader;

/** A GGUF v3 file with no tensors and one metadata array of `count` 10-byte strings. */
function bigHeaderGguf(count) {
  const key = Buffer.from('test.many_strings');
  const parts = [];
  const head = Buffer.alloc(4 + 4 + 8 + 8);
  head.write('GGUF', 0, 'latin1');
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(0n, 8); // tensors
  head.writeBigUInt64LE(1n, 16); // metadata entries
  parts.push(head);
  const keyLength = Buffer.alloc(8);
  keyLength.writeBigUInt64LE(BigInt(key.length));
  parts.push(keyLength, key);
  const arrayHead = Buffer.alloc(4 + 4 + 8);
  arrayHead.writeUInt32LE(9, 0); // array
  arrayHead.writeUInt32LE(8, 4); // of strings
  arrayHead.writeBigUInt64LE(BigInt(count), 8);
  parts.push(arrayHead);
  const strings = Buffer.alloc(count * 18);
  for (let i = 0; i < count; i++) {
    strings.writeBigUInt64LE(10n, i * 18);
    strings.write(String(i).padStart(10, '0'), i * 18 + 8, 'latin1');
  }
  parts.push(strings);
  const header = Buffer.concat(parts);
  // Padded to the default 32-byte alignment, then a little tensor-data space.
  const padded = Buffer.alloc(Math.ceil(header.length / 32) * 32 + 64);
  header.copy(padded);
  return padded;
}

before(async () => {
  fixtureDir = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-fixtures-'));
  const bytes = bigHeaderGguf(STRING_COUNT);
  await writeFile(path.join(fixtureDir, 'big-header.gguf'), bytes);
  bigHeader = { url: '/fixtures/big-header.gguf', size: bytes.length };
  suite = await openSuite('model-loading', { models: [TINY_MODEL.file], mounts: { '/fixtures/': fixtureDir } });
});

after(async () => {
  await suite?.close();
  if (fixtureDir) await rm(fixtureDir, { recursive: true, force: true });
});

const helpers = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/test/page-helpers.mjs'))[n](...a), [name, args]);
const api = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/dist/index.js'))[n](...a), [name, args]);

test('a GGUF header larger than the 8 MiB probe is read in at most 4 requests, each byte once', async (t) => {
  assert.ok(bigHeader.size > HEADER_PROBE + 100_000, `fixture of ${bigHeader.size} bytes`);
  await suite.withPage(t, async (page) => {
    await api(page, 'clearModelCache');
    suite.server.clearLog();
    const result = await helpers(page, 'loadEngine', { model: bigHeader.url });
    // The header parsed: what fails is the model's content (no architecture), not its header.
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'bad-model');
    assert.doesNotMatch(result.error.message, /header/i);
    const requests = suite.server.requestsFor(bigHeader.url);
    t.diagnostic(`${(bigHeader.size / 1e6).toFixed(2)} MB header: ${requests.length} requests (${requests.map((r) => r.range).join(', ')})`);
    assert.ok(requests.length <= 4, JSON.stringify(requests.map((r) => r.range)));
    assert.equal(requests[0].range, `bytes=0-${HEADER_PROBE - 1}`);
    // The probe, then only the bytes after it.
    const sent = requests.reduce((sum, r) => sum + r.bytesSent, 0);
    assert.ok(sent <= bigHeader.size, `sent ${sent} of ${bigHeader.size}`);
  });
});

test('a context too large for the device fails with context-overflow before any byte after the header', async (t) => {
  await suite.withPage(t, async (page) => {
    await api(page, 'clearModelCache');
    suite.server.clearLog();
    const result = await helpers(page, 'loadEngine', {
      model: TINY_MODEL.url,
      contextLength: 300_000_000,
      ropeScaling: { type: 'linear', factor: 100_000 },
    });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'context-overflow', JSON.stringify(result.error));
    assert.deepEqual(suite.server.requestsFor(TINY_MODEL.url).map((r) => r.range), [`bytes=0-${HEADER_PROBE - 1}`]);
    assert.deepEqual(await api(page, 'listCachedModels'), []);
  });
});
