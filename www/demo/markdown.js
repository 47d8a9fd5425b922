// Model output as HTML: owns the Markdown rendering (marked) and its sanitising (DOMPurify).
// Model output is untrusted: it may repeat text planted in a user's document, so besides
// scripts, nothing that would make the browser fetch something by itself survives (images,
// media, frames, styles, forms), which keeps document text from leaving the page through a
// crafted URL. Links stay, open in a new tab, and send no referrer.

import DOMPurify from '../node_modules/dompurify/dist/purify.es.mjs';
import { Marked } from '../node_modules/marked/lib/marked.esm.js';

const marked = new Marked({ gfm: true, breaks: false, async: false });

const FORBID_TAGS = [
  'img', 'picture', 'source', 'video', 'audio', 'track', 'iframe', 'frame', 'object', 'embed',
  'svg', 'math', 'style', 'link', 'meta', 'base', 'form', 'input', 'button', 'select', 'textarea',
];

const purify = DOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

/** Sanitised HTML for a Markdown string. */
export function markdownToHtml(markdown) {
  return purify.sanitize(marked.parse(markdown), {
    USE_PROFILES: { html: true },
    FORBID_TAGS,
    FORBID_ATTR: ['style', 'srcset', 'ping', 'action', 'formaction'],
    ALLOW_DATA_ATTR: false,
    ADD_ATTR: ['target'],
  });
}
