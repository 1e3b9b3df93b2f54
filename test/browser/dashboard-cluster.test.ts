import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardApp } from '../../src/apps/dashboard/index.js';
import { AppServer } from '../../src/apps/host/server.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import { startRedis, type RedisServer } from '../pubsub/redis-server.js';
import { useBrowser } from './browser.js';

/**
 * The dashboard page in Chromium on a node of a two-node cluster (one
 * private redis-server): it shows the total of both nodes with a line per
 * node; once the other node stops, its line goes and the total is the one
 * node left.
 */

const INTERVAL_MS = 200;
const WAIT = 8000;

let redis: RedisServer;
/** The harness's server (node A) reads this when it starts, after `beforeAll` filled it in. */
const nodeA: { pubsub?: PubSub; logLevel: 'silent' } = { logLevel: 'silent' };
let nodeB: AppServer | null = null;

const web = useBrowser({ apps: [createDashboardApp({ intervalMs: INTERVAL_MS, node: 'node-a' })], server: nodeA });

beforeAll(async () => {
  redis = await startRedis();
  // One test in this file: the harness starts node A once, with this hub.
  nodeA.pubsub = new PubSub({ broker: await RedisBroker.connect({ url: redis.url }) });
  nodeB = new AppServer({
    apps: [createDashboardApp({ intervalMs: INTERVAL_MS, node: 'node-b' })],
    logLevel: 'silent',
    pubsub: new PubSub({ broker: await RedisBroker.connect({ url: redis.url }) }),
  });
  await nodeB.listen(0);
});

afterAll(async () => {
  await nodeB?.close();
  await redis?.stop();
});

interface ClusterView {
  /** Nodes with a line of their own. */
  nodes: string[];
  /** Labels of the CPU chart's series. */
  cpuLabels: string[];
  /** The total's latest connection count. */
  connections: number | null;
}

describe('dashboard page on a cluster', () => {
  it('shows both nodes’ lines and their total, and only the node left once the other stops', async () => {
    const page = await web.newPage();
    await page.goto(web.url('/dashboard/'));
    await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
    const read = (): Promise<ClusterView> =>
      page.evaluate(() => {
        const hook = (
          globalThis as unknown as {
            sockeyeDashboard: {
              nodes: string[];
              charts: Map<string, { series: Array<{ label?: string }> }>;
              samples: Array<{ total: { connections: number } }>;
            };
          }
        ).sockeyeDashboard;
        return {
          nodes: [...hook.nodes],
          cpuLabels: hook.charts
            .get('cpu')!
            .series.slice(1)
            .map((series) => series.label ?? ''),
          connections: hook.samples.at(-1)?.total.connections ?? null,
        };
      });
    const eventually = async (accept: (view: ClusterView) => boolean, what: string): Promise<ClusterView> => {
      const deadline = Date.now() + WAIT;
      for (;;) {
        const view = await read();
        if (accept(view)) return view;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen ${JSON.stringify(view)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };

    const both = await eventually((v) => v.nodes.length === 2, 'a line per node');
    expect([...both.nodes].sort()).toEqual(['node-a', 'node-b']);
    expect([...both.cpuLabels].sort()).toEqual(['CPU', 'CPU @ node-a', 'CPU @ node-b']);

    // Node B stops: within a few intervals the page draws node A alone (no per-node lines for one node).
    await nodeB!.close();
    nodeB = null;
    const alone = await eventually((v) => v.nodes.length === 0 && v.cpuLabels.length === 1, 'node B gone from the page');
    expect(alone.cpuLabels).toEqual(['CPU']);
    // The page's own connection, on node A, is the one the total counts now.
    expect(alone.connections).toBeGreaterThanOrEqual(1);
  });
});
