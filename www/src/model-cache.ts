// Model files in IndexedDB: owns getting each model's bytes (from its stored manifest and 32 MiB
// chunks, else over HTTP with resuming and retries), their verification (size always, SHA-256
// when the caller knows it) and the storage quota checks. The database is model-store.ts; the
// Range requests are range-fetch.ts.
//
// A model is the list of its shard URLs (one URL, or the files of a gguf-split model). Its
// manifest records each shard's size, the server's validator (ETag or Last-Modified) and how
// many chunks are stored; a shard's chunks are always stored in order, so "chunks 0..n-1" is
// the whole state of a partial download. Only a download whose sizes (and SHA-256s, when given)
// verified is marked complete; a complete entry is read back without any request to the server.
//
// Memory stays bounded: bytes flow through one chunk-sized buffer, which is what the caller
// receives; it is reused for the next chunk, so a caller consumes each piece before asking for
// the next (as a `for await` body does).

import {
  DownloadFailedError,
  IntegrityError,
  InternalError,
  InvalidRequestError,
  QuotaExceededError,
} from './errors.js';
import { MANIFESTS, type ShardRecord, type ManifestRecord, modelKey, openDatabase, requestResult, writeTransaction, readManifest, readChunk, deleteEntry, isQuotaError, freeStorageBytes, formatMiB } from './model-store.js';
import { MAX_RETRIES, RETRY_BASE_DELAY_MS, type RangeResponse, TransientDownloadError, throwIfAborted, requestRange, releaseReader, sleep, readBody } from './range-fetch.js';

/** Size of the pieces a model is stored in. Large enough that a 500 MB model is ~16 records. */
export const DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024;

/** Download progress is reported at most once per this many bytes (and at each chunk). */
const PROGRESS_STEP_BYTES = 1024 * 1024;

/** An incremental SHA-256, such as the wasm module's `Sha256`. */
export interface Hasher {
  update(bytes: Uint8Array): void;
  /** The digest as 64 lowercase hex digits; the hasher is not used afterwards. */
  finishHex(): string;
  /** Releases the hasher's resources (wasm memory); called once it is no longer needed. */
  free?(): void;
}

/** Makes a fresh hasher; taken as a parameter so this module does not load the wasm itself. */
export type HasherFactory = () => Hasher;

/** Where model bytes currently come from, and how many of them are there so far. */
export interface SourceProgress {
  phase: 'download' | 'cache-read';
  /** Bytes of all shards obtained so far (stored ones included). */
  bytesDone: number;
  /** Bytes of all shards together. */
  bytesTotal: number;
}

/** A piece of a shard, in order. `bytes` is only valid until the next piece is requested. */
export interface ModelPiece {
  shard: number;
  offset: number;
  bytes: Uint8Array;
}

/** One model in the cache, as {@link listCachedModels} reports it. */
export interface CachedModelInfo {
  urls: string[];
  /** Bytes stored (all of them once complete). */
  bytes: number;
  /** Bytes of the whole model. */
  totalBytes: number;
  /** Whether every shard is stored and verified. */
  complete: boolean;
}

export interface OpenModelOptions {
  /** The shard URLs, in order; relative URLs resolve against the current location. */
  urls: readonly string[];
  /** Expected SHA-256 of each shard (hex), in the order of `urls`; null where unknown. */
  sha256?: readonly (string | null)[];
  /** Needed when `sha256` is given; also records the SHA-256 of downloads made without one. */
  createHasher?: HasherFactory;
  /** Size of a new entry's chunks (an existing entry keeps its own). */
  chunkBytes?: number;
  /** Aborts requests and reading; the operation then rejects with an AbortedError. */
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------------------------
// The model

/**
 * One model's bytes: from the cache when stored, else from the network into the cache.
 * Use {@link readPrefix} for header bytes, then {@link read} once for all bytes in order.
 */
export class CachedModel {
  /** The shards' absolute URLs. */
  readonly urls: readonly string[];
  private readonly key: string;
  private readonly expectedSha256: readonly (string | null)[];
  private readonly createHasher: HasherFactory | undefined;
  private readonly newEntryChunkBytes: number;
  private readonly signal: AbortSignal | undefined;
  private manifest: ManifestRecord | null;
  /** Shard sizes and validators learned from the network before a manifest exists. */
  private readonly sizes: (number | null)[];
  private readonly validators: (string | null)[];

