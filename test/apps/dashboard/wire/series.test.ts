import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TOTAL_NODE, type NodeSample, type TrafficFigures } from '../../../../src/apps/dashboard/wire/protocol.js';
import { clusterSeries, currentNodes } from '../../../../src/apps/dashboard/wire/series.js';

/** The dashboard page's aggregation: samples of several nodes to the cluster total and one series per node. */

function traffic(connections: number, messagesIn = 0): TrafficFigures {
  return {
    connections,
    messagesIn,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesInTotal: connections * 10,
    messagesOutTotal: 0,
    bytesInTotal: 0,
    bytesOutTotal: 0,
  };
}

function sample(node: string, time: number, connections: number, extra: Partial<NodeSample> = {}): NodeSample {
  return {
    node,
    time,
    intervalMs: 1000,
    apps: { chat: traffic(connections, connections / 2) },
    total: traffic(connections, connections / 2),
    cpu: connections,
    rss: 1000 * connections,
    heapUsed: 100 * connections,
    heapTotal: 200 * connections,
    loop: { mean: connections, p99: connections * 2, max: connections * 3 },
    ...extra,
  };
}

const STALE = 3000;

describe('clusterSeries', () => {
  it('with one node, gives that node’s own samples as the total, one point each: the page looks as it always did', () => {
    const samples = [sample('a', 1000, 1), sample('a', 2000, 2), sample('a', 3000, 3)];
    const series = clusterSeries(samples, STALE);
    expect(series.nodes).toEqual(['a']);
    expect(series.times).toEqual([1000, 2000, 3000]);
    expect(series.total).toEqual(samples);
    expect(series.total[1]).toBe(samples[1]);
    expect(series.perNode.get('a')).toEqual(samples);
  });

  it('with two nodes sampling at different times, puts a point at each time and sums each node’s latest sample', () => {
    const a1 = sample('a', 1000, 1);
    const b1 = sample('b', 1400, 10);
    const a2 = sample('a', 2000, 2);
    const b2 = sample('b', 2400, 20);
    // Out of order on purpose: the page appends per node.
    const series = clusterSeries([a1, a2, b1, b2], STALE);
    expect(series.nodes).toEqual(['a', 'b']);
    expect(series.times).toEqual([1000, 1400, 2000, 2400]);
    expect(series.perNode.get('a')).toEqual([a1, a1, a2, a2]);
    expect(series.perNode.get('b')).toEqual([null, b1, b1, b2]);
    expect(series.total.map((total) => total.total.connections)).toEqual([1, 11, 12, 22]);
    expect(series.total.map((total) => total.apps['chat']!.messagesIn)).toEqual([0.5, 5.5, 6, 11]);
    expect(series.total.every((total) => total.node === TOTAL_NODE)).toBe(true);
    expect(series.total.map((total) => total.time)).toEqual(series.times);
    const last = series.total.at(-1)!;
    expect(last).toMatchObject({ cpu: 22, rss: 22_000, heapUsed: 2200, heapTotal: 4400 });
    expect(last.total.messagesInTotal).toBe(220);
    // The event loop: the worst node's p99 and max, the mean of the means.
    expect(last.loop).toEqual({ mean: 11, p99: 40, max: 60 });
  });

  it('leaves out a node whose latest sample is older than the stale limit, from its line and from the total', () => {
    const series = clusterSeries(
      [sample('a', 1000, 1), sample('b', 1500, 10), sample('a', 4000, 2), sample('a', 4500, 3), sample('a', 5000, 4)],
      STALE,
    );
    expect(series.perNode.get('b')).toEqual([
      null,
      expect.objectContaining({ time: 1500 }),
      expect.objectContaining({ time: 1500 }),
      expect.objectContaining({ time: 1500 }),
      null,
    ]);
    expect(series.total.map((total) => total.total.connections)).toEqual([1, 11, 12, 13, 4]);
  });

  it('names as current the nodes whose latest sample is within the stale limit at the last point', () => {
    const both = clusterSeries([sample('a', 1000, 1), sample('b', 1500, 1), sample('a', 2000, 1)], STALE);
    expect(currentNodes(both)).toEqual(['a', 'b']);
    // A process that restarted: the old name stops, the new one goes on alone.
    const restarted = clusterSeries(
      [sample('host:1', 1000, 1), sample('host:1', 2000, 1), sample('host:2', 3000, 1), sample('host:2', 6000, 1)],
      STALE,
    );
    expect(restarted.nodes).toEqual(['host:1', 'host:2']);
    expect(currentNodes(restarted)).toEqual(['host:2']);
    expect(currentNodes(clusterSeries([], STALE))).toEqual([]);
  });

  it('sums applications that only some nodes have', () => {
    const a = sample('a', 1000, 1);
    const b = sample('b', 1000, 2, { apps: { chat: traffic(2), canvas: traffic(5) } });
    const series = clusterSeries([a, b], STALE);
    // Equal times make one point.
    expect(series.times).toEqual([1000]);
    expect(series.total[0]!.apps).toEqual({ chat: { ...traffic(3), messagesIn: 0.5 }, canvas: traffic(5) });
  });

  it('takes the later of two samples of one node with the same time', () => {
    const series = clusterSeries([sample('a', 1000, 1), sample('a', 1000, 7)], STALE);
    expect(series.times).toEqual([1000]);
    expect(series.total[0]!.total.connections).toBe(7);
  });

  it('makes every total the sum of the node values at that point, with times increasing (fast-check)', () => {
    const arbitrary = fc.array(
      fc.record({ node: fc.constantFrom('a', 'b', 'c'), time: fc.integer({ min: 0, max: 20_000 }), connections: fc.integer({ min: 0, max: 1000 }) }),
      { maxLength: 60 },
    );
    fc.assert(
      fc.property(arbitrary, (entries) => {
        const series = clusterSeries(
          entries.map((entry) => sample(entry.node, entry.time, entry.connections)),
          STALE,
        );
        expect(series.times).toEqual([...new Set(entries.map((entry) => entry.time))].sort((x, y) => x - y));
        series.times.forEach((time, i) => {
          let sum = 0;
          for (const node of series.nodes) {
            const value = series.perNode.get(node)![i]!;
            if (value === null) continue;
            expect(value.node).toBe(node);
            expect(value.time).toBeLessThanOrEqual(time);
            expect(time - value.time).toBeLessThanOrEqual(STALE);
            sum += value.total.connections;
          }
          expect(series.total[i]!.total.connections).toBe(sum);
        });
      }),
      { numRuns: 300 },
    );
  });
});
