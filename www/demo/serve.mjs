// The demo's local web server (started by scripts/serve-demo): serves the repository root
// statically on localhost, with the model directory (~/.cache/qwen-webgpu/models by default)
// mapped to /models/, single-range requests (the model cache resumes downloads with them) and
// validators (ETag, Last-Modified) so a changed file is noticed, and the demo's
// Content-Security-Policy as a header. Loopback only: a development server, not for the open
// network.
//
//   node www/demo/serve.mjs [--port 8080] [--models DIR]

import { existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { staticHandler } from '../server/static-files.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEFAULT_MODELS = path.join(process.env.QWEN_WEBGPU_CACHE ?? path.join(os.homedir(), '.cache/qwen-webgpu'), 'models');
/** The test models scripts/fetch-test-model makes, in the order the demo URLs are printed. */
const TEST_MODELS = [
  { file: 'qwen2.5-coder-0.5b-instruct-q4_k_m.gguf', label: 'Qwen2.5-Coder 0.5B Instruct' },
  { file: 'qwen2-tiny-random.gguf', label: 'tiny test model (random weights, fast)' },
];

/**
 * The demo's Content-Security-Policy, sent as a header because a `<meta>` policy governs only its
 * page, not the workers the page starts (the engine, document indexing, pdf.js): those take the
 * policy of their own script's response. Connections go only to this site and Hugging Face (model
 * downloads), so nothing can carry document text elsewhere; 'wasm-unsafe-eval' lets the engine
 * worker compile its WebAssembly. index.html carries the same policy in a meta tag for hosts that
 * cannot send headers (test/demo-csp.test.mjs keeps the two equal).
 */
export const DEMO_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
  + "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co; worker-src 'self'; "
  + "object-src 'none'; base-uri 'none'; form-action 'none'";

/**
 * The demo's files (its pages and worker scripts) and every JavaScript file (pdf.js's worker
 * lives in node_modules; on a script that is not a worker the header is ignored) carry the
 * policy; other pages served from the repository, such as the package's test page, do not.
 */
function policyHeaders(urlPath, file) {
  return urlPath.startsWith('/www/demo/') || /\.m?js$/.test(file) ? { 'Content-Security-Policy': DEMO_CSP } : {};
}

/** Starts the server on 127.0.0.1:`port` (0: any free port); resolves to the http.Server once listening. */
export function serve({ port, models = DEFAULT_MODELS, root = REPO_ROOT, onRequest }) {
  const server = http.createServer(staticHandler({ root, mounts: { '/models/': models }, onRequest, extraHeaders: policyHeaders }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

async function main() {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '8080' }, models: { type: 'string', default: DEFAULT_MODELS } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port wants a port number, got ${values.port}`);
  const server = await serve({ port, models: path.resolve(values.models) });
  const origin = `http://localhost:${server.address().port}`;
  console.log(`Serving ${REPO_ROOT} on ${origin} (models from ${values.models} at /models/)`);
  const present = TEST_MODELS.filter((model) => existsSync(path.join(values.models, model.file)));
  for (const model of present) console.log(`Demo with the ${model.label}: ${origin}/www/demo/?model=/models/${model.file}`);
  if (present.length === 0) {
    console.log(`Demo: ${origin}/www/demo/  (no test model in ${values.models}: run scripts/fetch-test-model)`);
  }
  console.log('Press Ctrl-C to stop.');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`serve-demo: ${error.message}`);
    process.exit(1);
  });
}
