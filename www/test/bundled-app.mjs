// Apps built on the packed package, as a user gets it: `npm pack` of www/, installed from the
// tarball into a fresh app directory, then served by Vite's dev server (dependency
// pre-bundling included) or built by `vite build` and served as static files, with no Vite
// configuration file either way. The tiny model is the app's public/models/ file (a link), so
// both serve it from the app's own origin.

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { build, createServer } from 'vite';
import { MODELS_DIR, REPO_ROOT, TINY_MODEL } from './browser.mjs';
import { startServer } from './server.mjs';

const run = promisify(execFile);
const WWW = path.join(REPO_ROOT, 'www');

/** Packs www/ (dist/ must be built) into `directory`; returns the tarball's path. */
export async function packPackage(directory) {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', directory], { cwd: WWW });
  const [{ filename, files }] = JSON.parse(stdout);
  return { tarball: path.join(directory, filename), files: files.map((file) => file.path) };
}

/**
 * A fresh app directory holding `sources` (a directory copied as the app's root) with the
 * tarball installed in its node_modules (npm, offline: the package has no dependencies).
 */
export async function makeApp(sources, tarball) {
  const app = await mkdtemp(path.join(os.tmpdir(), 'qwen-webgpu-app-'));
  await cp(sources, app, { recursive: true });
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], { cwd: app });
  await mkdir(path.join(app, 'public/models'), { recursive: true });
  await symlink(path.join(MODELS_DIR, TINY_MODEL.file), path.join(app, 'public/models', TINY_MODEL.file));
  return {
    root: app,
    /** Vite's dev server over the app; returns its origin and close(). */
    async serveDev() {
      const server = await createServer({ root: app, configFile: false, logLevel: 'error', server: { port: 0, host: '127.0.0.1' } });
      await server.listen();
      const { port } = server.httpServer.address();
      return { origin: `http://127.0.0.1:${port}`, close: () => server.close() };
    },
    /** `vite build` of the app, served as static files; returns the origin and close(). */
    async serveBuild() {
      const outDir = path.join(app, 'dist');
      await build({ root: app, configFile: false, logLevel: 'error' });
      const server = await startServer({ root: outDir });
      return { origin: server.origin, close: () => server.close() };
    },
    remove: () => rm(app, { recursive: true, force: true }),
  };
}

/**
 * Opens `url` in `context` and waits for the app to publish `window.appResult` (the app's
 * own checks ran), across the reload Vite's dev server may do after optimizing dependencies.
 * Returns the result and the page's console lines.
 */
export async function runApp(context, url, timeoutMs = 240_000) {
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (message) => consoleLines.push(`[${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => consoleLines.push(`[pageerror] ${error.stack ?? error.message}`));
  page.on('worker', (worker) => worker.on('console', (message) => consoleLines.push(`[worker] ${message.text()}`)));
  try {
    await page.goto(url);
    const handle = await page.waitForFunction(() => globalThis.appResult, null, { timeout: timeoutMs, polling: 250 });
    return { result: await handle.jsonValue(), consoleLines };
  } catch (error) {
    throw new Error(`${url}: ${error.message}\nconsole:\n${consoleLines.join('\n')}`);
  } finally {
    await page.close().catch(() => undefined);
  }
}
