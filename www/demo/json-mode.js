// JSON mode: owns the schema presets, reading the schema editor into an OpenAI
// `response_format`, and checking a reply against the schema with @cfworker/json-schema. The
// engine already constrains the output to the schema's grammar; checking it again here shows
// the user a verified object, and catches a reply cut short by max tokens or by Stop.

import { Validator } from '../node_modules/@cfworker/json-schema/dist/esm/index.js';

export const SCHEMA_PRESETS = {
  answer: {
    label: 'Answer with confidence',
    schema: {
      type: 'object',
      properties: {
        answer: { type: 'string', description: 'The answer in one or two sentences' },
        confidence: { type: 'string', enum: ['low', 'medium', 'high'] },
      },
      required: ['answer', 'confidence'],
      additionalProperties: false,
    },
  },
  sentiment: {
    label: 'Sentiment',
    schema: {
      type: 'object',
      properties: {
        sentiment: { type: 'string', enum: ['positive', 'neutral', 'negative'] },
        score: { type: 'integer', minimum: 1, maximum: 5 },
      },
      required: ['sentiment', 'score'],
      additionalProperties: false,
    },
  },
  contact: {
    label: 'Contact card',
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        email: { type: 'string' },
        phone: { type: 'string' },
        tags: { type: 'array', items: { type: 'string' }, maxItems: 5 },
      },
      required: ['name'],
      additionalProperties: false,
    },
  },
  any: { label: 'Any JSON object', schema: null },
};

/**
 * Reads the editor's text: `{ok: true, schema}` (schema null for an empty editor, meaning any
 * JSON object) or `{ok: false, message}`.
 */
export function parseSchema(text) {
  if (text.trim() === '') return { ok: true, schema: null };
  let schema;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: error.message };
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return { ok: false, message: 'a JSON Schema is a JSON object, e.g. {"type": "object", …}' };
  }
  return { ok: true, schema };
}

/** The request's `response_format` for a parsed schema. */
export function responseFormat(schema) {
  return schema === null
    ? { type: 'json_object' }
    : { type: 'json_schema', json_schema: { name: 'reply', schema, strict: true } };
}

/**
 * Parses and validates a reply: `{ok: true, value}`, or `{ok: false, errors: [text]}` with
 * where and why it fails (not JSON at all, or against the schema).
 */
export function checkReply(text, schema) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, errors: [`not valid JSON: ${error.message}`] };
  }
  if (schema === null) {
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? { ok: true, value }
      : { ok: false, errors: ['the reply is JSON but not an object'] };
  }
  const result = new Validator(schema, '2020-12', false).validate(value);
  if (result.valid) return { ok: true, value };
  // The innermost errors say what is wrong; the outer ones repeat that a subschema failed.
  const errors = result.errors
    .filter((e) => !['properties', 'allOf', 'anyOf', 'oneOf', 'items', '$ref'].includes(e.keyword) || result.errors.length === 1)
    .map((e) => `${e.instanceLocation === '#' ? 'the object' : e.instanceLocation.replace(/^#/, '')}: ${e.error}`);
  return { ok: false, errors: errors.length > 0 ? errors : result.errors.map((e) => e.error) };
}
