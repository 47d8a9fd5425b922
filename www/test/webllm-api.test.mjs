// WebLLM's engine API (www/src/webllm.ts) end to end in Chromium with the tiny model, in the
// page and through a worker in WebLLM's form: progress reports, options mapped or refused by
// name, the engine methods, every streamed delta's role, the separate usage chunk of
// stream_options.include_usage, WebLLM's usage (prompt tokens prefilled now, `extra`), JSON
// with WebLLM's string schema, and message.content null for a reply that is only tool calls.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Validator } from '@cfworker/json-schema';
import { TINY_MODEL, openSuite } from './browser.mjs';

const MESSAGES = [{ role: 'user', content: 'Explain what a hash map is in two sentences.' }];
const PROMPT_TOKENS = 40;

let suite;

before(async () => {
  suite = await openSuite('webllm-api', { models: [TINY_MODEL.file] });
});

after(async () => {
  await suite?.close();
});

/** Runs `body(qwen)` in the page with the package imported; errors come back as { error: { name, code, message } }. */
const inPage = (page, body, arg) => page.evaluate(async ([source, a]) => {
  const qwen = await import('/www/dist/index.js');
  try {
    return await (0, eval)(source)(qwen, a);
  } catch (error) {
    return { error: { name: error.name, code: error.code, message: error.message } };
  }
}, [body.toString(), arg]);

