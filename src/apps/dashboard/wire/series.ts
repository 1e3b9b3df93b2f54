/**
 * The dashboard's samples from several nodes (Sockeye processes) turned into
 * what its page plots: the cluster's total and one series per node, on one
 * time axis. With samples from one node only, the total is that node's
 * samples themselves, so a single process looks as it always did.
 *
 * The page's own logic, not the server's: the server relays samples as they
 * are. It lives in the dashboard's wire folder because it reads the shapes
 * defined beside it (./protocol.ts) and the page loads it compiled from
 * there (`/dashboard/wire/series.js`). Pure: no DOM, no clock, no Node
 * modules; the tests import it.
 */
import { TOTAL_NODE, type NodeSample, type TrafficFigures } from './protocol.js';

export interface ClusterSeries {
  /** Every node with a sample, in the order of their first sample (so colours stay put). */
  nodes: string[];
  /** The points' times, increasing. */
  times: number[];
  /** The cluster total at each point; with one node, that node's own samples. */
  total: NodeSample[];
  /** Per node, its latest sample at each point, or null when it had none within `staleAfterMs`. */
  perNode: Map<string, Array<NodeSample | null>>;
}

const TRAFFIC_KEYS: ReadonlyArray<keyof TrafficFigures> = [
  'connections',
  'messagesIn',
  'messagesOut',
  'bytesIn',
  'bytesOut',
  'messagesInTotal',
  'messagesOutTotal',
  'bytesInTotal',
  'bytesOutTotal',
];

/**
 * Nodes sample on their own timers, so their samples do not line up. There
 * is a point at every time some node sampled, and at that point each node
 * counts with its latest sample, unless that sample is older than
 * `staleAfterMs` (the node went away, or the page missed it): then the node
 * is left out, of the total too. Samples of one node with equal times are
 * one sample (the later in the input wins).
 */
export function clusterSeries(samples: readonly NodeSample[], staleAfterMs: number): ClusterSeries {
  const sorted = samples.map((sample, index) => ({ sample, index }));
  // By time; for equal times the input order, so the result does not depend on the sort's stability.
  sorted.sort((a, b) => a.sample.time - b.sample.time || a.index - b.index);
  const nodes: string[] = [];
  for (const { sample } of sorted) if (!nodes.includes(sample.node)) nodes.push(sample.node);
  const single = nodes.length === 1;

  const latest = new Map<string, NodeSample>();
  const result: ClusterSeries = { nodes, times: [], total: [], perNode: new Map(nodes.map((node) => [node, []])) };
  for (let i = 0; i < sorted.length; i++) {
    const sample = sorted[i]!.sample;
    latest.set(sample.node, sample);
    // Every sample at this time first, then one point.
    if (i + 1 < sorted.length && sorted[i + 1]!.sample.time === sample.time) continue;
    const time = sample.time;
    const present: NodeSample[] = [];
    for (const node of nodes) {
      const last = latest.get(node);
      const current = last !== undefined && time - last.time <= staleAfterMs ? last : null;
      result.perNode.get(node)!.push(current);
      if (current !== null) present.push(current);
    }
    result.times.push(time);
    result.total.push(single ? sample : combine(present, sample));
  }
  return result;
}

/**
 * The nodes still sampling at the last point (their latest sample is
 * within the stale limit), in `nodes` order. The page draws a line per node
 * only while two or more are: a single process that restarted (a new
 * process id, so a new node name) does not look like a cluster of two.
 */
export function currentNodes(series: ClusterSeries): string[] {
  return series.nodes.filter((node) => series.perNode.get(node)?.at(-1) != null);
}

/**
 * The sum of several nodes' samples at the time of `newest`: traffic, CPU
 * (so 250 % is two and a half cores of the cluster busy) and memory add up;
 * the event-loop delay is the worst node's p99 and max, and the mean of the
 * means.
 */
function combine(samples: readonly NodeSample[], newest: NodeSample): NodeSample {
  const apps: Record<string, TrafficFigures> = {};
  const total = zero();
  let cpu = 0;
  let rss = 0;
  let heapUsed = 0;
  let heapTotal = 0;
  let meanSum = 0;
  let p99 = 0;
  let max = 0;
  for (const sample of samples) {
    for (const [app, figures] of Object.entries(sample.apps)) add((apps[app] ??= zero()), figures);
    add(total, sample.total);
    cpu += sample.cpu;
    rss += sample.rss;
    heapUsed += sample.heapUsed;
    heapTotal += sample.heapTotal;
    meanSum += sample.loop.mean;
    p99 = Math.max(p99, sample.loop.p99);
    max = Math.max(max, sample.loop.max);
  }
  return {
    node: TOTAL_NODE,
    time: newest.time,
    intervalMs: newest.intervalMs,
    apps,
    total,
    cpu,
    rss,
    heapUsed,
    heapTotal,
    loop: { mean: samples.length === 0 ? 0 : meanSum / samples.length, p99, max },
  };
}

function zero(): TrafficFigures {
  return {
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
}

function add(into: TrafficFigures, figures: TrafficFigures): void {
  for (const key of TRAFFIC_KEYS) into[key] += figures[key];
}
