// json-schema: WebLLM's json_object with the schema as a JSON string.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const schema = `{
    "properties": {
      "size": {"title": "Size", "type": "integer", "minimum": 0, "maximum": 99},
      "is_accepted": {"title": "Is Accepted", "type": "boolean"},
      "num": {"title": "Num", "type": "number"}
    },
    "required": ["size", "is_accepted", "num"], "additionalProperties": false,
    "title": "Schema", "type": "object"
  }`;
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(selectedModel, { initProgressCallback });
  const request: webllm.ChatCompletionRequest = {
    stream: false,
    messages: [{ role: 'user', content: 'Generate a json containing three fields: an integer field named size, a boolean field named is_accepted, and a float field named num.' }],
    temperature: 0,
    max_tokens: 128,
    response_format: { type: 'json_object', schema } as webllm.ResponseFormat,
  };
  const reply = await engine.chatCompletion(request);
  const output = await engine.getMessage();
  log(output);
  const value = JSON.parse(output) as { size: unknown; is_accepted: unknown; num: unknown };
  check(Number.isInteger(value.size), 'size is an integer');
  check(typeof value.is_accepted === 'boolean', 'is_accepted is a boolean');
  check(typeof value.num === 'number', 'num is a number');
  check((reply.usage?.completion_tokens ?? 0) > 0, 'usage');
  await engine.unload();
}
