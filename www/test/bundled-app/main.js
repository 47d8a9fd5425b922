// Loads the tiny model with the installed package, in the page or in a worker (?mode=worker,
// whose script is the package's ready-made entry), asks for a greedy reply, and publishes what
// happened as window.appResult for the test.
import { createEngine, createWorkerEngine } from 'qwen-webgpu';

const mode = new URLSearchParams(location.search).get('mode') ?? 'page';
try {
  const options = { model: '/models/qwen2-tiny-random.gguf' };
  const engine = mode === 'worker'
    ? await createWorkerEngine(new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }), options)
    : await createEngine(options);
  const reply = await engine.chat.completions.create({
    messages: [{ role: 'user', content: 'Explain what a hash map is in two sentences.' }],
    temperature: 0,
    max_tokens: 5,
  });
  const stats = await engine.runtimeStats();
  await engine.unload();
  globalThis.appResult = { ok: true, mode, reply: reply.choices[0].message.content, usage: reply.usage, adapter: stats.adapter };
} catch (error) {
  globalThis.appResult = { ok: false, mode, error: `${error?.name}: ${error?.message ?? error}` };
}
