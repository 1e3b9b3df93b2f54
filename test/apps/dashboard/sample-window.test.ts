import { describe, expect, it } from 'vitest';
import { SampleWindow } from '../../../src/apps/dashboard/sample-window.js';
import type { NodeSample } from '../../../src/apps/dashboard/wire/protocol.js';

function sample(node: string, time: number): NodeSample {
  const zero = {
    connections: 0,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesInTotal: 0,
    messagesOutTotal: 0,
    bytesInTotal: 0,
    bytesOutTotal: 0,
  };
  return {
    node,
    time,
    intervalMs: 1000,
    apps: {},
    total: zero,
    cpu: 0,
    rss: 0,
    heapUsed: 0,
    heapTotal: 0,
    loop: { mean: 0, p99: 0, max: 0 },
  } as NodeSample;
}

describe('SampleWindow', () => {
  it('keeps the last `perNode` samples of each node and lists them all oldest first', () => {
    const window = new SampleWindow(3, 60_000);
    for (let t = 1; t <= 5; t++) {
      window.add(sample('a', t * 1000));
      window.add(sample('b', t * 1000 + 500));
    }
    expect(window.all().map((s) => `${s.node}@${s.time}`)).toEqual(['a@3000', 'b@3500', 'a@4000', 'b@4500', 'a@5000', 'b@5500']);
  });

  it('drops a sample not later than its node’s latest (a duplicate), but not another node’s at the same time', () => {
    const window = new SampleWindow(10, 60_000);
    expect(window.add(sample('a', 2000))).toBe(true);
    expect(window.add(sample('a', 2000))).toBe(false);
    expect(window.add(sample('a', 1000))).toBe(false);
    expect(window.add(sample('b', 2000))).toBe(true);
    expect(window.all().map((s) => s.node)).toEqual(['a', 'b']);
  });

  it('forgets a node whose newest sample is older than the span, and only that one', () => {
    const window = new SampleWindow(10, 5000);
    window.add(sample('a', 1000));
    window.add(sample('b', 1000));
    window.add(sample('b', 7000));
    expect(window.prune(6000)).toBe(false);
    expect(window.prune(6001)).toBe(true);
    expect(window.nodes).toEqual(['b']);
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new SampleWindow(0, 1000)).toThrow(RangeError);
  });
});
