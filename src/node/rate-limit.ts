import { UsageError } from '../protocol/errors.js';

/**
 * Per-connection rate limits on received messages: token buckets for
 * messages and for bytes, and a count of refusals that tells a person who
 * types too fast (a few refusals) from a script that keeps pushing (many,
 * close together). Time comes from the caller, in milliseconds, so the
 * arithmetic is tested without a clock.
 */

export interface RateLimitOptions {
  /** Messages per second a connection may keep up. No message limit when absent. */
  messagesPerSecond?: number;
  /** Messages that may arrive at once after a quiet spell (the bucket's size). Default: `messagesPerSecond`, at least 1. */
  messageBurst?: number;
  /** Payload bytes (after decompression) per second a connection may keep up. No byte limit when absent. */
  bytesPerSecond?: number;
  /**
   * Bytes that may arrive at once after a quiet spell. Default: `bytesPerSecond`.
   * A message is let through whenever the allowance is not in debt, and its
   * whole size is taken out (the allowance may go below zero): a message
   * larger than the burst is not refused forever, it only makes the
   * connection wait longer for the next one.
   */
  byteBurst?: number;
  /**
   * What a message over the limit does. `drop` (default): it is not handed
   * to the `message` hook, the route's `limited` hook hears of it, and the
   * connection is closed with 1008 only on sustained abuse (below). `close`:
   * the first one closes the connection with 1008.
   */
  onExceeded?: 'drop' | 'close';
  /** With `drop`: this many refused messages within `abuseWindowMs` is sustained abuse. Default 10. */
  abuseLimit?: number;
  /** Default 10 000 ms. */
  abuseWindowMs?: number;
}

/** Which allowance a refused message exceeded. */
export type RateLimitKind = 'messages' | 'bytes';

/** Options checked and filled in, shared by every connection of a route. */
export interface RatePolicy {
  readonly messagesPerMs: number;
  readonly messageBurst: number;
  readonly bytesPerMs: number;
  readonly byteBurst: number;
  readonly closeAtOnce: boolean;
  readonly abuseLimit: number;
  readonly abuseWindowMs: number;
}

/** Check the options; null when they limit nothing. Throws a UsageError for a value that makes no sense. */
export function ratePolicy(options: RateLimitOptions): RatePolicy | null {
  const messages = optionalPositive(options.messagesPerSecond, 'messagesPerSecond');
  const bytes = optionalPositive(options.bytesPerSecond, 'bytesPerSecond');
  if (messages === undefined && bytes === undefined) return null;
  const onExceeded = options.onExceeded ?? 'drop';
  if (onExceeded !== 'drop' && onExceeded !== 'close') {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `rateLimit.onExceeded must be 'drop' or 'close', got ${String(onExceeded)}`);
  }
  const abuseLimit = optionalPositive(options.abuseLimit, 'abuseLimit') ?? 10;
  if (!Number.isInteger(abuseLimit)) throw new UsageError('WS_ERR_INVALID_ARGUMENT', `rateLimit.abuseLimit must be an integer, got ${abuseLimit}`);
  return {
    messagesPerMs: messages === undefined ? Infinity : messages / 1000,
    messageBurst: messages === undefined ? Infinity : (optionalPositive(options.messageBurst, 'messageBurst') ?? Math.max(1, messages)),
    bytesPerMs: bytes === undefined ? Infinity : bytes / 1000,
    byteBurst: bytes === undefined ? Infinity : (optionalPositive(options.byteBurst, 'byteBurst') ?? bytes),
    closeAtOnce: onExceeded === 'close',
    abuseLimit,
    abuseWindowMs: optionalPositive(options.abuseWindowMs, 'abuseWindowMs') ?? 10_000,
  };
}

/** One connection's allowances. Both buckets start full. */
export class ConnectionRate {
  private messages: number;
  private bytes: number;
  private last: number;
  /** Times of the latest `abuseLimit` refusals, a ring; created on the first refusal. */
  private refusals: number[] | null = null;
  private nextRefusal = 0;
  /** The connection's received-bytes counter after the last message measured. */
  private seenBytes = 0;

  constructor(
    private readonly policy: RatePolicy,
    now: number,
  ) {
    this.messages = policy.messageBurst;
    this.bytes = policy.byteBurst;
    this.last = now;
  }

  /**
   * The size of the message just received, from the connection's running
   * count of received payload bytes (which it updates before handing the
   * message on): no second pass over a string to count its UTF-8 bytes.
   */
  sizeOf(bytesReceived: number): number {
    const size = bytesReceived - this.seenBytes;
    this.seenBytes = bytesReceived;
    return size;
  }

  /** `onExceeded: 'close'`: the first refusal closes the connection. */
  get closeAtOnce(): boolean {
    return this.policy.closeAtOnce;
  }

  /** Account for a message of `size` bytes arriving at `now`: null if it passes, else the allowance it exceeded (nothing taken). */
  admit(size: number, now: number): RateLimitKind | null {
    const policy = this.policy;
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.last = now;
      this.messages = Math.min(policy.messageBurst, this.messages + elapsed * policy.messagesPerMs);
      this.bytes = Math.min(policy.byteBurst, this.bytes + elapsed * policy.bytesPerMs);
    }
    if (this.messages < 1) return 'messages';
    if (this.bytes < 0 || (this.bytes === 0 && size > 0)) return 'bytes';
    this.messages -= 1;
    this.bytes -= size;
    return null;
  }

  /**
   * Record a refusal at `now`; true when it makes `abuseLimit` refusals
   * within `abuseWindowMs` (a sliding window over their times).
   */
  refused(now: number): boolean {
    const { abuseLimit, abuseWindowMs } = this.policy;
    const ring = (this.refusals ??= new Array<number>(abuseLimit).fill(-Infinity));
    ring[this.nextRefusal] = now;
    this.nextRefusal = (this.nextRefusal + 1) % abuseLimit;
    // The next slot to overwrite holds the oldest of the latest `abuseLimit` refusals, this one included.
    return now - ring[this.nextRefusal]! < abuseWindowMs;
  }
}

function optionalPositive(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `rateLimit.${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}
