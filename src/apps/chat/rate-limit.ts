/**
 * Per-connection message rate: a sliding window over the times of the
 * messages accepted, and a second one over the messages refused.
 *
 * - At most `limit` messages are accepted in any `windowMs` span (5 in any
 *   second by default). A sliding window rather than fixed one-second slots:
 *   with slots, 5 messages at the end of one and 5 at the start of the next
 *   would pass as 10 in a few milliseconds.
 * - Every refused message counts as a violation; the `abuseLimit`-th
 *   violation within `abuseWindowMs` (10 within 10 s by default) is
 *   sustained abuse, and the caller closes the connection. A person who
 *   types too fast meets the error a few times and slows down; a script
 *   that keeps pushing is gone within seconds.
 *
 * Time is passed in, so the logic is tested without a clock.
 */
export interface RateLimitOptions {
  /** Messages accepted in any window. Default 5. */
  limit?: number;
  /** Window length, ms. Default 1000. */
  windowMs?: number;
  /** Refused messages within `abuseWindowMs` that count as sustained abuse. Default 10. */
  abuseLimit?: number;
  /** Default 10 000 ms. */
  abuseWindowMs?: number;
}

/** `accept`: handle it; `drop`: refuse it with an error; `abuse`: refuse it and close the connection. */
export type RateVerdict = 'accept' | 'drop' | 'abuse';

export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  readonly abuseLimit: number;
  readonly abuseWindowMs: number;
  /** Times of the last `limit` accepted messages, oldest first. */
  private readonly accepted: number[] = [];
  /** Times of the last `abuseLimit` refused messages, oldest first. */
  private readonly refused: number[] = [];

  constructor(options: RateLimitOptions = {}) {
    this.limit = positive(options.limit ?? 5, 'limit');
    this.windowMs = positive(options.windowMs ?? 1000, 'windowMs');
    this.abuseLimit = positive(options.abuseLimit ?? 10, 'abuseLimit');
    this.abuseWindowMs = positive(options.abuseWindowMs ?? 10_000, 'abuseWindowMs');
  }

  /** Account for one message arriving at `now` (ms) and say what to do with it. */
  check(now: number): RateVerdict {
    if (admit(this.accepted, this.limit, this.windowMs, now)) return 'accept';
    return this.refuse(now);
  }

  /**
   * Count a message refused at `now` by another limit (the image byte rate)
   * as a violation, like one over the message rate.
   */
  refuse(now: number): Exclude<RateVerdict, 'accept'> {
    // The refused message fills the abuse window: that many refusals in it is too many.
    return admit(this.refused, this.abuseLimit - 1, this.abuseWindowMs, now) ? 'drop' : 'abuse';
  }
}

export interface ByteRateOptions {
  /** Bytes that may be sent at once, after a quiet spell. Default 10 MiB: two of the largest images. */
  burstBytes?: number;
  /** Bytes per second that come back into the allowance. Default 1 MiB. */
  bytesPerSecond?: number;
}

/**
 * A per-connection allowance of image bytes, as a token bucket: it holds at
 * most `burstBytes`, each image takes its size out, and it refills at
 * `bytesPerSecond`. A few photos at once pass; a steady stream of large
 * images is held to about a megabyte a second, which every member of the
 * room would otherwise have to download. Stricter than the message rate,
 * which counts an image as one message whatever its size.
 *
 * Time is passed in, as for `RateLimiter`.
 */
export class ByteRateLimiter {
  readonly burstBytes: number;
  readonly bytesPerSecond: number;
  private available: number;
  private last: number | null = null;

  constructor(options: ByteRateOptions = {}) {
    this.burstBytes = positive(options.burstBytes ?? 10 * 1024 * 1024, 'burstBytes');
    this.bytesPerSecond = positive(options.bytesPerSecond ?? 1024 * 1024, 'bytesPerSecond');
    this.available = this.burstBytes;
  }

  /** Take `bytes` out of the allowance at `now` (ms) if it holds that many; false (and nothing taken) if not. */
  take(bytes: number, now: number): boolean {
    if (this.last !== null) {
      this.available = Math.min(this.burstBytes, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
    }
    this.last = now;
    if (bytes > this.available) return false;
    this.available -= bytes;
    return true;
  }

  /** How long (ms) from the last `take` until `bytes` would be allowed; 0 if they would be now. */
  waitFor(bytes: number): number {
    if (bytes <= this.available) return 0;
    return Math.ceil(((Math.min(bytes, this.burstBytes) - this.available) / this.bytesPerSecond) * 1000);
  }
}

/**
 * Record an event at `now` if fewer than `capacity` recorded events fall
 * within the last `windowMs`; the list keeps only the latest `capacity`.
 * With capacity 0 nothing is admitted.
 */
function admit(times: number[], capacity: number, windowMs: number, now: number): boolean {
  if (capacity <= 0) return false;
  if (times.length === capacity) {
    if (now - times[0]! < windowMs) return false;
    times.shift();
  }
  times.push(now);
  return true;
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
