// The demo page (www/demo/) end to end in headless Chromium (WebGPU on SwiftShader), served
// by the demo's own server (www/demo/serve.mjs, as scripts/serve-demo runs it), with the tiny
// random model: the WebGPU check, loading from localhost in a worker with progress, a
// streamed chat turn equal to the engine's greedy reply, Stop, JSON mode, document Q&A over
// the committed English and Chinese documents and a generated PDF (clickable sources, page
// citations), privacy (every request stays on localhost, carries no document text, and
// nothing is stored unless asked), and the cache manager. Screenshots go to
// test-artifacts/demo/. The tests share one browser profile and run in file order: the model
// downloaded by the first load is read from the cache afterwards, and the last test deletes it.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MODELS_DIR, REPO_ROOT, TINY_MODEL, openSuite } from './browser.mjs';
import { formatBytes } from '../demo/format.js';
import { serve } from '../demo/serve.mjs';

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'demo');
const DOCS = path.join(REPO_ROOT, 'tests/fixtures/docs');
const ENGLISH = path.join(DOCS, 'wrenmouth-lighthouse.md');
const CHINESE = path.join(DOCS, 'qingxi-tea.txt');
const DEMO = `/www/demo/?model=${TINY_MODEL.url}`;
const MODEL_TIMEOUT = 240_000;
const REPLY_TIMEOUT = 240_000;
/** Phrases of the documents that must never appear in a request. */
const SECRET_PHRASES = ['Margaret Ellory', 'Cobble Reef', 'Tobias Hale', '茶市', '陈守义', 'Quay Street'];

/** The browser (the suite's Chromium profile; its own test server stays unused). */
let suite;
/** The demo's own server (www/demo/serve.mjs, what scripts/serve-demo runs) and its request log. */
let server;
let origin;
const served = [];
let tinySize;
/** The page that holds the loaded model, shared by the tests that chat. */
let chatPage;

/** The page's libraries and fixtures: a missing one fails here, by name, not as a page that never loads. */
function requireDemoFiles() {
  const needed = [
    ['www/node_modules/marked/lib/marked.esm.js', 'cd www && npm ci'],
    ['www/node_modules/dompurify/dist/purify.es.mjs', 'cd www && npm ci'],
    ['www/node_modules/pdfjs-dist/build/pdf.min.mjs', 'cd www && npm ci'],
    ['www/node_modules/@cfworker/json-schema/dist/esm/index.js', 'cd www && npm ci'],
    ['tests/fixtures/docs/wrenmouth-lighthouse.md', 'git checkout tests/fixtures/docs'],
    ['tests/fixtures/docs/qingxi-tea.txt', 'git checkout tests/fixtures/docs'],
  ].filter(([file]) => !existsSync(path.join(REPO_ROOT, file)));
  if (needed.length > 0) throw new Error(`missing demo prerequisites:\n  ${needed.map(([file, fix]) => `${file} (${fix})`).join('\n  ')}`);
}

before(async () => {
  requireDemoFiles();
  suite = await openSuite('demo', { models: [TINY_MODEL.file] });
  server = await serve({ port: 0, models: MODELS_DIR, onRequest: (request) => served.push(request) });
  origin = `http://127.0.0.1:${server.address().port}`;
  tinySize = (await stat(path.join(MODELS_DIR, TINY_MODEL.file))).size;
  await suite.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  await mkdir(ARTIFACTS, { recursive: true });
});

