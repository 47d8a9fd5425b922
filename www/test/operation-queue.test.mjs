// The page engine's operation queue (Node only, on the compiled dist/: `npm run build`):
// operations run one at a time in order; a WebAssembly trap ends the engine with an
// InternalError that every later call gets without touching the instance (before, the held
// borrow answered "busy" forever); unload refuses later calls.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, test } from 'node:test';

let OperationQueue;
let InternalError;
let InvalidRequestError;

before(async () => {
  if (!existsSync(new URL('../dist/operation-queue.js', import.meta.url))) throw new Error('missing www/dist (run npm run build in www/)');
  ({ OperationQueue } = await import('../dist/operation-queue.js'));
  ({ InternalError, InvalidRequestError } = await import('../dist/errors.js'));
});

test('operations run one at a time, in order, and an ordinary failure does not stop the queue', async () => {
  const queue = new OperationQueue(() => assert.fail('no trap here'));
  const log = [];
  const slow = queue.run(async () => {
    log.push('slow start');
    await new Promise((resolve) => setTimeout(resolve, 20));
    log.push('slow end');
    return 1;
  });
  const failing = queue.run(() => {
    throw Object.assign(new Error('no such token'), { code: 'invalid-request' });
  });
  const fast = queue.run(() => {
    log.push('fast');
    return 2;
  });
  assert.equal(await slow, 1);
  await assert.rejects(failing, (e) => e instanceof InvalidRequestError && e.message === 'no such token');
  assert.equal(await fast, 2);
  assert.deepEqual(log, ['slow start', 'slow end', 'fast']);
});

test('a WebAssembly trap ends the engine: every later call gets the same InternalError', async () => {
  let dropped = 0;
  const queue = new OperationQueue(() => { dropped += 1; });
  const trap = queue.run(() => {
    throw new WebAssembly.RuntimeError('unreachable');
  });
  let ranAfterTrap = false;
  const after = queue.run(() => { ranAfterTrap = true; });
  const first = await trap.then(() => null, (e) => e);
  assert.ok(first instanceof InternalError, String(first));
  assert.match(first.message, /WebAssembly instance failed \(unreachable\); create a new engine/);
  assert.equal(await after.then(() => null, (e) => e), first);
  assert.equal(ranAfterTrap, false);
  assert.throws(() => queue.throwIfCrashed(), (e) => e === first);
  assert.equal(dropped, 1);
});

test('after unload begins, new calls are refused while the unload itself still runs', async () => {
  const queue = new OperationQueue(() => {});
  const closing = queue.close();
  assert.equal(queue.closed, true);
  await assert.rejects(queue.run(() => 1), (e) => e instanceof InvalidRequestError && /unloaded/.test(e.message));
  assert.equal(await queue.runAlways(() => 'freed'), 'freed');
  await closing;
});
