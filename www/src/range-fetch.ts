// The HTTP side of the model cache: single-range requests checked against what was asked,
// validators, transient failures (retried by the caller) and abort handling.

import { AbortedError, DownloadFailedError, IntegrityError } from './errors.js';

/** Retries of a failed or cut request within one load, each resuming from the stored chunks. */
export const MAX_RETRIES = 3;
/** Delay before the first retry; doubled for each further one. */
export const RETRY_BASE_DELAY_MS = 500;

/** What one server response says about the bytes it carries. */
export interface RangeResponse {
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /** File offset of the body's first byte (0 for a 200, the range start for a 206). */
  bodyStart: number;
  /** The whole file's size, from Content-Range or a 200's Content-Length. */
  fileSize: number | null;
  validator: string | null;
}

/** A failure worth retrying: no response, a cut body, or a 408/429/5xx status. */
export class TransientDownloadError extends Error {
  readonly status: number | null;

  constructor(message: string, status: number | null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientDownloadError';
    this.status = status;
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('model loading was aborted', { cause: signal.reason });
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error instanceof DOMException && error.name === 'AbortError');
}

/** A strong ETag (weak ones do not promise identical bytes) or Last-Modified. */
function responseValidator(response: Response): string | null {
  const etag = response.headers.get('ETag');
  if (etag && !etag.startsWith('W/')) return etag;
  return response.headers.get('Last-Modified');
}

/**
 * Requests bytes [start, end] (end inclusive; null: to the end of the file) and checks what the
 * server declares. A server that ignores Range answers 200 with the whole file, which is usable:
 * the caller skips to `start`.
 */
export async function requestRange(url: string, start: number, end: number | null, signal: AbortSignal | undefined): Promise<RangeResponse> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { Range: `bytes=${start}-${end ?? ''}` },
      // The bytes go to IndexedDB; a second copy in the HTTP cache would double the disk use.
      cache: 'no-store',
      signal,
    });
  } catch (error) {
    if (isAbort(error, signal)) throw new AbortedError('model loading was aborted', { cause: error });
    throw new TransientDownloadError(`request for ${url} failed: ${(error as Error).message}`, null, { cause: error });
  }
  const { status } = response;
  if (status === 408 || status === 429 || status >= 500) {
    discardBody(response);
    throw new TransientDownloadError(`${url}: HTTP ${status}`, status);
  }
  if (status !== 200 && status !== 206) {
    discardBody(response);
    throw new DownloadFailedError(`${url}: HTTP ${status} ${response.statusText}`.trim(), url, status);
  }
  if (!response.body) throw new DownloadFailedError(`${url}: the response has no body`, url, status);
  // With a Content-Encoding, Content-Length counts encoded bytes, not the file's.
  const encoded = (response.headers.get('Content-Encoding') ?? 'identity') !== 'identity';
  const contentLength = encoded ? null : parseLength(response.headers.get('Content-Length'));
  let bodyStart = 0;
  let fileSize: number | null = contentLength;
  if (status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('Content-Range') ?? '');
    if (!range) {
      discardBody(response);
      throw new DownloadFailedError(`${url}: a 206 response without a valid Content-Range`, url, status);
    }
    bodyStart = Number(range[1]);
    fileSize = range[3] === '*' ? null : Number(range[3]);
    const declared = Number(range[2]) - bodyStart + 1;
    if (contentLength !== null && contentLength !== declared) {
      discardBody(response);
      throw new IntegrityError(`${url}: Content-Length ${contentLength} disagrees with Content-Range ${range[0]}`, url);
    }
  }
  return {
    reader: response.body.getReader(),
    bodyStart,
    fileSize,
    validator: responseValidator(response),
  };
}

/** Drops a response's body unread; failing to cancel a body we do not want changes nothing. */
function discardBody(response: Response): void {
  response.body?.cancel().catch(() => undefined);
}

function parseLength(header: string | null): number | null {
  if (header === null || !/^\d+$/.test(header)) return null;
  return Number(header);
}

/** Ends a response body we no longer need; a body that already failed has nothing to end. */
export function releaseReader(reader: ReadableStreamDefaultReader<Uint8Array>): void {
  reader.cancel().catch(() => undefined);
}

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError('model loading was aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}


/** The next piece of a body; a failing read (connection cut) is transient. */
export async function readBody(reader: ReadableStreamDefaultReader<Uint8Array>, url: string, signal: AbortSignal | undefined): Promise<ReadableStreamReadResult<Uint8Array>> {
  try {
    return await reader.read();
  } catch (error) {
    if (isAbort(error, signal)) throw new AbortedError('model loading was aborted', { cause: error });
    throw new TransientDownloadError(`${url}: the connection failed mid-body: ${(error as Error).message}`, null, { cause: error });
  }
}

