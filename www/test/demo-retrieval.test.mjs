// The demo's document Q&A logic in Node (no browser): CJK-aware terms, passage cutting, BM25
// ranking over the committed English and Chinese documents (tests/fixtures/docs/), the context
// plan (whole documents when they fit, else the best passages), citations, and the JSON checks.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkReply, parseSchema, responseFormat } from '../demo/json-mode.js';
import { GROUNDING_INSTRUCTIONS, citedNumbers, groundedQuestion, planTurn, selectPassages } from '../demo/qa-prompt.js';
import { Bm25Index, chunkPages, estimateTokens, matchRanges, stem, termCounts, tokenize } from '../demo/retrieval.js';
import { RateMeter, formatBytes, formatDuration } from '../demo/format.js';

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../tests/fixtures/docs');
const ENGLISH = 'wrenmouth-lighthouse.md';
const CHINESE = 'qingxi-tea.txt';

/** A document as the page holds it: passages with keys, estimates and locations. */
async function loadDocument(file, id) {
  const text = await readFile(path.join(DOCS, file), 'utf8');
  const passages = chunkPages([text]).map((chunk, index) => ({
    ...chunk, index, key: `${id}:${index}`, docId: id, docName: file, paged: false, tokens: estimateTokens(chunk.text),
  }));
  return { id, name: file, text, passages };
}

async function indexed(...files) {
  const documents = await Promise.all(files.map((file, i) => loadDocument(file, `d${i}`)));
  const index = new Bm25Index();
  for (const doc of documents) for (const p of doc.passages) index.add(p.key, p, termCounts(p.text));
  return { documents, index };
}

/** The rank (0 = best) of the first result that contains `answer`; -1 when none does. */
function rankOf(results, answer) {
  return results.findIndex((r) => r.passage.text.includes(answer));
}

test('English terms: lower case, stopwords dropped, light stemming, full-width letters', () => {
  assert.deepEqual(tokenize('The Keepers were burning the lights'), ['keeper', 'burn', 'light']);
  assert.deepEqual(tokenize("Margaret's lamps"), ['margaret', 'lamp']);
  assert.deepEqual(tokenize('ＧＰＵ stopped'), ['gpu', 'stop']);
  assert.equal(stem('stories'), 'story');
  assert.equal(stem('glass'), 'glass');
  assert.equal(stem('1889'), '1889');
});

test('Chinese terms: every character and every neighbouring pair; mixed text splits at the script change', () => {
  assert.deepEqual(tokenize('茶市'), ['茶', '茶市', '市']);
  assert.deepEqual(tokenize('青溪茶'), ['青', '青溪', '溪', '溪茶', '茶']);
  assert.deepEqual(tokenize('WebGPU加速'), ['webgpu', '加', '加速', '速']);
  assert.deepEqual(tokenize('すし'), ['す', 'すし', 'し']);
});

test('token estimates count CJK characters one each and other text by threes', () => {
  assert.equal(estimateTokens('茶市每年'), 4);
  assert.equal(estimateTokens('abcdef'), 2);
  assert.equal(estimateTokens('茶 tea'), 1 + 2);
});

test('passages follow sections, stay near the target and map back to the text', async () => {
  for (const file of [ENGLISH, CHINESE]) {
    const { text, passages } = await loadDocument(file, 'd');
    assert.ok(passages.length >= 7, `${file}: ${passages.length} passages`);
    for (const p of passages) {
      assert.equal(text.slice(p.start, p.end), p.text);
      assert.equal(p.page, 1);
      assert.ok(p.tokens <= 200, `${file}: a passage of ${p.tokens} tokens`);
    }
    // In order and not overlapping.
    for (let i = 1; i < passages.length; i++) assert.ok(passages[i].start >= passages[i - 1].end);
  }
  const { passages: english } = await loadDocument(ENGLISH, 'd');
  assert.ok(english.some((p) => p.text.startsWith('## The Great Storm of 1889\n\nThe most famous night')));
  const { passages: chinese } = await loadDocument(CHINESE, 'd');
  assert.ok(chinese.some((p) => p.text.startsWith('五、茶市\n\n每年四月的第二个星期')));
});

test('pages stay apart: a passage never spans two pages, and long text is cut at sentences', () => {
  const sentence = 'The lantern was cleaned at dawn by the keeper on watch. ';
  const pages = [sentence.repeat(40), 'Page two has one line.'];
  const chunks = chunkPages(pages, { targetTokens: 60 });
  assert.ok(chunks.filter((c) => c.page === 1).length >= 8);
  assert.deepEqual(chunks.filter((c) => c.page === 2).map((c) => c.text), ['Page two has one line.']);
  for (const c of chunks.filter((c) => c.page === 1)) {
    assert.ok(c.text.endsWith('watch.'), c.text);
    assert.ok(estimateTokens(c.text) <= 60);
  }
});

