import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnectionRate, ratePolicy, type RateLimitOptions } from '../../src/node/rate-limit.js';

function rate(options: RateLimitOptions, now = 0): ConnectionRate {
  const policy = ratePolicy(options);
  if (policy === null) throw new Error('expected a policy');
  return new ConnectionRate(policy, now);
}

describe('ratePolicy', () => {
  it('is null when nothing is limited', () => {
    expect(ratePolicy({})).toBeNull();
    expect(ratePolicy({ onExceeded: 'close', abuseLimit: 3 })).toBeNull();
  });

  it.each([
    [{ messagesPerSecond: 0 }],
    [{ messagesPerSecond: -1 }],
    [{ bytesPerSecond: Number.NaN }],
    [{ messagesPerSecond: 5, messageBurst: 0 }],
    [{ messagesPerSecond: 5, abuseLimit: 2.5 }],
    [{ messagesPerSecond: 5, onExceeded: 'ignore' as 'drop' }],
  ])('refuses %j with a UsageError', (options) => {
    expect(() => ratePolicy(options)).toThrow(expect.objectContaining({ name: 'UsageError', code: 'WS_ERR_INVALID_ARGUMENT' }));
  });
});

describe('ConnectionRate: messages', () => {
  it('lets a full burst through at once, then one message per 1/rate seconds', () => {
    const r = rate({ messagesPerSecond: 5 });
    for (let i = 0; i < 5; i++) expect(r.admit(10, 0)).toBeNull();
    expect(r.admit(10, 0)).toBe('messages');
    expect(r.admit(10, 199)).toBe('messages');
    expect(r.admit(10, 200)).toBeNull();
    expect(r.admit(10, 201)).toBe('messages');
  });

  it('takes its burst from messageBurst and never stores more than it', () => {
    const r = rate({ messagesPerSecond: 1, messageBurst: 3 });
    // An hour of quiet still gives only 3.
    const later = 3_600_000;
    for (let i = 0; i < 3; i++) expect(r.admit(0, later)).toBeNull();
    expect(r.admit(0, later)).toBe('messages');
  });

  it('holds any schedule of arrivals to burst + rate x elapsed (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 300 }),
        (perSecond, burst, gaps) => {
          const r = rate({ messagesPerSecond: perSecond, messageBurst: burst });
          let now = 0;
          let admitted = 0;
          for (const gap of gaps) {
            now += gap;
            if (r.admit(1, now) === null) admitted++;
          }
          return admitted <= burst + (perSecond * now) / 1000 + 1e-9;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('ConnectionRate: bytes', () => {
  it('lets a message through while the allowance is not in debt, then waits for it to refill', () => {
    const r = rate({ bytesPerSecond: 1000 });
    // A message larger than the burst passes once and leaves a debt of 500 bytes...
    expect(r.admit(1500, 0)).toBeNull();
    expect(r.admit(1, 0)).toBe('bytes');
    // ...paid back at 1000 bytes/s: 0.5 s to zero, then any byte is welcome.
    expect(r.admit(1, 499)).toBe('bytes');
    expect(r.admit(1, 501)).toBeNull();
  });

  it('a refused message takes nothing from either allowance', () => {
    const r = rate({ messagesPerSecond: 2, bytesPerSecond: 100, byteBurst: 100 });
    expect(r.admit(100, 0)).toBeNull();
    expect(r.admit(10, 0)).toBe('bytes');
    // The second message slot is still there once bytes come back.
    expect(r.admit(10, 100)).toBeNull();
  });
});

describe('ConnectionRate: sustained abuse', () => {
  it('is the abuseLimit-th refusal within abuseWindowMs, over a sliding window', () => {
    const r = rate({ messagesPerSecond: 1, abuseLimit: 3, abuseWindowMs: 1000 });
    expect(r.refused(0)).toBe(false);
    expect(r.refused(100)).toBe(false);
    expect(r.refused(999)).toBe(true);
    // Spread out, the same number of refusals is not abuse.
    const spread = rate({ messagesPerSecond: 1, abuseLimit: 3, abuseWindowMs: 1000 });
    expect(spread.refused(0)).toBe(false);
    expect(spread.refused(600)).toBe(false);
    expect(spread.refused(1200)).toBe(false);
    expect(spread.refused(1800)).toBe(false);
  });

  it('with abuseLimit 1 every refusal is abuse', () => {
    const r = rate({ messagesPerSecond: 1, abuseLimit: 1 });
    expect(r.refused(0)).toBe(true);
  });
});
