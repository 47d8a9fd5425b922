// The one place that loads the wasm module (www/pkg, built by scripts/build-wasm): initialises
// it once per JavaScript realm (page or worker).
// The module's bytes come from a base64 string module (scripts/embed-wasm.mjs says why), never
// from a URL: that is what makes the package work unchanged under every bundler.

import init from '../pkg/qwen_webgpu.js';
import { wasmBase64 } from '../pkg/qwen_webgpu_wasm_base64.js';
import { InternalError } from './errors.js';

let ready: Promise<void> | null = null;

/** Compiles and instantiates the embedded wasm module once. */
export function initWasm(): Promise<void> {
  ready ??= Promise.resolve().then(() => init({ module_or_path: decodeBase64(wasmBase64) })).then(
    () => undefined,
    (error: unknown) => {
      // Let a later call try again (the failure may have been a transient one, e.g. memory).
      ready = null;
      throw new InternalError(`cannot load the engine's WebAssembly module: ${(error as Error).message ?? error}`, { cause: error });
    },
  );
  return ready;
}

/** Base64 → bytes: natively where the browser has Uint8Array.fromBase64 (2025), else through atob. */
function decodeBase64(text: string): Uint8Array {
  const native = (Uint8Array as { fromBase64?: (text: string) => Uint8Array }).fromBase64;
  if (native) return native(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
