import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';

describe('ManualClock (the test clock behind the server timer tests)', () => {
  it('runs an interval once per period passed, with the clock at each due time', () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    clock.setInterval(() => seen.push(clock.now()), 100);
    clock.advance(99);
    expect(seen).toEqual([]);
    clock.advance(1);
    expect(seen).toEqual([100]);
    clock.advance(250);
    expect(seen).toEqual([100, 200, 300]);
    expect(clock.now()).toBe(350);
  });

  it('runs a timeout once, and nothing after it is cleared', () => {
    const clock = new ManualClock();
    const seen: string[] = [];
    clock.setTimeout(() => seen.push('once'), 10);
    const cancelled = clock.setTimeout(() => seen.push('cancelled'), 20);
    const interval = clock.setInterval(() => seen.push('tick'), 15);
    clock.clearTimeout(cancelled);
    clock.advance(15);
    clock.clearInterval(interval);
    clock.advance(100);
    expect(seen).toEqual(['once', 'tick']);
    expect(clock.pending).toBe(0);
  });

  it('runs timers in due order, including one armed by another during the same advance', () => {
    const clock = new ManualClock();
    const seen: string[] = [];
    clock.setTimeout(() => seen.push('b@30'), 30);
    clock.setTimeout(() => {
      seen.push('a@10');
      clock.setTimeout(() => seen.push('c@20'), 10);
    }, 10);
    clock.advance(30);
    expect(seen).toEqual(['a@10', 'c@20', 'b@30']);
  });

  it('refuses to run a 1 ms interval past its bound of runs per advance', () => {
    const clock = new ManualClock();
    clock.setInterval(() => {}, 1);
    expect(() => clock.advance(200_000)).toThrow(/timer runs/);
  });
});
