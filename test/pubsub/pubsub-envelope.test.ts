import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebSocketServer } from '../../src/node/server.js';
import { PubSub, type MessageEnvelope } from '../../src/pubsub/pubsub.js';
import { until } from '../wait.js';

let server: WebSocketServer | null = null;
const clients: WebSocket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  await server?.close({ timeout: 200 });
  server = null;
});

async function client(port: number, path: string): Promise<{ ws: WebSocket; received: string[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  clients.push(ws);
  const received: string[] = [];
  ws.on('message', (data) => received.push(String(data)));
  await once(ws, 'open');
  return { ws, received };
}

describe('PubSub: a subscription’s own envelope', () => {
  it('wraps messages for the subscriptions that ask, once per message, and leaves the others as published', async () => {
    const hub = new PubSub();
    let calls = 0;
    const withPosition: MessageEnvelope = (m) => {
      calls++;
      return `${m.offset}:${Buffer.from(m.data).toString()}`;
    };
    server = new WebSocketServer({ heartbeat: false });
    server.route('/wrapped', { open: (connection) => void hub.subscribe(connection, 'room', { envelope: withPosition }) });
    server.route('/plain', { open: (connection) => void hub.subscribe(connection, 'room') });
    const port = (await server.listen(0)).port;
    const wrapped = await Promise.all([client(port, '/wrapped'), client(port, '/wrapped')]);
    const plain = await client(port, '/plain');
    await until(() => hub.subscriberCount('room') === 3, 'three subscribers of room', 2000);
    await hub.publish('room', 'one');
    await hub.publish('room', 'two');
    await until(() => [...wrapped, plain].every((peer) => peer.received.length === 2), 'every peer to receive both messages', 2000);
    for (const peer of wrapped) expect(peer.received).toEqual(['1:one', '2:two']);
    expect(plain.received).toEqual(['one', 'two']);
    expect(calls).toBe(2); // one frame per message for both wrapped subscribers
  });

  it('wraps the messages replayed to a resuming subscription too', async () => {
    const hub = new PubSub();
    const first = await hub.publish('room', 'a');
    await hub.publish('room', 'b');
    server = new WebSocketServer({ heartbeat: false });
    server.route('/resume', {
      open: (connection) =>
        void hub.subscribeSince(connection, 'room', first, { envelope: (m) => `${m.epoch === first.epoch ? 'same' : 'other'}/${m.offset}` }),
    });
    const port = (await server.listen(0)).port;
    const peer = await client(port, '/resume');
    await until(() => hub.subscriberCount('room') === 1, 'one subscriber of room', 2000);
    await hub.publish('room', 'c');
    await until(() => peer.received.length === 2, 'peer to receive two messages', 2000);
    expect(peer.received).toEqual(['same/2', 'same/3']);
  });
});
