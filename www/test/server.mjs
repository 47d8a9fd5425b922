// The browser tests' HTTP server: static files over the repository root (and extra mounts such
// as the model directory) on localhost, with single-range requests (206 + Content-Range, 416),
// a log of every request, and fault injections on a chosen file: cut the connection when the
// response reaches a file offset, answer ranges from an offset on with an error status, and
// flip one byte.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.pdf': 'application/pdf',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The headers of a static file response (type, validators, ranges accepted), shared with the
 * demo's server (www/demo/serve.mjs). */
export function fileHeaders(file, info) {
  return {
    'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
    'Last-Modified': info.mtime.toUTCString(),
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  };
}

/**
 * The satisfiable byte range [start, end] (inclusive) a `Range` header asks of a file of `size`
 * bytes; null when the header is absent or not a single byte range (the whole file is served,
 * as RFC 9110 allows); 'unsatisfiable' for a range that starts past the end.
 */
export function parseRange(header, size) {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * Starts the server on an ephemeral localhost port. `mounts` maps URL prefixes ('/models/') to
 * directories; other paths are files under `root`.
 */
export async function startServer({ root, mounts = {} }) {
  /** @type {{method: string, path: string, range: string | null, status: number, bytesSent: number, cut: boolean}[]} */
  const requests = [];
  /** url path → { offset, times } */
  const cuts = new Map();
  /** url path → { offset, status, times } */
  const failures = new Map();
  /** url path → file offset of the byte to flip */
  const corruptions = new Map();

  const resolveFile = (urlPath) => {
    for (const [prefix, directory] of Object.entries(mounts)) {
      if (urlPath.startsWith(prefix)) return safeJoin(directory, urlPath.slice(prefix.length));
    }
    return safeJoin(root, urlPath);
  };

  const server = http.createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    const entry = { method: req.method, path: urlPath, range: req.headers.range ?? null, status: 0, bytesSent: 0, cut: false };
    requests.push(entry);
    const finish = (status, headers = {}, body = '') => {
      entry.status = status;
      res.writeHead(status, headers);
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return finish(405, { Allow: 'GET, HEAD' });
    const file = resolveFile(urlPath);
    let info;
    try {
      info = file ? await stat(file) : null;
    } catch {
      info = null;
    }
    if (!info?.isFile()) return finish(404, { 'Content-Type': 'text/plain' }, `not found: ${urlPath}`);

    const size = info.size;
    const headers = fileHeaders(file, info);
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') return finish(416, { ...headers, 'Content-Range': `bytes */${size}` });
    const { start, end } = range ?? { start: 0, end: size - 1 };
    const failure = failures.get(urlPath);
    if (failure && failure.times > 0 && start >= failure.offset) {
      failure.times -= 1;
      return finish(failure.status, { 'Content-Type': 'text/plain' }, 'injected failure');
    }
    const status = range ? 206 : 200;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    headers['Content-Length'] = String(size === 0 ? 0 : end - start + 1);
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) return res.end();

    const cut = cuts.get(urlPath);
    let cutAt = Infinity;
    // Only responses that would carry the byte at the cut's offset count towards its times.
    if (cut && cut.times > 0 && start <= cut.offset && cut.offset <= end) {
      cut.times -= 1;
      cutAt = cut.offset;
    }
    const corruptAt = corruptions.get(urlPath);
    let position = start;
    // Every body byte goes through res.write in file order, so a cut lands exactly after the
    // bytes sent before it.
    const fileStream = createReadStream(file, { start, end });
    fileStream.on('data', (chunk) => {
      let out = chunk;
      if (corruptAt !== undefined && corruptAt >= position && corruptAt < position + chunk.length) {
        out = Buffer.from(chunk);
        out[corruptAt - position] ^= 0xff;
      }
      if (position + out.length > cutAt) {
        const part = out.subarray(0, cutAt - position);
        position = cutAt;
        entry.bytesSent += part.length;
        entry.cut = true;
        fileStream.destroy();
        // Flush the bytes allowed through, then drop the connection mid-body.
        res.write(part, () => res.socket?.destroy());
        return;
      }
      position += chunk.length;
      entry.bytesSent += out.length;
      if (!res.write(out)) {
        fileStream.pause();
        res.once('drain', () => fileStream.resume());
      }
    });
    fileStream.on('end', () => res.end());
    fileStream.on('error', () => res.destroy());
    // The client went away (or the cut above): stop reading the file.
    res.on('close', () => fileStream.destroy());
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    /** Every request so far, in arrival order. */
    requests,
    /** The logged requests for one URL path. */
    requestsFor: (urlPath) => requests.filter((r) => r.path === urlPath),
    clearLog: () => {
      requests.length = 0;
    },
    /**
     * The next `times` responses for `urlPath` that reach file offset `offset` send the bytes
     * before it, then drop the connection.
     */
    cutAt: (urlPath, offset, times = 1) => cuts.set(urlPath, { offset, times }),
    /** The next `times` requests for `urlPath` starting at or after `offset` get `status`. */
    failFrom: (urlPath, offset, status, times) => failures.set(urlPath, { offset, status, times }),
    /** Responses for `urlPath` flip the byte at file offset `offset` until {@link resetFaults}. */
    corrupt: (urlPath, offset) => corruptions.set(urlPath, offset),
    resetFaults: () => {
      cuts.clear();
      failures.clear();
      corruptions.clear();
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

/** `relative` under `directory`, or null when it would escape it. */
function safeJoin(directory, relative) {
  const full = path.resolve(directory, `.${path.posix.normalize(`/${relative}`)}`);
  return full === directory || full.startsWith(directory + path.sep) ? full : null;
}
