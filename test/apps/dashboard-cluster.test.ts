import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { historyPolicyOf } from '../../src/apps/app.js';
import { createDashboardApp, DASHBOARD_HISTORY, DASHBOARD_TOPIC, type DashboardMessage, type NodeSample } from '../../src/apps/dashboard/index.js';
import { AppServer } from '../../src/apps/host/server.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import { useRedis } from '../pubsub/redis-server.js';
import { until } from '../wait.js';

/**
 * The dashboard on several nodes: separate AppServers in this process, each
 * with its own hub on its own RedisBroker, all on one private redis-server.
 * A page on any node receives every node's samples, named; a node started
 * later sends the others' recent samples in its history; a node that stops
 * leaves the history of the others.
 */

const INTERVAL_MS = 50;

const redis = useRedis();
const servers: AppServer[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await redis.command('FLUSHALL');
});

async function startNode(node: string, historySize = 100): Promise<{ server: AppServer; port: number }> {
  const app = createDashboardApp({ node, intervalMs: INTERVAL_MS, historySize });
  // The history the dashboard asks its host for (App.topicHistory).
  const pubsub = new PubSub({ broker: await RedisBroker.connect({ url: redis.url, history: historyPolicyOf([app]) }) });
  const server = new AppServer({
    apps: [app],
    logLevel: 'silent',
    pubsub,
    websocket: { heartbeat: false },
  });
  servers.push(server);
  return { server, port: (await server.listen(0)).port };
}

class Page {
  readonly messages: DashboardMessage[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(String(data)) as DashboardMessage));
  }

  static async open(port: number): Promise<Page> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/dashboard/ws`);
    sockets.push(ws);
    const page = new Page(ws);
    await once(ws, 'open');
    return page;
  }

  get history(): NodeSample[] {
    const first = this.messages[0];
    return first?.type === 'history' ? first.samples : [];
  }

  get live(): NodeSample[] {
    return this.messages.flatMap((message) => (message.type === 'sample' ? [message.sample] : []));
  }

  liveFrom(node: string): NodeSample[] {
    return this.live.filter((sample) => sample.node === node);
  }
}

describe('dashboard across nodes on one Redis', () => {
  it('asks its host for five minutes of history on its one topic, and for no other topic', () => {
    const policy = historyPolicyOf([createDashboardApp({ node: 'x' })], { size: 1, ttlMs: 1 });
    expect(typeof policy === 'function' && policy(DASHBOARD_TOPIC)).toEqual(DASHBOARD_HISTORY);
    expect(typeof policy === 'function' && policy('chat/lobby')).toEqual({ size: 1, ttlMs: 1 });
  });

  it('a page on node A receives the samples of A and B, each named, each node in time order and once', async () => {
    const a = await startNode('node-a');
    await startNode('node-b');
    const page = await Page.open(a.port);
    await until(() => page.liveFrom('node-a').length >= 5 && page.liveFrom('node-b').length >= 5, 'five samples from each node');
    expect(page.messages[0]?.type).toBe('history');
    expect(new Set(page.live.map((sample) => sample.node))).toEqual(new Set(['node-a', 'node-b']));
    for (const node of ['node-a', 'node-b']) {
      const times = page.liveFrom(node).map((sample) => sample.time);
      // Strictly increasing: in order, and no sample delivered twice.
      for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1]!);
    }
    // Node B's figures are node B's: it has no dashboard page of its own connected, node A has this one.
    const lastA = page.liveFrom('node-a').at(-1)!;
    const lastB = page.liveFrom('node-b').at(-1)!;
    expect(lastA.apps.dashboard?.connections).toBe(1);
    expect(lastB.apps.dashboard?.connections).toBe(0);
  });

  it('a page on a node started later gets the recent samples of every node in its history; with three nodes, all three live', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const watcher = await Page.open(a.port);
    await until(() => watcher.liveFrom('node-a').length >= 4 && watcher.liveFrom('node-b').length >= 4, 'samples from A and B');

    const c = await startNode('node-c');
    const page = await Page.open(c.port);
    await until(() => page.messages.length > 0, 'the history');
    // Node C caught up from the topic's history before its first page came: A's and B's past is there.
    await until(() => page.liveFrom('node-c').length >= 2, 'live samples from C');
    const history = page.history;
    expect(history.filter((sample) => sample.node === 'node-a').length).toBeGreaterThanOrEqual(4);
    expect(history.filter((sample) => sample.node === 'node-b').length).toBeGreaterThanOrEqual(4);
    // The history is oldest first, and what comes live afterwards is later than what it held, per node.
    for (let i = 1; i < history.length; i++) expect(history[i]!.time).toBeGreaterThanOrEqual(history[i - 1]!.time);
    await until(() => ['node-a', 'node-b', 'node-c'].every((node) => page.liveFrom(node).length >= 2), 'live samples from all three');
    for (const node of ['node-a', 'node-b']) {
      const lastInHistory = Math.max(...history.filter((sample) => sample.node === node).map((sample) => sample.time));
      expect(page.liveFrom(node)[0]!.time).toBeGreaterThan(lastInHistory);
    }
    // The same samples reach a page on B: one shared topic, not one per node.
    const onB = await Page.open(b.port);
    await until(() => ['node-a', 'node-b', 'node-c'].every((node) => onB.liveFrom(node).length >= 1), 'all three on B');
  });

  it('a node that stops sends nothing more, and leaves the history of the others once its samples are older than the window', async () => {
    const historySize = 10; // a window of 10 intervals: 500 ms
    const a = await startNode('node-a', historySize);
    const b = await startNode('node-b', historySize);
    const page = await Page.open(a.port);
    await until(() => page.liveFrom('node-b').length >= 3, 'samples from B');
    await b.server.close();
    servers.splice(servers.indexOf(b.server), 1);
    const countAtStop = page.liveFrom('node-b').length;
    // Twenty intervals later: A went on sampling, B did not.
    const aBefore = page.liveFrom('node-a').length;
    await until(() => page.liveFrom('node-a').length >= aBefore + 20, 'twenty more samples from A');
    expect(page.liveFrom('node-b').length).toBeLessThanOrEqual(countAtStop + 1);
    const newcomer = await Page.open(a.port);
    await until(() => newcomer.messages.length > 0, 'the history');
    expect(newcomer.history.some((sample) => sample.node === 'node-a')).toBe(true);
    expect(newcomer.history.some((sample) => sample.node === 'node-b')).toBe(false);
  });
});
