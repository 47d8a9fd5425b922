// JSON mode and tool calls through the JS API in Chromium (the wasm engine with llguidance),
// on the tiny random model: its choices are arbitrary, so only the grammar makes the output
// valid. The schemas are finite (enums, booleans, bounded integers, bounded arrays), so every
// generation completes; each output is validated in Node by an independent JSON Schema
// validator (@cfworker/json-schema), greedy and sampled with several seeds.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Validator } from '@cfworker/json-schema';
import { TINY_MODEL, openSuite } from './browser.mjs';

let suite;

before(async () => {
  suite = await openSuite('json', { models: [TINY_MODEL.file] });
});

after(async () => {
  await suite?.close();
});

const helpers = (page, name, ...args) =>
  page.evaluate(async ([n, a]) => (await import('/www/test/page-helpers.mjs'))[n](...a), [name, args]);

const SCHEMAS = [
  {
    name: 'review',
    prompt: 'Classify: "fast and small".',
    schema: {
      type: 'object',
      properties: {
        sentiment: { enum: ['positive', 'neutral', 'negative'] },
        score: { type: 'integer', minimum: 0, maximum: 9 },
        flags: { type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 3 },
      },
      required: ['sentiment', 'score', 'flags'],
      additionalProperties: false,
    },
  },
  {
    name: 'zh_weather',
    prompt: '北京今天天气怎么样？',
    schema: {
      type: 'object',
      properties: { 天气: { enum: ['晴', '多云', '雨'] }, 有风: { type: 'boolean' } },
      required: ['天气', '有风'],
      additionalProperties: false,
    },
  },
];

function assertValid(schema, content, what) {
  const value = JSON.parse(content);
  const result = new Validator(schema, '2020-12').validate(value);
  assert.equal(result.valid, true, `${what}: ${content}: ${JSON.stringify(result.errors)}`);
}

test('response_format json_schema: every output parses and validates, greedy and sampled', async (t) => {
  await suite.withPage(t, async (page) => {
    const loaded = await helpers(page, 'loadEngine', { model: TINY_MODEL.url });
    assert.equal(loaded.ok, true, JSON.stringify(loaded.error));
    const maskMs = [];
    for (const { name, prompt, schema } of SCHEMAS) {
      for (const [temperature, seed] of [[0, 0], [1, 1], [1, 2], [1, 3]]) {
        const reply = await helpers(page, 'complete', {
          messages: [{ role: 'user', content: prompt }],
          response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
          temperature,
          seed,
          max_tokens: 120,
        });
        const what = `${name} t=${temperature} seed=${seed}`;
        assert.equal(reply.ok, true, `${what}: ${JSON.stringify(reply.error)}`);
        const [choice] = reply.completion.choices;
        assert.equal(choice.finish_reason, 'stop', what);
        assertValid(schema, choice.message.content, what);
        maskMs.push(reply.completion.usage.grammar_ms_per_token);
      }
    }
    maskMs.sort((a, b) => a - b);
    t.diagnostic(`wasm grammar mask + advance per token: median ${maskMs[maskMs.length >> 1].toFixed(2)} ms, max ${maskMs.at(-1).toFixed(2)} ms`);

    // An unsupported keyword is refused with a message naming it.
    const refused = await helpers(page, 'complete', {
      messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'object', unevaluatedProperties: false } } },
    });
    assert.equal(refused.ok, false);
    assert.equal(refused.error.code, 'invalid-request');
    assert.match(refused.error.message, /unevaluatedProperties/);
  });
});

test('tool_choice required: the reply is a call of the declared tool with valid arguments', async (t) => {
  await suite.withPage(t, async (page) => {
    const loaded = await helpers(page, 'loadEngine', { model: TINY_MODEL.url });
    assert.equal(loaded.ok, true, JSON.stringify(loaded.error));
    const parameters = {
      type: 'object',
      properties: { unit: { enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['unit', 'days'],
      additionalProperties: false,
    };
    const tools = [
      { type: 'function', function: { name: 'get_forecast', description: 'Weather forecast.', parameters } },
      { type: 'function', function: { name: 'get_time', description: 'Current time.', parameters: { type: 'object', properties: {} } } },
    ];
    const reply = await helpers(page, 'complete', {
      messages: [{ role: 'user', content: 'Forecast for Paris?' }],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_forecast' } },
      temperature: 0,
      max_tokens: 60,
    });
    assert.equal(reply.ok, true, JSON.stringify(reply.error));
    const [choice] = reply.completion.choices;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls.length >= 1, true);
    const [call] = choice.message.tool_calls;
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_forecast');
    assert.equal(typeof call.function.arguments, 'string');
    assertValid(parameters, call.function.arguments, 'get_forecast arguments');
  });
});
