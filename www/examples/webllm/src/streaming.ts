// streaming: the reply as chunks, with the usage as a last chunk of its own.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(selectedModel, { initProgressCallback });
  const request: webllm.ChatCompletionRequest = {
    stream: true,
    stream_options: { include_usage: true },
    messages: [
      { role: 'system', content: 'You are a pirate chatbot who always responds in pirate speak!' },
      { role: 'user', content: 'Who are you?' },
    ],
    logprobs: true,
    top_logprobs: 2,
    max_tokens: 16,
  };
  const asyncChunkGenerator = await engine.chat.completions.create(request);
  let message = '';
  let usage: webllm.CompletionUsage | undefined;
  for await (const chunk of asyncChunkGenerator) {
    message += chunk.choices[0]?.delta?.content || '';
    if (chunk.usage) usage = chunk.usage;
  }
  log(message);
  check((await engine.getMessage()) === message, 'getMessage is the streamed text');
  check(usage !== undefined && usage.completion_tokens > 0, 'the last chunk has the usage');
  await engine.unload();
}
