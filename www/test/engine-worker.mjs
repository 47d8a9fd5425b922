// The module worker the worker-mode tests start: the whole worker script a page needs.
import { serveEngineInWorker } from '../dist/worker.js';

serveEngineInWorker();
