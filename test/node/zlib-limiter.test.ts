import { describe, expect, it } from 'vitest';
import { sharedZlibLimiter, ZlibLimiter } from '../../src/node/zlib-limiter.js';

describe('ZlibLimiter', () => {
  it('runs at most `concurrency` jobs at once and starts the rest in FIFO order', () => {
    const limiter = new ZlibLimiter(3);
    const started: number[] = [];
    const finishers = new Map<number, () => void>();
    let running = 0;
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      limiter.run((done) => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        finishers.set(i, () => {
          running--;
          done();
        });
      });
    }
    expect(started).toEqual([0, 1, 2]);
    expect(limiter.active).toBe(3);
    expect(limiter.queued).toBe(17);
    // Finish out of order: each freed slot goes to the oldest waiting job.
    finishers.get(1)!();
    expect(started).toEqual([0, 1, 2, 3]);
    finishers.get(0)!();
    finishers.get(3)!();
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    const finished = new Set([0, 1, 3]);
    for (let round = 0; round < 40 && limiter.active > 0; round++) {
      const next = started.find((i) => !finished.has(i))!;
      finished.add(next);
      finishers.get(next)!();
    }
    expect(started).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(3);
    expect(limiter.active).toBe(0);
    expect(limiter.queued).toBe(0);
  });

  it('ignores a second done() from the same job', () => {
    const limiter = new ZlibLimiter(1);
    let firstDone: () => void = () => undefined;
    const started: string[] = [];
    limiter.run((done) => {
      started.push('a');
      firstDone = done;
    });
    limiter.run((done) => {
      started.push('b');
      void done; // b holds its slot
    });
    limiter.run(() => started.push('c'));
    firstDone();
    firstDone();
    expect(started).toEqual(['a', 'b']);
    expect(limiter.active).toBe(1);
    expect(limiter.queued).toBe(1);
  });

  it('handles many jobs that finish synchronously without growing the stack', () => {
    const limiter = new ZlibLimiter(1);
    let blocker: () => void = () => undefined;
    limiter.run((done) => {
      blocker = done;
    });
    let count = 0;
    for (let i = 0; i < 100_000; i++) {
      limiter.run((done) => {
        count++;
        done();
      });
    }
    expect(limiter.queued).toBe(100_000);
    blocker();
    expect(count).toBe(100_000);
    expect(limiter.active).toBe(0);
    expect(limiter.queued).toBe(0);
  });

  it('counts a job that throws as done, starts the next one and rethrows', () => {
    const limiter = new ZlibLimiter(1);
    expect(() =>
      limiter.run(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(limiter.active).toBe(0);
    let ran = false;
    limiter.run((done) => {
      ran = true;
      done();
    });
    expect(ran).toBe(true);
  });

  it('rejects a concurrency that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new ZlibLimiter(bad)).toThrow(RangeError);
  });

  it('shares one process-wide limiter of 10 by default', () => {
    expect(sharedZlibLimiter.concurrency).toBe(10);
    expect(new ZlibLimiter().concurrency).toBe(10);
  });
});
