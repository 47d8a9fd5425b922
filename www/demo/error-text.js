// What the page tells the user when something fails: owns the plain-language text for each
// engine error code (the engine's own message is kept as the detail, for a bug report).

const ADVICE = {
  'webgpu-unavailable': 'This browser or GPU cannot run the model (WebGPU is not available).',
  'quota-exceeded': 'There is not enough storage for this model. Delete cached models under Storage, or free some disk space.',
  'download-failed': 'The download failed. Check the connection and try again: what was downloaded is kept, and the download resumes.',
  integrity: 'The downloaded file was damaged and has been deleted. Try loading it again.',
  'bad-model': 'This file is not a Qwen2-family GGUF model that this engine can run.',
  'context-overflow': 'The conversation no longer fits the model\'s context. Start a new chat, or load the model with a longer context.',
  aborted: 'Cancelled.',
  'device-lost': 'The GPU stopped responding (the device was lost). Reload the page to start again.',
  'invalid-request': 'The request was not accepted.',
  internal: 'Something went wrong inside the engine.',
};

/** `{summary, detail}` for an error thrown by the engine (or anything else). */
export function explainError(error) {
  const code = error?.code;
  const detail = String(error?.message ?? error);
  return { summary: ADVICE[code] ?? 'Something went wrong.', detail, code: code ?? 'internal' };
}
