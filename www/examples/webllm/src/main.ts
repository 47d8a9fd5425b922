// Runs the examples named by `?example=a,b` (all by default) one after another, printing each
// one's output, and publishes `window.appResult` ({ ok, outputs } or { ok: false, error }) for
// the browser test.
import { setLabel } from './common';

const EXAMPLES: Record<string, () => Promise<{ run: (log: (line: string) => void) => Promise<void> }>> = {
  'get-started': () => import('./get_started'),
  streaming: () => import('./streaming'),
  'json-mode': () => import('./json_mode'),
  'json-schema': () => import('./json_schema'),
  'function-calling': () => import('./function_calling'),
  'multi-round-chat': () => import('./multi_round_chat'),
  'text-completion': () => import('./text_completion'),
  'web-worker': () => import('./web_worker'),
};

declare global {
  interface Window {
    appResult?: { ok: true; outputs: Record<string, string[]> } | { ok: false; error: string };
  }
}

async function main(): Promise<void> {
  const asked = new URLSearchParams(location.search).get('example');
  const names = asked ? asked.split(',') : Object.keys(EXAMPLES);
  const outputs: Record<string, string[]> = {};
  const output = document.getElementById('output') as HTMLElement;
  for (const name of names) {
    const load = EXAMPLES[name];
    if (!load) throw new Error(`no example ${name}`);
    const lines: string[] = (outputs[name] = []);
    const log = (line: string) => {
      lines.push(line);
      output.textContent += `[${name}] ${line}\n`;
    };
    try {
      await (await load()).run(log);
    } catch (error) {
      throw new Error(`${name}: ${(error as Error).message}`);
    }
  }
  setLabel('init-label', 'done');
  window.appResult = { ok: true, outputs };
}

main().catch((error: unknown) => {
  window.appResult = { ok: false, error: String((error as Error).stack ?? error) };
});
