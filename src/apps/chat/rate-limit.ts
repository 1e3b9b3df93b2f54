import type { RateLimitOptions as ServerRateLimit } from '../../node/rate-limit.js';

/**
 * The chat's limits per connection. The message rate and the count of
 * refusals that makes sustained abuse are enforced by the server (the
 * route's generic `rateLimit`, token buckets); what stays here is the
 * allowance of image bytes, which the generic byte limit cannot express:
 * it counts only images, and refuses an image larger than what is left
 * rather than letting it overdraw.
 *
 * - At most `limit` messages per `windowMs` (5 per second by default), an
 *   image counting as one message: a burst of `limit` at once, then one
 *   every `windowMs / limit`.
 * - Every refused message counts as a violation; the `abuseLimit`-th
 *   violation within `abuseWindowMs` (10 within 10 s by default) is
 *   sustained abuse, and the connection is closed. A person who types too
 *   fast meets the error a few times and slows down; a script that keeps
 *   pushing is gone within seconds.
 */
export interface RateLimitOptions {
  /** Messages accepted per window, and at once. Default 5. */
  limit?: number;
  /** Window length, ms. Default 1000. */
  windowMs?: number;
  /** Refused messages within `abuseWindowMs` that count as sustained abuse. Default 10. */
  abuseLimit?: number;
  /** Default 10 000 ms. */
  abuseWindowMs?: number;
}

/** The chat's message limits, checked, in the server's terms (`Route.rateLimit`). */
export function messageRateLimit(options: RateLimitOptions = {}): Required<RateLimitOptions> & ServerRateLimit {
  const limit = positive(options.limit ?? 5, 'limit');
  const windowMs = positive(options.windowMs ?? 1000, 'windowMs');
  const abuseLimit = positive(options.abuseLimit ?? 10, 'abuseLimit');
  const abuseWindowMs = positive(options.abuseWindowMs ?? 10_000, 'abuseWindowMs');
  return {
    limit,
    windowMs,
    abuseLimit,
    abuseWindowMs,
    messagesPerSecond: (limit * 1000) / windowMs,
    messageBurst: limit,
    onExceeded: 'drop',
  };
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
 * Time is passed in, so the logic is tested without a clock.
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

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
