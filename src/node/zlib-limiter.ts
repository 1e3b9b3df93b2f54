/** A unit of zlib work; it calls `done` once the work is over. */
export type ZlibJob = (done: () => void) => void;

/**
 * Bounds how many zlib jobs are in flight at once. node:zlib runs each
 * chunk on libuv's thread pool (4 threads by default, shared with fs, dns
 * and crypto); thousands of connections compressing at the same moment
 * would otherwise queue unbounded work there and each hold output buffers
 * meanwhile. Jobs beyond the limit wait in a FIFO queue, so no connection
 * is starved and messages of one connection keep their order.
 */
export class ZlibLimiter {
  readonly concurrency: number;
  #active = 0;
  /** Waiting jobs from #head on; the consumed prefix is dropped in batches. */
  #queue: Array<ZlibJob | undefined> = [];
  #head = 0;
  #draining = false;

  constructor(concurrency = 10) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${String(concurrency)}`);
    }
    this.concurrency = concurrency;
  }

  /** Jobs started and not yet done. */
  get active(): number {
    return this.#active;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * Runs `job` now if a slot is free, otherwise after the jobs queued before
   * it. The job must call `done` exactly once when its zlib work is over
   * (later calls are ignored). A job that throws is counted as done and the
   * error is rethrown.
   */
  run(job: ZlibJob): void {
    this.#queue.push(job);
    this.#drain();
  }

  #drain(): void {
    // A job may call done synchronously; the flag turns that re-entry into
    // another turn of this loop instead of a deeper stack.
    if (this.#draining) return;
    this.#draining = true;
    let thrown: { error: unknown } | null = null;
    try {
      while (this.#active < this.concurrency && this.#head < this.#queue.length) {
        const job = this.#queue[this.#head]!;
        this.#queue[this.#head] = undefined;
        this.#head++;
        if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        try {
          this.#start(job);
        } catch (error) {
          // Keep starting the jobs behind it; report the first failure afterwards.
          thrown ??= { error };
        }
      }
    } finally {
      this.#draining = false;
    }
    if (thrown !== null) throw thrown.error;
  }

  #start(job: ZlibJob): void {
    this.#active++;
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      this.#active--;
      this.#drain();
    };
    try {
      job(done);
    } catch (error) {
      done();
      throw error;
    }
  }
}

/** The limiter codecs share unless given their own: at most 10 zlib jobs in flight per process. */
export const sharedZlibLimiter = new ZlibLimiter(10);
