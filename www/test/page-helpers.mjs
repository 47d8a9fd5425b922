// Browser-side helpers the tests import into the test page: reading a model through the wasm
// module's cache (its readModel export) with an independent digest of what came out, loading an engine while recording its
// progress, collecting a stream, and errors as plain data (class identity does not cross
// page.evaluate).

import * as qwen from '../dist/index.js';
import { toQwenWebGpuError } from '../dist/errors.js';
import { initWasm } from '../dist/wasm.js';
import * as wasm from '../pkg/qwen_webgpu.js';
import { createTestHasher } from './sha256.mjs';

/** An error as data: its class, code and fields. */
export function describeError(error) {
  return {
    className: error?.constructor?.name,
    isQwenError: error instanceof qwen.QwenWebGpuError,
    name: error?.name,
    code: error?.code,
    message: String(error?.message ?? error),
    neededBytes: error?.neededBytes,
    freeBytes: error?.freeBytes,
  };
}

/**
 * Reads every byte of a model through the cache and returns their SHA-256 (computed here,
 * independently of the cache's own check), the byte count, the phases reported and whether
 * the entry was complete before and after. `abortAfterMs` aborts the read.
 */
export async function readModel({ urls, sha256, chunkBytes, cacheKey, idleTimeoutMs, abortAfterMs }) {
  const controller = new AbortController();
  if (abortAfterMs !== undefined) setTimeout(() => controller.abort(), abortAfterMs);
  try {
    await initWasm();
    const digests = urls.map(() => createTestHasher());
    const sizes = urls.map(() => 0);
    const phases = [];
    const options = { urls, sha256, chunkBytes, cacheKey, idleTimeoutMs };
    const read = JSON.parse(await wasm.readModel(
      JSON.stringify(options),
      (shard, offset, bytes) => {
        if (offset !== sizes[shard]) throw new Error(`shard ${shard}: piece at ${offset}, expected ${sizes[shard]}`);
        digests[shard].update(bytes);
        sizes[shard] += bytes.byteLength;
      },
      (json) => {
        const { phase } = JSON.parse(json);
        if (phases.at(-1) !== phase) phases.push(phase);
      },
      controller.signal,
    ));
    const entry = (await qwen.listCachedModels()).find((m) => JSON.stringify(m.urls) === JSON.stringify(read.urls));
    return { ok: true, wasComplete: read.wasComplete, complete: entry?.complete === true, sizes, sha256: digests.map((d) => d.finishHex()), phases };
  } catch (error) {
    return { ok: false, error: describeError(toQwenWebGpuError(error)) };
  }
}

/** Opens the cache's database directly (not through the module). */
function openCacheDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open('qwen-webgpu-model-cache');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Drops the recorded SHA-256s of every stored manifest, as an entry stored without them has. */
export async function forgetStoredHashes() {
  const db = await openCacheDatabase();
  try {
    await new Promise((resolve, reject) => {
      const tx = db.transaction('manifests', 'readwrite');
      const store = tx.objectStore('manifests');
      store.getAll().onsuccess = (event) => {
        for (const manifest of event.target.result) {
          for (const shard of manifest.shards) shard.sha256 = null;
          store.put(manifest);
        }
      };
      tx.oncomplete = resolve;
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Chunk records stored in the cache's database, counted directly (not through the module). */
export async function storedChunkCount() {
  const db = await openCacheDatabase();
  try {
    if (!db.objectStoreNames.contains('chunks')) return 0;
    return await new Promise((resolve, reject) => {
      const request = db.transaction('chunks').objectStore('chunks').count();
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

/**
 * Loads an engine (the page's own, or through a worker when `workerUrl` is given) into
 * globalThis.engine, aborting the load after `abortAfterMs` when given. Returns where the bytes
 * came from (the distinct 'download'/'cache-read' phases, in order), the last progress, and how
 * long model bytes took from their source to the GPU (first progress event to last upload event).
 */
export async function loadEngine(options, workerUrl, abortAfterMs) {
  const sources = [];
  let first = null;
  let lastUpload = null;
  let last = null;
  const onProgress = (progress) => {
    const now = performance.now();
    first ??= now;
    if (progress.phase === 'upload') lastUpload = now;
    else if (!sources.includes(progress.phase)) sources.push(progress.phase);
    last = progress;
  };
  const controller = new AbortController();
  if (abortAfterMs !== undefined) setTimeout(() => controller.abort(), abortAfterMs);
  const started = performance.now();
  try {
    const engineOptions = { ...options, onProgress, signal: controller.signal };
    globalThis.engine = workerUrl
      ? await qwen.createWorkerEngine(new Worker(workerUrl, { type: 'module' }), engineOptions)
      : await qwen.createEngine(engineOptions);
  } catch (error) {
    return { ok: false, error: describeError(error), sources };
  }
  const loadMs = performance.now() - started;
  const streamMs = lastUpload !== null && first !== null ? lastUpload - first : null;
  return { ok: true, sources, last, loadMs, streamMs };
}

/** Runs a streaming request on globalThis.engine; returns the text, chunks and final chunk. */
export async function collectStream(request, { abortAfterChunks } = {}) {
  const controller = new AbortController();
  try {
    const stream = await globalThis.engine.chat.completions.create({ ...request, stream: true, signal: controller.signal });
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (abortAfterChunks !== undefined && chunks.length === abortAfterChunks) controller.abort();
    }
    const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    return { ok: true, text, chunks, last: chunks.at(-1) };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}

/** Runs a non-streaming request on globalThis.engine. */
export async function complete(request) {
  try {
    return { ok: true, completion: await globalThis.engine.chat.completions.create(request) };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}
