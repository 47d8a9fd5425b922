// json-mode: response_format json_object makes the reply valid JSON.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(selectedModel, { initProgressCallback });
  const request: webllm.ChatCompletionRequest = {
    stream: false,
    messages: [{ role: 'user', content: 'Write a short JSON file introducing yourself.' }],
    temperature: 0,
    max_tokens: 256,
    response_format: { type: 'json_object' } as webllm.ResponseFormat,
  };
  const reply = await engine.chatCompletion(request);
  for (const choice of reply.choices) {
    log(choice.message.content ?? '');
    check(choice.finish_reason === 'stop', 'the JSON is complete');
    const value: unknown = JSON.parse(choice.message.content ?? '');
    check(typeof value === 'object' && value !== null && !Array.isArray(value), 'an object');
  }
  await engine.unload();
}