  private constructor(options: OpenModelOptions, manifest: ManifestRecord | null) {
    const { urls, key } = modelKey(options.urls);
    this.urls = urls;
    this.key = key;
    this.expectedSha256 = options.sha256 ?? urls.map(() => null);
    this.createHasher = options.createHasher;
    this.newEntryChunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.signal = options.signal;
    this.manifest = manifest;
    this.sizes = urls.map((_, i) => manifest?.shards[i]?.size ?? null);
    this.validators = urls.map((_, i) => manifest?.shards[i]?.validator ?? null);
  }

  /** Opens a model's cache entry (if any). A complete entry whose SHA-256 differs from the expected one is stale and dropped. */
  static async open(options: OpenModelOptions): Promise<CachedModel> {
    validateOptions(options);
    const { key } = modelKey(options.urls);
    let manifest = (await readManifest(key)) ?? null;
    if (manifest?.complete && options.sha256) {
      const stale = manifest.shards.some((shard, i) => {
        const expected = options.sha256?.[i];
        return expected && shard.sha256 !== null && shard.sha256 !== expected.toLowerCase();
      });
      if (stale) {
        await deleteEntry(key);
        manifest = null;
      }
    }
    return new CachedModel(options, manifest);
  }

  /** Whether every shard is stored and verified: reading it makes no request to the server. */
  get complete(): boolean {
    return this.manifest?.complete === true;
  }

  /** Shard `shard`'s size in bytes (one small request when neither cached nor seen). */
  async shardSize(shard: number): Promise<number> {
    const known = this.sizes[shard];
    if (known !== null && known !== undefined) return known;
    const { fileSize } = await this.readPrefix(shard, 1);
    return fileSize;
  }

  /** The first `length` bytes of a shard (fewer when the shard is shorter), and its size. */
  async readPrefix(shard: number, length: number): Promise<{ bytes: Uint8Array; fileSize: number }> {
    throwIfAborted(this.signal);
    const manifest = this.manifest;
    if (manifest?.complete) {
      const record = manifest.shards[shard] as ShardRecord;
      const wanted = Math.min(length, record.size);
      const bytes = new Uint8Array(wanted);
      for (let index = 0, offset = 0; offset < wanted; index++, offset += manifest.chunkBytes) {
        const chunk = await this.cachedChunk(shard, index);
        bytes.set(chunk.subarray(0, Math.min(chunk.byteLength, wanted - offset)), offset);
      }
      return { bytes, fileSize: record.size };
    }
    return this.withRetries(this.urls[shard] as string, () => this.fetchPrefix(shard, length));
  }

  private async fetchPrefix(shard: number, length: number): Promise<{ bytes: Uint8Array; fileSize: number }> {
    const url = this.urls[shard] as string;
    const response = await requestRange(url, 0, length - 1, this.signal);
    try {
      if (response.fileSize === null) {
        throw new DownloadFailedError(`${url}: the server does not say the file's size`, url, null);
      }
      await this.noteResponse(shard, response.fileSize, response.validator);
      const wanted = Math.min(length, response.fileSize);
      const bytes = new Uint8Array(wanted);
      let filled = 0;
      while (filled < wanted) {
        const { value, done } = await readBody(response.reader, url, this.signal);
        if (done) throw new TransientDownloadError(`${url}: the response ended after ${filled} of ${wanted} bytes`, null);
        const take = Math.min(value.byteLength, wanted - filled);
        bytes.set(value.subarray(0, take), filled);
        filled += take;
      }
      return { bytes, fileSize: response.fileSize };
    } finally {
      releaseReader(response.reader);
    }
  }

  /**
   * Records a response's size and validator for a shard. A partial entry whose file changed on
   * the server (different size or validator) is dropped: the download starts over.
   */
  private async noteResponse(shard: number, fileSize: number, validator: string | null): Promise<void> {
    const known = this.manifest?.shards[shard];
    const changed = known !== undefined &&
      (known.size !== fileSize || (known.validator !== null && validator !== null && known.validator !== validator));
    if (changed) await this.discard();
    this.sizes[shard] = fileSize;
    this.validators[shard] = validator ?? this.validators[shard] ?? null;
  }

