// web worker: the engine runs in a worker (worker.ts); the page talks to it with the same API.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const engine: webllm.MLCEngineInterface = await webllm.CreateWebWorkerMLCEngine(
    new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }),
    selectedModel,
    { initProgressCallback },
  );
  const messages: webllm.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'You are a helpful AI assistant.' },
    { role: 'user', content: 'Hello!' },
  ];
  const reply = await engine.chat.completions.create({ messages, max_tokens: 10 });
  log(reply.choices[0].message.content ?? '');
  let streamed = '';
  for await (const chunk of await engine.chat.completions.create({ messages, stream: true, max_tokens: 10 })) {
    streamed += chunk.choices[0]?.delta.content || '';
  }
  log(streamed);
  check((await engine.getMessage()) === streamed, 'getMessage across the worker');
  check((await engine.getGPUVendor()).length > 0, 'the GPU vendor');
  await engine.unload();
}
