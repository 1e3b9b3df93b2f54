import type { TickerTimers } from '../../../src/apps/clock/ticker.js';

/**
 * A clock that moves only when told to, with the timer functions the clock's
 * scheduler takes: `advance()` runs every timer that falls due, in order, at
 * its due time.
 */
export class ManualClock {
  now = 0;
  private nextHandle = 1;
  private readonly pending = new Map<number, { due: number; callback: () => void }>();

  readonly timers: TickerTimers = {
    setTimeout: (callback, ms) => {
      const handle = this.nextHandle++;
      this.pending.set(handle, { due: this.now + Math.max(0, ms), callback });
      return handle;
    },
    clearTimeout: (handle) => {
      this.pending.delete(handle as number);
    },
  };

  readonly read = (): number => this.now;

  /** Timers set and not yet run or cleared. */
  get pendingTimers(): number {
    return this.pending.size;
  }

  /** Move the clock forward without running any timer, as a blocked event loop would; `advance(0)` then runs the overdue ones. */
  stall(ms: number): void {
    this.now += ms;
  }

  /** Move the clock `ms` forward, running the timers due on the way (bounded: a timer loop fails loudly). */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let runs = 0; ; runs++) {
      if (runs > 100_000) throw new Error('timers keep firing without the clock moving');
      let first: [number, { due: number; callback: () => void }] | undefined;
      for (const entry of this.pending) if (entry[1].due <= end && (first === undefined || entry[1].due < first[1].due)) first = entry;
      if (first === undefined) break;
      this.pending.delete(first[0]);
      this.now = Math.max(this.now, first[1].due);
      first[1].callback();
    }
    this.now = end;
  }
}
