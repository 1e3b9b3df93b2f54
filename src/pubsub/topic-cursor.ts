import type { BrokerMessage, StreamPosition } from './broker.js';

/** Offsets `from`..`to` (inclusive) will never be delivered: history could not supply them. */
export interface SkippedRange {
  readonly from: number;
  readonly to: number;
}

/**
 * Puts one topic's messages back in offset order, whatever order and how
 * many times they arrive: live from a channel, replayed from history, or
 * both at once. No I/O: the owner feeds it and asks it what is missing.
 *
 * - A message at the next offset is delivered, with every buffered one
 *   that follows it without a hole.
 * - A message at or below the last delivered offset, or already buffered,
 *   is a duplicate and is dropped.
 * - A message past a hole waits (at most `maxPending` of them); `gap()`
 *   names the hole so the owner can read it from history, and `skipTo()`
 *   gives it up when history no longer holds it. Past `maxPending` the
 *   cursor gives up the hole itself (reported to `onSkip`), so a hole that
 *   is never filled cannot make it grow without bound.
 *
 * One epoch per cursor: the owner replaces the cursor when the epoch changes.
 */
export class TopicCursor {
  readonly epoch: string;
  /** Duplicates dropped so far. */
  duplicates = 0;
  private delivered: number;
  private readonly pending = new Map<number, BrokerMessage>();
  private readonly maxPending: number;
  private readonly onSkip: ((range: SkippedRange) => void) | null;

  constructor(position: StreamPosition, options: { maxPending?: number; onSkip?: (range: SkippedRange) => void } = {}) {
    this.epoch = position.epoch;
    this.delivered = position.offset;
    this.maxPending = options.maxPending ?? 10_000;
    this.onSkip = options.onSkip ?? null;
  }

  /** The last offset delivered. */
  get offset(): number {
    return this.delivered;
  }

  get position(): StreamPosition {
    return { epoch: this.epoch, offset: this.delivered };
  }

  /** Messages buffered behind a hole. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Offer a message of this cursor's epoch; returns the messages now deliverable, in order (often none or just this one). */
  offer(message: BrokerMessage): readonly BrokerMessage[] {
    const offset = message.offset;
    if (offset <= this.delivered || this.pending.has(offset)) {
      this.duplicates++;
      return NONE;
    }
    if (offset !== this.delivered + 1) {
      this.pending.set(offset, message);
      if (this.pending.size > this.maxPending) {
        const hole = this.gap()!;
        this.onSkip?.(hole);
        return this.skipTo(hole.to);
      }
      return NONE;
    }
    this.delivered = offset;
    if (this.pending.size === 0) return [message];
    const out = [message];
    this.drain(out);
    return out;
  }

  /** The first hole before a buffered message, or null when nothing waits. */
  gap(): SkippedRange | null {
    if (this.pending.size === 0) return null;
    let lowest = Infinity;
    for (const offset of this.pending.keys()) if (offset < lowest) lowest = offset;
    return { from: this.delivered + 1, to: lowest - 1 };
  }

  /**
   * Give up every offset up to `offset` (history does not hold them):
   * delivery continues after it. Returns the buffered messages that became
   * deliverable.
   */
  skipTo(offset: number): readonly BrokerMessage[] {
    if (offset <= this.delivered) return NONE;
    for (const key of this.pending.keys()) if (key <= offset) this.pending.delete(key);
    this.delivered = offset;
    const out: BrokerMessage[] = [];
    this.drain(out);
    return out;
  }

  private drain(out: BrokerMessage[]): void {
    for (;;) {
      const next = this.pending.get(this.delivered + 1);
      if (next === undefined) return;
      this.pending.delete(this.delivered + 1);
      this.delivered++;
      out.push(next);
    }
  }
}

const NONE: readonly BrokerMessage[] = Object.freeze([]);