test('CreateMLCEngine: WebLLM progress, options, methods, stream shapes and usage', async (t) => {
  await suite.withPage(t, async (page) => {
    const refused = await inPage(page, async (qwen, model) => {
      const attempt = (promise) => promise.then(() => 'loaded', (error) => `${error.name}: ${error.message}`);
      return [
        await attempt(qwen.CreateMLCEngine(model, { appConfig: {} })),
        await attempt(qwen.CreateMLCEngine(model, {}, { attention_sink_size: 4 })),
        await attempt(qwen.CreateMLCEngine(model, {}, { sliding_window_size: 1024 })),
        await attempt(qwen.CreateMLCEngine(model, { logLevel: 'LOUD' })),
      ];
    }, TINY_MODEL.url);
    assert.deepEqual(refused, [
      'InvalidRequestError: unsupported engine config field: appConfig',
      'InvalidRequestError: unsupported chat option: attention_sink_size',
      'InvalidRequestError: sliding_window_size is not supported (only -1: no sliding window)',
      'InvalidRequestError: logLevel must be one of TRACE, DEBUG, INFO, WARN, ERROR, SILENT, got LOUD',
    ]);

    const result = await inPage(page, async (qwen, [model, messages]) => {
      const reports = [];
      const engine = await qwen.CreateMLCEngine(model, { initProgressCallback: (r) => reports.push(r), logLevel: 'INFO' },
        { context_window_size: 512, sliding_window_size: -1, temperature: 0 });
      globalThis.mlc = engine;
      const stats = await engine.runtimeStats();
      // temperature 0 comes from the chat options.
      const whole = await engine.chatCompletion({ messages, max_tokens: 6 });
      const message = await engine.getMessage();
      await engine.resetChat();
      const chunks = [];
      for await (const chunk of await engine.chat.completions.create({ messages, max_tokens: 6, stream: true, stream_options: { include_usage: true } })) {
        chunks.push(chunk);
      }
      const followUp = await engine.chatCompletion({
        messages: [...messages, whole.choices[0].message, { role: 'user', content: 'Shorter, please.' }], max_tokens: 2,
      });
      return {
        reports, stats, whole, message, chunks, followUp,
        statsText: await engine.runtimeStatsText(),
        vendor: await engine.getGPUVendor(),
        maxBinding: await engine.getMaxStorageBufferBindingSize(),
      };
    }, [TINY_MODEL.url, MESSAGES]);
    assert.equal(result.error, undefined, JSON.stringify(result.error));
    const { reports, stats, whole, message, chunks, followUp } = result;

    // Progress: WebLLM's fields on every report, ours beside them while bytes move, 0 → 1.
    assert.ok(reports.length > 2);
    for (const [i, report] of reports.entries()) {
      assert.equal(typeof report.text, 'string');
      assert.ok(report.progress >= (reports[i - 1]?.progress ?? 0) && report.progress <= 1, JSON.stringify(report));
      assert.ok(report.timeElapsed >= (reports[i - 1]?.timeElapsed ?? 0));
    }
    assert.ok(reports.slice(0, -1).every((r) => ['download', 'cache-read', 'upload'].includes(r.phase)));
    assert.equal(reports.at(-1).progress, 1);
    assert.equal(reports.at(-1).text, `Finish loading on WebGPU - ${stats.adapter}`);

    // The adapter is named by the browser's adapter info, not wgpu's "(BrowserWebGpu)".
    assert.equal(stats.contextLength, 512);
    assert.doesNotMatch(stats.adapter, /BrowserWebGpu/);
    assert.ok(stats.adapter.includes(stats.adapterInfo.vendor) && stats.adapterInfo.vendor !== '', JSON.stringify(stats.adapterInfo));
    assert.equal(result.vendor, stats.adapterInfo.vendor);
    assert.ok(Number.isInteger(result.maxBinding) && result.maxBinding >= 128 * 1024 * 1024, String(result.maxBinding));

    // chatCompletion is chat.completions.create; getMessage is the last reply.
    const text = whole.choices[0].message.content;
    assert.equal(message, text);
    assert.equal(whole.usage.prompt_tokens, PROMPT_TOKENS);
    assert.equal(whole.usage.total_tokens, PROMPT_TOKENS + whole.usage.completion_tokens);
    const { extra } = whole.usage;
    assert.equal(extra.prefill_tokens_per_s, whole.usage.prefill_tokens_per_s);
    assert.equal(extra.decode_tokens_per_s, whole.usage.decode_tokens_per_s);
    assert.ok(extra.time_to_first_token_s > 0 && extra.time_to_first_token_s <= extra.e2e_latency_s, JSON.stringify(extra));
    assert.ok(extra.time_per_output_token_s > 0 && extra.time_per_output_token_s < extra.e2e_latency_s, JSON.stringify(extra));
    assert.equal(result.statsText, `prefill: ${followUp.usage.prefill_tokens_per_s.toFixed(4)} tokens/sec, decoding: ${followUp.usage.decode_tokens_per_s.toFixed(4)} tokens/sec`);

    // Streaming with include_usage: every delta has the role; the usage comes alone, last.
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage.completion_tokens, whole.usage.completion_tokens);
    assert.equal(usageChunk.usage.prompt_tokens, PROMPT_TOKENS);
    const choiceChunks = chunks.slice(0, -1);
    assert.ok(choiceChunks.every((c) => c.choices.length === 1 && c.choices[0].delta.role === 'assistant' && c.usage === undefined));
    assert.equal(choiceChunks.map((c) => c.choices[0].delta.content ?? '').join(''), text);
    assert.equal(choiceChunks.at(-1).choices[0].finish_reason, whole.choices[0].finish_reason);

    // A follow-up turn prefills only its new tokens: prompt_tokens excludes what the KV cache held.
    assert.ok(followUp.usage.cached_prompt_tokens >= PROMPT_TOKENS, JSON.stringify(followUp.usage));
    assert.ok(followUp.usage.prompt_tokens > 0 && followUp.usage.prompt_tokens < 30, JSON.stringify(followUp.usage));
    assert.equal(followUp.usage.total_tokens, followUp.usage.prompt_tokens + followUp.usage.completion_tokens);

    // interruptGenerate stops the running request; unsupported request fields are refused.
    const interrupted = await inPage(page, async () => {
      const chunks = [];
      for await (const chunk of await globalThis.mlc.chatCompletion({ messages: [{ role: 'user', content: 'Count.' }], max_tokens: 200, stream: true })) {
        chunks.push(chunk);
        if (chunks.length === 2) globalThis.mlc.interruptGenerate();
      }
      const refusals = [];
      for (const extra of [{ n: 0 }, { top_logprobs: 3 }, { ignore_eos: true }, { response_format: { type: 'grammar', grammar: 'root ::= <|im_end|>' } }]) {
        refusals.push(await globalThis.mlc.chatCompletion({ messages: [{ role: 'user', content: 'Hi' }], ...extra }).then(() => 'ran', (e) => e.code));
      }
      return { finish: chunks.at(-1).choices[0].finish_reason, tokens: chunks.at(-1).usage.completion_tokens, refusals };
    });
    assert.equal(interrupted.finish, 'abort');
    assert.ok(interrupted.tokens < 200);
    assert.deepEqual(interrupted.refusals, ['invalid-request', 'invalid-request', 'invalid-request', 'invalid-request']);
  });
});

