// The worker of the web-worker example: WebLLM's handler, answering the page's messages.
import { WebWorkerMLCEngineHandler } from 'qwen-webgpu';

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (msg: MessageEvent) => {
  handler.onmessage(msg);
};
