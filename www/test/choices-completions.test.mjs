// `n` > 1, `logprobs`/`top_logprobs` and raw-prompt `completions.create` through the npm package
// in Chromium with the tiny model, in the page and through a worker: OpenAI's shapes for
// choices, logprobs and text completions, streamed chunks carrying their choice index and
// logprobs, usage summed over the choices, WebLLM's GBNF grammar, and the refusals of what
// cannot be served.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TINY_MODEL, openSuite } from './browser.mjs';

let suite;

before(async () => {
  suite = await openSuite('choices-completions', { models: [TINY_MODEL.file] });
});

after(async () => {
  await suite?.close();
});

const inPage = (page, body, arg) => page.evaluate(async ([source, a]) => {
  const qwen = await import('/www/dist/index.js');
  try {
    return await (0, eval)(source)(qwen, a);
  } catch (error) {
    return { error: { name: error.name, code: error.code, message: error.message } };
  }
}, [body.toString(), arg]);

/** Checks one choice's logprobs: one entry per completion token, `top` sorted alternatives each. */
function checkLogprobs(logprobs, top) {
  assert.ok(logprobs.content.length > 0);
  for (const entry of logprobs.content) {
    assert.equal(typeof entry.token, 'string');
    assert.ok(entry.logprob <= 0 && Number.isFinite(entry.logprob), JSON.stringify(entry));
    assert.ok(Array.isArray(entry.bytes) && entry.bytes.every((b) => Number.isInteger(b) && b >= 0 && b < 256));
    assert.equal(entry.top_logprobs.length, top);
    for (let i = 1; i < entry.top_logprobs.length; i++) assert.ok(entry.top_logprobs[i - 1].logprob >= entry.top_logprobs[i].logprob);
    const same = entry.top_logprobs.find((t) => t.token === entry.token && JSON.stringify(t.bytes) === JSON.stringify(entry.bytes));
    if (same) assert.ok(Math.abs(same.logprob - entry.logprob) < 1e-6);
  }
}

