// The one place that loads the wasm module (www/pkg, built by scripts/build-wasm): initialises
// it once per JavaScript realm (page or worker), and adapts its Sha256 to the cache's Hasher.

import init, { Sha256 } from '../pkg/qwen_webgpu.js';
import { InternalError } from './errors.js';
import type { Hasher } from './model-cache.js';

let ready: Promise<void> | null = null;

/** Fetches and instantiates the wasm module (qwen_webgpu_bg.wasm beside qwen_webgpu.js) once. */
export function initWasm(): Promise<void> {
  ready ??= init().then(
    () => undefined,
    (error: unknown) => {
      // Let a later call try again (the failure may have been a network error).
      ready = null;
      throw new InternalError(`cannot load the engine's WebAssembly module: ${(error as Error).message ?? error}`, { cause: error });
    },
  );
  return ready;
}

/** A fresh incremental SHA-256 in wasm; the wasm module must be initialised. */
export function createWasmHasher(): Hasher {
  const sha = new Sha256();
  return {
    update: (bytes) => sha.update(bytes),
    finishHex: () => sha.finishHex(),
    free: () => sha.free(),
  };
}
