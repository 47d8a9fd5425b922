// function-calling: a tool with a named tool_choice, the call's result sent back, and the answer.
import * as webllm from 'qwen-webgpu';
import { check, initProgressCallback, selectedModel } from './common';

export async function run(log: (line: string) => void): Promise<void> {
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(selectedModel, { initProgressCallback });
  const tools: Array<webllm.ChatCompletionTool> = [
    {
      type: 'function',
      function: {
        name: 'get_current_weather',
        description: 'Get the current weather in a given location',
        parameters: {
          type: 'object',
          properties: {
            location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA', maxLength: 24 },
            unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
          },
          required: ['location', 'unit'],
          additionalProperties: false,
        },
      },
    },
  ];
  const messages: webllm.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the current weather in celsius in Pittsburgh?' }];
  const reply = await engine.chat.completions.create({
    stream: false,
    messages,
    tools,
    tool_choice: { type: 'function', function: { name: 'get_current_weather' } },
    max_tokens: 128,
  });
  const [choice] = reply.choices;
  log(JSON.stringify(choice.message.tool_calls));
  check(choice.finish_reason === 'tool_calls', 'the reply is a call');
  const call = choice.message.tool_calls?.[0];
  check(call !== undefined && call.function.name === 'get_current_weather', 'the named tool is called');
  const args = JSON.parse(call.function.arguments) as { location: unknown; unit: unknown };
  check(typeof args.location === 'string' && (args.unit === 'celsius' || args.unit === 'fahrenheit'), 'arguments match the schema');

  // The call's result goes back as a tool message (the assistant turn's content a string, as
  // WebLLM requires), and with no tools declared the model answers in words.
  messages.push({ role: 'assistant', content: choice.message.content ?? '', tool_calls: choice.message.tool_calls });
  messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature: 21, unit: 'celsius' }) });
  const answer = await engine.chat.completions.create({ messages, max_tokens: 12 });
  log(answer.choices[0].message.content ?? '');
  check(answer.choices[0].finish_reason !== 'tool_calls' && answer.choices[0].message.tool_calls === undefined, 'no tools: no call');
  await engine.unload();
}