after(async () => {
  await chatPage?.close().catch(() => undefined);
  await suite?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Opens the demo (with extra query parameters) and waits for its WebGPU check. */
async function openDemo(query = '', pagePath = DEMO) {
  const page = await suite.context.newPage();
  await page.setViewportSize({ width: 1360, height: 900 });
  page.consoleLines = [];
  page.errors = [];
  page.on('console', (message) => page.consoleLines.push(`[${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => {
    page.errors.push(error.message);
    page.consoleLines.push(`[pageerror] ${error.stack ?? error.message}`);
  });
  await page.goto(`${origin}${pagePath}${query}`);
  await page.waitForSelector('#gpu-status:not([data-state="checking"])');
  return page;
}

/** Runs `body(page)`; on failure saves the page's screenshot and console next to the others. */
async function withArtifacts(t, page, body) {
  try {
    return await body(page);
  } catch (error) {
    const directory = path.join(ARTIFACTS, 'failures', t.name.replace(/[^\w.-]+/g, '_'));
    await mkdir(directory, { recursive: true });
    await writeFile(path.join(directory, 'console.log'), `${[...page.consoleLines, '', String(error?.stack ?? error)].join('\n')}\n`);
    await page.screenshot({ path: path.join(directory, 'screenshot.png'), timeout: 10_000 }).catch(() => undefined);
    throw error;
  }
}

async function screenshot(page, name, options = {}) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), ...options });
}

async function openPanel(page, id) {
  if (!(await page.$eval(`#${id}`, (details) => details.open))) await page.click(`#${id} summary`);
}

/** Sets the sampling controls, opening their panel. */
async function setSampling(page, { temperature, maxTokens }) {
  await openPanel(page, 'settings-panel');
  await page.$eval('#temperature', (input, value) => {
    input.value = String(value);
    input.dispatchEvent(new Event('input'));
  }, temperature);
  await page.fill('#max-tokens', String(maxTokens));
}

/** Sends `text` and waits for the reply to finish; returns the reply element's state. */
async function ask(page, text) {
  const before = await page.locator('.message.assistant').count();
  await page.fill('#prompt', text);
  await page.press('#prompt', 'Enter');
  const reply = page.locator('.message.assistant').nth(before);
  await reply.waitFor();
  await page.waitForFunction((index) => {
    const element = document.querySelectorAll('.message.assistant')[index];
    return element && element.dataset.state !== 'streaming';
  }, before, { timeout: REPLY_TIMEOUT });
  return reply;
}

/** Loads the selected model with the given context length and waits until it is ready. */
async function loadModel(page, contextLength) {
  await page.selectOption('#context-select', String(contextLength));
  await page.click('#load-button');
  await page.waitForSelector('#model-status[data-state="loading"]', { state: 'attached' });
  await page.waitForSelector('#model-status[data-state="ready"], #model-status[data-state="error"]', { timeout: MODEL_TIMEOUT });
  const status = await page.textContent('#model-status');
  assert.match(status, new RegExp(`is ready · ${contextLength.toLocaleString('en-US')}-token context`), `the model did not load: ${status}`);
}

/** Adds files through the file input and waits until every listed document is indexed. */
async function addDocuments(page, files) {
  await page.setInputFiles('#file-input', files);
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('.doc-row')];
    return rows.length > 0 && rows.every((row) => row.dataset.status === 'ready' || row.dataset.status === 'error');
  });
  const failed = await page.$$eval('.doc-row[data-status="error"] .doc-status', (rows) => rows.map((r) => r.textContent));
  assert.deepEqual(failed, []);
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A small two-page PDF (Helvetica text), laid out by hand with a correct cross-reference table. */
function twoPagePdf(pages) {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${pages.map((_, i) => `${3 + i * 2} 0 R`).join(' ')}] /Count ${pages.length} >>`,
  ];
  const fontId = 3 + pages.length * 2;
  pages.forEach((lines, i) => {
    const text = lines.map((line, j) => `${j === 0 ? '72 720 Td' : '0 -18 Td'} (${line.replace(/[()\\]/g, '\\$&')}) Tj`).join('\n');
    const stream = `BT /F1 12 Tf\n${text}\nET`;
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 ${fontId} 0 R >> >> /Contents ${4 + i * 2} 0 R >>`);
    objects.push(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
  });
  objects.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  let pdf = '%PDF-1.4\n';
  const offsets = objects.map((body, i) => {
    const offset = pdf.length;
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return offset;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

test('the page opens with the local test model selected and WebGPU detected', async (t) => {
  // Without ?model= the page selects the real local test model.
  const page = await openDemo('', '/www/demo/');
  try {
    await withArtifacts(t, page, async () => {
      assert.equal(await page.title(), 'Qwen WebGPU · private AI chat in your browser');
      assert.equal(await page.getAttribute('#gpu-status', 'data-state'), 'ok');
      assert.match(await page.textContent('#gpu-status'), /^WebGPU · .+/);
      assert.equal(await page.inputValue('#model-select'), 'local-coder');
      assert.equal(await page.textContent('#model-detail'), '0.49 GB');
      const options = await page.$$eval('#model-select option', (list) => list.map((o) => o.textContent));
      for (const size of ['0.5B', '1.5B', '3B', '7B']) assert.ok(options.includes(`Qwen2.5 ${size} Instruct`), options.join(', '));
      assert.equal(await page.isEnabled('#load-button'), true);
      assert.equal(await page.isDisabled('#prompt'), true);
      assert.equal(await page.isVisible('#webgpu-banner'), false);
      await openPanel(page, 'storage-panel');
      await page.waitForSelector('#cache-list li');
      assert.equal(await page.textContent('#cache-list'), 'No models are stored yet.');
      assert.deepEqual(page.errors, []);
      await screenshot(page, 'start-light');
      await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
      await screenshot(page, 'start-dark');
    });
  } finally {
    await page.close();
  }
});

test('the picker offers the official Qwen2.5 GGUF files, the 7B one as two shards', async (t) => {
  const page = await openDemo();
  try {
    await withArtifacts(t, page, async () => {
      const urls = await page.evaluate(async () => {
        const { modelCatalog } = await import('/www/demo/models.js');
        const { groups } = modelCatalog(new URL('https://example.org/demo/'));
        return Object.fromEntries(groups.flatMap((g) => g.models).map((m) => [m.id, m.urls]));
      });
      const hf = 'https://huggingface.co/Qwen';
      assert.deepEqual(urls, {
        'qwen2.5-0.5b': [`${hf}/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf`],
        'qwen2.5-1.5b': [`${hf}/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf`],
        'qwen2.5-3b': [`${hf}/Qwen2.5-3B-Instruct-GGUF/resolve/main/qwen2.5-3b-instruct-q4_k_m.gguf`],
        'qwen2.5-7b': [
          `${hf}/Qwen2.5-7B-Instruct-GGUF/resolve/main/qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf`,
          `${hf}/Qwen2.5-7B-Instruct-GGUF/resolve/main/qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf`,
        ],
      });
    });
  } finally {
    await page.close();
  }
});

test('without WebGPU the page says so in plain words and offers no loading', async (t) => {
  const page = await openDemo('&no-webgpu');
  try {
    await withArtifacts(t, page, async () => {
      assert.equal(await page.getAttribute('#gpu-status', 'data-state'), 'missing');
      assert.equal(await page.isVisible('#webgpu-banner'), true);
      assert.equal(await page.textContent('#webgpu-banner h2'), 'This browser can’t run the model');
      assert.equal(await page.textContent('#webgpu-reason'), 'This browser does not offer WebGPU.');
      assert.match(await page.textContent('#webgpu-banner'), /Chrome and Edge/);
      assert.equal(await page.isDisabled('#load-button'), true);
      assert.equal(await page.textContent('#empty-title'), 'This browser can’t run the model');
      await screenshot(page, 'no-webgpu');
    });
  } finally {
    await page.close();
  }
});

test('replies render Markdown safely: code blocks, tables, clickable citations; no images, scripts or handlers', async (t) => {
  const page = await openDemo();
  const outside = [];
  await page.route((url) => url.origin !== origin, (route) => {
    outside.push(route.request().url());
    return route.abort();
  });
  try {
    await withArtifacts(t, page, async () => {
      const reply = [
        '## The keeper',
        'The light was kept by **Margaret Ellory** [1], for three days and nights [1][2].',
        '',
        '| Year | Event |',
        '| --- | --- |',
        '| 1852 | First lit |',
        '| 1889 | The Great Storm |',
        '',
        '```python',
        'def flashes(seconds):',
        '    return 2 * seconds // 15',
        '```',
        '',
        '<img src="https://tracker.example/pixel?q=Margaret" onerror="window.pwned = 1"><script>window.pwned = 2</script>',
        '<a href="javascript:window.pwned = 3">bad link</a> and [a good link](https://example.org/lighthouses).',
      ].join('\n');
      const result = await page.evaluate(async (text) => {
        const { ChatView } = await import('/www/demo/chat-view.js');
        const opened = [];
        const view = new ChatView(document.getElementById('transcript'), { onCitation: (passage) => opened.push(passage.key) });
        view.addUser('Who kept the light?', { documents: true });
        const answer = view.addAssistant({ json: false, schema: null });
        const passages = [
          { key: 'd:5', docId: 'd', docName: 'wrenmouth-lighthouse.md', paged: false, page: 1, index: 5, text: 'Margaret Ellory kept the light burning alone for three days and nights.' },
          { key: 'd:6', docId: 'd', docName: 'wrenmouth-lighthouse.md', paged: false, page: 1, index: 6, text: 'Every fishing boat out that week reached the harbour safely.' },
        ];
        for (const piece of text.match(/[\s\S]{1,7}/g)) answer.append(piece);
        answer.finish({
          finishReason: 'stop',
          usage: { prompt_tokens: 412, completion_tokens: 96, total_tokens: 508, cached_prompt_tokens: 0, prefill_tokens_per_s: 350.4, decode_tokens_per_s: 21.37 },
          grounding: { selection: { mode: 'whole', passages, totalPassages: 2 }, ranked: [{ passage: passages[0] }], question: 'Who kept the light?' },
        });
        const content = answer.element.querySelector('.content');
        const cites = [...content.querySelectorAll('button.cite')];
        cites[2].click();
        return {
          html: content.innerHTML,
          cites: cites.map((b) => b.textContent),
          opened,
          links: [...content.querySelectorAll('a')].map((a) => ({ href: a.getAttribute('href'), target: a.target, rel: a.rel, text: a.textContent })),
          codeHead: content.querySelector('.code-head')?.textContent,
          code: content.querySelector('pre code')?.textContent,
          tableCells: [...content.querySelectorAll('td')].map((td) => td.textContent),
          sourcesTitle: answer.element.querySelector('.sources-head strong').textContent,
          sources: [...answer.element.querySelectorAll('.source-location')].map((s) => s.textContent),
          stats: answer.element.querySelector('.stats').textContent,
          pwned: window.pwned ?? null,
        };
      }, reply);
      await page.waitForTimeout(300);
      assert.equal(result.pwned, null);
      assert.doesNotMatch(result.html, /<img|<script|onerror|javascript:/i);
      assert.deepEqual(outside, []);
      assert.deepEqual(result.cites, ['1', '1', '2']);
      assert.deepEqual(result.opened, ['d:6']);
      assert.deepEqual(result.links, [
        { href: null, target: '_blank', rel: 'noopener noreferrer nofollow', text: 'bad link' },
        { href: 'https://example.org/lighthouses', target: '_blank', rel: 'noopener noreferrer nofollow', text: 'a good link' },
      ]);
      assert.equal(result.codeHead, 'pythonCopy');
      assert.equal(result.code, 'def flashes(seconds):\n    return 2 * seconds // 15\n');
      assert.deepEqual(result.tableCells, ['1852', 'First lit', '1889', 'The Great Storm']);
      assert.equal(result.sourcesTitle, 'Sources cited');
      assert.deepEqual(result.sources, ['wrenmouth-lighthouse.md, part 6', 'wrenmouth-lighthouse.md, part 7']);
      assert.equal(result.stats, '96 tokens · 21.4 tok/s · prompt 412 at 350 tok/s');
      await page.locator('.code-block .copy-button').click();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'def flashes(seconds):\n    return 2 * seconds // 15\n');
      await screenshot(page, 'markdown-reply');
      await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
      await screenshot(page, 'markdown-reply-dark');
    });
  } finally {
    await page.close();
  }
});

test('the tiny model loads from localhost in a worker with progress, and a reply streams', async (t) => {
  chatPage = await openDemo();
  const page = chatPage;
  await withArtifacts(t, page, async () => {
    served.length = 0;
    // Everything the progress panel says while loading.
    await page.evaluate(() => {
      globalThis.progressSeen = new Set();
      const record = () => {
        for (const id of ['progress-phase', 'progress-detail', 'progress-gpu']) globalThis.progressSeen.add(document.getElementById(id).textContent);
      };
      new MutationObserver(record).observe(document.getElementById('load-progress'), { subtree: true, childList: true, characterData: true });
    });
    await loadModel(page, 4096);
    const seen = await page.evaluate(() => [...globalThis.progressSeen]);
    assert.ok(seen.includes('Downloading'), seen.join(' | '));
    assert.ok(seen.some((s) => s.startsWith(`${formatBytes(tinySize)} of ${formatBytes(tinySize)}`)), seen.join(' | '));
    assert.ok(seen.some((s) => /^On the GPU: \d+ of \d+ tensors$/.test(s)), seen.join(' | '));
    // The engine runs in the demo's worker, and the model came from this server.
    assert.ok(page.workers().some((w) => w.url().endsWith('/www/demo/engine-worker.js')));
    assert.ok(served.some((r) => r.path === TINY_MODEL.url));
    assert.match(await page.textContent('#model-status'), /Tiny test model is ready · 4,096-token context/);
    assert.equal(await page.textContent('#load-button'), 'Loaded');
    await openPanel(page, 'storage-panel');
    await page.waitForSelector('.cache-row');
    assert.equal(await page.textContent('.cache-row .cache-name span:first-child'), 'Tiny test model');
    assert.equal(await page.textContent('.cache-row .cache-name .tag'), 'loaded');
    assert.equal(await page.textContent('.cache-row .cache-size'), formatBytes(tinySize));

    await setSampling(page, { temperature: 0, maxTokens: 6 });
    // Snapshots of the reply's text as it grows.
    await page.evaluate(() => {
      globalThis.replySnapshots = [];
      new MutationObserver(() => {
        const content = document.querySelector('.message.assistant[data-state="streaming"] .content');
        if (content) globalThis.replySnapshots.push(content.textContent);
      }).observe(document.getElementById('transcript'), { subtree: true, childList: true, characterData: true });
    });
    const question = 'Write a haiku about lighthouses.';
    const reply = await ask(page, question);
    assert.equal(await reply.getAttribute('data-state'), 'done');
    const snapshots = await page.evaluate(() => globalThis.replySnapshots.filter((s) => s !== ''));
    assert.ok(new Set(snapshots).size >= 2, `the reply appeared at once: ${JSON.stringify(snapshots)}`);
    const stats = await reply.locator('.stats').textContent();
    assert.match(stats, /^Reached the token limit · 6 tokens · \d+\.\d tok\/s · prompt \d+ at \d+ tok\/s$/);
    const promptTokens = Number(stats.match(/prompt (\d+)/)[1]);
    // The KV cache holds the prompt and the reply's tokens (the engine may not have fed back
    // the last one, which nothing has needed yet).
    const used = Number((await page.textContent('#context-label')).match(/^Context (\d+) \/ 4,096$/)[1]);
    assert.ok(used === promptTokens + 5 || used === promptTokens + 6, `${used} tokens in the context after ${promptTokens} + 6`);

    // The copied reply is exactly the engine's greedy answer to the same messages.
    await reply.locator('.meta .copy-button').click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    // The package's test page, on this origin so that it reads the model the demo cached.
    const testPage = await suite.context.newPage();
    try {
      await testPage.goto(`${origin}/www/test/page.html`);
      const expected = await testPage.evaluate(async (q) => {
        const helpers = await import('/www/test/page-helpers.mjs');
        const loaded = await helpers.loadEngine({ model: '/models/qwen2-tiny-random.gguf' });
        if (!loaded.ok) return loaded;
        return helpers.complete({ messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: q }], temperature: 0, max_tokens: 6 });
      }, question);
      assert.equal(expected.ok, true, JSON.stringify(expected.error));
      assert.equal(copied, expected.completion.choices[0].message.content);
      assert.equal(expected.completion.usage.prompt_tokens, promptTokens);
    } finally {
      await testPage.close();
    }
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'chat');
  });
});

