// The conversation on screen: owns the transcript's message elements, rendering a reply as it
// streams (Markdown, or JSON checked against the schema), code blocks with copy buttons,
// clickable citations and the sources list, and each reply's statistics line.

import { copyButton, h } from './dom.js';
import { checkReply } from './json-mode.js';
import { markdownToHtml } from './markdown.js';
import { citationPattern, citedNumbers, passageLocation } from './qa-prompt.js';
import { formatNumber } from './format.js';

/** How many sources are shown when the answer cites none (the best-ranked ones). */
const UNCITED_SOURCES = 3;

export class ChatView {
  /** `onCitation(passage, question)` opens a passage. */
  constructor(transcript, { onCitation }) {
    this.transcript = transcript;
    this.onCitation = onCitation;
  }

  clear() {
    for (const message of this.transcript.querySelectorAll('.message')) message.remove();
    this.transcript.classList.remove('has-messages');
  }

  addUser(text, { documents }) {
    const element = h('article', { class: 'message user' },
      h('div', { class: 'bubble' }, text),
      documents ? h('div', { class: 'user-note' }, 'Asked about your documents') : null);
    this.append(element);
  }

  /** A reply element that the caller feeds as the stream arrives. */
  addAssistant({ json, schema }) {
    const reply = new AssistantReply({ json, schema, onCitation: this.onCitation });
    this.append(reply.element);
    return reply;
  }

  /** A notice in the transcript (e.g. history dropped to fit the context). */
  addNotice(text) {
    this.append(h('div', { class: 'message notice', role: 'note' }, text));
  }

  append(element) {
    this.transcript.classList.add('has-messages');
    const nearBottom = this.transcript.scrollHeight - this.transcript.scrollTop - this.transcript.clientHeight < 120;
    this.transcript.append(element);
    if (nearBottom) element.scrollIntoView({ block: 'end' });
  }
}

class AssistantReply {
  constructor({ json, schema, onCitation }) {
    this.json = json;
    this.schema = schema;
    this.onCitation = onCitation;
    this.text = '';
    this.started = performance.now();
    this.deltas = 0;
    this.frame = 0;
    this.content = h('div', { class: json ? 'content json' : 'content markdown' });
    this.sources = h('div', { class: 'sources', hidden: true });
    this.stats = h('span', { class: 'stats' }, 'Thinking…');
    this.copy = copyButton(() => this.text);
    this.copy.hidden = true;
    this.element = h('article', { class: 'message assistant', dataset: { state: 'streaming' } },
      h('div', { class: 'avatar', 'aria-hidden': 'true' }, 'Q'),
      h('div', { class: 'body' }, this.content, this.sources, h('footer', { class: 'meta' }, this.stats, this.copy)));
  }

