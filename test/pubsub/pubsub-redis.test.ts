import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebSocketServer } from '../../src/node/server.js';
import { PubSub, type RecoveryResult } from '../../src/pubsub/pubsub.js';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import type { StreamPosition, TopicDiscontinuity } from '../../src/pubsub/broker.js';
import { until } from '../wait.js';
import { useRedis } from './redis-server.js';

const redis = useRedis();
const servers: WebSocketServer[] = [];
const hubs: PubSub[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 200 })));
  await Promise.all(hubs.splice(0).map((hub) => hub.close()));
});

/**
 * One Sockeye node: a hub on Redis and a server whose clients subscribe to
 * "room" (from `?epoch=&offset=` when given) and receive "offset:text".
 */
async function startNode(): Promise<{ hub: PubSub; port: number; results: RecoveryResult[] }> {
  const hub = new PubSub({
    broker: await RedisBroker.connect({ url: redis.url }),
    envelope: (message) => `${message.epoch}/${message.offset}:${Buffer.from(message.data).toString()}`,
  });
  hubs.push(hub);
  const results: RecoveryResult[] = [];
  const server = new WebSocketServer({ heartbeat: false });
  servers.push(server);
  server.route<StreamPosition | null>('/room', {
    authenticate(request) {
      const epoch = request.query.get('epoch');
      return epoch === null ? null : { epoch, offset: Number(request.query.get('offset')) };
    },
    open(connection) {
      const since = connection.context;
      if (since === null) hub.subscribe(connection, 'room');
      else void hub.subscribeSince(connection, 'room', since).then((r) => r && results.push(r));
    },
  });
  return { hub, port: (await server.listen(0)).port, results };
}

async function client(port: number, since?: StreamPosition): Promise<string[]> {
  const query = since === undefined ? '' : `?epoch=${since.epoch}&offset=${since.offset}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/room${query}`);
  sockets.push(ws);
  const received: string[] = [];
  ws.on('message', (data) => received.push(String(data)));
  await once(ws, 'open');
  return received;
}

const body = (line: string): string => line.slice(line.indexOf('/') + 1);

describe('PubSub on the Redis broker', () => {
  it('delivers a publish on one node to the subscribers of both, and a client moving nodes resumes with no hole or duplicate', async () => {
    const a = await startNode();
    const b = await startNode();
    const onA = await client(a.port);
    const onB = await client(b.port);
    await until(() => a.hub.subscriberCount('room') === 1 && b.hub.subscriberCount('room') === 1, 'one subscriber of room on each node', 5000);
    // Both nodes' channel subscriptions are in place once their start positions are known.
    await Promise.all([a.hub.live('room'), b.hub.live('room')]);
    for (let i = 1; i <= 5; i++) await a.hub.publish('room', `m${i}`);
    await until(() => onA.length === 5 && onB.length === 5, 'both nodes to deliver', 5000);
    expect(onB.map(body)).toEqual(['1:m1', '2:m2', '3:m3', '4:m4', '5:m5']);
    expect(onB).toEqual(onA);

    // The client on B leaves after offset 3 (say its last two frames were lost), publishing goes on, it comes back on A.
    const epoch = onB[0]!.slice(0, onB[0]!.indexOf('/'));
    sockets[1]!.terminate();
    for (let i = 6; i <= 7; i++) await b.hub.publish('room', `m${i}`);
    const resumed = await client(a.port, { epoch, offset: 3 });
    await until(() => a.results.length === 1, 'the subscribeSince result on a', 5000);
    await a.hub.publish('room', 'm8');
    await until(() => resumed.length === 5, 'the replay and the live message', 5000);
    expect(resumed.map(body)).toEqual(['4:m4', '5:m5', '6:m6', '7:m7', '8:m8']);
    expect(a.results[0]).toMatchObject({ recovered: true, position: { epoch, offset: 7 } });
    expect(a.hub.stats.recovered).toBe(4);
    expect(a.hub.stats.broker).toMatchObject({ state: 'ready', queueDepth: 0 });
  });

  it('tells the application when Redis came back without its data, and keeps delivering', async () => {
    const node = await startNode();
    const holes: TopicDiscontinuity[] = [];
    node.hub.onDiscontinuity = (event) => holes.push(event);
    const received = await client(node.port);
    await until(() => node.hub.subscriberCount('room') === 1, 'one subscriber of room on node', 5000);
    await node.hub.live('room');
    await node.hub.publish('room', 'before');
    await until(() => received.length === 1, 'one message', 5000);
    await redis.kill();
    await until(() => node.hub.stats.broker.state === 'reconnecting', 'the broker to see Redis gone', 5000);
    await redis.restart();
    await until(() => node.hub.stats.broker.state === 'ready', 'the broker to reconnect', 10_000);
    await node.hub.publish('room', 'after');
    await until(() => received.length === 2, 'delivery to resume', 10_000);
    // The first test of this file used the topic too: "before" is wherever its sequence was.
    const beforeOffset = Number(body(received[0]!).split(':')[0]);
    expect(body(received[1]!)).toBe('1:after');
    expect(holes).toMatchObject([{ topic: 'room', reason: 'epoch-changed', from: { offset: beforeOffset }, to: { offset: 0 } }]);
    expect(holes[0]!.to.epoch).not.toBe(holes[0]!.from.epoch);
  });
});
