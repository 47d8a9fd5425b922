// get-started: one engine, a system and a user message, several sampled choices with their
// log probabilities and a logit bias, then the speeds through the engine's method.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(selectedModel, { initProgressCallback });
  const reply0 = await engine.chat.completions.create({
    messages: [
      { role: 'system', content: 'You are a helpful, respectful and honest assistant. Be as happy as you can when speaking please.' },
      { role: 'user', content: 'Provide me three US states.' },
    ],
    n: 3,
    temperature: 1.5,
    max_tokens: 12,
    logit_bias: { '46510': -100, '7188': -100, '8421': 5, '51325': 5 },
    logprobs: true,
    top_logprobs: 2,
  });
  log(JSON.stringify(reply0.choices.map((choice) => choice.message.content)));
  check(reply0.choices.length === 3, 'three choices');
  for (const choice of reply0.choices) {
    check(choice.logprobs?.content?.every((entry) => entry.top_logprobs.length === 2) === true, 'two alternatives per token');
  }
  const generated = reply0.choices.reduce((sum, choice) => sum + (choice.logprobs?.content?.length ?? 0), 0);
  check(reply0.usage?.completion_tokens === generated, 'usage counts every choice');
  log(await engine.runtimeStatsText());
  await engine.unload();
}