  /**
   * Every byte of every shard, in order, as pieces of at most one chunk: stored chunks first,
   * then the rest from the network, each chunk stored before it is handed on. Verifies sizes
   * and SHA-256s; marks the entry complete at the end.
   */
  async *read(onProgress?: (progress: SourceProgress) => void): AsyncGenerator<ModelPiece, void, undefined> {
    const sizes: number[] = [];
    for (let shard = 0; shard < this.urls.length; shard++) sizes.push(await this.shardSize(shard));
    const bytesTotal = sizes.reduce((a, b) => a + b, 0);
    const manifest = this.manifest ?? this.newManifest(sizes);
    const storedBytes = manifest.shards.reduce(
      (sum, shard) => sum + Math.min(shard.size, shard.committedChunks * manifest.chunkBytes), 0);
    if (!manifest.complete) {
      await this.ensureSpace(bytesTotal - storedBytes);
      if (!this.manifest) {
        await this.writeManifest(manifest);
        this.manifest = manifest;
      }
    }

    // Tell the caller the total (and where the bytes will come from) before the first chunk.
    onProgress?.({ phase: storedBytes > 0 ? 'cache-read' : 'download', bytesDone: 0, bytesTotal });
    let bytesDone = 0;
    /** Whether a complete entry's shard got its first recorded hash (it was stored without one). */
    let hashLearned = false;
    for (let shard = 0; shard < this.urls.length; shard++) {
      const shardStart = bytesDone;
      const record = manifest.shards[shard] as ShardRecord;
      const expected = this.expectedSha256[shard]?.toLowerCase() ?? null;
      // A stored hash already vouches for a complete shard; otherwise hash what flows past.
      const hasher = manifest.complete && (expected === null || record.sha256 === expected)
        ? null
        : this.createHasher?.() ?? null;
      try {
        for (let index = 0; index < record.committedChunks; index++) {
          throwIfAborted(this.signal);
          const bytes = await this.cachedChunk(shard, index);
          hasher?.update(bytes);
          bytesDone += bytes.byteLength;
          onProgress?.({ phase: 'cache-read', bytesDone, bytesTotal });
          yield { shard, offset: index * manifest.chunkBytes, bytes };
        }
        if (!manifest.complete) {
          yield* this.download(shard, hasher, (shardBytes) => {
            onProgress?.({ phase: 'download', bytesDone: shardStart + shardBytes, bytesTotal });
          });
          bytesDone = shardStart + record.size;
        }
        if (hasher) {
          const actual = hasher.finishHex();
          if (expected !== null && actual !== expected) {
            await this.discard();
            throw new IntegrityError(
              `${record.url}: SHA-256 is ${actual}, expected ${expected}; the cached copy was deleted`, record.url);
          }
          hashLearned ||= record.sha256 === null && manifest.complete;
          record.sha256 = actual;
        }
      } finally {
        hasher?.free?.();
      }
    }
    if (!manifest.complete || hashLearned) {
      manifest.complete = true;
      await this.writeManifest(manifest);
    }
  }

  /** The rest of one shard from the network, from its first unstored chunk, retrying cuts. */
  private async *download(shard: number, hasher: Hasher | null, onBytes: (shardBytes: number) => void): AsyncGenerator<ModelPiece, void, undefined> {
    const manifest = this.manifest as ManifestRecord;
    const record = manifest.shards[shard] as ShardRecord;
    const { chunkBytes } = manifest;
    const chunkCount = Math.ceil(record.size / chunkBytes);
    if (record.committedChunks >= chunkCount) return;
    // One buffer for the chunk being received, reused: the caller consumed the last one.
    const buffer = new Uint8Array(Math.min(chunkBytes, record.size));
    let failures = 0;
    while (record.committedChunks < chunkCount) {
      const start = record.committedChunks * chunkBytes;
      let response: RangeResponse;
      try {
        response = await requestRange(record.url, start, null, this.signal);
      } catch (error) {
        await this.backOffOrThrow(error, ++failures, record.url);
        continue;
      }
      try {
        await this.checkSameFile(record, response, start);
        // Bytes of the body before `start` (from a server that ignored Range) are skipped.
        let skip = start - response.bodyStart;
        let filled = 0;
        let position = start;
        let lastReport = position;
        for (;;) {
          const { value, done } = await readBody(response.reader, record.url, this.signal);
          if (done) break;
          let bytes = value;
          if (skip > 0) {
            const dropped = Math.min(skip, bytes.byteLength);
            skip -= dropped;
            bytes = bytes.subarray(dropped);
          }
          while (bytes.byteLength > 0) {
            if (position >= record.size) {
              await this.discard();
              throw new IntegrityError(`${record.url}: the server sent more than the file's ${record.size} bytes`, record.url);
            }
            const chunkLength = Math.min(chunkBytes, record.size - record.committedChunks * chunkBytes);
            const take = Math.min(bytes.byteLength, chunkLength - filled);
            buffer.set(bytes.subarray(0, take), filled);
            filled += take;
            position += take;
            bytes = bytes.subarray(take);
            if (filled === chunkLength) {
              const chunk = buffer.subarray(0, chunkLength);
              await this.commitChunk(shard, chunk);
              hasher?.update(chunk);
              failures = 0;
              filled = 0;
              lastReport = position;
              onBytes(position);
              yield { shard, offset: position - chunkLength, bytes: chunk };
            } else if (position - lastReport >= PROGRESS_STEP_BYTES) {
              lastReport = position;
              onBytes(position);
            }
          }
        }
        if (position < record.size) {
          throw new TransientDownloadError(`${record.url}: the response ended at byte ${position} of ${record.size}`, null);
        }
      } catch (error) {
        await this.backOffOrThrow(error, ++failures, record.url);
      } finally {
        releaseReader(response.reader);
      }
    }
  }

