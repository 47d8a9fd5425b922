// Static files over HTTP for the two local servers, the demo's (www/demo/serve.mjs) and the
// browser tests' (www/test/server.mjs): content types and validators, single-range requests
// (206 + Content-Range, 416), directory redirects and index.html, and refusing what a loopback
// development server must not answer: Host names other than loopback (DNS rebinding), paths
// that do not decode, hidden files, and anything whose real path (symlinks followed) lies
// outside the served directory. Every refusal is an answer (400/404/405/500); none stops the
// server. Not shipped in the npm package (package.json `files`).

import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
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

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8' };

/** The headers of a static file response: type, validators, ranges accepted. */
function fileHeaders(file, info) {
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
 * Whether a `Host` header names this machine's loopback (any port). A page on another name that
 * resolves to 127.0.0.1 (DNS rebinding) would otherwise read everything these servers serve.
 */
function isLoopbackHost(host) {
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(host ?? '')?.[1].toLowerCase();
  return name === 'localhost' || name === '127.0.0.1' || name === '[::1]';
}

/**
 * The decoded segments of a request target's path ('/a/b%20c/' → ['a', 'b c', '']), or null
 * when it is not a path or does not decode. The raw target is split before decoding so that an
 * encoded slash ('%2F') stays inside its segment (where no file name can match it) instead of
 * becoming a separator.
 */
function pathSegments(target) {
  if (!target?.startsWith('/')) return null;
  try {
    return target.split('?')[0].slice(1).split('/').map(decodeURIComponent);
  } catch {
    return null;
  }
}

/**
 * The real path of `segments` under `directory`, or null when it does not exist, a segment is
 * hidden ('.git', '..') or holds a separator or NUL, or its real path (symlinks followed) is
 * not inside the directory's own real path.
 */
async function realPathUnder(directory, segments) {
  if (segments.some((part) => part.startsWith('.') || /[/\\\0]/.test(part))) return null;
  try {
    const [base, real] = await Promise.all([realpath(directory), realpath(path.join(directory, ...segments))]);
    const inside = path.relative(base, real);
    return inside === '' || (!path.isAbsolute(inside) && !inside.split(path.sep).some((part) => part.startsWith('.'))) ? real : null;
  } catch {
    return null;
  }
}

/** The canonical URL of a directory: one slash, each name percent-encoded, so it is always a path on this origin. */
function directoryLocation(segments) {
  return `/${segments.filter((part) => part !== '').map(encodeURIComponent).join('/')}/`;
}

/** Sends the file's bytes [start, end] (nothing for HEAD or an empty file) after the response head. */
function sendFileBody(req, res, { file, size, start, end, status, headers }) {
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) return res.end();
  const stream = createReadStream(file, { start, end });
  stream.pipe(res);
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
}

/**
 * A request handler serving `root`, with `mounts` mapping URL prefixes ('/models/') to
 * directories, each its own root. `onRequest(record)` hears of every request whose path decodes,
 * with a record `{method, path, range, status}` whose status is filled in once the response's
 * status is known. `extraHeaders(urlPath, file)` adds headers to a file response.
 * `sendFile(req, res, file)` sends a file response (default: {@link sendFileBody}); `file` holds
 * the file's path, size, range [start, end], status, headers and the request's record.
 */
export function staticHandler({ root, mounts = {}, onRequest, extraHeaders, sendFile = sendFileBody }) {
  const roots = [
    ...Object.entries(mounts).map(([prefix, directory]) => ({ prefix: prefix.split('/').filter(Boolean), directory })),
    { prefix: [], directory: root },
  ];

  /** Answers one request; throws only on failures outside the request's control. */
  const handle = async (req, res, answer) => {
    if (!isLoopbackHost(req.headers.host)) return answer(400, TEXT, 'bad request: the Host must be localhost, 127.0.0.1 or [::1]');
    const segments = pathSegments(req.url);
    if (!segments) return answer(400, TEXT, 'bad request: the path does not decode');
    const urlPath = `/${segments.join('/')}`;
    const record = { method: req.method, path: urlPath, range: req.headers.range ?? null, status: 0 };
    onRequest?.(record);
    const reply = (status, headers, body) => {
      record.status = status;
      answer(status, headers, body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { Allow: 'GET, HEAD' });

    const { prefix, directory } = roots.find((r) => r.prefix.every((part, i) => segments[i] === part));
    const relative = segments.slice(prefix.length).filter((part) => part !== '');
    let file = await realPathUnder(directory, relative);
    let info = file ? await stat(file) : null;
    if (info?.isDirectory()) {
      if (segments.at(-1) !== '') return reply(301, { Location: directoryLocation(segments) });
      file = await realPathUnder(directory, [...relative, 'index.html']);
      info = file ? await stat(file) : null;
    }
    if (!info?.isFile()) return reply(404, TEXT, `not found: ${urlPath}`);

    const { size } = info;
    const headers = { ...fileHeaders(file, info), ...extraHeaders?.(urlPath, file) };
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') return reply(416, { ...headers, 'Content-Range': `bytes */${size}` });
    const { start, end } = range ?? { start: 0, end: size - 1 };
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    headers['Content-Length'] = String(size === 0 ? 0 : end - start + 1);
    record.status = range ? 206 : 200;
    return sendFile(req, res, { file, size, start, end, status: record.status, headers, record });
  };

  return async (req, res) => {
    const answer = (status, headers = {}, body = '') => {
      res.writeHead(status, headers);
      res.end(body);
    };
    try {
      await handle(req, res, answer);
    } catch {
      if (res.headersSent) res.destroy();
      else answer(500, TEXT, 'internal server error');
    }
  };
}
