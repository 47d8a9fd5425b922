// The page engine's operations, one at a time in the order they were asked for: the wasm
// engine is single-threaded and holds its state across awaits, so each call waits for the
// last. Unload closes the queue; a WebAssembly trap poisons it.

import { InternalError, InvalidRequestError, type QwenWebGpuError, toQwenWebGpuError } from './errors.js';

export class OperationQueue {
  /** Settles after the last queued operation; each new one chains onto it. */
  private tail: Promise<void> = Promise.resolve();
  private closing = false;
  private crash: InternalError | null = null;

  /** `onCrash` drops what the trapped instance owned (it must not be called into again). */
  constructor(private readonly onCrash: () => void) {}

  /** Whether unload has begun. */
  get closed(): boolean {
    return this.closing;
  }

  /** Runs `task` after every operation queued before it; rejects once unload has begun. */
  run<T>(task: () => T | Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new InvalidRequestError('the engine was unloaded'));
    return this.runAlways(task);
  }

  /** As {@link run}, even after unload has begun (for the unload itself). */
  runAlways<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(() => {
      this.throwIfCrashed();
      return task();
    }).catch((error: unknown): never => {
      throw this.typed(error);
    });
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }

  /** Later {@link run}s are refused; resolves when the queued operations have settled. */
  close(): Promise<void> {
    this.closing = true;
    return this.tail;
  }

  /** Throws the trap that ended the engine, if one did. */
  throwIfCrashed(): void {
    if (this.crash) throw this.crash;
  }

  private typed(error: unknown): QwenWebGpuError {
    if (error instanceof WebAssembly.RuntimeError) {
      // A trap (a Rust panic under panic=abort) unwinds nothing: the engine's borrow stays held
      // and its state is unknown. The engine is dead, and says so, instead of answering "busy"
      // forever.
      this.crash ??= new InternalError(
        `the engine's WebAssembly instance failed (${error.message}); create a new engine`, { cause: error });
      this.onCrash();
      return this.crash;
    }
    return toQwenWebGpuError(error);
  }
}
