/**
 * Many periodic callbacks on one timer. Every subscription ticks with the
 * same period but its own phase: the first tick comes one period after it was
 * added, and the next ones follow at whole periods from that moment, so each
 * client's ticks keep the rhythm of the moment *it* asked. Subscriptions sit
 * in a binary min-heap ordered by their next due time and a single timer is
 * armed for the earliest one: adding or removing costs O(log n), and a tick
 * wakes the process once for all subscriptions due together, however many
 * thousands there are.
 *
 * When the process falls behind (a blocked event loop, a suspended machine),
 * a late subscription ticks once and resumes on its own grid; missed ticks are
 * skipped, not delivered in a burst.
 */

export interface TickerTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface TickerOptions {
  /** Milliseconds between two ticks of a subscription. */
  period: number;
  /** Timer functions; default the global ones. */
  timers?: TickerTimers;
  /** A monotonic millisecond clock; default `performance.now()` (wall-clock jumps do not disturb the rhythm). */
  now?: () => number;
  /** Called when a tick callback throws; the other subscriptions tick regardless. */
  onError?: (error: unknown) => void;
}

/** One subscription; pass it back to `remove()`. */
export interface Subscription {
  /** Whether the subscription still ticks. */
  readonly active: boolean;
}

interface Entry extends Subscription {
  active: boolean;
  due: number;
  /** Position in the heap while active. */
  index: number;
  readonly onTick: () => void;
}

const defaultTimers: TickerTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class Ticker {
  private readonly period: number;
  private readonly timers: TickerTimers;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly heap: Entry[] = [];
  private timer: unknown = null;
  /** The due time the armed timer was set for. */
  private armedFor = Infinity;
  private disposed = false;

  constructor(options: TickerOptions) {
    if (!(options.period > 0) || !Number.isFinite(options.period)) {
      throw new RangeError(`the tick period must be a positive number of milliseconds, got ${options.period}`);
    }
    this.period = options.period;
    this.timers = options.timers ?? defaultTimers;
    this.now = options.now ?? (() => performance.now());
    this.onError = options.onError ?? (() => {});
  }

  /** Subscriptions currently ticking. */
  get size(): number {
    return this.heap.length;
  }

  /** Whether a timer is pending: true exactly while there is a subscription. */
  get armed(): boolean {
    return this.timer !== null;
  }

  /** Tick `onTick` every period, the first time one period from now. */
  add(onTick: () => void): Subscription {
    if (this.disposed) throw new Error('the ticker was disposed');
    const entry: Entry = { active: true, due: this.now() + this.period, index: this.heap.length, onTick };
    this.heap.push(entry);
    this.siftUp(entry.index);
    this.arm();
    return entry;
  }

  /** Stop a subscription; removing one twice, or after `dispose()`, does nothing. */
  remove(subscription: Subscription): void {
    const entry = subscription as Entry;
    if (!entry.active) return;
    entry.active = false;
    const last = this.heap.pop()!;
    if (last !== entry) {
      this.heap[entry.index] = last;
      last.index = entry.index;
      this.siftDown(last.index);
      this.siftUp(last.index);
    }
    // An early timer for a removed head just fires, finds nothing due and re-arms;
    // with no subscription left there is nothing to wait for.
    if (this.heap.length === 0) this.disarm();
  }

  /** Remove every subscription and clear the timer; the ticker takes no new ones. */
  dispose(): void {
    this.disposed = true;
    for (const entry of this.heap) entry.active = false;
    this.heap.length = 0;
    this.disarm();
  }

  private arm(): void {
    const head = this.heap[0];
    if (head === undefined) return;
    if (this.timer !== null && this.armedFor <= head.due) return;
    this.disarm();
    this.armedFor = head.due;
    this.timer = this.timers.setTimeout(() => this.fire(), Math.max(0, head.due - this.now()));
  }

  private disarm(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.timer = null;
    this.armedFor = Infinity;
    const now = this.now();
    // Each subscription is rescheduled before its callback runs, past `now`, so
    // this loop ends after at most one round over the heap.
    for (let head = this.heap[0]; head !== undefined && head.due <= now; head = this.heap[0]) {
      const missed = Math.floor((now - head.due) / this.period);
      head.due += (missed + 1) * this.period;
      this.siftDown(0);
      try {
        head.onTick();
      } catch (error) {
        this.onError(error);
      }
    }
    this.arm();
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const entry = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.due <= entry.due) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = entry;
    entry.index = index;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const length = heap.length;
    if (index >= length) return;
    const entry = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && heap[right]!.due < heap[left]!.due ? right : left;
      if (heap[child]!.due >= entry.due) break;
      heap[index] = heap[child]!;
      heap[index]!.index = index;
      index = child;
    }
    heap[index] = entry;
    entry.index = index;
  }
}
