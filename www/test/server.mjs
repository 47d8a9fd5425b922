// The browser tests' HTTP server: static files over the repository root (and extra mounts such
// as the model directory) on localhost, served by the same handler as the demo's server
// (www/server/static-files.mjs: ranges, 416, refusals), plus a log of every request and fault
// injections on a chosen file: cut the connection when the response reaches a file offset,
// answer ranges from an offset on with an error status, and flip one byte.

import { createReadStream } from 'node:fs';
import http from 'node:http';
import { staticHandler } from '../server/static-files.mjs';

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

  /** A file response with the faults injected for its path: an error status, a cut, a flipped byte. */
  const sendFile = (req, res, { file, size, start, end, status, headers, record: entry }) => {
    const urlPath = entry.path;
    const failure = failures.get(urlPath);
    if (failure && failure.times > 0 && start >= failure.offset) {
      failure.times -= 1;
      entry.status = failure.status;
      res.writeHead(failure.status, { 'Content-Type': 'text/plain' });
      return res.end('injected failure');
    }
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) return res.end();

    const cut = cuts.get(urlPath);
    let cutAt = Infinity;
    // Only responses that would carry the byte at the cut's offset count towards its times.
    if (cut && cut.times > 0 && start <= cut.offset && cut.offset <= end) {
      cut.times -= 1;
      cutAt = cut.offset;
    }
    const stall = cut?.stall === true;
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
        fileStream.destroy();
        if (stall) {
          // Send the bytes allowed through, then nothing more, keeping the connection open.
          entry.stalled = true;
          res.write(part);
          return;
        }
        entry.cut = true;
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
    fileStream.on('end', () => {
      if (position < cutAt || !stall) res.end();
    });
    fileStream.on('error', () => res.destroy());
    // The client went away (or the cut above): stop reading the file.
    res.on('close', () => fileStream.destroy());
  };
  const onRequest = (record) => requests.push(Object.assign(record, { bytesSent: 0, cut: false, stalled: false }));
  const server = http.createServer(staticHandler({ root, mounts, onRequest, sendFile }));

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
    /**
     * The next `times` responses for `urlPath` that reach file offset `offset` send the bytes
     * before it, then nothing, without closing the connection (a stalled server).
     */
    stallAt: (urlPath, offset, times = 1) => cuts.set(urlPath, { offset, times, stall: true }),
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