  /**
   * Rejects a response that is not the stored version of the file, or not the asked-for range;
   * the stored part of a file that changed is worthless, so it is deleted.
   */
  private async checkSameFile(record: ShardRecord, response: RangeResponse, start: number): Promise<void> {
    if (response.fileSize !== null && response.fileSize !== record.size) {
      await this.discard();
      throw new IntegrityError(
        `${record.url}: the server now reports ${response.fileSize} bytes, expected ${record.size}; the cached copy was deleted`,
        record.url);
    }
    if (record.validator !== null && response.validator !== null && record.validator !== response.validator) {
      await this.discard();
      throw new DownloadFailedError(
        `${record.url} changed on the server during the download (${record.validator} → ${response.validator}); the cached copy was deleted`,
        record.url, null);
    }
    if (response.bodyStart > start) {
      throw new DownloadFailedError(
        `${record.url}: asked for bytes from ${start}, the server sent them from ${response.bodyStart}`, record.url, 206);
    }
    record.validator ??= response.validator;
  }

  /** Waits before the next attempt of a transient failure; gives up with DownloadFailedError. */
  private async backOffOrThrow(error: unknown, failures: number, url: string): Promise<void> {
    if (!(error instanceof TransientDownloadError)) throw error;
    if (failures > MAX_RETRIES) {
      throw new DownloadFailedError(
        `${error.message} (gave up after ${MAX_RETRIES} retries; the stored part resumes on the next load)`,
        url, error.status, { cause: error });
    }
    await sleep(RETRY_BASE_DELAY_MS * 2 ** (failures - 1), this.signal);
  }

  /** Deletes this model's entry (manifest and chunks). */
  private async discard(): Promise<void> {
    await deleteEntry(this.key);
    this.manifest = null;
  }

