// The passage viewer a citation opens: owns the dialog that shows a cited passage with the
// question's terms highlighted, where it sits in its document, and stepping to the passages
// before and after it for context.

import { h } from './dom.js';
import { matchRanges } from './retrieval.js';

export class PassageDialog {
  /** `dialog`: the page's <dialog>; `library`: the DocumentLibrary the passages belong to. */
  constructor(dialog, library) {
    this.dialog = dialog;
    this.library = library;
    this.title = dialog.querySelector('.passage-title');
    this.location = dialog.querySelector('.passage-location');
    this.body = dialog.querySelector('.passage-body');
    this.previous = dialog.querySelector('.passage-previous');
    this.next = dialog.querySelector('.passage-next');
    this.previous.addEventListener('click', () => this.step(-1));
    this.next.addEventListener('click', () => this.step(1));
    dialog.querySelector('.passage-close').addEventListener('click', () => dialog.close());
    // A click on the backdrop (outside the dialog's box) closes it.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
  }

  open(passage, question) {
    this.question = question;
    this.show(passage);
    if (!this.dialog.open) this.dialog.showModal();
  }

  step(direction) {
    const neighbour = this.library.passage(`${this.passage.docId}:${this.passage.index + direction}`);
    if (neighbour) this.show(neighbour);
  }

  show(passage) {
    this.passage = passage;
    const doc = this.library.documents.find((d) => d.id === passage.docId);
    const count = doc ? doc.passages.length : passage.index + 1;
    this.title.textContent = passage.docName;
    const place = `passage ${passage.index + 1} of ${count}`;
    this.location.textContent = passage.paged ? `page ${passage.page} · ${place}` : place;
    const text = passage.text;
    const parts = [];
    let last = 0;
    for (const [start, end] of matchRanges(text, this.question ?? '')) {
      parts.push(text.slice(last, start), h('mark', {}, text.slice(start, end)));
      last = end;
    }
    parts.push(text.slice(last));
    this.body.replaceChildren(...parts);
    this.body.scrollTop = 0;
    this.previous.disabled = !this.library.passage(`${passage.docId}:${passage.index - 1}`);
    this.next.disabled = !this.library.passage(`${passage.docId}:${passage.index + 1}`);
  }
}
