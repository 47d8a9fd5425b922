// The demo page's entry point: owns the conversation (its history, the turn being generated,
// stop, new chat) and wires the panels together: the WebGPU check gates the model panel, a
// loaded engine enables the composer, and each question is planned (qa-prompt.js) with the
// document passages retrieval finds, streamed into the chat view, and measured (speed and
// context use).

import { ChatView } from './chat-view.js';
import { DocumentLibrary } from './document-library.js';
import { DocumentsPanel } from './documents-panel.js';
import { h } from './dom.js';
import { explainError } from './error-text.js';
import { formatNumber } from './format.js';
import { responseFormat } from './json-mode.js';
import { ModelPanel } from './model-panel.js';
import { PassageDialog } from './passage-dialog.js';
import { planTurn } from './qa-prompt.js';
import { SettingsPanel } from './settings-panel.js';
import { checkWebGpu } from './webgpu-check.js';

/** Retries of a turn that overflowed the context, each planned for 70% of the previous budget. */
const OVERFLOW_RETRIES = 3;

const $ = (id) => document.getElementById(id);

const library = new DocumentLibrary();
const models = new ModelPanel();
const settings = new SettingsPanel();
const documents = new DocumentsPanel(library);
const passages = new PassageDialog($('passage-dialog'), library);
const chat = new ChatView($('transcript'), { onCitation: (passage, question) => passages.open(passage, question) });

const prompt = $('prompt');
const send = $('send');
const stop = $('stop');
const newChat = $('new-chat');

/**
 * Earlier turns, for the next requests: each question without the passages it was sent with,
 * so the history stays small, and each reply.
 */
let history = [];
/** Counts New chat presses, so that a reply still finishing belongs to the chat it began in. */
let conversation = 0;
/** The turn being generated: `{controller}`; null when idle. */
let generating = null;

async function start() {
  const gpu = $('gpu-status');
  const webgpu = await checkWebGpu();
  if (webgpu.ok) {
    gpu.dataset.state = 'ok';
    gpu.textContent = `WebGPU · ${webgpu.name}${webgpu.software ? ' (software)' : ''}`;
    gpu.title = webgpu.software ? 'This GPU is emulated on the CPU: models run, but slowly.' : 'The model will run on this GPU.';
    models.enable();
  } else {
    gpu.dataset.state = 'missing';
    gpu.textContent = 'WebGPU unavailable';
    $('webgpu-reason').textContent = webgpu.reason;
    $('webgpu-banner').hidden = false;
    $('empty-title').textContent = 'This browser can’t run the model';
    $('empty-text').textContent = 'See the note above: open this page in a browser with WebGPU to chat.';
  }
  await Promise.all([models.refreshCache(), library.restore()]);
}

models.addEventListener('loaded', ({ detail }) => {
  $('chat-title').textContent = detail.model.label;
  prompt.disabled = false;
  prompt.placeholder = documents.active ? 'Ask a question about your documents…' : 'Message Qwen…';
  newChat.disabled = false;
  $('empty-title').textContent = 'What can I help with?';
  $('empty-text').textContent = 'Ask anything, or add documents on the left and ask about them. Everything runs on this device.';
  $('suggestions').hidden = false;
  updateSendButton();
  showContext(0);
  prompt.focus();
});

models.addEventListener('unloaded', () => {
  $('chat-title').textContent = 'Chat';
  generating?.controller.abort();
  prompt.disabled = true;
  updateSendButton();
  $('context-meter').hidden = true;
});

function updateSendButton() {
  send.disabled = !models.current || generating !== null || prompt.value.trim() === '';
}

function updateModes() {
  const badges = [];
  if (documents.active) badges.push(h('span', { class: 'mode-badge' }, `Documents · ${library.ready.length}`));
  if (settings.jsonEnabled) badges.push(h('span', { class: 'mode-badge' }, 'JSON'));
  $('mode-badges').replaceChildren(...badges);
  if (models.current) prompt.placeholder = documents.active ? 'Ask a question about your documents…' : 'Message Qwen…';
}

$('use-documents').addEventListener('change', updateModes);
library.addEventListener('change', updateModes);
settings.addEventListener('change', updateModes);