  /** Runs a request, retrying transient failures with backoff. */
  private async withRetries<T>(url: string, attempt: () => Promise<T>): Promise<T> {
    for (let failures = 1; ; failures++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof TransientDownloadError)) throw error;
        if (failures > MAX_RETRIES) {
          throw new DownloadFailedError(`${error.message} (gave up after ${MAX_RETRIES} retries)`, url, error.status, { cause: error });
        }
        await sleep(RETRY_BASE_DELAY_MS * 2 ** (failures - 1), this.signal);
      }
    }
  }

  private newManifest(sizes: number[]): ManifestRecord {
    return {
      key: this.key,
      urls: [...this.urls],
      chunkBytes: this.newEntryChunkBytes,
      complete: false,
      shards: this.urls.map((url, i) => ({
        url,
        size: sizes[i] as number,
        validator: this.validators[i] ?? null,
        committedChunks: 0,
        sha256: null,
      })),
    };
  }

  /** Throws QuotaExceededError before downloading when the origin reports too little room. */
  private async ensureSpace(neededBytes: number): Promise<void> {
    const freeBytes = await freeStorageBytes();
    if (freeBytes !== null && freeBytes < neededBytes) {
      throw new QuotaExceededError(
        `the model needs ${formatMiB(neededBytes)} of storage but only ${formatMiB(freeBytes)} is free`,
        neededBytes, freeBytes);
    }
  }

  private async writeManifest(manifest: ManifestRecord): Promise<void> {
    await this.storing(() => writeTransaction((manifests) => {
      manifests.put(manifest);
    }));
  }

  /** Stores the next chunk of a shard and the manifest that counts it, atomically. */
  private async commitChunk(shard: number, chunk: Uint8Array): Promise<void> {
    const manifest = this.manifest as ManifestRecord;
    const record = manifest.shards[shard] as ShardRecord;
    // Structured clone copies a view's whole buffer, so a short last chunk is stored as a copy.
    const value = chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
    const index = record.committedChunks;
    record.committedChunks = index + 1;
    try {
      await this.storing(() => writeTransaction((manifests, chunks) => {
        chunks.put(value, [this.key, shard, index]);
        manifests.put(manifest);
      }));
    } catch (error) {
      record.committedChunks = index;
      throw error;
    }
  }

  /**
   * Runs an IndexedDB write; when storage is full, deletes this model's entry (nothing
   * half-written stays) and throws QuotaExceededError.
   */
  private async storing(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (!isQuotaError(error)) {
        throw new InternalError(`cannot write to the model cache: ${(error as Error).message}`, { cause: error });
      }
      const manifest = this.manifest;
      await this.discard();
      const totalBytes = manifest ? manifest.shards.reduce((sum, shard) => sum + shard.size, 0) : 0;
      throw new QuotaExceededError(
        `storage is full: the model needs ${formatMiB(totalBytes)}; its partial copy was deleted`,
        totalBytes, await freeStorageBytes(), { cause: error });
    }
  }

  /** A stored chunk; a missing or wrong-sized one means the entry is damaged: it is deleted. */
  private async cachedChunk(shard: number, index: number): Promise<Uint8Array> {
    const manifest = this.manifest as ManifestRecord;
    const record = manifest.shards[shard] as ShardRecord;
    const expectedLength = Math.min(manifest.chunkBytes, record.size - index * manifest.chunkBytes);
    const chunk = await readChunk(this.key, shard, index);
    if (chunk?.byteLength !== expectedLength) {
      await this.discard();
      throw new IntegrityError(
        `${record.url}: stored chunk ${index} is ${chunk ? `${chunk.byteLength} bytes, expected ${expectedLength}` : 'missing'}; the cached copy was deleted`,
        record.url);
    }
    return chunk;
  }
}

function validateOptions(options: OpenModelOptions): void {
  if (options.urls.length === 0) throw new InvalidRequestError('a model needs at least one URL');
  if (options.sha256) {
    if (options.sha256.length !== options.urls.length) {
      throw new InvalidRequestError(`${options.sha256.length} SHA-256 values for ${options.urls.length} model files`);
    }
    for (const hash of options.sha256) {
      if (hash !== null && !/^[0-9a-fA-F]{64}$/.test(hash)) {
        throw new InvalidRequestError(`not a SHA-256 hex digest: ${hash}`);
      }
    }
    if (options.sha256.some((hash) => hash !== null) && !options.createHasher) {
      throw new InvalidRequestError('checking SHA-256 needs createHasher');
    }
  }
  if (options.chunkBytes !== undefined && !(Number.isInteger(options.chunkBytes) && options.chunkBytes > 0)) {
    throw new InvalidRequestError(`chunkBytes must be a positive integer, got ${options.chunkBytes}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Cache management

/** Every model in the cache, complete or partial. */
export async function listCachedModels(): Promise<CachedModelInfo[]> {
  const db = await openDatabase();
  const tx = db.transaction(MANIFESTS, 'readonly');
  const manifests = await requestResult<ManifestRecord[]>(tx.objectStore(MANIFESTS).getAll());
  return manifests.map((manifest) => ({
    urls: [...manifest.urls],
    bytes: manifest.shards.reduce((sum, shard) => sum + Math.min(shard.size, shard.committedChunks * manifest.chunkBytes), 0),
    totalBytes: manifest.shards.reduce((sum, shard) => sum + shard.size, 0),
    complete: manifest.complete,
  }));
}

/** Deletes one model (its URL, or its shard URLs in order); returns whether it was cached. */
export async function deleteCachedModel(urls: string | readonly string[]): Promise<boolean> {
  const { key } = modelKey(typeof urls === 'string' ? [urls] : urls);
  const existed = (await readManifest(key)) !== undefined;
  await deleteEntry(key);
  return existed;
}

/** Deletes every cached model. */
export async function clearModelCache(): Promise<void> {
  await writeTransaction((manifests, chunks) => {
    manifests.clear();
    chunks.clear();
  });
}

/**
 * Asks the browser to keep this origin's storage under pressure (no eviction of the models);
 * resolves to whether storage is persistent. Browsers may grant it only after user engagement.
 */
export async function requestPersistentStorage(): Promise<boolean> {
  const storage = globalThis.navigator?.storage;
  if (!storage?.persist) return false;
  return storage.persist();
}
