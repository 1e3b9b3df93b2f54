import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { WebSocketServer } from '../../src/node/server.js';
import { Connection } from '../../src/node/connection.js';
import { PubSub, type RecoveryResult } from '../../src/pubsub/pubsub.js';
import { BrokerError } from '../../src/pubsub/broker-error.js';
import type { Broker } from '../../src/pubsub/broker.js';
import { MemoryBroker } from '../../src/pubsub/memory-broker.js';
import { RawClient } from '../node/raw-client.js';
import { until } from '../wait.js';

let server: WebSocketServer | null = null;
const clients: WebSocket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  await server?.close({ timeout: 200 });
  server = null;
  vi.restoreAllMocks();
});

/** A server whose clients all subscribe to "room" and publish there what they send. */
async function start(hub: PubSub): Promise<number> {
  server = new WebSocketServer({ heartbeat: false });
  server.route('/room', {
    open(connection) {
      hub.subscribe(connection, 'room');
    },
    message(_connection, data) {
      void hub.publish('room', data);
    },
  });
  return (await server.listen(0)).port;
}

async function client(port: number, path = '/room'): Promise<{ ws: WebSocket; received: string[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  clients.push(ws);
  const received: string[] = [];
  ws.on('message', (data) => received.push(String(data)));
  await once(ws, 'open');
  return { ws, received };
}

describe('PubSub', () => {
  it('delivers a published message to every subscriber of the topic, in order', async () => {
    const hub = new PubSub();
    const port = await start(hub);
    const peers = await Promise.all([client(port), client(port), client(port)]);
    await until(() => hub.subscriberCount('room') === 3, 'three subscribers of room', 2000);
    peers[0]!.ws.send('one');
    peers[0]!.ws.send('two');
    await until(() => peers.every((peer) => peer.received.length === 2), 'every peer to receive both messages', 2000);
    for (const peer of peers) expect(peer.received).toEqual(['one', 'two']);
    expect(hub.stats).toMatchObject({ published: 2, delivered: 6, dropped: 0 });
  });

  it('frames a message once and hands the same bytes to every subscriber', async () => {
    const hub = new PubSub();
    const port = await start(hub);
    const peers = await Promise.all([client(port), client(port), client(port), client(port)]);
    await until(() => hub.subscriberCount('room') === 4, 'four subscribers of room', 2000);
    const spy = vi.spyOn(Connection.prototype, 'sendPrepared');
    peers[1]!.ws.send('shared');
    await until(() => peers.every((peer) => peer.received.length === 1), 'every peer to receive the message', 2000);
    expect(spy).toHaveBeenCalledTimes(4);
    const frames = spy.mock.calls.map(([frame]) => frame);
    for (const frame of frames) {
      expect(frame).toBe(frames[0]);
    }
    expect(Buffer.from(frames[0]!.header)).toEqual(Buffer.from([0x81, 6]));
  });

  it('stops delivering to a connection after unsubscribe and after it closes', async () => {
    const broker = new MemoryBroker();
    const subscribe = vi.spyOn(broker, 'subscribe');
    const unsubscribe = vi.spyOn(broker, 'unsubscribe');
    const hub = new PubSub({ broker });
    const port = await start(hub);
    const a = await client(port);
    const b = await client(port);
    await until(() => hub.subscriberCount('room') === 2, 'two subscribers of room', 2000);
    expect(subscribe).toHaveBeenCalledTimes(1);
    const [first, second] = [...server!.connections];
    expect(hub.unsubscribe(first!, 'room')).toBe(true);
    expect(hub.unsubscribe(first!, 'room')).toBe(false);
    void hub.publish('room', 'after unsubscribe');
    await until(() => a.received.length + b.received.length === 1, 'one delivery in all', 2000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(a.received.length + b.received.length).toBe(1);
    b.ws.close();
    a.ws.close();
    await until(() => hub.subscriberCount('room') === 0, 'no subscribers of room', 2000);
    expect(hub.topicsOf(second!).size).toBe(0);
    expect(unsubscribe).toHaveBeenCalledWith('room');
  });

  it('drops and counts messages for a subscriber that does not read (drop policy), queueing at most one turn past the limit', async () => {
    const limit = 256 * 1024;
    const hub = new PubSub({ maxSubscriberBuffer: limit, slowSubscriberPolicy: 'drop' });
    const port = await start(hub);
    const { client: slow } = await RawClient.upgrade(port, { path: '/room' });
    slow.pause();
    await until(() => hub.subscriberCount('room') === 1, 'one subscriber of room', 2000);
    const subscriber = [...server!.connections][0]!;
    const payload = Buffer.alloc(64 * 1024, 0x61);
    const perTurn = 32;
    let maxBuffered = 0;
    // Far more than the socket buffers and the limit can hold together.
    for (let round = 0; round < 20 && hub.stats.dropped === 0; round++) {
      for (let i = 0; i < perTurn; i++) void hub.publish('room', payload, { binary: true });
      maxBuffered = Math.max(maxBuffered, subscriber.bufferedAmount);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(hub.stats.dropped).toBeGreaterThan(0);
    // What was waiting before a turn is judged against the limit; one turn's burst may come on top.
    expect(maxBuffered).toBeLessThanOrEqual(limit + perTurn * (payload.length + 10));
    expect(subscriber.state).toBe('open');
    slow.destroy();
  });

  it('delivers a burst published within one turn to a reading subscriber, whatever its size against the limit', async () => {
    const hub = new PubSub({ maxSubscriberBuffer: 256 * 1024, slowSubscriberPolicy: 'drop' });
    const port = await start(hub);
    const reader = await client(port);
    await until(() => hub.subscriberCount('room') === 1, 'one subscriber of room', 2000);
    const payload = 'x'.repeat(1024);
    // 4,000 x 1 KiB = 4 MiB queued in one turn, sixteen times the limit.
    for (let i = 0; i < 4000; i++) void hub.publish('room', payload);
    await until(() => reader.received.length === 4000, 'reader to receive 4000 messages', 10_000);
    expect(hub.stats.dropped).toBe(0);
    expect(hub.stats.delivered).toBe(4000);
  });

  it("lets a subscription's own maxBuffer admit messages behind a large one, which a default subscription skips", async () => {
    const hub = new PubSub({ maxSubscriberBuffer: 64 * 1024, slowSubscriberPolicy: 'drop' });
    server = new WebSocketServer({ heartbeat: false });
    server.route('/default', { open: (connection) => void hub.subscribe(connection, 'big') });
    server.route('/roomy', { open: (connection) => void hub.subscribe(connection, 'big', { maxBuffer: 16 * 1024 * 1024 }) });
    const port = (await server.listen(0)).port;
    const { client: plain } = await RawClient.upgrade(port, { path: '/default' });
    const { client: roomy } = await RawClient.upgrade(port, { path: '/roomy' });
    plain.pause();
    roomy.pause();
    await until(() => hub.subscriberCount('big') === 2, 'two subscribers of big', 2000);
    const [plainConnection, roomyConnection] = [...server.connections];
    // One 1 MiB image per turn to two subscribers that do not read: the kernel's buffers fill, then
    // the default subscription (64 KiB) is too slow while the roomy one (16 MiB) still takes them.
    const image = Buffer.alloc(1024 * 1024, 0x63);
    let rounds = 0;
    while (rounds < 40 && hub.stats.dropped === 0) {
      void hub.publish('big', image, { binary: true });
      rounds++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(hub.stats.dropped).toBeGreaterThan(0);
    expect(roomyConnection!.messagesSent).toBe(rounds);
    expect(plainConnection!.messagesSent).toBe(rounds - hub.stats.dropped);
    expect(roomyConnection!.state).toBe('open');
    plain.destroy();
    roomy.destroy();
  });

  it('closes a too-slow subscriber with 1008 under the close policy', async () => {
    const hub = new PubSub({ maxSubscriberBuffer: 128 * 1024, slowSubscriberPolicy: 'close' });
    const port = await start(hub);
    const { client: slow } = await RawClient.upgrade(port, { path: '/room' });
    slow.pause();
    await until(() => hub.subscriberCount('room') === 1, 'one subscriber of room', 2000);
    const payload = Buffer.alloc(64 * 1024, 0x62);
    for (let round = 0; round < 20 && hub.stats.closedSlow === 0; round++) {
      for (let i = 0; i < 32; i++) void hub.publish('room', payload, { binary: true });
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(hub.stats.closedSlow).toBe(1);
    expect(hub.subscriberCount('room')).toBe(0);
    slow.destroy();
  });

  it('by default (no options) closes a subscriber with 1008 once more than 1 MiB it was sent before the turn is waiting', async () => {
    const hub = new PubSub();
    const port = await start(hub);
    const peer = await client(port);
    let closed: [number, string] | null = null;
    peer.ws.on('close', (code, reason) => void (closed = [code, reason.toString()]));
    await until(() => hub.subscriberCount('room') === 1, 'one subscriber of room', 2000);
    const subscriber = [...server!.connections][0]!;
    // What the hub reads as waiting when a turn begins, set by hand: the limit is exact to the byte.
    let waiting = 1024 * 1024;
    vi.spyOn(subscriber, 'bufferedAmount', 'get').mockImplementation(() => waiting);
    await hub.publish('room', 'at the limit');
    await until(() => peer.received.length === 1, 'the message at the limit', 2000);
    expect(hub.stats).toMatchObject({ delivered: 1, closedSlow: 0, dropped: 0 });
    // A new turn, one byte over: closed (the default policy), not skipped.
    await new Promise((resolve) => setImmediate(resolve));
    waiting = 1024 * 1024 + 1;
    await hub.publish('room', 'over the limit');
    await until(() => closed !== null, 'the subscriber to be closed', 2000);
    expect(closed).toEqual([1008, 'subscriber too slow']);
    expect(peer.received).toEqual(['at the limit']);
    expect(hub.stats).toMatchObject({ delivered: 1, closedSlow: 1, dropped: 0 });
    expect(hub.subscriberCount('room')).toBe(0);
  });

  it('resumes a subscriber from its position: the missed messages to it alone, then live ones, no hole or duplicate at the seam', async () => {
    const broker = new MemoryBroker();
    const hub = new PubSub({ broker, envelope: (m) => `${m.offset}:${Buffer.from(m.data).toString()}` });
    for (let i = 1; i <= 5; i++) await hub.publish('room', `m${i}`);
    const { epoch } = await broker.position('room');
    const results: Promise<RecoveryResult | null>[] = [];
    server = new WebSocketServer({ heartbeat: false });
    server.route('/room', { open: (connection) => void hub.subscribe(connection, 'room') });
    server.route('/resume', {
      open(connection) {
        results.push(hub.subscribeSince(connection, 'room', { epoch, offset: 2 }));
        // Published while the resumption is under way: whether it comes from history or live, it arrives once.
        void hub.publish('room', 'm6');
      },
    });
    const port = (await server.listen(0)).port;
    const live = await client(port, '/room');
    await until(() => hub.subscriberCount('room') === 1, 'one subscriber of room', 2000);
    const resumed = await client(port, '/resume');
    await until(() => results.length === 1, 'the subscribeSince result', 2000);
    expect(await results[0]).toMatchObject({ recovered: true, position: { epoch, offset: 6 } });
    await hub.publish('room', 'm7');
    await until(() => resumed.received.length === 5 && live.received.length === 2, 'the replay and the live messages', 2000);
    expect(resumed.received).toEqual(['3:m3', '4:m4', '5:m5', '6:m6', '7:m7']);
    expect(live.received).toEqual(['6:m6', '7:m7']);
    expect(hub.stats.recovered).toBeGreaterThanOrEqual(3);
  });

  it('tells a resuming subscriber when its epoch is not the topic’s, in time to send a snapshot before live messages', async () => {
    const hub = new PubSub();
    await hub.publish('room', 'before');
    server = new WebSocketServer({ heartbeat: false });
    const outcomes: RecoveryResult[] = [];
    server.route('/resume', {
      open(connection) {
        void hub.subscribeSince(
          connection,
          'room',
          { epoch: 'gone', offset: 9 },
          {
            onRecovery(result) {
              outcomes.push(result);
              connection.send(`snapshot at ${result.position.offset}`);
              // Published by the application right after its snapshot: live, after it.
              void hub.publish('room', 'live');
            },
          },
        );
        // Already in the topic when the snapshot is taken: covered by it, not sent again.
        void hub.publish('room', 'during');
      },
    });
    const port = (await server.listen(0)).port;
    const peer = await client(port, '/resume');
    await until(() => peer.received.length === 2, 'peer to receive two messages', 2000);
    expect(peer.received).toEqual(['snapshot at 2', 'live']);
    expect(outcomes).toMatchObject([{ recovered: false, reason: 'epoch-changed', position: { offset: 2 } }]);
    expect(hub.stats.recoveryFailed).toBe(1);
  });

  it('lets a caller ignore a publish that fails: no unhandled rejection, the awaited promise carries the typed error', async () => {
    const failing = new MemoryBroker();
    failing.publish = () => Promise.reject(new BrokerError('WS_ERR_BROKER_UNAVAILABLE', 'down'));
    const hub = new PubSub({ broker: failing as Broker });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      void hub.publish('room', 'ignored');
      await expect(hub.publish('room', 'awaited')).rejects.toMatchObject({ code: 'WS_ERR_BROKER_UNAVAILABLE' });
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it("lists a connection in a topic's presence under its own id until it leaves or closes", async () => {
    const hub = new PubSub();
    server = new WebSocketServer({ heartbeat: false });
    const ids: Promise<string>[] = [];
    server.route('/room', { open: (connection) => void ids.push(hub.join(connection, 'room', { nick: `n${ids.length}` })) });
    const port = (await server.listen(0)).port;
    const first = await client(port);
    await client(port);
    await until(() => ids.length === 2, 'two joins', 2000);
    const [a, b] = await Promise.all(ids);
    expect(a).not.toBe(b);
    expect((await hub.presence.members('room')).sort((x, y) => x.id.localeCompare(y.id))).toEqual(
      [
        { id: a, data: { nick: 'n0' } },
        { id: b, data: { nick: 'n1' } },
      ].sort((x, y) => x.id.localeCompare(y.id)),
    );
    const left: string[] = [];
    hub.presence.watch('room', (event) => event.type === 'leave' && left.push(event.id));
    first.ws.close();
    await until(() => left.length === 1, 'the leave event', 2000);
    expect(left).toEqual([a]);
    expect(await hub.presence.members('room')).toEqual([{ id: b, data: { nick: 'n1' } }]);
  });

  it('resolves a resumption the broker cannot answer as unavailable, live from then on, never as a rejection', async () => {
    const broker = new MemoryBroker();
    broker.history = () => Promise.reject(new BrokerError('WS_ERR_BROKER_UNAVAILABLE', 'down'));
    const hub = new PubSub({ broker: broker as Broker });
    const errors: Error[] = [];
    hub.onBrokerError = (error) => errors.push(error);
    const results: (RecoveryResult | null)[] = [];
    server = new WebSocketServer({ heartbeat: false });
    server.route('/resume', {
      open: (connection) => void hub.subscribeSince(connection, 'room', { epoch: 'e', offset: 3 }).then((r) => results.push(r)),
    });
    const port = (await server.listen(0)).port;
    const peer = await client(port, '/resume');
    await until(() => results.length === 1, 'the subscribeSince result', 2000);
    expect(results[0]).toEqual({ recovered: false, reason: 'unavailable', position: { epoch: 'e', offset: 3 } });
    expect(errors).toHaveLength(1);
    await hub.publish('room', 'live');
    await until(() => peer.received.length === 1, 'peer to receive one message', 2000);
    expect(peer.received).toEqual(['live']);
  });
});
