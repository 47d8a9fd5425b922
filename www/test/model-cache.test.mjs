// The model cache (the wasm module's, read without an engine) in Chromium: random fixture files
// stand in for models, 1 MiB chunks make resuming visible at chunk boundaries, and a JavaScript
// SHA-256 checks what came out independently of the cache's own.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openSuite } from './browser.mjs';

const MiB = 1024 * 1024;
const FIXTURES = [
  { name: 'model.gguf', size: 10 * MiB + 12_345 },
  { name: 'split-00001-of-00002.gguf', size: 3 * MiB + 7 },
  { name: 'split-00002-of-00002.gguf', size: 2 * MiB },
];

let suite;
let fixtureDir;
/** name → { url (path on the server), size, sha256 } */
const files = {};

before(async () => {
  fixtureDir = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-fixtures-'));
  for (const { name, size } of FIXTURES) {
    const bytes = randomBytes(size);
    await writeFile(path.join(fixtureDir, name), bytes);
    files[name] = { url: `/fixtures/${name}`, size, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  suite = await openSuite('model-cache', { mounts: { '/fixtures/': fixtureDir } });
});

after(async () => {
  await suite?.close();
  if (fixtureDir) await rm(fixtureDir, { recursive: true, force: true });
});

const model = () => files['model.gguf'];

function readModel(page, options) {
  return page.evaluate(async (o) => (await import('/www/test/page-helpers.mjs')).readModel(o), { chunkBytes: MiB, ...options });
}

function cacheCall(page, name, ...args) {
  return page.evaluate(async ([n, a]) => (await import('/www/dist/index.js'))[n](...a), [name, args]);
}

function storedChunkCount(page) {
  return page.evaluate(async () => (await import('/www/test/page-helpers.mjs')).storedChunkCount());
}

/** The Range headers of the requests for a file, in order. */
function rangesFor(url) {
  return suite.server.requestsFor(url).map((r) => r.range);
}

async function startCold(page) {
  await cacheCall(page, 'clearModelCache');
  suite.server.resetFaults();
  suite.server.clearLog();
}

test('a download is stored as it arrives, and a second load reads it back without any request', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    const first = await readModel(page, { urls: [model().url] });
    assert.deepEqual(first, {
      ok: true, wasComplete: false, complete: true, sizes: [model().size], sha256: [model().sha256], phases: ['download'],
    });
    // One byte to learn the size, then the file.
    assert.deepEqual(rangesFor(model().url), ['bytes=0-0', 'bytes=0-']);
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), [
      { urls: [`${suite.server.origin}${model().url}`], bytes: model().size, totalBytes: model().size, complete: true },
    ]);
    assert.equal(await storedChunkCount(page), 11);
  });
  suite.server.clearLog();
  await suite.withPage(t, async (page) => {
    const second = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.deepEqual(second, {
      ok: true, wasComplete: true, complete: true, sizes: [model().size], sha256: [model().sha256], phases: ['cache-read'],
    });
    assert.deepEqual(suite.server.requestsFor(model().url), []);
  });
});

test('a connection cut mid-body resumes within the load from the first unstored chunk', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    suite.server.cutAt(model().url, 2.5 * MiB);
    const result = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.sha256, [model().sha256]);
    // At most two chunks were stored before the cut (the browser may drop bytes already sent
    // when the connection resets), so the retry asks from a chunk boundary up to 2 MiB.
    const ranges = rangesFor(model().url);
    assert.deepEqual(ranges.slice(0, 2), ['bytes=0-0', 'bytes=0-']);
    assert.equal(ranges.length, 3);
    const resumeAt = Number(/^bytes=(\d+)-$/.exec(ranges[2])?.[1]);
    assert.ok(resumeAt % MiB === 0 && resumeAt <= 2 * MiB, ranges[2]);
    assert.deepEqual(suite.server.requestsFor(model().url).map((r) => r.cut), [false, true, false]);
  });
});

