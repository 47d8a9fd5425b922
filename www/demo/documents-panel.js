// The Documents panel: owns the drop zone and file picker, the list of documents with each
// one's reading/indexing progress or failure, removing them, and the "Answer from documents"
// and "Remember documents on this device" switches. The documents themselves live in the
// DocumentLibrary.

import { h } from './dom.js';
import { formatBytes, formatNumber } from './format.js';

const KIND_LABELS = { pdf: 'PDF', markdown: 'MD', text: 'TXT' };

export class DocumentsPanel {
  constructor(library, root = document) {
    this.library = library;
    const $ = (id) => root.getElementById(id);
    this.dropzone = $('dropzone');
    this.input = $('file-input');
    this.list = $('doc-list');
    this.useDocuments = $('use-documents');
    this.remember = $('remember-documents');

    this.input.addEventListener('change', () => {
      this.addFiles(this.input.files);
      this.input.value = '';
    });
    for (const type of ['dragenter', 'dragover']) {
      this.dropzone.addEventListener(type, (event) => {
        event.preventDefault();
        this.dropzone.classList.add('dragging');
      });
    }
    this.dropzone.addEventListener('dragleave', () => this.dropzone.classList.remove('dragging'));
    this.dropzone.addEventListener('drop', (event) => {
      event.preventDefault();
      this.dropzone.classList.remove('dragging');
      this.addFiles(event.dataTransfer.files);
    });
    // A file dropped anywhere else must not make the browser navigate away to it.
    window.addEventListener('dragover', (event) => event.preventDefault());
    window.addEventListener('drop', (event) => event.preventDefault());

    this.remember.addEventListener('change', () => library.setRemember(this.remember.checked));
    library.addEventListener('change', () => this.render());
    this.render();
  }

  /** Whether questions should be answered from the documents now. */
  get active() {
    return this.useDocuments.checked && this.library.ready.length > 0;
  }

  addFiles(files) {
    const hadReady = this.library.ready.length > 0;
    for (const file of files) {
      this.library.addFile(file).then(() => {
        // The first document that becomes ready turns document answers on.
        if (!hadReady && this.library.ready.length > 0 && !this.useDocuments.checked) {
          this.useDocuments.checked = true;
          this.useDocuments.dispatchEvent(new Event('change'));
        }
      });
    }
  }

  render() {
    const { documents } = this.library;
    this.list.replaceChildren(...documents.map((doc) => this.row(doc)));
    const ready = this.library.ready.length > 0;
    this.useDocuments.disabled = !ready;
    if (!ready && this.useDocuments.checked) {
      this.useDocuments.checked = false;
      this.useDocuments.dispatchEvent(new Event('change'));
    }
    this.remember.checked = this.library.remember;
  }

  row(doc) {
    const status = {
      reading: () => (doc.progress > 0 ? `Reading… ${Math.round(doc.progress * 100)}%` : 'Reading…'),
      indexing: () => 'Indexing…',
      ready: () => `${formatNumber(doc.passages.length)} passage${doc.passages.length === 1 ? '' : 's'}${doc.paged ? ` · ${doc.pages.length} page${doc.pages.length === 1 ? '' : 's'}` : ''} · ${formatBytes(doc.size)}`,
      error: () => doc.error,
    }[doc.status]();
    const busy = doc.status === 'reading' || doc.status === 'indexing';
    const remove = h('button', { type: 'button', class: 'icon-button', 'aria-label': `Remove ${doc.name}`, title: 'Remove' }, '×');
    remove.disabled = busy;
    remove.addEventListener('click', () => this.library.remove(doc.id));
    const extension = doc.name.split('.').pop().toUpperCase();
    let bar = null;
    if (busy) {
      const fill = h('span', { class: 'mini-fill' });
      fill.style.width = `${Math.round(doc.progress * 100)}%`;
      bar = h('span', { class: 'mini-bar' }, fill);
    }
    return h('li', { class: 'doc-row', dataset: { status: doc.status } },
      h('span', { class: 'doc-kind', 'aria-hidden': 'true' }, KIND_LABELS[doc.kind] ?? extension.slice(0, 4)),
      h('div', { class: 'doc-info' },
        h('span', { class: 'doc-name', title: doc.name }, doc.name),
        h('span', { class: 'doc-status' }, status),
        bar),
      remove);
  }
}
