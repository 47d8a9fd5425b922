// The package's error types: one class per failure a caller can act on, each with a stable
// string `code`, plus the conversions from errors thrown by the wasm module and to/from the
// plain objects that cross a worker boundary.

/** Every `code` a {@link QwenWebGpuError} can carry. */
export type ErrorCode =
  | 'webgpu-unavailable'
  | 'quota-exceeded'
  | 'download-failed'
  | 'integrity'
  | 'bad-model'
  | 'context-overflow'
  | 'aborted'
  | 'device-lost'
  | 'invalid-request'
  | 'internal';

/** Base class of every error this package throws or rejects with. */
export class QwenWebGpuError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'QwenWebGpuError';
  }
}

/** The browser has no WebGPU, or no adapter/device meeting the engine's needs. */
export class WebGpuUnavailableError extends QwenWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('webgpu-unavailable', message, options);
    this.name = 'WebGpuUnavailableError';
  }
}

/** The origin's storage cannot hold the model. Nothing of the model is left stored. */
export class QuotaExceededError extends QwenWebGpuError {
  /** Bytes the model still needed to store. */
  readonly neededBytes: number;
  /** Bytes the browser reported free for this origin (quota − usage), when it reports them. */
  readonly freeBytes: number | null;

  constructor(message: string, neededBytes: number, freeBytes: number | null, options?: { cause?: unknown }) {
    super('quota-exceeded', message, options);
    this.name = 'QuotaExceededError';
    this.neededBytes = neededBytes;
    this.freeBytes = freeBytes;
  }
}

/** A model file could not be fetched (HTTP error, or the network failed beyond the retries). */
export class DownloadFailedError extends QwenWebGpuError {
  /** The URL that failed. */
  readonly url: string;
  /** The HTTP status of the failing response; null when no response came. */
  readonly status: number | null;

  constructor(message: string, url: string, status: number | null, options?: { cause?: unknown }) {
    super('download-failed', message, options);
    this.name = 'DownloadFailedError';
    this.url = url;
    this.status = status;
  }
}

/** A model file's bytes are not the expected ones (size or SHA-256); its cache entry was deleted. */
export class IntegrityError extends QwenWebGpuError {
  /** The URL whose bytes did not verify. */
  readonly url: string;

  constructor(message: string, url: string, options?: { cause?: unknown }) {
    super('integrity', message, options);
    this.name = 'IntegrityError';
    this.url = url;
  }
}

/** The file is not a GGUF model this engine can run. */
export class BadModelError extends QwenWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bad-model', message, options);
    this.name = 'BadModelError';
  }
}

/** The conversation does not fit the engine's context length. */
export class ContextOverflowError extends QwenWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('context-overflow', message, options);
    this.name = 'ContextOverflowError';
  }
}

/** Loading was aborted through the caller's AbortSignal. */
export class AbortedError extends QwenWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('aborted', message, options);
    this.name = 'AbortedError';
  }
}

/** The GPU device was lost; the engine cannot be used any more. */
export class DeviceLostError extends QwenWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('device-lost', message, options);
    this.name = 'DeviceLostError';
  }
}

/** The caller's request or options are malformed, or the engine was unloaded. */
export class InvalidRequestError extends QwenWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-request', message, options);
    this.name = 'InvalidRequestError';
  }
}

/** A bug or an unexpected failure inside the engine. */
export class InternalError extends QwenWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', message, options);
    this.name = 'InternalError';
  }
}

/** An error as plain data, for postMessage (class identity does not survive structured clone). */
export interface SerializedError {
  code: ErrorCode;
  message: string;
  neededBytes?: number;
  freeBytes?: number | null;
  url?: string;
  status?: number | null;
}

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'webgpu-unavailable', 'quota-exceeded', 'download-failed', 'integrity', 'bad-model',
  'context-overflow', 'aborted', 'device-lost', 'invalid-request', 'internal',
]);

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && ERROR_CODES.has(value);
}

/** Builds the error class that belongs to `error.code`. */
export function deserializeError(error: SerializedError, options?: { cause?: unknown }): QwenWebGpuError {
  const { message } = error;
  switch (error.code) {
    case 'webgpu-unavailable': return new WebGpuUnavailableError(message, options);
    case 'quota-exceeded':
      return new QuotaExceededError(message, error.neededBytes ?? 0, error.freeBytes ?? null, options);
    case 'download-failed': return new DownloadFailedError(message, error.url ?? '', error.status ?? null, options);
    case 'integrity': return new IntegrityError(message, error.url ?? '', options);
    case 'bad-model': return new BadModelError(message, options);
    case 'context-overflow': return new ContextOverflowError(message, options);
    case 'aborted': return new AbortedError(message, options);
    case 'device-lost': return new DeviceLostError(message, options);
    case 'invalid-request': return new InvalidRequestError(message, options);
    case 'internal': return new InternalError(message, options);
  }
}

/** The plain-data form of an error; anything that is not a QwenWebGpuError becomes 'internal'. */
export function serializeError(error: unknown): SerializedError {
  const typed = toQwenWebGpuError(error);
  const serialized: SerializedError = { code: typed.code, message: typed.message };
  if (typed instanceof QuotaExceededError) {
    serialized.neededBytes = typed.neededBytes;
    serialized.freeBytes = typed.freeBytes;
  } else if (typed instanceof DownloadFailedError) {
    serialized.url = typed.url;
    serialized.status = typed.status;
  } else if (typed instanceof IntegrityError) {
    serialized.url = typed.url;
  }
  return serialized;
}

/**
 * Converts anything thrown into a QwenWebGpuError: ours pass through; the wasm module's errors
 * (JS `Error`s with a string `code`) become the class for that code; anything else is 'internal'.
 */
export function toQwenWebGpuError(error: unknown): QwenWebGpuError {
  if (error instanceof QwenWebGpuError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  // The wasm module's errors carry their class's fields (url, status, neededBytes, freeBytes).
  if (isErrorCode(code)) return deserializeError({ ...(error as Partial<SerializedError>), code, message }, { cause: error });
  return new InternalError(message, { cause: error });
}
