/**
 * Per-connection bounds on what a client sends, beyond the merging that
 * keeps its updates to the tick rate: a flood of messages, or a stream of
 * malformed ones, is hostile rather than eager, and the caller closes the
 * connection (1008). Time is passed in, so the logic is tested without a
 * clock.
 */
export interface InputGuardOptions {
  /**
   * Messages accepted in one second (counted in fixed one-second windows).
   * The page sends about 30 moves and 30 stroke messages a second at most.
   * Default 240.
   */
  maxMessagesPerSecond?: number;
  /** Errors within `errorWindowMs` that are too many. Default 10. */
  maxErrors?: number;
  /** Default 10 000 ms. */
  errorWindowMs?: number;
  /** Undos accepted in one second (fixed windows); a held Ctrl+Z repeats about 30 times a second. Default 10. */
  maxUndosPerSecond?: number;
  /** Least time between two clears by one visitor: clearing is for everyone, so not in a loop. Default 2000 ms. */
  clearIntervalMs?: number;
}

export class InputGuard {
  readonly maxMessagesPerSecond: number;
  readonly maxErrors: number;
  readonly errorWindowMs: number;
  readonly maxUndosPerSecond: number;
  readonly clearIntervalMs: number;
  private windowStart = -Infinity;
  private undoWindowStart = -Infinity;
  private undosInWindow = 0;
  private lastClear = -Infinity;
  private inWindow = 0;
  /** Times of the latest errors, oldest first, at most `maxErrors`. */
  private readonly errors: number[] = [];

  constructor(options: InputGuardOptions = {}) {
    this.maxMessagesPerSecond = positive(options.maxMessagesPerSecond ?? 240, 'maxMessagesPerSecond');
    this.maxErrors = positive(options.maxErrors ?? 10, 'maxErrors');
    this.errorWindowMs = positive(options.errorWindowMs ?? 10_000, 'errorWindowMs');
    this.maxUndosPerSecond = positive(options.maxUndosPerSecond ?? 10, 'maxUndosPerSecond');
    this.clearIntervalMs = positive(options.clearIntervalMs ?? 2000, 'clearIntervalMs');
  }

  /** Count an undo asked for at `now` (ms); false when it is one too many for its second. */
  undo(now: number): boolean {
    if (now - this.undoWindowStart >= 1000) {
      this.undoWindowStart = now;
      this.undosInWindow = 0;
    }
    return ++this.undosInWindow <= this.maxUndosPerSecond;
  }

  /** A clear asked for at `now` (ms): false when the previous accepted one was less than `clearIntervalMs` ago. */
  clear(now: number): boolean {
    if (now - this.lastClear < this.clearIntervalMs) return false;
    this.lastClear = now;
    return true;
  }

  /** Count a message arriving at `now` (ms); false when it is one too many for its second. */
  message(now: number): boolean {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    return ++this.inWindow <= this.maxMessagesPerSecond;
  }

  /** Count an error answered at `now` (ms); false when it makes `maxErrors` within the window. */
  error(now: number): boolean {
    this.errors.push(now);
    if (this.errors.length > this.maxErrors) this.errors.shift();
    return !(this.errors.length === this.maxErrors && now - this.errors[0]! < this.errorWindowMs);
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