test('BM25 finds the English answer passage first, across both documents', async () => {
  const { index } = await indexed(ENGLISH, CHINESE);
  const cases = [
    ['Who kept the light burning during the storm of 1889?', 'Margaret Ellory'],
    ['When was the Fresnel lens installed?', 'In 1871 the reflectors were replaced'],
    ['How tall is the tower and who designed it?', 'Tobias Hale designed the tower'],
    ['When was the lighthouse automated?', 'fully automated in\n1964'],
    ['What wrecked on the Cobble Reef?', 'Alder Grace'],
  ];
  for (const [question, answer] of cases) {
    const results = index.search(question, 3);
    assert.equal(rankOf(results, answer), 0, `${question} → ${results.map((r) => r.passage.text.slice(0, 40)).join(' | ')}`);
  }
});

test('BM25 finds the Chinese answer passage first, across both documents', async () => {
  const { index } = await indexed(ENGLISH, CHINESE);
  const cases = [
    ['青溪镇的茶市在每年几月举行？', '每年四月的第二个星期'],
    ['杀青的时候铁锅要烧到多少度？', '大约二百二十摄氏度'],
    ['老茶树有多少年了？', '树龄约三百二十年'],
    ['洪水是哪一年发生的？', '二零零八年夏天'],
    ['谁把茶苗带到了青溪镇？', '陈守义'],
  ];
  for (const [question, answer] of cases) {
    const results = index.search(question, 3);
    assert.equal(rankOf(results, answer), 0, `${question} → ${results.map((r) => r.passage.text.slice(0, 20)).join(' | ')}`);
    // The Chinese question matches no English passage.
    assert.ok(results.every((r) => r.passage.docName === CHINESE));
  }
});

test('the index forgets removed passages; a question with no shared term finds nothing', async () => {
  const { documents, index } = await indexed(ENGLISH, CHINESE);
  const size = index.size;
  for (const p of documents[1].passages) index.remove(p.key);
  assert.equal(index.size, size - documents[1].passages.length);
  assert.deepEqual(index.search('茶市在几月？'), []);
  assert.deepEqual(index.search('the of and'), []);
  assert.equal(rankOf(index.search('Fresnel lens'), 'In 1871'), 0);
});

test('matchRanges marks the question words (stems) and CJK pairs, not lone characters', () => {
  const text = 'Keepers kept the light burning.';
  assert.deepEqual(matchRanges(text, 'keeper burn').map(([s, e]) => text.slice(s, e)), ['Keepers', 'burning']);
  const zh = '每年四月举办茶市，茶市持续三天。';
  assert.deepEqual(matchRanges(zh, '茶市几月').map(([s, e]) => zh.slice(s, e)), ['茶市', '茶市']);
});

test('the plan gives whole documents when they fit, else the best passages in reading order', async () => {
  const { documents, index } = await indexed(ENGLISH, CHINESE);
  const question = 'Who kept the light burning during the storm of 1889?';
  const ranked = index.search(question);
  const all = documents.flatMap((d) => d.passages);

  const whole = selectPassages({ documents, ranked, budgetTokens: 100_000 });
  assert.equal(whole.mode, 'whole');
  assert.equal(whole.passages.length, all.length);

  const top = selectPassages({ documents, ranked, budgetTokens: 400 });
  assert.equal(top.mode, 'top');
  assert.equal(top.totalPassages, all.length);
  assert.ok(top.passages.length >= 1 && top.passages.length < all.length);
  assert.ok(top.passages.some((p) => p.text.includes('Margaret Ellory')));
  const order = top.passages.map((p) => all.indexOf(p));
  assert.deepEqual(order, [...order].sort((a, b) => a - b));
  const cost = top.passages.reduce((sum, p) => sum + p.tokens + 14, 0);
  assert.ok(cost <= 400, `${cost} tokens`);

  assert.equal(selectPassages({ documents, ranked: [], budgetTokens: 100 }).mode, 'none');
});

