// Decode time per token in headless Chromium (WebGPU on SwiftShader) with the tiny random model:
// a greedy chat reply streamed with usage; the time from the first streamed chunk to the last,
// over the tokens after the first. Prints one JSON line. Compare builds by running it from each
// checkout after `scripts/build-wasm` and `npm run build` there.
//
//   node bench/swiftshader-decode.mjs [TOKENS]      (from www/, default 32 tokens)

import { TINY_MODEL, openSuite } from '../test/browser.mjs';

const maxTokens = Number(process.argv[2] ?? 32);
const suite = await openSuite('bench-swiftshader-decode', { models: [TINY_MODEL.file] });
try {
  const page = await suite.openPage();
  const loaded = await page.evaluate(
    async (url) => (await import('/www/test/page-helpers.mjs')).loadEngine({ model: url, contextLength: 512 }),
    TINY_MODEL.url,
  );
  if (!loaded.ok) throw new Error(`load failed: ${JSON.stringify(loaded.error)}`);
  const result = await page.evaluate(async (n) => {
    const started = performance.now();
    const stream = await globalThis.engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Write a long story about a lighthouse.' }],
      max_tokens: n,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let first = null;
    let last = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      if (chunk.choices.length > 0) {
        last = performance.now();
        first ??= last;
      }
    }
    const stats = await globalThis.engine.runtimeStats();
    return { firstChunkMs: first - started, decodeMs: last - first, usage, stats };
  }, maxTokens);
  const decoded = result.usage.completion_tokens;
  console.log(JSON.stringify({
    adapter: result.stats.adapter,
    subgroups: result.stats.subgroups,
    prompt_tokens: result.usage.prompt_tokens,
    completion_tokens: decoded,
    time_to_first_chunk_ms: Math.round(result.firstChunkMs),
    decode_ms_per_token: Math.round(result.decodeMs / Math.max(1, decoded - 1)),
  }));
  await page.close();
} finally {
  await suite.close();
}
