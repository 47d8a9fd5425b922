// The module worker of the WebLLM-API tests, in WebLLM's own form.
import { WebWorkerMLCEngineHandler } from '../dist/index.js';

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (message) => handler.onmessage(message);
