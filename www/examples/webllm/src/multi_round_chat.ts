// multi-round chat: each round sends the whole conversation; the KV cache holds the earlier
// rounds, so a later round prefills only its new tokens.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(selectedModel, { initProgressCallback });
  const messages: webllm.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'You are a helpful, respectful and honest assistant.' },
    { role: 'user', content: 'Provide me three US states.' },
  ];
  const usage0 = (await engine.chatCompletion({ messages, max_tokens: 12 })).usage;
  messages.push({ role: 'assistant', content: await engine.getMessage() });
  check(usage0 !== undefined, 'round 0 usage');
  log(`round 0: prefilled ${usage0.prompt_tokens} tokens`);

  messages.push({ role: 'user', content: 'Two more please!' });
  const chunks = await engine.chatCompletion({ messages, stream: true, stream_options: { include_usage: true }, max_tokens: 12 });
  let reply1 = '';
  let usage1: webllm.CompletionUsage | undefined;
  for await (const chunk of chunks) {
    reply1 += chunk.choices[0]?.delta.content || '';
    usage1 = chunk.usage ?? usage1;
  }
  messages.push({ role: 'assistant', content: reply1 });
  check(usage1 !== undefined, 'round 1 usage');
  log(`round 1: prefilled ${usage1.prompt_tokens} tokens`);
  check(usage1.prompt_tokens < usage0.prompt_tokens, 'round 1 reuses round 0 from the KV cache');

  messages.push({ role: 'user', content: 'Which one is the largest?' });
  const usage2 = (await engine.chatCompletion({ messages, max_tokens: 12 })).usage;
  check(usage2 !== undefined, 'round 2 usage');
  log(`round 2: prefilled ${usage2.prompt_tokens} tokens`);
  check(usage2.prompt_tokens < usage0.prompt_tokens, 'round 2 reuses the earlier rounds');
  await engine.unload();
}
