// The package's ready-made worker script (`qwen-webgpu/worker`): importing it serves an engine
// over the worker's messages. An app's whole worker file is then
//   import 'qwen-webgpu/worker';
// started from the page as new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }).

import { serveEngineInWorker } from './worker.js';

serveEngineInWorker();
