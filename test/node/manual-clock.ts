import type { TimerHandle, TimerSource } from '../../src/node/timer-source.js';

/**
 * A clock that moves only when a test calls `advance()`, with the timers
 * that run against it: what the server's `timers` option takes. Time-driven
 * behaviour (heartbeat ticks, handshake deadlines, the shutdown timeout)
 * then happens at a step the test chose, whatever the machine's load, and
 * "not yet" is a plain assertion after a step short of the deadline rather
 * than a sleep that hopes nothing happens.
 */

interface Scheduled {
  due: number;
  /** Null for a one-shot timeout. */
  every: number | null;
  callback: () => void;
}

class ManualHandle implements TimerHandle {
  constructor(readonly id: number) {}
  unref(): this {
    return this;
  }
}

/** More timer callbacks than this in one `advance()` means a timer that re-arms itself without end. */
const MAX_RUNS_PER_ADVANCE = 100_000;

export class ManualClock implements TimerSource {
  private time = 0;
  private nextId = 1;
  private readonly scheduled = new Map<number, Scheduled>();

  now(): number {
    return this.time;
  }

  setInterval(callback: () => void, ms: number): TimerHandle {
    // Like Node, an interval of less than 1 ms runs every millisecond.
    return this.schedule(callback, ms, Math.max(1, ms));
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.schedule(callback, ms, null);
  }

  clearInterval(handle: TimerHandle): void {
    this.scheduled.delete((handle as ManualHandle).id);
  }

  clearTimeout(handle: TimerHandle): void {
    this.scheduled.delete((handle as ManualHandle).id);
  }

  /** Timers (intervals and timeouts) waiting to run. */
  get pending(): number {
    return this.scheduled.size;
  }

  /**
   * Move the clock `ms` forward, running every timer that falls due on the
   * way, earliest first, with the clock set to its due time while it runs.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance by ${ms} ms`);
    const target = this.time + ms;
    for (let runs = 0; ; runs++) {
      if (runs > MAX_RUNS_PER_ADVANCE) throw new Error(`over ${MAX_RUNS_PER_ADVANCE} timer runs in one advance(${ms})`);
      let nextId = -1;
      let next: Scheduled | undefined;
      for (const [id, entry] of this.scheduled) {
        if (entry.due <= target && (next === undefined || entry.due < next.due)) {
          nextId = id;
          next = entry;
        }
      }
      if (next === undefined) break;
      this.time = next.due;
      if (next.every === null) this.scheduled.delete(nextId);
      else next.due += next.every;
      next.callback();
    }
    this.time = target;
  }

  private schedule(callback: () => void, ms: number, every: number | null): TimerHandle {
    const id = this.nextId++;
    this.scheduled.set(id, { due: this.time + Math.max(1, ms), every, callback });
    return new ManualHandle(id);
  }
}