for (const mode of ['page', 'worker']) {
  test(`${mode}: n choices, logprobs, and legacy completions`, async (t) => {
    await suite.withPage(t, async (page) => {
      const result = await inPage(page, async (qwen, [model, mode]) => {
        const engine = mode === 'page'
          ? await qwen.CreateMLCEngine(model)
          : await qwen.CreateWebWorkerMLCEngine(new Worker('/www/test/webllm-worker.mjs', { type: 'module' }), model);
        const messages = [{ role: 'user', content: 'Name three fruits.' }];
        // Reset before each sampled request: a cached prefix is computed by other kernels than a
        // prefill, and on the tiny model's flat distributions that alone can change a draw.
        const sampled = { messages, n: 2, seed: 7, temperature: 1, max_tokens: 8 };
        const two = await engine.chatCompletion({ ...sampled, logprobs: true, top_logprobs: 3 });
        await engine.resetChat();
        const again = await engine.chatCompletion({ ...sampled, logprobs: true, top_logprobs: 3 });
        await engine.resetChat();
        const chunks = [];
        for await (const chunk of await engine.chatCompletion({ ...sampled, stream: true, logprobs: true, stream_options: { include_usage: true } })) chunks.push(chunk);
        const greedy = await engine.chatCompletion({ messages, temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 2 });
        const grammar = await engine.chatCompletion({ messages, n: 2, max_tokens: 8, response_format: { type: 'grammar', grammar: 'root ::= ("yes" | "no") "!"' } });

        const text = await engine.completions.create({ prompt: '<|im_start|>Once upon a time', max_tokens: 5, temperature: 0, echo: true });
        const viaMethod = await engine.completion({ prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
        const textChunks = [];
        for await (const chunk of await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 5, temperature: 0, stream: true, n: 2, logprobs: true })) textChunks.push(chunk);
        const refusals = [];
        for (const bad of [{ prompt: ['a', 'b'] }, { prompt: 'a', suffix: 'b' }, { prompt: 'a', best_of: 2 }, { prompt: 'a', logprobs: 3 }, { prompt: 'a', n: 200 }]) {
          refusals.push(await engine.completions.create(bad).then(() => 'ran', (e) => `${e.code}: ${e.message}`));
        }
        await engine.unload();
        return { two, again, chunks, greedy, grammar, text, viaMethod, textChunks, refusals };
      }, [TINY_MODEL.url, mode]);
      assert.equal(result.error, undefined, JSON.stringify(result.error));
      const { two, again, chunks, greedy, grammar, text, viaMethod, textChunks, refusals } = result;
      // WebLLM's grammar (GBNF) constrains every choice.
      for (const choice of grammar.choices) assert.match(choice.message.content, /^(yes|no)!$/);

      // n = 2: two choices, indexed, different, reproducible under the seed, usage summed.
      assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
      assert.notEqual(two.choices[0].message.content, two.choices[1].message.content);
      assert.deepEqual(again.choices.map((c) => c.message.content), two.choices.map((c) => c.message.content));
      for (const choice of two.choices) checkLogprobs(choice.logprobs, 3);
      const tokens = two.choices.reduce((n, c) => n + c.logprobs.content.length, 0);
      assert.equal(two.usage.completion_tokens, tokens);
      assert.equal(two.usage.total_tokens, two.usage.prompt_tokens + tokens);

      // Streamed: each chunk names its choice; each choice's text and logprobs add up.
      assert.deepEqual(chunks.at(-1).choices, []);
      const choiceChunks = chunks.slice(0, -1);
      for (const index of [0, 1]) {
        const mine = choiceChunks.filter((c) => c.choices[0].index === index);
        assert.ok(mine.every((c) => c.choices.length === 1 && c.choices[0].delta.role === 'assistant'));
        assert.equal(mine.filter((c) => c.choices[0].finish_reason !== null).length, 1);
        const content = mine.map((c) => c.choices[0].delta.content ?? '').join('');
        assert.equal(content, two.choices[index].message.content);
        const streamedLogprobs = mine.flatMap((c) => c.choices[0].logprobs?.content ?? []);
        assert.deepEqual(streamedLogprobs.map((e) => e.token), two.choices[index].logprobs.content.map((e) => e.token));
      }
      assert.equal(chunks.at(-1).usage.completion_tokens, two.usage.completion_tokens);

      // Greedy with logprobs: each chosen token is the most likely one.
      checkLogprobs(greedy.choices[0].logprobs, 2);
      for (const entry of greedy.choices[0].logprobs.content) assert.equal(entry.top_logprobs[0].logprob, entry.logprob);

      // Legacy completions: OpenAI's text_completion, the prompt as plain text, echo.
      assert.equal(text.object, 'text_completion');
      assert.match(text.id, /^cmpl-/);
      assert.ok(text.choices[0].text.startsWith('<|im_start|>Once upon a time'), text.choices[0].text);
      assert.equal(text.choices[0].logprobs, null);
      // `<|im_start|>` spelled as text is several tokens, not the one control token.
      assert.ok(text.usage.prompt_tokens > viaMethod.usage.prompt_tokens + 1, JSON.stringify([text.usage, viaMethod.usage]));
      assert.equal(typeof viaMethod.choices[0].finish_reason, 'string');
      assert.ok(textChunks.every((c) => c.object === 'text_completion'));
      for (const index of [0, 1]) {
        const mine = textChunks.filter((c) => c.choices[0]?.index === index);
        assert.equal(mine.map((c) => c.choices[0].text).join(''), viaMethod.choices[0].text, `choice ${index}`);
        assert.equal(mine.at(-1).choices[0].finish_reason, viaMethod.choices[0].finish_reason);
      }
      assert.equal(textChunks.at(-1).usage.completion_tokens, 2 * viaMethod.usage.completion_tokens);
      assert.deepEqual(refusals, [
        'invalid-request: prompt must be a string (lists of prompts and token ids are not supported)',
        'invalid-request: unsupported request field: suffix',
        'invalid-request: unsupported request field: best_of',
        'invalid-request: logprobs must be a boolean (top_logprobs asks for alternatives), got 3',
        'invalid-request: n must be an integer from 1 to 128, got 200',
      ]);
    });
  });
}