  /**
   * Appends streamed text; the view re-renders at most once per animation frame. Until the
   * engine's usage arrives at the end, each delta counts as one token (the engine sends one per
   * decoded token, less any it holds back while a stop string might be starting).
   */
  append(delta) {
    this.text += delta;
    this.deltas += 1;
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
        const seconds = (performance.now() - this.started) / 1000;
        this.stats.textContent = `Writing… ${this.deltas} tokens · ${(this.deltas / seconds).toFixed(1)} tok/s`;
      });
    }
  }

  render() {
    if (this.json) {
      this.content.replaceChildren(h('pre', { class: 'json-raw' }, this.text));
    } else {
      this.content.innerHTML = markdownToHtml(this.text);
      decorateCodeBlocks(this.content);
    }
  }

  /**
   * The reply is complete: final rendering, statistics from the engine's usage, and the
   * sources when the turn used documents (`grounding`: {selection, ranked, question}).
   */
  finish({ finishReason, usage, grounding }) {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.element.dataset.state = finishReason === 'abort' ? 'stopped' : 'done';
    this.element.dataset.finishReason = finishReason;
    if (this.json) this.renderJson(finishReason);
    else this.render();
    if (grounding) this.renderSources(grounding);
    // A JSON reply has its own copy button, for the checked object.
    this.copy.hidden = this.text === '' || this.json;
    const parts = [
      `${formatNumber(usage.completion_tokens)} tokens`,
      `${usage.decode_tokens_per_s.toFixed(1)} tok/s`,
      `prompt ${formatNumber(usage.prompt_tokens)}${usage.cached_prompt_tokens ? ` (${formatNumber(usage.cached_prompt_tokens)} reused)` : ''} at ${Math.round(usage.prefill_tokens_per_s)} tok/s`,
    ];
    if (finishReason === 'abort') parts.unshift('Stopped');
    if (finishReason === 'length') parts.unshift('Reached the token limit');
    this.stats.textContent = parts.join(' · ');
    this.stats.title = 'Generation speed (decode) and prompt processing speed (prefill)';
  }

  fail(message) {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.element.dataset.state = 'error';
    this.render();
    this.content.append(h('p', { class: 'error-text', role: 'alert' }, message));
    this.stats.textContent = '';
  }

  renderJson(finishReason) {
    const check = checkReply(this.text, this.schema);
    const badge = check.ok
      ? h('span', { class: 'badge ok' }, this.schema ? 'Valid against the schema' : 'Valid JSON object')
      : h('span', { class: 'badge bad' }, finishReason === 'length' ? 'Cut off at the token limit' : 'Not valid');
    const body = check.ok
      ? h('pre', { class: 'json-view' }, JSON.stringify(check.value, null, 2))
      : h('div', {},
        h('ul', { class: 'json-errors' }, check.errors.map((error) => h('li', {}, error))),
        h('pre', { class: 'json-raw' }, this.text));
    const copyValue = copyButton(() => (check.ok ? JSON.stringify(check.value, null, 2) : this.text));
    this.content.replaceChildren(h('div', { class: 'json-card' },
      h('div', { class: 'json-head' }, badge, copyValue), body));
    this.element.dataset.json = check.ok ? 'valid' : 'invalid';
  }

  renderSources({ selection, ranked, question }) {
    const { passages, mode, totalPassages } = selection;
    const cited = citedNumbers(this.text, passages.length);
    if (!this.json) linkCitations(this.content, passages, (passage) => this.onCitation(passage, question));
    let shown;
    let title;
    if (cited.length > 0) {
      shown = cited.map((n) => ({ n, passage: passages[n - 1] }));
      title = 'Sources cited';
    } else {
      const rank = new Map(ranked.map((r, i) => [r.passage.key, i]));
      shown = passages
        .map((passage, i) => ({ n: i + 1, passage }))
        .filter(({ passage }) => rank.has(passage.key))
        .sort((x, y) => rank.get(x.passage.key) - rank.get(y.passage.key))
        .slice(0, UNCITED_SOURCES);
      title = 'Most relevant passages';
    }
    const scope = {
      whole: `the whole document${new Set(passages.map((p) => p.docId)).size > 1 ? 's' : ''} (${passages.length} passages)`,
      top: `${passages.length} of ${totalPassages} passages`,
      none: 'no passage matched the question',
    }[mode];
    this.sources.hidden = false;
    this.sources.dataset.mode = mode;
    this.sources.replaceChildren(
      h('div', { class: 'sources-head' }, h('strong', {}, shown.length > 0 ? title : 'Sources'), h('span', { class: 'scope' }, `Given to the model: ${scope}`)),
      h('div', { class: 'source-list' }, shown.map(({ n, passage }) => h('button', {
        type: 'button',
        class: 'source',
        dataset: { passage: n },
        onclick: () => this.onCitation(passage, question),
      }, h('span', { class: 'source-number' }, String(n)),
      h('span', { class: 'source-text' },
        h('span', { class: 'source-location' }, passageLocation(passage)),
        h('span', { class: 'source-snippet' }, snippet(passage.text)))))),
    );
  }
}

function snippet(text) {
  const flat = text.replace(/^#{1,6}\s+/gm, '').replace(/\s+/g, ' ').trim();
  return flat.length > 140 ? `${flat.slice(0, 140)}…` : flat;
}

/** Gives each fenced code block a header with its language and a copy button. */
function decorateCodeBlocks(container) {
  for (const pre of container.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    const language = code?.className.match(/language-([\w+-]+)/)?.[1] ?? 'text';
    const wrapper = h('div', { class: 'code-block' },
      h('div', { class: 'code-head' }, h('span', {}, language), copyButton(() => (code ?? pre).textContent)));
    pre.replaceWith(wrapper);
    wrapper.append(pre);
  }
}

/** Turns "[2]" in the answer's text (outside code) into buttons that open passage 2. */
function linkCitations(container, passages, open) {
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement.closest('pre, code') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const text = node.textContent;
    const pattern = citationPattern();
    let last = 0;
    const parts = [];
    for (const match of text.matchAll(pattern)) {
      const numbers = citedNumbers(match[0], passages.length);
      if (numbers.length === 0) continue;
      parts.push(text.slice(last, match.index));
      for (const n of numbers) {
        parts.push(h('button', {
          type: 'button',
          class: 'cite',
          title: passageLocation(passages[n - 1]),
          onclick: () => open(passages[n - 1]),
        }, String(n)));
      }
      last = match.index + match[0].length;
    }
    if (parts.length === 0) continue;
    parts.push(text.slice(last));
    node.replaceWith(...parts);
  }
}