test('planTurn: grounded prompt, context budget, and dropping the oldest turns', async () => {
  const { documents, index } = await indexed(ENGLISH, CHINESE);
  const question = '青溪镇的茶市在每年几月举行？';
  const base = { maxTokens: 256, systemPrompt: 'You are a helpful assistant.', history: [], question, documents, ranked: index.search(question) };

  const roomy = planTurn({ ...base, contextLength: 32768 });
  assert.equal(roomy.selection.mode, 'whole');
  assert.equal(roomy.messages.length, 2);
  assert.equal(roomy.messages[0].role, 'system');
  assert.ok(roomy.messages[0].content.startsWith('You are a helpful assistant.\n\n'));
  assert.ok(roomy.messages[0].content.endsWith(GROUNDING_INSTRUCTIONS));
  const user = roomy.messages[1].content;
  assert.ok(user.startsWith('Passages:\n\n[1] (wrenmouth-lighthouse.md, part 1)\n# The Harbor Light'));
  assert.ok(user.endsWith(`\n\nQuestion: ${question}`));

  const tight = planTurn({ ...base, contextLength: 1024 });
  assert.equal(tight.selection.mode, 'top');
  assert.ok(tight.selection.passages.some((p) => p.text.includes('每年四月的第二个星期')));
  const estimate = tight.messages.reduce((sum, m) => sum + estimateTokens(m.content) + 6, 0);
  assert.ok(estimate + 256 <= 1024, `${estimate} prompt tokens + 256 for the reply`);

  const history = [];
  for (let i = 0; i < 20; i++) {
    history.push({ role: 'user', content: `Question ${i}: ${'lorem ipsum '.repeat(30)}` });
    history.push({ role: 'assistant', content: `Answer ${i}: ${'dolor sit amet '.repeat(30)}` });
  }
  const chat = planTurn({ ...base, documents: [], ranked: [], history, question: 'And now?', contextLength: 2048 });
  assert.equal(chat.selection, null);
  assert.ok(chat.droppedMessages > 0 && chat.droppedMessages % 2 === 0);
  const kept = chat.messages.slice(1, -1);
  assert.deepEqual(kept, history.slice(chat.droppedMessages));
  assert.equal(kept[0].role, 'user');
  assert.deepEqual(chat.messages.at(-1), { role: 'user', content: 'And now?' });
});

test('citations: [n], [n, m] and 【n】 are read, numbers without a passage ignored', () => {
  assert.deepEqual(citedNumbers('The keeper [2] kept it lit [1, 3]. See 【2】 and [9].', 3), [2, 1, 3]);
  assert.deepEqual(citedNumbers('No citations here (1).', 3), []);
  assert.equal(groundedQuestion([], 'Why?'), 'No passage of the documents matches this question.\n\nQuestion: Why?');
});

test('JSON mode: response_format from the schema, and replies checked against it', () => {
  const schema = { type: 'object', properties: { score: { type: 'integer', maximum: 5 } }, required: ['score'], additionalProperties: false };
  assert.deepEqual(responseFormat(schema), { type: 'json_schema', json_schema: { name: 'reply', schema, strict: true } });
  assert.deepEqual(responseFormat(null), { type: 'json_object' });
  assert.deepEqual(checkReply('{"score": 4}', schema), { ok: true, value: { score: 4 } });
  const tooHigh = checkReply('{"score": 9}', schema);
  assert.equal(tooHigh.ok, false);
  assert.match(tooHigh.errors.join('\n'), /\/score: .*5/);
  assert.equal(checkReply('{"score": 4', schema).ok, false);
  assert.deepEqual(checkReply('{"any": [1]}', null), { ok: true, value: { any: [1] } });
  assert.equal(checkReply('[1]', null).ok, false);
  assert.deepEqual(parseSchema(''), { ok: true, schema: null });
  assert.equal(parseSchema('{"type": ').ok, false);
  assert.equal(parseSchema('[]').ok, false);
});

test('progress numbers: sizes, durations, speed over a sliding window, time left', () => {
  assert.equal(formatBytes(26_700_000), '26.7 MB');
  assert.equal(formatBytes(491_400_064), '491 MB');
  assert.equal(formatBytes(4_680_000_000), '4.68 GB');
  assert.equal(formatDuration(42), '42 s');
  assert.equal(formatDuration(200), '3 min 20 s');
  const meter = new RateMeter(4000);
  for (let t = 0; t <= 10_000; t += 500) meter.add(t < 5000 ? t * 1000 : 5_000_000 + (t - 5000) * 4000, t);
  // The window holds only the last 4 s, at 4 MB/s (not the 2.5 MB/s average since the start).
  assert.equal(Math.round(meter.rate()), 4_000_000);
  assert.equal(Math.round(meter.secondsLeft(45_000_000)), 5);
});
