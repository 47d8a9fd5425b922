// The async iterator a streaming completion (chat or legacy) returns: the producer (the wasm
// callback, or worker messages) pushes chunks as they are generated; the consumer pulls them
// with `for await`. Leaving the loop early cancels the generation.

import type { ChatCompletionChunk } from './types.js';

export class ChunkStream<Chunk = ChatCompletionChunk> implements AsyncIterableIterator<Chunk> {
  private readonly buffered: Chunk[] = [];
  private ended = false;
  private failure: { error: unknown } | null = null;
  private waiting: { resolve: (result: IteratorResult<Chunk>) => void; reject: (error: unknown) => void } | null = null;

  /** `cancel` stops the generation when the consumer stops iterating before the end. */
  constructor(private readonly cancel: () => void) {}

  push(chunk: Chunk): void {
    if (this.ended) return;
    if (this.waiting) {
      this.takeWaiting().resolve({ value: chunk, done: false });
    } else {
      this.buffered.push(chunk);
    }
  }

  /** No more chunks: the consumer sees the end once it has taken the buffered ones. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiting) this.takeWaiting().resolve({ value: undefined, done: true });
  }

  /** The generation failed: the consumer gets `error` after the buffered chunks. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = { error };
    if (this.waiting) this.takeWaiting().reject(error);
  }

  next(): Promise<IteratorResult<Chunk>> {
    const chunk = this.buffered.shift();
    if (chunk) return Promise.resolve({ value: chunk, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      return Promise.reject(error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Called by `break`/`return` inside `for await`: cancels the generation. */
  return(): Promise<IteratorResult<Chunk>> {
    if (!this.ended) {
      this.ended = true;
      this.cancel();
    }
    this.buffered.length = 0;
    this.failure = null;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Chunk> {
    return this;
  }

  private takeWaiting(): { resolve: (result: IteratorResult<Chunk>) => void; reject: (error: unknown) => void } {
    const waiting = this.waiting as NonNullable<typeof this.waiting>;
    this.waiting = null;
    return waiting;
  }
}
