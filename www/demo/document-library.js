// The documents the user added to this page: owns their lifecycle (reading → indexing → ready,
// or failed), the indexing worker, the BM25 index over every ready document's passages, and the
// opt-in copy on this device (doc-store.js). Emits 'change' whenever a document's state moves.

import { forgetAll, forgetDocument, isRemembering, loadDocuments, saveDocument, startRemembering } from './doc-store.js';
import { readDocument } from './document-reader.js';
import { Bm25Index } from './retrieval.js';

export class DocumentLibrary extends EventTarget {
  constructor() {
    super();
    /** `[{id, name, kind, size, paged, pages, status, progress, error, passages}]`, in the order added. */
    this.documents = [];
    this.index = new Bm25Index();
    this.remember = false;
    this.worker = null;
    this.nextRequest = 1;
    /** Indexing requests in flight: request id → { resolve, reject, onProgress }. */
    this.pending = new Map();
  }

  /** Documents whose passages are in the index. */
  get ready() {
    return this.documents.filter((doc) => doc.status === 'ready');
  }

  /** Re-indexes the documents kept on this device, when the user chose to keep them. */
  async restore() {
    this.remember = await isRemembering();
    if (!this.remember) return;
    for (const stored of await loadDocuments()) {
      const doc = { ...stored, status: 'indexing', progress: 0, error: null, passages: [] };
      this.documents.push(doc);
      this.changed();
      await this.indexDocument(doc);
    }
  }

  /** Reads, indexes and (when remembering) stores one file; failures stay listed with their reason. */
  async addFile(file) {
    const doc = {
      id: crypto.randomUUID(),
      name: file.name,
      kind: null,
      size: file.size,
      paged: false,
      pages: [],
      status: 'reading',
      progress: 0,
      error: null,
      passages: [],
    };
    this.documents.push(doc);
    this.changed();
    try {
      const { kind, pages, paged } = await readDocument(file, (done, total) => {
        doc.progress = done / total;
        this.changed();
      });
      Object.assign(doc, { kind, pages, paged, status: 'indexing', progress: 0 });
      this.changed();
    } catch (error) {
      this.fail(doc, error);
      return doc;
    }
    await this.indexDocument(doc);
    if (this.remember && doc.status === 'ready') await saveDocument(storedForm(doc));
    return doc;
  }

  async remove(id) {
    const doc = this.documents.find((d) => d.id === id);
    if (!doc) return;
    for (const passage of doc.passages) this.index.remove(passage.key);
    this.documents = this.documents.filter((d) => d !== doc);
    if (this.remember) await forgetDocument(id);
    this.changed();
  }

  /** Turns keeping documents on this device on (storing the ready ones) or off (deleting them all). */
  async setRemember(on) {
    this.remember = on;
    if (on) {
      await startRemembering();
      for (const doc of this.ready) await saveDocument(storedForm(doc));
    } else {
      await forgetAll();
    }
    this.changed();
  }

  /** The passages that best match `question`: `[{key, passage, score}]`, best first. */
  search(question, limit) {
    return this.index.search(question, limit);
  }

  /** Passage by key (citations keep keys). */
  passage(key) {
    return this.index.entries.get(key)?.passage ?? null;
  }

  async indexDocument(doc) {
    try {
      const indexed = await this.requestIndexing(doc.pages, (done, total) => {
        doc.progress = done / total;
        this.changed();
      });
      doc.passages = indexed.map(({ terms, length, ...chunk }) => {
        const passage = { ...chunk, key: `${doc.id}:${chunk.index}`, docId: doc.id, docName: doc.name, paged: doc.paged };
        this.index.add(passage.key, passage, { terms, length });
        return passage;
      });
      if (doc.passages.length === 0) throw new Error('no text was found in this file');
      doc.status = 'ready';
      doc.progress = 1;
      this.changed();
    } catch (error) {
      this.fail(doc, error);
    }
  }

  requestIndexing(pages, onProgress) {
    if (!this.worker) {
      this.worker = new Worker(new URL('./doc-worker.js', import.meta.url), { type: 'module' });
      this.worker.addEventListener('message', ({ data }) => {
        const request = this.pending.get(data.id);
        if (!request) return;
        if (data.type === 'progress') return request.onProgress(data.done, data.total);
        this.pending.delete(data.id);
        if (data.type === 'indexed') request.resolve(data.passages);
        else request.reject(new Error(data.message));
      });
      this.worker.addEventListener('error', (event) => {
        for (const request of this.pending.values()) request.reject(new Error(`the indexing worker failed: ${event.message}`));
        this.pending.clear();
      });
    }
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, pages });
    });
  }

  fail(doc, error) {
    doc.status = 'error';
    doc.error = String(error?.message ?? error);
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }
}

/** What is kept on the device: the text, not the index (rebuilt on load). */
function storedForm(doc) {
  const { id, name, kind, size, paged, pages } = doc;
  return { id, name, kind, size, paged, pages };
}
