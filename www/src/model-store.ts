// The IndexedDB side of the model cache: the database, its manifest and chunk stores, the
// key a model is stored under, and the storage quota.

import { InternalError } from './errors.js';

const DATABASE_NAME = 'qwen-webgpu-model-cache';
const DATABASE_VERSION = 1;
export const MANIFESTS = 'manifests';
const CHUNKS = 'chunks';

export interface ShardRecord {
  url: string;
  size: number;
  /** The server's strong ETag or Last-Modified, to notice a file that changed between requests. */
  validator: string | null;
  /** Chunks 0..committedChunks-1 are stored. */
  committedChunks: number;
  /** SHA-256 of the whole shard, once it is stored and a hasher was available. */
  sha256: string | null;
}

export interface ManifestRecord {
  key: string;
  urls: string[];
  chunkBytes: number;
  complete: boolean;
  shards: ShardRecord[];
}

/** The resolved, absolute form of a model's URLs, and the key its manifest is stored under. */
export function modelKey(urls: readonly string[]): { urls: string[]; key: string } {
  const base = globalThis.location?.href;
  const absolute = urls.map((url) => new URL(url, base).href);
  return { urls: absolute, key: JSON.stringify(absolute) };
}

// ---------------------------------------------------------------------------------------------
// IndexedDB plumbing

let databasePromise: Promise<IDBDatabase> | null = null;

export function openDatabase(): Promise<IDBDatabase> {
  if (databasePromise) return databasePromise;
  databasePromise = new Promise<IDBDatabase>((resolve, reject) => {
    if (typeof indexedDB === 'undefined') {
      reject(new InternalError('IndexedDB is not available in this context'));
      return;
    }
    const request = indexedDB.open(DATABASE_NAME, DATABASE_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(MANIFESTS)) db.createObjectStore(MANIFESTS, { keyPath: 'key' });
      if (!db.objectStoreNames.contains(CHUNKS)) db.createObjectStore(CHUNKS);
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab upgrading the schema, or the browser closing the connection: reopen lazily.
      db.onversionchange = () => {
        db.close();
        databasePromise = null;
      };
      db.onclose = () => {
        databasePromise = null;
      };
      resolve(db);
    };
    request.onerror = () => {
      databasePromise = null;
      reject(new InternalError(`cannot open the model cache database: ${request.error?.message}`, { cause: request.error }));
    };
    request.onblocked = () => {
      databasePromise = null;
      reject(new InternalError('the model cache database is blocked by another tab holding an older version open'));
    };
  });
  return databasePromise;
}

export function requestResult<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function transactionDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new DOMException('IndexedDB transaction aborted', 'AbortError'));
  });
}

/** Runs `work` on a read-write transaction over both stores and waits until it commits. */
export async function writeTransaction(work: (manifests: IDBObjectStore, chunks: IDBObjectStore) => void): Promise<void> {
  const db = await openDatabase();
  const tx = db.transaction([MANIFESTS, CHUNKS], 'readwrite');
  const done = transactionDone(tx);
  try {
    work(tx.objectStore(MANIFESTS), tx.objectStore(CHUNKS));
  } catch (error) {
    // A put can throw synchronously (QuotaExceededError, DataCloneError): end the transaction
    // so none of its writes land, and report the thrown error rather than the abort.
    tx.abort();
    done.catch(() => undefined);
    throw error;
  }
  await done;
}

/** The key range of every chunk of one model: [key, shard, index] sorts after [key]. */
function chunkRange(key: string): IDBKeyRange {
  return IDBKeyRange.bound([key], [key, []]);
}

export async function readManifest(key: string): Promise<ManifestRecord | undefined> {
  const db = await openDatabase();
  const tx = db.transaction(MANIFESTS, 'readonly');
  return requestResult<ManifestRecord | undefined>(tx.objectStore(MANIFESTS).get(key));
}

export async function readChunk(key: string, shard: number, index: number): Promise<Uint8Array | undefined> {
  const db = await openDatabase();
  const tx = db.transaction(CHUNKS, 'readonly');
  const value = await requestResult<unknown>(tx.objectStore(CHUNKS).get([key, shard, index]));
  return value instanceof Uint8Array ? value : undefined;
}

export async function deleteEntry(key: string): Promise<void> {
  await writeTransaction((manifests, chunks) => {
    manifests.delete(key);
    chunks.delete(chunkRange(key));
  });
}

export function isQuotaError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'QuotaExceededError';
}

/** Free bytes for this origin (quota − usage), or null where the browser does not say. */
export async function freeStorageBytes(): Promise<number | null> {
  const storage = globalThis.navigator?.storage;
  if (!storage?.estimate) return null;
  const { quota, usage } = await storage.estimate();
  if (quota === undefined || usage === undefined) return null;
  return Math.max(0, quota - usage);
}

export function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

