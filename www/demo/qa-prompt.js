// The shape of each chat turn sent to the model: owns the context budget (what of the history
// and of the user's documents fits the engine's context length), the grounded prompt that
// numbers the passages the model may cite, and reading those citations back from the answer.
// Pure functions over plain data, unit-tested in Node.

import { estimateTokens } from './retrieval.js';

/** Chat-template tokens around each message (`<|im_start|>role\n … <|im_end|>\n`). */
const MESSAGE_OVERHEAD_TOKENS = 6;
/** Tokens of a passage's label line and the blank line after it, beyond its text. */
const PASSAGE_OVERHEAD_TOKENS = 14;
/** Slack for the estimate's errors on top of everything counted. */
const SAFETY_TOKENS = 48;
/** In document mode the history may use at most this share of what the reply leaves free. */
const HISTORY_SHARE_WITH_DOCUMENTS = 0.25;

/** Added to the system prompt when the turn carries passages. */
export const GROUNDING_INSTRUCTIONS = [
  'Answer the question using only the numbered passages from the user\'s documents.',
  'Cite the passages you use by their numbers in square brackets, like [1] or [2][3].',
  'If the passages do not contain the answer, say that the documents do not say.',
  'Answer in the language of the question.',
].join(' ');

/** Where a passage is in its file: its page for paged files (PDF), else its place in the text. */
export function passagePlace(passage) {
  return passage.paged ? `page ${passage.page}` : `part ${passage.index + 1}`;
}

/** How a passage is named to the model and in the page: file name and place. */
export function passageLocation(passage) {
  return `${passage.docName}, ${passagePlace(passage)}`;
}

function messageTokens(message) {
  return MESSAGE_OVERHEAD_TOKENS + estimateTokens(message.content);
}

function passageCost(passage) {
  return PASSAGE_OVERHEAD_TOKENS + passage.tokens;
}

/**
 * Chooses what the model sees for the question: when every passage of every document fits the
 * budget, all of them in reading order ('whole'); otherwise the best-ranked passages that fit,
 * then put back in reading order ('top'); none when nothing matches ('none').
 * `documents`: `[{passages: [...]}]` in the order they were added, each passage with `tokens`;
 * `ranked`: the index's answer for the question (`[{passage}]`, best first).
 * Returns `{mode, passages, totalPassages}`.
 */
export function selectPassages({ documents, ranked, budgetTokens }) {
  const all = documents.flatMap((doc) => doc.passages);
  const wholeCost = all.reduce((sum, passage) => sum + passageCost(passage), 0);
  if (wholeCost <= budgetTokens) return { mode: 'whole', passages: all, totalPassages: all.length };
  const chosen = new Set();
  let used = 0;
  for (const { passage } of ranked) {
    const cost = passageCost(passage);
    // A long passage that does not fit may leave room for a shorter, lower-ranked one.
    if (used + cost > budgetTokens) continue;
    chosen.add(passage);
    used += cost;
  }
  const passages = all.filter((passage) => chosen.has(passage));
  return { mode: passages.length > 0 ? 'top' : 'none', passages, totalPassages: all.length };
}

/** The user message of a grounded turn: the numbered passages, then the question. */
export function groundedQuestion(passages, question) {
  if (passages.length === 0) {
    return `No passage of the documents matches this question.\n\nQuestion: ${question}`;
  }
  const blocks = passages.map((passage, i) => `[${i + 1}] (${passageLocation(passage)})\n${passage.text}`);
  return `Passages:\n\n${blocks.join('\n\n')}\n\nQuestion: ${question}`;
}

/**
 * Plans one turn within `contextLength` tokens, keeping `maxTokens` free for the reply.
 * `history` is the earlier turns as sent before (user questions without their passages, so
 * the conversation stays small); the oldest turns are dropped when they do not fit. With
 * `documents` (non-empty), the passages get what the history leaves (the history at most a
 * quarter of it). Returns `{messages, selection, droppedMessages}`; `selection` is null without
 * documents.
 */
export function planTurn({ contextLength, maxTokens, systemPrompt, history, question, documents = [], ranked = [] }) {
  const grounded = documents.length > 0;
  const system = [systemPrompt.trim(), grounded ? GROUNDING_INSTRUCTIONS : ''].filter(Boolean).join('\n\n');
  const systemMessages = system ? [{ role: 'system', content: system }] : [];
  const fixed = systemMessages.reduce((sum, m) => sum + messageTokens(m), 0)
    + MESSAGE_OVERHEAD_TOKENS + estimateTokens(question) + maxTokens + SAFETY_TOKENS;
  const free = Math.max(0, contextLength - fixed);
  const historyBudget = grounded ? Math.floor(free * HISTORY_SHARE_WITH_DOCUMENTS) : free;

  // Keep the most recent whole turns (a user message with the replies after it) that fit.
  const kept = [];
  let historyTokens = 0;
  for (let end = history.length; end > 0;) {
    let start = end - 1;
    while (start > 0 && history[start].role !== 'user') start -= 1;
    const turn = history.slice(start, end);
    const cost = turn.reduce((sum, m) => sum + messageTokens(m), 0);
    if (historyTokens + cost > historyBudget) break;
    kept.unshift(...turn);
    historyTokens += cost;
    end = start;
  }

  let selection = null;
  let content = question;
  if (grounded) {
    const budgetTokens = free - historyTokens - estimateTokens(groundedQuestion([], '')) - MESSAGE_OVERHEAD_TOKENS;
    selection = selectPassages({ documents, ranked, budgetTokens });
    content = groundedQuestion(selection.passages, question);
  }
  return {
    messages: [...systemMessages, ...kept, { role: 'user', content }],
    selection,
    droppedMessages: history.length - kept.length,
  };
}

const CITATION = /[[【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]】]/gu;

/**
 * The passage numbers (1-based, each once, in order of first mention) that `answer` cites as
 * [n], [n, m] or 【n】, ignoring numbers with no passage.
 */
export function citedNumbers(answer, passageCount) {
  const numbers = [];
  for (const match of answer.matchAll(CITATION)) {
    for (const part of match[1].split(/[,，、]/)) {
      const n = Number(part.trim());
      if (n >= 1 && n <= passageCount && !numbers.includes(n)) numbers.push(n);
    }
  }
  return numbers;
}

/** The same citation pattern, for marking them up in rendered text. */
export function citationPattern() {
  return new RegExp(CITATION.source, CITATION.flags);
}
