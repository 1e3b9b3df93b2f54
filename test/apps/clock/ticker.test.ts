import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ticker } from '../../../src/apps/clock/ticker.js';
import { ManualClock } from './manual-clock.js';

function setup(period = 2000): { clock: ManualClock; ticker: Ticker } {
  const clock = new ManualClock();
  return { clock, ticker: new Ticker({ period, timers: clock.timers, now: clock.read }) };
}

describe('Ticker', () => {
  it('ticks a subscription one period after it was added, then every period', () => {
    const { clock, ticker } = setup();
    const at: number[] = [];
    ticker.add(() => at.push(clock.now));
    clock.advance(1999);
    expect(at).toEqual([]);
    clock.advance(1);
    expect(at).toEqual([2000]);
    clock.advance(6000);
    expect(at).toEqual([2000, 4000, 6000, 8000]);
  });

  it('keeps each subscription on the phase of the moment it was added', () => {
    const { clock, ticker } = setup();
    const ticks: string[] = [];
    ticker.add(() => ticks.push(`a@${clock.now}`));
    clock.advance(700);
    ticker.add(() => ticks.push(`b@${clock.now}`));
    clock.advance(1300 + 2000 + 700);
    expect(ticks).toEqual(['a@2000', 'b@2700', 'a@4000', 'b@4700']);
  });

  it('uses one timer however many subscriptions there are', () => {
    const { clock, ticker } = setup();
    let ticks = 0;
    for (let i = 0; i < 1000; i++) {
      ticker.add(() => ticks++);
      clock.advance(1);
    }
    expect(ticker.size).toBe(1000);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(2000);
    expect(ticks).toBe(1000);
    expect(clock.pendingTimers).toBe(1);
  });

  it('stops a removed subscription and clears the timer when none is left', () => {
    const { clock, ticker } = setup();
    let a = 0;
    let b = 0;
    const first = ticker.add(() => a++);
    const second = ticker.add(() => b++);
    clock.advance(2000);
    ticker.remove(first);
    expect(first.active).toBe(false);
    clock.advance(4000);
    expect([a, b]).toEqual([1, 3]);
    ticker.remove(second);
    ticker.remove(second);
    expect(ticker.size).toBe(0);
    expect(ticker.armed).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('skips ticks missed while the process was late instead of bursting them', () => {
    const { clock, ticker } = setup();
    const at: number[] = [];
    ticker.add(() => at.push(clock.now));
    clock.stall(9500);
    clock.advance(0);
    // One late tick for the four missed (2, 4, 6, 8 s), then back on the 2 s grid.
    expect(at).toEqual([9500]);
    clock.advance(500);
    expect(at).toEqual([9500, 10_000]);
  });

  it('lets a tick remove other subscriptions and add new ones', () => {
    const { clock, ticker } = setup(100);
    const log: string[] = [];
    const victim = ticker.add(() => log.push('victim'));
    ticker.add(() => {
      log.push('killer');
      ticker.remove(victim);
      ticker.add(() => log.push('child'));
    });
    clock.advance(100);
    // Both were due at 100; whichever the heap ran first, the victim ticks at most once.
    expect(log.filter((entry) => entry === 'killer')).toHaveLength(1);
    expect(log.filter((entry) => entry === 'victim').length).toBeLessThanOrEqual(1);
    log.length = 0;
    clock.advance(100);
    expect(log.sort()).toEqual(['child', 'killer']);
  });

  it('reports a throwing callback and carries on with the others', () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const ticker = new Ticker({ period: 10, timers: clock.timers, now: clock.read, onError: (error) => errors.push(error) });
    let fine = 0;
    ticker.add(() => {
      throw new Error('bad tick');
    });
    ticker.add(() => fine++);
    clock.advance(30);
    expect(fine).toBe(3);
    expect(errors).toHaveLength(3);
  });

  it('takes nothing new after dispose and leaves no timer', () => {
    const { clock, ticker } = setup();
    const subscription = ticker.add(() => {});
    ticker.dispose();
    expect(subscription.active).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    expect(() => ticker.add(() => {})).toThrow(/disposed/);
    ticker.remove(subscription);
  });

  it('refuses a period that is not a positive number', () => {
    for (const period of [0, -1, NaN, Infinity]) expect(() => new Ticker({ period })).toThrow(RangeError);
  });

  it('ticks every live subscription exactly on its own grid, under any sequence of adds, removes and waits', () => {
    type Step = { kind: 'add' } | { kind: 'remove'; pick: number } | { kind: 'wait'; ms: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.constant<Step>({ kind: 'add' }),
      fc.nat(50).map<Step>((pick) => ({ kind: 'remove', pick })),
      fc.integer({ min: 0, max: 2500 }).map<Step>((ms) => ({ kind: 'wait', ms })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 1, max: 1000 }), (steps, period) => {
        const { clock, ticker } = setup(period);
        const live: Array<{ addedAt: number; ticks: number[]; subscription: ReturnType<Ticker['add']> }> = [];
        const all: typeof live = [];
        const removedAt = new Map<(typeof live)[number], number>();
        for (const s of steps) {
          if (s.kind === 'add') {
            const record = { addedAt: clock.now, ticks: [] as number[], subscription: null as unknown as ReturnType<Ticker['add']> };
            record.subscription = ticker.add(() => record.ticks.push(clock.now));
            live.push(record);
            all.push(record);
          } else if (s.kind === 'remove' && live.length > 0) {
            const [record] = live.splice(s.pick % live.length, 1);
            ticker.remove(record!.subscription);
            removedAt.set(record!, clock.now);
          } else if (s.kind === 'wait') {
            clock.advance(s.ms);
          }
          expect(ticker.armed).toBe(ticker.size > 0);
          expect(ticker.size).toBe(live.length);
        }
        for (const record of all) {
          const end = removedAt.get(record) ?? clock.now;
          const expected: number[] = [];
          for (let t = record.addedAt + period; t <= end; t += period) expected.push(t);
          expect(record.ticks).toEqual(expected);
        }
      }),
      { numRuns: 300 },
    );
  });
});