test('Stop ends a long reply early, the next turn reuses the cache, New chat clears it', async (t) => {
  const page = chatPage;
  await withArtifacts(t, page, async () => {
    await setSampling(page, { temperature: 0.7, maxTokens: 300 });
    const before = await page.locator('.message.assistant').count();
    await page.fill('#prompt', 'Tell me a long story about the sea.');
    await page.press('#prompt', 'Enter');
    await page.waitForFunction((i) => document.querySelectorAll('.message.assistant')[i]?.querySelector('.content')?.textContent.length > 0, before, { timeout: REPLY_TIMEOUT });
    assert.equal(await page.isVisible('#stop'), true);
    await page.click('#stop');
    const reply = page.locator('.message.assistant').nth(before);
    await page.waitForFunction((i) => document.querySelectorAll('.message.assistant')[i].dataset.state !== 'streaming', before, { timeout: REPLY_TIMEOUT });
    assert.equal(await reply.getAttribute('data-state'), 'stopped');
    const stats = await reply.locator('.stats').textContent();
    assert.match(stats, /^Stopped · \d+ tokens/);
    assert.ok(Number(stats.match(/(\d+) tokens/)[1]) < 300);
    assert.equal(await page.isVisible('#send'), true);

    await setSampling(page, { temperature: 0, maxTokens: 4 });
    const next = await ask(page, 'And a short one?');
    assert.equal(await next.getAttribute('data-state'), 'done');
    // The earlier turns were already in the KV cache.
    assert.match(await next.locator('.stats').textContent(), /prompt \d+ \(\d+ reused\)/);

    await page.click('#new-chat');
    await page.waitForFunction(() => document.getElementById('context-label').textContent === 'Context 0 / 4,096');
    assert.equal(await page.locator('.message').count(), 0);
    assert.equal(await page.isVisible('#empty-state'), true);
    assert.equal(await page.textContent('#empty-title'), 'What can I help with?');
  });
});

