import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { WebSocketServer } from '../../src/node/server.js';
import { Connection } from '../../src/node/connection.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { MemoryBroker } from '../../src/pubsub/memory-broker.js';
import { RawClient, until } from '../node/raw-client.js';

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
      hub.publish('room', data);
    },
  });
  return (await server.listen(0)).port;
}

async function client(port: number, path = '/room'): Promise<{ ws: WebSocket; received: string[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  clients.push(ws);
  const received: string[] = [];
  ws.on('message', (data) => received.push(String(data)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, received };
}

describe('PubSub', () => {
  it('delivers a published message to every subscriber of the topic, in order', async () => {
    const hub = new PubSub();
    const port = await start(hub);
    const peers = await Promise.all([client(port), client(port), client(port)]);
    await until(() => hub.subscriberCount('room') === 3);
    peers[0]!.ws.send('one');
    peers[0]!.ws.send('two');
    await until(() => peers.every((peer) => peer.received.length === 2));
    for (const peer of peers) expect(peer.received).toEqual(['one', 'two']);
    expect(hub.stats).toMatchObject({ published: 2, delivered: 6, dropped: 0 });
  });

  it('frames a message once and hands the same bytes to every subscriber', async () => {
    const hub = new PubSub();
    const port = await start(hub);
    const peers = await Promise.all([client(port), client(port), client(port), client(port)]);
    await until(() => hub.subscriberCount('room') === 4);
    const spy = vi.spyOn(Connection.prototype, 'sendPrepared');
    peers[1]!.ws.send('shared');
    await until(() => peers.every((peer) => peer.received.length === 1));
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
    await until(() => hub.subscriberCount('room') === 2);
    expect(subscribe).toHaveBeenCalledTimes(1);
    const [first, second] = [...server!.connections];
    expect(hub.unsubscribe(first!, 'room')).toBe(true);
    expect(hub.unsubscribe(first!, 'room')).toBe(false);
    hub.publish('room', 'after unsubscribe');
    await until(() => a.received.length + b.received.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(a.received.length + b.received.length).toBe(1);
    b.ws.close();
    a.ws.close();
    await until(() => hub.subscriberCount('room') === 0);
    expect(hub.topicsOf(second!).size).toBe(0);
    expect(unsubscribe).toHaveBeenCalledWith('room');
  });

  it('drops and counts messages for a subscriber that does not read, without queueing past the limit', async () => {
    const hub = new PubSub({ maxSubscriberBuffer: 256 * 1024 });
    const port = await start(hub);
    const { client: slow } = await RawClient.upgrade(port, { path: '/room' });
    slow.pause();
    await until(() => hub.subscriberCount('room') === 1);
    const subscriber = [...server!.connections][0]!;
    const payload = Buffer.alloc(64 * 1024, 0x61);
    let maxBuffered = 0;
    // Far more than the socket buffers and the limit can hold together.
    for (let round = 0; round < 20 && hub.stats.dropped === 0; round++) {
      for (let i = 0; i < 32; i++) hub.publish('room', payload, { binary: true });
      maxBuffered = Math.max(maxBuffered, subscriber.bufferedAmount);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(hub.stats.dropped).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThanOrEqual(256 * 1024);
    expect(subscriber.state).toBe('open');
    slow.destroy();
  });

  it("lets a subscription's own maxBuffer admit a message larger than the hub's limit, which a default subscription skips", async () => {
    const hub = new PubSub({ maxSubscriberBuffer: 64 * 1024 });
    server = new WebSocketServer({ heartbeat: false });
    server.route('/default', { open: (connection) => void hub.subscribe(connection, 'big') });
    server.route('/roomy', { open: (connection) => void hub.subscribe(connection, 'big', { maxBuffer: 1024 * 1024 }) });
    const port = (await server.listen(0)).port;
    const binaries = (path: string): Promise<{ ws: WebSocket; sizes: number[] }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
        clients.push(ws);
        const sizes: number[] = [];
        ws.on('message', (data: Buffer) => sizes.push(data.length));
        ws.once('open', () => resolve({ ws, sizes }));
        ws.once('error', reject);
      });
    const plain = await binaries('/default');
    const roomy = await binaries('/roomy');
    await until(() => hub.subscriberCount('big') === 2);
    hub.publish('big', Buffer.alloc(256 * 1024, 0x63), { binary: true });
    hub.publish('big', Buffer.alloc(16, 0x64), { binary: true });
    await until(() => roomy.sizes.length === 2 && plain.sizes.length === 1);
    expect(roomy.sizes).toEqual([256 * 1024, 16]);
    expect(plain.sizes).toEqual([16]);
    expect(hub.stats.dropped).toBe(1);
  });

  it('closes a too-slow subscriber with 1008 under the close policy', async () => {
    const hub = new PubSub({ maxSubscriberBuffer: 128 * 1024, slowSubscriberPolicy: 'close' });
    const port = await start(hub);
    const { client: slow } = await RawClient.upgrade(port, { path: '/room' });
    slow.pause();
    await until(() => hub.subscriberCount('room') === 1);
    const payload = Buffer.alloc(64 * 1024, 0x62);
    for (let round = 0; round < 20 && hub.stats.closedSlow === 0; round++) {
      for (let i = 0; i < 32; i++) hub.publish('room', payload, { binary: true });
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(hub.stats.closedSlow).toBe(1);
    expect(hub.subscriberCount('room')).toBe(0);
    slow.destroy();
  });
});
