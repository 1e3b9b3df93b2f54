import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import type { PresenceEvent } from '../../src/pubsub/presence.js';
import { until } from '../wait.js';
import { useRedis } from './redis-server.js';
import { BrokerNodeProcess } from './node-process.js';

const redis = useRedis();
const processes: BrokerNodeProcess[] = [];
const brokers: RedisBroker[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(processes.splice(0).map((node) => node.kill()));
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

async function spawnNodes(count: number, presenceTtlMs: number): Promise<BrokerNodeProcess[]> {
  const nodes = await Promise.all(Array.from({ length: count }, () => BrokerNodeProcess.start(redis.url, presenceTtlMs)));
  processes.push(...nodes);
  return nodes;
}

type Received = [number, string][];

async function report(node: BrokerNodeProcess, topic: string): Promise<Received> {
  return (await node.send({ cmd: 'report', topic })).messages as Received;
}

describe('RedisBroker across node processes', () => {
  it('gives every node the same order of a topic with contiguous offsets, with three processes publishing at once', async () => {
    const nodes = await spawnNodes(3, 2000);
    await Promise.all(nodes.map((node) => node.send({ cmd: 'subscribe', topic: 'order' })));
    const perNode = 150;
    await Promise.all(nodes.map((node, n) => node.send({ cmd: 'publish', topic: 'order', count: perNode, prefix: `n${n}:` })));
    const total = 3 * perNode;
    const reports: Received[] = [];
    // Bounded polling of each node's report until it has everything.
    for (let round = 0; round < 100; round++) {
      reports.splice(0, reports.length, ...(await Promise.all(nodes.map((node) => report(node, 'order')))));
      if (reports.every((received) => received.length >= total)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const reference = reports[0]!.map(([, text]) => text);
    for (const received of reports) {
      expect(received.map(([offset]) => offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(received.map(([, text]) => text)).toEqual(reference);
    }
    for (let n = 0; n < 3; n++) {
      expect(reference.filter((text) => text.startsWith(`n${n}:`))).toEqual(Array.from({ length: perNode }, (_, i) => `n${n}:${i}`));
    }
  });

  it('removes the presence of a SIGKILLed node within the TTL, and its subscriber resumes on another node missing nothing', async () => {
    const ttl = 1500;
    const [doomed] = await spawnNodes(1, ttl);
    const survivor = await RedisBroker.connect({ url: redis.url, presenceTtlMs: ttl });
    brokers.push(survivor);
    const events: PresenceEvent[] = [];
    survivor.presence.watch('lobby', (event) => events.push(event));
    await survivor.presence.join('lobby', 'alive-1', { nick: 'ann' });
    await doomed!.send({ cmd: 'join', topic: 'lobby', id: 'doomed-1', data: 'bob' });
    await until(() => events.some((e) => e.type === 'join' && e.member.id === 'doomed-1'), 'the join event', 5000);
    expect((await survivor.presence.members('lobby')).map((m) => m.id).sort()).toEqual(['alive-1', 'doomed-1']);

    // The doomed node's subscriber has seen offsets 1..5 of "feed".
    await doomed!.send({ cmd: 'subscribe', topic: 'feed' });
    for (let i = 1; i <= 5; i++) await survivor.publish('feed', Buffer.from(`f${i}`));
    let seen: Received = [];
    for (let round = 0; round < 100 && seen.length < 5; round++) {
      seen = await report(doomed!, 'feed');
      if (seen.length < 5) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(seen.map(([offset]) => offset)).toEqual([1, 2, 3, 4, 5]);
    const { epoch } = await survivor.position('feed');

    const killedAt = Date.now();
    await doomed!.kill();
    for (let i = 6; i <= 8; i++) await survivor.publish('feed', Buffer.from(`f${i}`));

    await until(() => events.some((e) => e.type === 'leave' && e.id === 'doomed-1'), 'the dead member to expire', ttl * 3);
    const elapsed = Date.now() - killedAt;
    // Expired after the TTL (refreshes stopped), found by the survivor's sweep (every TTL/3).
    expect(elapsed).toBeLessThan(ttl + ttl / 3 + 1500);
    expect(events.find((e) => e.type === 'leave' && e.id === 'doomed-1')).toMatchObject({ expired: true });
    expect((await survivor.presence.members('lobby')).map((m) => m.id)).toEqual(['alive-1']);

    // Its client reconnects to the survivor with its last position: everything after it is still in history.
    const resumed = await survivor.history('feed', { epoch, offset: 5 });
    expect(resumed.ok && resumed.messages.map((m) => [m.offset, Buffer.from(m.data).toString()])).toEqual([
      [6, 'f6'],
      [7, 'f7'],
      [8, 'f8'],
    ]);
  });
});

/** Start a hub node (test/pubsub/fixtures/hub-node.ts) for `topic`; resolves with its port. */
async function startHubNode(topic: string): Promise<number> {
  const { node, port } = await BrokerNodeProcess.startHub(redis.url, topic);
  processes.push(node);
  return port;
}

interface FeedClient {
  readonly ws: WebSocket;
  /** What the node sent after `subscribed`: `<epoch>/<offset>:<text>` per message, or `failed:<text>`. */
  readonly received: string[];
}

/** A `ws` client of a hub node's /feed, resolved once the node says it is subscribed live. */
async function feedClient(port: number): Promise<FeedClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/feed`);
  sockets.push(ws);
  const received: string[] = [];
  let subscribed: () => void = () => undefined;
  const live = new Promise<void>((resolve, reject) => {
    subscribed = resolve;
    // The node closes the connection if subscribing failed (its open hook rejected).
    ws.once('close', (code, reason) => reject(new Error(`closed before subscribed: ${code} ${String(reason)}`)));
  });
  ws.on('message', (data) => {
    const text = String(data);
    if (text === 'subscribed') subscribed();
    else received.push(text);
  });
  // Handled here too: when the connection fails to open, `live` is never awaited.
  live.catch(() => undefined);
  await once(ws, 'open');
  await live;
  return { ws, received };
}

/** `<epoch>/<offset>:<text>` */
function parseDelivery(line: string): { epoch: string; offset: number; text: string } {
  const slash = line.indexOf('/');
  const colon = line.indexOf(':', slash);
  return { epoch: line.slice(0, slash), offset: Number(line.slice(slash + 1, colon)), text: line.slice(colon + 1) };
}

describe('PubSub hubs on Redis in three node processes, with WebSocket subscribers', () => {
  it('gives every client on every node the topic once each, in one order, with contiguous offsets (six publishing clients)', async () => {
    const topic = 'ws-feed';
    const ports = await Promise.all([startHubNode(topic), startHubNode(topic), startHubNode(topic)]);
    // Two clients per node, each subscribed live before anyone publishes.
    const clients = await Promise.all(ports.flatMap((port) => [feedClient(port), feedClient(port)]));
    const perClient = 50;
    // Every client publishes its own numbered messages through its node.
    for (let i = 0; i < perClient; i++) clients.forEach(({ ws }, c) => ws.send(`c${c}:${i}`));
    const total = clients.length * perClient;
    await until(() => clients.every(({ received }) => received.length >= total), `every client to receive ${total} messages`, 20_000);

    const deliveries = clients.map(({ received }) => received.map(parseDelivery));
    const reference = deliveries[0]!.map(({ text }) => text);
    const epoch = deliveries[0]![0]!.epoch;
    for (const [c, delivered] of deliveries.entries()) {
      // No failed publish was reported, no duplicate, no hole, one epoch...
      expect(clients[c]!.received.filter((line) => line.startsWith('failed:'))).toEqual([]);
      expect(delivered.map(({ offset }) => offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(new Set(delivered.map((d) => d.epoch))).toEqual(new Set([epoch]));
      // ...and the same order as every other client, on every node.
      expect(delivered.map(({ text }) => text)).toEqual(reference);
    }
    // Each publisher's messages keep the order it sent them in.
    expect(new Set(reference).size).toBe(total);
    for (let c = 0; c < clients.length; c++) {
      expect(reference.filter((text) => text.startsWith(`c${c}:`))).toEqual(Array.from({ length: perClient }, (_, i) => `c${c}:${i}`));
    }
  }, 60_000);
});
