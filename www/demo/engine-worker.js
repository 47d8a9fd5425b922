// The demo's engine worker: the whole model (download, GPU, generation) lives in this module
// worker, so the page stays responsive while a model loads or writes.
import { serveEngineInWorker } from '../dist/worker.js';

serveEngineInWorker();