test('an interrupted download is kept as partial and resumes with a Range request in a later load', async (t) => {
  let storedBytes;
  await suite.withPage(t, async (page) => {
    await startCold(page);
    // The connection drops at 3.5 MiB, then every resuming request fails.
    suite.server.cutAt(model().url, 3.5 * MiB);
    suite.server.failFrom(model().url, 1, 503, 3);
    const failed = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.equal(failed.ok, false);
    assert.equal(failed.error.code, 'download-failed');
    assert.equal(failed.error.className, 'DownloadFailedError');
    assert.match(failed.error.message, /HTTP 503 \(gave up after 3 retries/);
    const [entry, ...others] = await cacheCall(page, 'listCachedModels');
    assert.deepEqual(others, []);
    storedBytes = entry.bytes;
    // Whole chunks only; how many of the 3.5 MiB sent arrived before the reset is the browser's business.
    assert.ok(storedBytes >= MiB && storedBytes <= 3 * MiB && storedBytes % MiB === 0, `stored ${storedBytes}`);
    assert.deepEqual(entry, {
      urls: [`${suite.server.origin}${model().url}`], bytes: storedBytes, totalBytes: model().size, complete: false,
    });
  });
  suite.server.resetFaults();
  suite.server.clearLog();
  await suite.withPage(t, async (page) => {
    const resumed = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.deepEqual(resumed, {
      ok: true, wasComplete: false, complete: true, sizes: [model().size], sha256: [model().sha256], phases: ['cache-read', 'download'],
    });
    // The size is in the manifest: the only request is for the missing part.
    assert.deepEqual(rangesFor(model().url), [`bytes=${storedBytes}-`]);
  });
});

test('a split model is read shard by shard, in order, and cached as one entry', async (t) => {
  const shards = [files['split-00001-of-00002.gguf'], files['split-00002-of-00002.gguf']];
  const urls = shards.map((s) => s.url);
  await suite.withPage(t, async (page) => {
    await startCold(page);
    const first = await readModel(page, { urls, sha256: shards.map((s) => s.sha256) });
    assert.deepEqual(first, {
      ok: true, wasComplete: false, complete: true, sizes: shards.map((s) => s.size), sha256: shards.map((s) => s.sha256), phases: ['download'],
    });
    suite.server.clearLog();
    const second = await readModel(page, { urls });
    assert.deepEqual(second.phases, ['cache-read']);
    assert.deepEqual(second.sha256, shards.map((s) => s.sha256));
    assert.deepEqual(urls.flatMap((url) => suite.server.requestsFor(url)), []);
    const [entry] = await cacheCall(page, 'listCachedModels');
    assert.deepEqual(entry.urls, urls.map((url) => `${suite.server.origin}${url}`));
    assert.equal(entry.totalBytes, shards[0].size + shards[1].size);
  });
});

test('a SHA-256 mismatch throws integrity and leaves nothing cached; the fixed file then loads', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    suite.server.corrupt(model().url, 5 * MiB + 3);
    const corrupted = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.equal(corrupted.ok, false);
    assert.equal(corrupted.error.code, 'integrity');
    assert.equal(corrupted.error.className, 'IntegrityError');
    assert.match(corrupted.error.message, new RegExp(`expected ${model().sha256}`));
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), []);
    assert.equal(await storedChunkCount(page), 0);

    suite.server.resetFaults();
    const fixed = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.equal(fixed.ok, true, JSON.stringify(fixed));
    assert.deepEqual(fixed.sha256, [model().sha256]);
  });
});

test('a complete entry is not trusted for a different expected SHA-256: it is fetched again and checked', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    assert.equal((await readModel(page, { urls: [model().url] })).ok, true);
    suite.server.clearLog();
    const otherHash = 'ab'.repeat(32);
    const result = await readModel(page, { urls: [model().url], sha256: [otherHash] });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'integrity');
    assert.equal(suite.server.requestsFor(model().url).length, 2);
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), []);
  });
});

test('an entry stored without a hash is checked against an expected SHA-256 from the cache, which then records it', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    assert.equal((await readModel(page, { urls: [model().url] })).ok, true);
    await page.evaluate(async () => (await import('/www/test/page-helpers.mjs')).forgetStoredHashes());
    suite.server.clearLog();
    const checked = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.equal(checked.ok, true, JSON.stringify(checked));
    assert.deepEqual(checked.phases, ['cache-read']);
    assert.deepEqual(suite.server.requestsFor(model().url), []);
    // The recorded hash now marks the entry stale for another expected hash: it is fetched again.
    const other = await readModel(page, { urls: [model().url], sha256: ['cd'.repeat(32)] });
    assert.equal(other.error.code, 'integrity');
    assert.equal(suite.server.requestsFor(model().url).length, 2);
  });
});

test('too little free storage fails with quota-exceeded before any model byte is fetched', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    const result = await readModel(page, { urls: [model().url] });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'quota-exceeded');
    assert.equal(result.error.className, 'QuotaExceededError');
    assert.equal(result.error.neededBytes, model().size);
    assert.equal(result.error.freeBytes, MiB);
    assert.deepEqual(rangesFor(model().url), ['bytes=0-0']);
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), []);
  }, `?quota-free=${MiB}`);
});

test('an IndexedDB write failing with QuotaExceededError deletes the partial model and throws quota-exceeded', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    // Three chunks are stored, the fourth write fails.
    const result = await readModel(page, { urls: [model().url] });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'quota-exceeded');
    assert.equal(result.error.neededBytes, model().size);
    assert.equal(typeof result.error.freeBytes, 'number');
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), []);
    assert.equal(await storedChunkCount(page), 0);
  }, '?fail-put-after=3');
});

test('HTTP errors fail the load with download-failed and the status', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    const result = await readModel(page, { urls: ['/fixtures/absent.gguf'] });
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'download-failed');
    assert.match(result.error.message, /HTTP 404/);
  });
});

