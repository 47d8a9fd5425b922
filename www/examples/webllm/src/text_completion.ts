// text completion: a raw prompt, no chat template, OpenAI's legacy completions.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(selectedModel, { initProgressCallback });
  const reply = await engine.completions.create({ prompt: 'List three US states: ', echo: true, max_tokens: 12, temperature: 0 });
  log(reply.choices[0].text);
  check(reply.object === 'text_completion', 'a text completion');
  check(reply.choices[0].text.startsWith('List three US states: '), 'echo starts the text with the prompt');
  await engine.unload();
}