prompt.addEventListener('input', () => {
  // Grow with the text up to the CSS max-height.
  prompt.style.height = 'auto';
  prompt.style.height = `${prompt.scrollHeight}px`;
  updateSendButton();
});
prompt.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('composer').requestSubmit();
  }
});
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const question = prompt.value.trim();
  if (!question || send.disabled) return;
  prompt.value = '';
  prompt.style.height = 'auto';
  ask(question);
});
for (const button of document.querySelectorAll('.suggestion')) {
  button.addEventListener('click', () => {
    if (models.current && !generating) ask(button.textContent);
  });
}
stop.addEventListener('click', () => generating?.controller.abort());
newChat.addEventListener('click', async () => {
  conversation += 1;
  generating?.controller.abort();
  history = [];
  chat.clear();
  await models.current?.engine.resetChat();
  showContext(0);
});

/** One turn: plan it, stream the reply, and keep it in the history. */
async function ask(question) {
  const current = models.current;
  const request = settings.read(current.stats.contextLength);
  if (request.error) {
    chat.addNotice(request.error);
    prompt.value = question;
    return;
  }
  const grounded = documents.active;
  const ranked = grounded ? library.search(question) : [];
  const turnConversation = conversation;
  chat.addUser(question, { documents: grounded });
  const reply = chat.addAssistant({ json: request.json !== null, schema: request.json?.schema ?? null });
  generating = { controller: new AbortController() };
  setGenerating(true);
  let contextLength = current.stats.contextLength;
  try {
    for (let attempt = 0; ; attempt++) {
      const plan = planTurn({
        contextLength,
        maxTokens: request.sampling.max_tokens,
        systemPrompt: request.systemPrompt,
        history,
        question,
        documents: grounded ? library.ready : [],
        ranked,
      });
      try {
        const stream = await current.engine.chat.completions.create({
          messages: plan.messages,
          ...request.sampling,
          ...(request.json ? { response_format: responseFormat(request.json.schema) } : {}),
          stream: true,
          signal: generating.controller.signal,
        });
        let last = null;
        for await (const chunk of stream) {
          const delta = chunk.choices[0].delta.content;
          if (delta) reply.append(delta);
          last = chunk;
        }
        reply.finish({
          finishReason: last.choices[0].finish_reason,
          usage: last.usage,
          grounding: grounded ? { selection: plan.selection, ranked, question } : null,
        });
        if (conversation === turnConversation) {
          if (plan.droppedMessages > 0) {
            chat.addNotice(`The ${plan.droppedMessages} oldest messages no longer fit the context, so the model did not see them.`);
          }
          history = [...history, { role: 'user', content: question }, { role: 'assistant', content: reply.text }];
        }
        break;
      } catch (error) {
        // The token estimate was too low for this text: plan again with a smaller budget.
        if (error?.code === 'context-overflow' && attempt < OVERFLOW_RETRIES && reply.text === '') {
          contextLength = Math.floor(contextLength * 0.7);
          continue;
        }
        const { summary, detail } = explainError(error);
        reply.fail(`${summary} (${detail})`);
        break;
      }
    }
    if (models.current === current && conversation === turnConversation) {
      const stats = await current.engine.runtimeStats();
      showContext(stats.cachedTokens);
    }
  } finally {
    generating = null;
    setGenerating(false);
  }
}

function setGenerating(on) {
  send.hidden = on;
  stop.hidden = !on;
  updateSendButton();
  if (!on && models.current) prompt.focus();
}

/** The context meter: tokens the engine's KV cache holds of its context length. */
function showContext(tokens) {
  const current = models.current;
  if (!current) return;
  const total = current.stats.contextLength;
  $('context-meter').hidden = false;
  $('context-label').textContent = `Context ${formatNumber(tokens)} / ${formatNumber(total)}`;
  const fill = $('context-fill');
  fill.style.width = `${Math.min(100, (tokens / total) * 100).toFixed(1)}%`;
  fill.dataset.level = tokens / total > 0.9 ? 'high' : tokens / total > 0.7 ? 'medium' : 'low';
}

start();
