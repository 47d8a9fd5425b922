// The document indexing worker: cuts a document's text into passages and counts each passage's
// terms, off the page's main thread so that a large file never freezes the page. It receives
// only text the page already holds and sends back only derived data; it makes no requests.

import { chunkPages, estimateTokens, termCounts } from './retrieval.js';

/** Progress is posted about this often (in passages), and at the end. */
const PROGRESS_EVERY = 25;

self.addEventListener('message', (event) => {
  const { id, pages } = event.data;
  try {
    const chunks = chunkPages(pages);
    const passages = [];
    for (const [index, chunk] of chunks.entries()) {
      passages.push({ ...chunk, index, tokens: estimateTokens(chunk.text), ...termCounts(chunk.text) });
      if ((index + 1) % PROGRESS_EVERY === 0) self.postMessage({ id, type: 'progress', done: index + 1, total: chunks.length });
    }
    self.postMessage({ id, type: 'indexed', passages });
  } catch (error) {
    self.postMessage({ id, type: 'error', message: String(error?.message ?? error) });
  }
});
