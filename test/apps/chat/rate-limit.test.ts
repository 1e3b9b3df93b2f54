import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteRateLimiter, RateLimiter } from '../../../src/apps/chat/rate-limit.js';

describe('RateLimiter', () => {
  it('accepts 5 messages in a second and drops the sixth', () => {
    const limiter = new RateLimiter();
    const verdicts = [0, 100, 200, 300, 400, 500].map((t) => limiter.check(t));
    expect(verdicts).toEqual(['accept', 'accept', 'accept', 'accept', 'accept', 'drop']);
  });

  it('slides: a message is accepted once the oldest of the last 5 is a full window old', () => {
    const limiter = new RateLimiter();
    for (const t of [0, 100, 200, 300, 400]) expect(limiter.check(t)).toBe('accept');
    expect(limiter.check(999)).toBe('drop');
    expect(limiter.check(1000)).toBe('accept');
    // The window now holds 100..400 and 1000: the next slot opens at 1100.
    expect(limiter.check(1099)).toBe('drop');
    expect(limiter.check(1100)).toBe('accept');
  });

  it('does not let 5 at the end of one second and 5 at the start of the next pass', () => {
    const limiter = new RateLimiter();
    const verdicts = [995, 996, 997, 998, 999, 1001, 1002, 1003, 1004, 1005].map((t) => limiter.check(t));
    expect(verdicts.filter((v) => v === 'accept')).toHaveLength(5);
  });

  it('calls the tenth refused message within 10 s abuse, not the ninth', () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 5; i++) limiter.check(0);
    for (let i = 1; i <= 9; i++) expect(limiter.check(i)).toBe('drop');
    expect(limiter.check(10)).toBe('abuse');
  });

  it('forgives refusals older than the abuse window', () => {
    const limiter = new RateLimiter();
    // 9 refusals at t=0..8, then more than 10 s later another 9: never 10 within 10 s.
    for (let i = 0; i < 5; i++) limiter.check(0);
    for (let i = 0; i < 9; i++) expect(limiter.check(i)).toBe('drop');
    for (let i = 0; i < 5; i++) limiter.check(20_000);
    for (let i = 0; i < 9; i++) expect(limiter.check(20_000 + i)).toBe('drop');
    expect(limiter.check(20_010)).toBe('abuse');
  });

  it('takes its numbers from options and refuses nonsense', () => {
    const limiter = new RateLimiter({ limit: 2, windowMs: 50, abuseLimit: 1, abuseWindowMs: 10 });
    expect([limiter.check(0), limiter.check(0), limiter.check(0)]).toEqual(['accept', 'accept', 'abuse']);
    expect(() => new RateLimiter({ limit: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ windowMs: 1.5 })).toThrow(RangeError);
  });

  it('never accepts more than `limit` messages in any window (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 200 }),
        (limit, windowMs, gaps) => {
          const limiter = new RateLimiter({ limit, windowMs, abuseLimit: 1_000_000 });
          const accepted: number[] = [];
          let now = 0;
          for (const gap of gaps) {
            now += gap;
            if (limiter.check(now) === 'accept') accepted.push(now);
          }
          for (let i = limit; i < accepted.length; i++) {
            if (accepted[i]! - accepted[i - limit]! < windowMs) return false;
          }
          return true;
        },
      ),
    );
  });
});

describe('RateLimiter.refuse', () => {
  it('counts refusals by another limit toward abuse, together with its own', () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 5; i++) expect(limiter.check(0)).toBe('accept');
    for (let i = 0; i < 5; i++) expect(limiter.refuse(10)).toBe('drop');
    for (let i = 0; i < 4; i++) expect(limiter.check(20)).toBe('drop');
    expect(limiter.refuse(30)).toBe('abuse');
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
