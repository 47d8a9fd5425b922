// What every example shares: the model (the one line that differs from a WebLLM app, besides
// the import), the page's progress label, and a check that fails the example with its reason.

import type { InitProgressReport } from 'qwen-webgpu';

/** A GGUF URL instead of a WebLLM model id. */
export const selectedModel = '/models/qwen2-tiny-random.gguf';

export function setLabel(id: string, text: string): void {
  const label = document.getElementById(id);
  if (label == null) throw Error('Cannot find label ' + id);
  label.innerText = text;
}

export const initProgressCallback = (report: InitProgressReport): void => {
  setLabel('init-label', report.text);
};

export function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${what}`);
}
