// The model cache's management functions: thin calls into the wasm module, which owns the
// cache (IndexedDB, downloads, verification; crate/src/model_cache/).

import * as wasm from '../pkg/qwen_webgpu.js';
import { toQwenWebGpuError } from './errors.js';
import { initWasm } from './wasm.js';

/** One model in the cache, as {@link listCachedModels} reports it. */
export interface CachedModelInfo {
  urls: string[];
  /** The key given as `cacheKey` when the model was loaded; absent for models stored by URL. */
  cacheKey?: string;
  /** Bytes stored (all of them once complete). */
  bytes: number;
  /** Bytes of the whole model. */
  totalBytes: number;
  /** Whether every shard is stored and verified. */
  complete: boolean;
}

/** A model to delete: its URL, its shard URLs in order, or the `cacheKey` it was loaded with. */
export type CachedModelRef = string | readonly string[] | { cacheKey: string };

async function call<T>(run: () => Promise<T>): Promise<T> {
  await initWasm();
  try {
    return await run();
  } catch (error) {
    throw toQwenWebGpuError(error);
  }
}

/** Every model in the cache, complete or partial. */
export function listCachedModels(): Promise<CachedModelInfo[]> {
  return call(async () => JSON.parse(await wasm.listCachedModels()) as CachedModelInfo[]);
}

/** Deletes one model; returns whether it was cached. */
export function deleteCachedModel(model: CachedModelRef): Promise<boolean> {
  const ref = typeof model === 'string' ? { urls: [model] } : 'cacheKey' in model ? { cacheKey: model.cacheKey } : { urls: [...model] };
  return call(() => wasm.deleteCachedModel(JSON.stringify(ref)));
}

/** Deletes every cached model. */
export function clearModelCache(): Promise<void> {
  return call(() => wasm.clearModelCache());
}

/**
 * Asks the browser to keep this origin's storage under pressure (no eviction of the models);
 * resolves to whether storage is persistent. Browsers may grant it only after user engagement.
 */
export function requestPersistentStorage(): Promise<boolean> {
  return call(() => wasm.requestPersistentStorage());
}
