// The Conversation settings and JSON output panels: owns the system prompt, the sampling
// controls (temperature, top-p, reply length, seed) with their defaults, the JSON switch, the
// schema presets and editor with its live check, and reading all of it for the next request.

import { h } from './dom.js';
import { SCHEMA_PRESETS, parseSchema } from './json-mode.js';

/** Qwen2.5-Instruct's recommended sampling (its generation_config.json), and a reply length. */
const DEFAULTS = { systemPrompt: 'You are a helpful assistant.', temperature: 0.7, topP: 0.8, maxTokens: 512, seed: '' };

export class SettingsPanel extends EventTarget {
  constructor(root = document) {
    super();
    const $ = (id) => root.getElementById(id);
    this.systemPrompt = $('system-prompt');
    this.temperature = $('temperature');
    this.temperatureValue = $('temperature-value');
    this.topP = $('top-p');
    this.topPValue = $('top-p-value');
    this.maxTokens = $('max-tokens');
    this.seed = $('seed');
    this.jsonMode = $('json-mode');
    this.jsonState = $('json-state');
    this.preset = $('schema-preset');
    this.editor = $('schema-editor');
    this.schemaStatus = $('schema-status');

    for (const [id, preset] of Object.entries(SCHEMA_PRESETS)) this.preset.append(h('option', { value: id }, preset.label));
    this.preset.append(h('option', { value: 'custom', hidden: true }, 'Custom'));
    this.preset.value = 'answer';
    this.loadPreset();

    this.temperature.addEventListener('input', () => this.showValues());
    this.topP.addEventListener('input', () => this.showValues());
    $('reset-settings').addEventListener('click', () => this.reset());
    this.preset.addEventListener('change', () => this.loadPreset());
    this.editor.addEventListener('input', () => {
      this.preset.value = 'custom';
      this.checkSchema();
    });
    this.jsonMode.addEventListener('change', () => {
      this.jsonState.textContent = this.jsonMode.checked ? 'On' : 'Off';
      this.dispatchEvent(new Event('change'));
    });
    this.showValues();
  }

  reset() {
    this.systemPrompt.value = DEFAULTS.systemPrompt;
    this.temperature.value = String(DEFAULTS.temperature);
    this.topP.value = String(DEFAULTS.topP);
    this.maxTokens.value = String(DEFAULTS.maxTokens);
    this.seed.value = DEFAULTS.seed;
    this.showValues();
  }

  showValues() {
    this.temperatureValue.textContent = Number(this.temperature.value).toFixed(2);
    this.topPValue.textContent = Number(this.topP.value).toFixed(2);
  }

  loadPreset() {
    const { schema } = SCHEMA_PRESETS[this.preset.value];
    this.editor.value = schema ? JSON.stringify(schema, null, 2) : '';
    this.checkSchema();
  }

  /** Shows whether the editor holds a usable schema; returns the parse result. */
  checkSchema() {
    const parsed = parseSchema(this.editor.value);
    this.schemaStatus.dataset.state = parsed.ok ? 'ok' : 'bad';
    this.schemaStatus.textContent = parsed.ok
      ? parsed.schema ? 'The schema is valid JSON. Replies will follow it.' : 'Empty: replies will be any JSON object.'
      : `The schema is not valid JSON: ${parsed.message}`;
    return parsed;
  }

  get jsonEnabled() {
    return this.jsonMode.checked;
  }

  /**
   * What the next request uses: `{systemPrompt, sampling, json}`, where `json` is null (JSON
   * mode off) or `{schema}`; `{error}` when JSON mode is on with a schema that does not parse.
   */
  read(contextLength) {
    const sampling = {
      temperature: Number(this.temperature.value),
      top_p: Number(this.topP.value),
      // The reply cannot be longer than the context, and must leave room for the question.
      max_tokens: Math.max(1, Math.min(Math.floor(Number(this.maxTokens.value) || DEFAULTS.maxTokens), Math.floor(contextLength / 2))),
    };
    if (this.seed.value.trim() !== '') sampling.seed = Math.floor(Number(this.seed.value));
    let json = null;
    if (this.jsonMode.checked) {
      const parsed = this.checkSchema();
      if (!parsed.ok) return { error: 'Fix the JSON schema (under JSON output) or turn JSON output off.' };
      json = { schema: parsed.schema };
    }
    return { systemPrompt: this.systemPrompt.value, sampling, json };
  }
}
