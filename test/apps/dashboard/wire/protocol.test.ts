import { describe, expect, expectTypeOf, it } from 'vitest';
import { createDashboardApp } from '../../../../src/apps/dashboard/index.js';
import { TOTAL_NODE, type NodeSample } from '../../../../src/apps/dashboard/wire/protocol.js';
import { sampleBetween, type Reading, type Sample } from '../../../../src/apps/host/metrics.js';

/**
 * The dashboard's wire shapes are written out in wire/protocol.ts because a
 * wire module imports only its own folder; the server computes its samples
 * with the host's metrics module. These pin the two to one shape.
 */

function reading(at: number, messagesReceived: number): Reading {
  return {
    at,
    time: 1_700_000_000_000 + at,
    apps: [{ app: 'chat', connections: 2, opened: 3, messagesReceived, bytesReceived: 10 * messagesReceived, messagesSent: 0, bytesSent: 0 }],
    cpu: { user: 1000 * at, system: 0 },
    memory: { rss: 50, heapUsed: 20, heapTotal: 30, external: 5 },
  };
}

describe('the dashboard wire protocol', () => {
  it('describes exactly what the host measures, plus the node (checked by the type-checker)', () => {
    expectTypeOf<Omit<NodeSample, 'node'>>().toEqualTypeOf<Sample>();
    expectTypeOf<NodeSample['node']>().toEqualTypeOf<string>();
  });

  it('names every field of a sample the server computes, and no other', () => {
    const sample: NodeSample = { ...sampleBetween(reading(0, 0), reading(1000, 5), { mean: 1, p99: 2, max: 3 }), node: 'n' };
    const wire = JSON.parse(JSON.stringify(sample)) as NodeSample;
    expect(Object.keys(wire).sort()).toEqual(['apps', 'cpu', 'heapTotal', 'heapUsed', 'intervalMs', 'loop', 'node', 'rss', 'time', 'total']);
    expect(Object.keys(wire.total).sort()).toEqual(Object.keys(wire.apps['chat']!).sort());
    expect(wire.apps['chat']).toMatchObject({ connections: 2, messagesIn: 5, messagesInTotal: 5, bytesIn: 50 });
  });

  it('keeps the total name out of the node names a server accepts', () => {
    expect(() => createDashboardApp({ node: TOTAL_NODE })).toThrow(RangeError);
    expect(() => createDashboardApp({ node: `${TOTAL_NODE}1` })).not.toThrow();
  });
});
