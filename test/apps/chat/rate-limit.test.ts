import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteRateLimiter, messageRateLimit } from '../../../src/apps/chat/rate-limit.js';
import { ConnectionRate, ratePolicy } from '../../../src/node/rate-limit.js';

describe("messageRateLimit: the chat's message limits in the server's terms", () => {
  it('defaults to 5 per second, 5 at once, abuse at 10 refusals within 10 s', () => {
    expect(messageRateLimit()).toEqual({
      limit: 5,
      windowMs: 1000,
      abuseLimit: 10,
      abuseWindowMs: 10_000,
      messagesPerSecond: 5,
      messageBurst: 5,
      onExceeded: 'drop',
    });
  });

  it('turns a limit per window into a rate per second with that burst', () => {
    expect(messageRateLimit({ limit: 2, windowMs: 500 })).toMatchObject({ messagesPerSecond: 4, messageBurst: 2 });
  });

  it('refuses nonsense', () => {
    expect(() => messageRateLimit({ limit: 0 })).toThrow(RangeError);
    expect(() => messageRateLimit({ windowMs: 1.5 })).toThrow(RangeError);
  });

  it("holds the server's buckets to 5 at once and 5 a second after that (what the chat promises)", () => {
    const policy = ratePolicy(messageRateLimit());
    const rate = new ConnectionRate(policy!, 0);
    const verdicts = [0, 1, 2, 3, 4, 5].map((t) => rate.admit(10, t));
    expect(verdicts).toEqual([null, null, null, null, null, 'messages']);
    // One more every 200 ms.
    expect(rate.admit(10, 199)).toBe('messages');
    expect(rate.admit(10, 201)).toBeNull();
  });
});

describe('ByteRateLimiter', () => {
  it('lets 10 MiB through at once by default, then refills at 1 MiB a second', () => {
    const limiter = new ByteRateLimiter();
    const mib = 1024 * 1024;
    expect(limiter.take(5 * mib, 0)).toBe(true);
    expect(limiter.take(5 * mib, 0)).toBe(true);
    expect(limiter.take(1, 0)).toBe(false);
    expect(limiter.waitFor(2 * mib)).toBe(2000);
    expect(limiter.take(2 * mib, 1999)).toBe(false);
    expect(limiter.take(2 * mib, 2000)).toBe(true);
    expect(limiter.waitFor(1)).toBeGreaterThan(0);
  });

  it('takes nothing for a refused request, and never holds more than the burst', () => {
    const limiter = new ByteRateLimiter({ burstBytes: 100, bytesPerSecond: 10 });
    expect(limiter.take(60, 0)).toBe(true);
    expect(limiter.take(60, 0)).toBe(false);
    expect(limiter.take(40, 0)).toBe(true);
    // A long quiet spell refills to the burst, not beyond.
    expect(limiter.take(101, 1_000_000)).toBe(false);
    expect(limiter.take(100, 1_000_000)).toBe(true);
  });

  it('never lets more through in a span than the burst plus the refill over it (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 80 })), { maxLength: 60 }), (steps) => {
        const limiter = new ByteRateLimiter({ burstBytes: 100, bytesPerSecond: 50 });
        let now = 0;
        let passed = 0;
        for (const [gap, bytes] of steps) {
          now += gap;
          if (limiter.take(bytes, now)) passed += bytes;
        }
        expect(passed).toBeLessThanOrEqual(100 + (now / 1000) * 50 + 1e-9);
      }),
    );
  });

  it('refuses nonsense settings', () => {
    expect(() => new ByteRateLimiter({ burstBytes: 0 })).toThrow(RangeError);
    expect(() => new ByteRateLimiter({ bytesPerSecond: 1.5 })).toThrow(RangeError);
  });
});