test('JSON mode: the reply follows the schema and is shown as a validated object', async (t) => {
  const page = chatPage;
  await withArtifacts(t, page, async () => {
    await setSampling(page, { temperature: 0, maxTokens: 48 });
    await openPanel(page, 'json-panel');
    await page.check('#json-mode');
    await page.selectOption('#schema-preset', 'sentiment');
    assert.equal(await page.textContent('#schema-status'), 'The schema is valid JSON. Replies will follow it.');
    assert.equal(await page.textContent('#mode-badges'), 'JSON');
    const reply = await ask(page, 'Rate this review: "The lighthouse tour was wonderful."');
    const badge = await reply.locator('.badge').textContent();
    const raw = await reply.locator('pre').first().textContent();
    assert.equal(badge, 'Valid against the schema', `reply: ${raw}`);
    assert.equal(await reply.getAttribute('data-json'), 'valid');
    const value = JSON.parse(await reply.locator('.json-view').textContent());
    assert.deepEqual(Object.keys(value).sort(), ['score', 'sentiment']);
    assert.ok(['positive', 'neutral', 'negative'].includes(value.sentiment));
    assert.ok(Number.isInteger(value.score) && value.score >= 1 && value.score <= 5);
    await screenshot(page, 'json-mode');
  }).finally(async () => {
    await page.uncheck('#json-mode').catch(() => undefined);
  });
});