test('new MLCEngine() and reload; json_object with WebLLM\'s string schema, tool-call-only replies, reload and unload', async (t) => {
  await suite.withPage(t, async (page) => {
    const schema = {
      type: 'object',
      properties: { sentiment: { enum: ['positive', 'negative'] }, score: { type: 'integer', minimum: 0, maximum: 9 } },
      required: ['sentiment', 'score'],
      additionalProperties: false,
    };
    const parameters = { type: 'object', properties: { days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['days'], additionalProperties: false };
    const result = await inPage(page, async (qwen, [model, schemaText, parameters]) => {
      // WebLLM's other way in: the class, then reload.
      const engine = new qwen.MLCEngine();
      await engine.reload(model);
      const json = await engine.chat.completions.create({
        messages: [{ role: 'user', content: 'Classify: "fast".' }], temperature: 0, max_tokens: 40,
        response_format: { type: 'json_object', schema: schemaText },
      });
      const tools = await engine.chat.completions.create({
        messages: [{ role: 'user', content: 'Forecast?' }], temperature: 0, max_tokens: 40,
        tools: [{ type: 'function', function: { name: 'get_forecast', parameters } }],
        tool_choice: { type: 'function', function: { name: 'get_forecast' } },
      });
      await engine.reload(model, { context_window_size: 256 });
      const contextLength = (await engine.runtimeStats()).contextLength;
      await engine.unload();
      const afterUnload = await engine.chatCompletion({ messages: [{ role: 'user', content: 'Hi' }] }).then(() => 'ran', (e) => e.message);
      return { json: json.choices[0], tools: tools.choices[0], contextLength, afterUnload };
    }, [TINY_MODEL.url, JSON.stringify(schema), parameters]);
    assert.equal(result.error, undefined, JSON.stringify(result.error));
    assert.equal(result.json.finish_reason, 'stop');
    const value = JSON.parse(result.json.message.content);
    assert.equal(new Validator(schema, '2020-12').validate(value).valid, true, result.json.message.content);

    assert.equal(result.tools.finish_reason, 'tool_calls');
    assert.equal(result.tools.message.content, null);
    assert.equal(result.tools.message.tool_calls[0].function.name, 'get_forecast');
    assert.equal(new Validator(parameters, '2020-12').validate(JSON.parse(result.tools.message.tool_calls[0].function.arguments)).valid, true);

    assert.equal(result.contextLength, 256);
    assert.equal(result.afterUnload, 'no model is loaded (unloaded, or reload has not finished)');
  });
});

test('CreateWebWorkerMLCEngine with WebWorkerMLCEngineHandler: the same reply, progress and methods across the worker', async (t) => {
  await suite.withPage(t, async (page) => {
    const result = await inPage(page, async (qwen, [model, messages]) => {
      const request = { messages, temperature: 0, max_tokens: 6 };
      const local = await qwen.CreateMLCEngine(model);
      const expected = (await local.chatCompletion(request)).choices[0].message.content;
      await local.unload();
      const reports = [];
      const worker = new Worker('/www/test/webllm-worker.mjs', { type: 'module' });
      const engine = await qwen.CreateWebWorkerMLCEngine(worker, model, { initProgressCallback: (r) => reports.push(r) });
      const reply = await engine.chatCompletion(request);
      const chunks = [];
      for await (const chunk of await engine.chatCompletion({ ...request, stream: true, stream_options: { include_usage: true } })) chunks.push(chunk);
      const stats = await engine.runtimeStats();
      return {
        expected, text: reply.choices[0].message.content, message: await engine.getMessage(), last: reports.at(-1),
        streamed: chunks.slice(0, -1).map((c) => c.choices[0].delta.content ?? '').join(''), usageChunk: chunks.at(-1),
        adapter: stats.adapter, vendor: await engine.getGPUVendor(),
      };
    }, [TINY_MODEL.url, MESSAGES]);
    assert.equal(result.error, undefined, JSON.stringify(result.error));
    assert.equal(result.text, result.expected);
    assert.equal(result.streamed, result.expected);
    assert.equal(result.message, result.expected);
    assert.deepEqual(result.usageChunk.choices, []);
    assert.equal(result.last.progress, 1);
    assert.equal(result.last.text, `Finish loading on WebGPU - ${result.adapter}`);
    assert.ok(result.vendor.length > 0);
  });
});

test('a worker whose script cannot load fails the engine with a message that says so', async (t) => {
  await suite.withPage(t, async (page) => {
    const result = await inPage(page, async (qwen, model) => {
      const worker = new Worker('/www/test/no-such-worker.mjs', { type: 'module' });
      return qwen.CreateWebWorkerMLCEngine(worker, model).then(() => 'loaded', (e) => `${e.name}: ${e.message}`);
    }, TINY_MODEL.url);
    assert.match(result, /^InternalError: the engine worker failed: its script could not be loaded/);
  });
});