test('cache management: delete one model, clear all, persistence request', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    assert.equal((await readModel(page, { urls: [model().url] })).ok, true);
    const split = ['split-00001-of-00002.gguf', 'split-00002-of-00002.gguf'].map((name) => files[name].url);
    assert.equal((await readModel(page, { urls: split })).ok, true);
    assert.equal((await cacheCall(page, 'listCachedModels')).length, 2);

    assert.equal(await cacheCall(page, 'deleteCachedModel', model().url), true);
    assert.equal(await cacheCall(page, 'deleteCachedModel', model().url), false);
    const remaining = await cacheCall(page, 'listCachedModels');
    assert.deepEqual(remaining.map((m) => m.urls.length), [2]);
    assert.equal(await storedChunkCount(page), 6);

    await cacheCall(page, 'clearModelCache');
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), []);
    assert.equal(await storedChunkCount(page), 0);
    assert.equal(typeof await cacheCall(page, 'requestPersistentStorage'), 'boolean');
  });
});

test('a stalled server (no bytes, connection open) is resumed after the idle timeout from the first unstored chunk', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    suite.server.stallAt(model().url, 2.5 * MiB);
    const started = Date.now();
    const result = await readModel(page, { urls: [model().url], sha256: [model().sha256], idleTimeoutMs: 1000 });
    const elapsedMs = Date.now() - started;
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.sha256, [model().sha256]);
    // The 2.5 MiB sent before the stall held two whole 1 MiB chunks: the resume asks from 2 MiB.
    assert.deepEqual(rangesFor(model().url), ['bytes=0-0', 'bytes=0-', `bytes=${2 * MiB}-`]);
    assert.deepEqual(suite.server.requestsFor(model().url).map((r) => r.stalled), [false, true, false]);
    // The idle timeout (1 s) and one retry delay (0.5 s), not a hang.
    assert.ok(elapsedMs >= 1000 && elapsedMs < 10_000, `took ${elapsedMs} ms`);
  });
});

test('two pages loading one model at once download it once: the second waits, then reads the cache', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    const other = await suite.openPage();
    try {
      const [first, second] = await Promise.all([
        readModel(page, { urls: [model().url], sha256: [model().sha256] }),
        readModel(other, { urls: [model().url], sha256: [model().sha256] }),
      ]);
      assert.equal(first.ok, true, JSON.stringify(first));
      assert.equal(second.ok, true, JSON.stringify(second));
      assert.deepEqual([first.sha256, second.sha256], [[model().sha256], [model().sha256]]);
      // The file itself is sent once; besides it, only one-byte size probes (a page that opens
      // the entry after the other wrote its manifest knows the size without one).
      const ranges = rangesFor(model().url);
      assert.deepEqual(ranges.filter((r) => r === 'bytes=0-'), ['bytes=0-'], JSON.stringify(ranges));
      assert.ok(ranges.every((r) => r === 'bytes=0-' || r === 'bytes=0-0'), JSON.stringify(ranges));
      const sent = suite.server.requestsFor(model().url).reduce((sum, r) => sum + r.bytesSent, 0);
      assert.ok(sent <= model().size + 2, `sent ${sent}`);
      assert.deepEqual([first.phases, second.phases].sort(), [['cache-read'], ['download']]);
      assert.equal(await storedChunkCount(page), 11);
    } finally {
      await other.close();
    }
  });
});

test('a page deleting a model while another page downloads it leaves no phantom entry', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    suite.server.stallAt(model().url, 2.5 * MiB);
    const loading = readModel(page, { urls: [model().url], idleTimeoutMs: 1500 });
    // Wait until the download stalls with two chunks stored, then delete from another page.
    const deadline = Date.now() + 10_000;
    while (!suite.server.requestsFor(model().url).some((r) => r.stalled) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const other = await suite.openPage();
    try {
      assert.equal(await cacheCall(other, 'deleteCachedModel', model().url), true);
    } finally {
      await other.close();
    }
    const result = await loading;
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'download-failed');
    assert.match(result.error.message, /deleted by another page/);
    // The next commit saw the manifest gone and wrote nothing: no manifest, no orphan chunks.
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), []);
    assert.equal(await storedChunkCount(page), 0);
    // And the model loads cleanly afterwards.
    suite.server.resetFaults();
    const again = await readModel(page, { urls: [model().url], sha256: [model().sha256] });
    assert.equal(again.ok, true, JSON.stringify(again));
  });
});

test('a caller-given cache key survives a changing URL query: the second load makes no request', async (t) => {
  await suite.withPage(t, async (page) => {
    await startCold(page);
    const first = await readModel(page, { urls: [`${model().url}?signature=1`], cacheKey: 'my-model', sha256: [model().sha256] });
    assert.equal(first.ok, true, JSON.stringify(first));
    suite.server.clearLog();
    const second = await readModel(page, { urls: [`${model().url}?signature=2`], cacheKey: 'my-model', sha256: [model().sha256] });
    assert.equal(second.ok, true, JSON.stringify(second));
    assert.deepEqual(second.phases, ['cache-read']);
    assert.deepEqual(suite.server.requestsFor(model().url), []);
    const [entry, ...others] = await cacheCall(page, 'listCachedModels');
    assert.deepEqual(others, []);
    assert.equal(entry.cacheKey, 'my-model');
    assert.equal(await cacheCall(page, 'deleteCachedModel', { cacheKey: 'my-model' }), true);
    assert.deepEqual(await cacheCall(page, 'listCachedModels'), []);
  });
});