test('document Q&A in English and Chinese: sources, passages, and nothing leaves the page', async (t) => {
  const page = chatPage;
  await withArtifacts(t, page, async () => {
    // From here on, every request is recorded; any that is not for this server is refused.
    const requests = [];
    const record = (request) => requests.push({ url: request.url(), method: request.method(), body: request.postData() ?? '' });
    suite.context.on('request', record);
    await suite.context.route((url) => url.origin !== origin, (route) => route.abort());
    served.length = 0;
    try {
      await page.click('#new-chat');
      await setSampling(page, { temperature: 0, maxTokens: 6 });
      await addDocuments(page, [ENGLISH]);
      assert.equal(await page.textContent('.doc-row .doc-status'), '8 passages · 3 kB');
      assert.equal(await page.isChecked('#use-documents'), true);
      assert.equal(await page.textContent('#mode-badges'), 'Documents · 1');

      const english = await ask(page, 'Who kept the light burning during the storm of 1889?');
      assert.equal(await english.getAttribute('data-state'), 'done');
      assert.equal(await english.locator('.sources').getAttribute('data-mode'), 'whole');
      assert.equal(await english.locator('.sources .scope').textContent(), 'Given to the model: the whole document (8 passages)');
      const firstSource = english.locator('.source').first();
      assert.equal(await firstSource.locator('.source-location').textContent(), 'wrenmouth-lighthouse.md, part 6');
      await screenshot(page, 'documents-english');
      await firstSource.click();
      await page.waitForSelector('#passage-dialog[open]');
      assert.equal(await page.textContent('.passage-title'), 'wrenmouth-lighthouse.md');
      assert.equal(await page.textContent('.passage-location'), 'passage 6 of 8');
      assert.match(await page.textContent('.passage-body'), /Margaret Ellory, the principal keeper's daughter, kept the light\nburning alone/);
      const marked = await page.$$eval('.passage-body mark', (marks) => marks.map((m) => m.textContent));
      for (const word of ['light', 'burning', 'storm', '1889']) assert.ok(marked.some((m) => m.toLowerCase() === word), marked.join(', '));
      await screenshot(page, 'passage');
      await page.click('.passage-next');
      assert.equal(await page.textContent('.passage-location'), 'passage 7 of 8');
      await page.click('.passage-close');

      // Both documents (about 2,100 estimated tokens) no longer fit a 2,048-token context:
      // switching the model to it makes answers use the best passages.
      await loadModel(page, 2048);
      await addDocuments(page, [CHINESE]);
      assert.equal(await page.textContent('#mode-badges'), 'Documents · 2');
      const chinese = await ask(page, '青溪镇的茶市在每年几月举行？');
      assert.equal(await chinese.getAttribute('data-state'), 'done');
      assert.equal(await chinese.locator('.sources').getAttribute('data-mode'), 'top');
      assert.match(await chinese.locator('.sources .scope').textContent(), /^Given to the model: \d+ of 16 passages$/);
      const chineseSource = chinese.locator('.source').first();
      assert.equal(await chineseSource.locator('.source-location').textContent(), 'qingxi-tea.txt, part 6');
      await chineseSource.click();
      await page.waitForSelector('#passage-dialog[open]');
      assert.match(await page.textContent('.passage-body'), /每年四月的第二个星期，镇上的老街会举办茶市/);
      assert.ok((await page.$$eval('.passage-body mark', (marks) => marks.map((m) => m.textContent))).includes('茶市'));
      await screenshot(page, 'passage-chinese');
      await page.click('.passage-close');
      await screenshot(page, 'documents-chinese');
    } finally {
      suite.context.off('request', record);
      await suite.context.unrouteAll();
    }

    assert.ok(requests.length > 0, 'no request was recorded at all');
    for (const request of [...requests, ...served.map((r) => ({ url: `${origin}${r.path}`, method: r.method, body: '' }))]) {
      assert.equal(new URL(request.url).origin, origin, `a request left localhost: ${request.url}`);
      assert.equal(request.method, 'GET', `${request.method} ${request.url}`);
      const sent = `${request.url}\n${safeDecode(request.url)}\n${request.body}`;
      for (const phrase of SECRET_PHRASES) assert.ok(!sent.includes(phrase), `document text in ${request.url}`);
    }
    // Nothing about the documents was stored: only the engine's model cache exists.
    const storage = await page.evaluate(async () => ({
      databases: (await indexedDB.databases()).map((db) => db.name),
      local: localStorage.length,
      session: sessionStorage.length,
      caches: await caches.keys(),
    }));
    assert.deepEqual(storage, { databases: ['qwen-webgpu-model-cache'], local: 0, session: 0, caches: [] });
  });
});

test('a dropped PDF is read page by page and its passages are cited by page', async (t) => {
  const page = chatPage;
  await withArtifacts(t, page, async () => {
    await page.click('#new-chat');
    while (await page.locator('.doc-row').count() > 0) await page.locator('.doc-row .icon-button').first().click();
    const pdf = twoPagePdf([
      ['Harbour Records of Wrenmouth', 'The fish market opened on the west quay in 1880.', 'Herring and mackerel were sold there every morning.'],
      ['The harbour master moved his office to Quay Street in 1907.', 'The old office became a net store.'],
    ]);
    // Dropped onto the drop zone, as a user drags a file from the desktop.
    await page.evaluate(async (base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], 'harbour-records.pdf', { type: 'application/pdf' }));
      document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, pdf.toString('base64'));
    await page.waitForSelector('.doc-row[data-status="ready"], .doc-row[data-status="error"]');
    assert.equal(await page.textContent('.doc-row .doc-status'), `2 passages · 2 pages · ${formatBytes(pdf.length)}`);
    const reply = await ask(page, 'When did the harbour master move his office?');
    const source = reply.locator('.source').first();
    assert.equal(await source.locator('.source-location').textContent(), 'harbour-records.pdf, page 2');
    await source.click();
    await page.waitForSelector('#passage-dialog[open]');
    assert.equal(await page.textContent('.passage-location'), 'page 2 · passage 2 of 2');
    assert.match(await page.textContent('.passage-body'), /The harbour master moved his office to Quay Street in 1907\./);
    await page.click('.passage-close');
  });
});

