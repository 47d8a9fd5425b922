// The browser tests' harness: prerequisites (which fail a test, never skip it), the test server
// over the repository root with the model directory mounted at /models/, one Chromium profile
// per test file (IndexedDB starts empty, and persists across the file's pages), pages with
// their console captured, and screenshots/console logs in test-artifacts/ when a test fails.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MODELS_DIR = path.join(process.env.QWEN_WEBGPU_CACHE ?? path.join(os.homedir(), '.cache/qwen-webgpu'), 'models');
export const CHROMIUM = '/usr/bin/chromium';
export const TINY_MODEL = { file: 'qwen2-tiny-random.gguf', url: '/models/qwen2-tiny-random.gguf' };
export const REAL_MODEL = {
  file: 'qwen2.5-coder-0.5b-instruct-q4_k_m.gguf',
  url: '/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf',
  size: 491_400_064,
  sha256: '1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32',
};
/** The page every test runs in (an origin is needed for IndexedDB and WebGPU). */
export const TEST_PAGE = '/www/test/page.html';

const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Throws (failing the test) with what is missing and how to make it. */
export function requirePrerequisites({ models = [] } = {}) {
  const missing = [];
  if (!existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (scripts/setup installs Debian's chromium)`);
  if (!existsSync(path.join(REPO_ROOT, 'www/pkg/qwen_webgpu_wasm_base64.js'))) missing.push('www/pkg/qwen_webgpu_wasm_base64.js (run scripts/build-wasm)');
  if (!existsSync(path.join(REPO_ROOT, 'www/dist/index.js'))) missing.push('www/dist/index.js (run npm run build in www/)');
  for (const file of models) {
    if (!existsSync(path.join(MODELS_DIR, file))) missing.push(`${path.join(MODELS_DIR, file)} (run scripts/fetch-test-model)`);
  }
  if (missing.length > 0) throw new Error(`missing test prerequisites:\n  ${missing.join('\n  ')}`);
}

/**
 * A test file's browser environment: the server, and Chromium on a fresh profile directory
 * that lives until {@link close}. `suite` names the artifacts folder.
 */
export async function openSuite(suite, { models = [], mounts = {} } = {}) {
  requirePrerequisites({ models });
  const server = await startServer({ root: REPO_ROOT, mounts: { '/models/': MODELS_DIR, ...mounts } });
  const profile = await mkdtemp(path.join(os.tmpdir(), `qwen-webgpu-${suite}-`));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
  } catch (error) {
    await server.close();
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
  // Init scripts that a page opts into with its query string (a context cannot drop one).
  await context.addInitScript(installPageFaults);
  return {
    server,
    context,
    /** Opens the test page (with `query`, e.g. '?quota-free=1024') and captures its console. */
    async openPage(query = '') {
      const page = await context.newPage();
      const consoleLines = [];
      page.on('console', (message) => consoleLines.push(`[${message.type()}] ${message.text()}`));
      page.on('pageerror', (error) => consoleLines.push(`[pageerror] ${error.stack ?? error.message}`));
      page.on('worker', (worker) => {
        worker.on('console', (message) => consoleLines.push(`[worker ${message.type()}] ${message.text()}`));
      });
      page.consoleLines = consoleLines;
      await page.goto(`${server.origin}${TEST_PAGE}${query}`);
      return page;
    },
    /**
     * Runs `body(page)` on a new page; when it throws, saves the page's screenshot and console
     * in test-artifacts/<suite>/<test>/ before failing the test.
     */
    async withPage(t, body, query = '') {
      const page = await this.openPage(query);
      try {
        return await body(page);
      } catch (error) {
        await saveArtifacts(suite, t.name, page, error);
        throw error;
      } finally {
        await page.close().catch(() => undefined);
      }
    },
    async close() {
      await context.close();
      await server.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

async function saveArtifacts(suite, testName, page, error) {
  const directory = path.join(REPO_ROOT, 'test-artifacts', suite, testName.replace(/[^\w.-]+/g, '_'));
  await mkdir(directory, { recursive: true });
  const log = [...(page.consoleLines ?? []), '', `error: ${error?.stack ?? error}`].join('\n');
  await writeFile(path.join(directory, 'console.log'), `${log}\n`);
  await page.screenshot({ path: path.join(directory, 'screenshot.png'), timeout: 10_000 }).catch(() => undefined);
}

/**
 * Runs in every page before its scripts (context.addInitScript). Query options:
 *   quota-free=N      navigator.storage.estimate() reports N bytes free of a 10 GiB quota
 *   fail-put-after=N  IndexedDB puts of binary values fail with a QuotaExceededError after N succeed
 *   no-webgpu         navigator.gpu is absent, as in a browser without WebGPU
 */
function installPageFaults() {
  const options = new URLSearchParams(location.search);
  if (options.has('no-webgpu')) {
    Object.defineProperty(Navigator.prototype, 'gpu', { value: undefined, configurable: true });
  }
  const free = options.get('quota-free');
  if (free !== null) {
    const quota = 10 * 1024 ** 3;
    navigator.storage.estimate = async () => ({ quota, usage: quota - Number(free) });
  }
  const failAfter = options.get('fail-put-after');
  if (failAfter !== null) {
    let allowed = Number(failAfter);
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (value, ...rest) {
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
        if (allowed === 0) throw new DOMException('injected: the quota has been exceeded', 'QuotaExceededError');
        allowed -= 1;
      }
      return put.call(this, value, ...rest);
    };
  }
}