test('documents are kept only when asked: reload forgets them unless "Remember" is on', async (t) => {
  const page = await openDemo();
  try {
    await withArtifacts(t, page, async () => {
      await addDocuments(page, [ENGLISH]);
      await page.reload();
      await page.waitForSelector('#gpu-status:not([data-state="checking"])');
      assert.equal(await page.locator('.doc-row').count(), 0);

      await page.check('#remember-documents');
      await addDocuments(page, [CHINESE]);
      assert.ok((await page.evaluate(async () => (await indexedDB.databases()).map((db) => db.name))).includes('qwen-webgpu-demo-documents'));
      await page.reload();
      await page.waitForSelector('.doc-row[data-status="ready"]');
      assert.equal(await page.textContent('.doc-row .doc-name'), 'qingxi-tea.txt');
      assert.equal(await page.isChecked('#remember-documents'), true);

      await page.uncheck('#remember-documents');
      await page.waitForFunction(async () => !(await indexedDB.databases()).some((db) => db.name === 'qwen-webgpu-demo-documents'));
      await page.reload();
      await page.waitForSelector('#gpu-status:not([data-state="checking"])');
      assert.equal(await page.locator('.doc-row').count(), 0);
      assert.equal(await page.isChecked('#remember-documents'), false);
    });
  } finally {
    await page.close();
  }
});

test('the cache manager shows the stored model and deletes it', async (t) => {
  await chatPage?.close();
  chatPage = null;
  const page = await openDemo();
  try {
    await withArtifacts(t, page, async () => {
      await openPanel(page, 'storage-panel');
      await page.waitForSelector('.cache-row');
      assert.equal(await page.textContent('.cache-row .cache-name'), 'Tiny test model');
      assert.equal(await page.textContent('.cache-row .cache-size'), formatBytes(tinySize));
      assert.equal(await page.textContent('#storage-state'), formatBytes(tinySize));
      await page.locator('#storage-panel').scrollIntoViewIfNeeded();
      await page.locator('#storage-panel').screenshot({ path: path.join(ARTIFACTS, 'storage.png') });
      await page.click('.cache-row .danger');
      await page.waitForFunction(() => document.getElementById('cache-list').textContent === 'No models are stored yet.');
      const cached = await page.evaluate(async () => (await import('/www/dist/index.js')).listCachedModels());
      assert.deepEqual(cached, []);
    });
  } finally {
    await page.close();
  }
});
