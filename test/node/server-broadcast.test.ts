import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect } from '../../src/node/client.js';
import { Connection } from '../../src/node/connection.js';
import { WebSocketServer } from '../../src/node/server.js';
import { UsageError } from '../../src/protocol/errors.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { until } from '../wait.js';

/**
 * Broadcast and topics in one call on the server: `broadcast()` to every
 * connection or to one route, framed once; `publish()` / `subscribe()` /
 * `unsubscribe()` through the hub given as the `pubsub` option.
 */

const servers: WebSocketServer[] = [];
const clients: Connection<undefined>[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const client of clients.splice(0)) client.terminate();
  for (const server of servers.splice(0)) await server.close({ timeout: 1000 });
});

async function start(server: WebSocketServer): Promise<number> {
  servers.push(server);
  return (await server.listen(0)).port;
}

/** A client that records what it receives, connected once the server has adopted it. */
async function client(
  port: number,
  path: string,
  server: WebSocketServer,
): Promise<{ connection: Connection<undefined>; received: Array<string | Buffer> }> {
  const before = server.connections.size;
  const connection = await connect(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: false });
  clients.push(connection);
  const received: Array<string | Buffer> = [];
  connection.on('message', (data) => received.push(data));
  await until(() => server.connections.size > before, 'the server to adopt the connection');
  return { connection, received };
}

describe('WebSocketServer.broadcast', () => {
  it('sends one message to every open connection, or to one route, leaving out `except`', async () => {
    const server = new WebSocketServer({ heartbeat: false });
    server.route('/a', {}).route('/b', {});
    const port = await start(server);
    const a1 = await client(port, '/a', server);
    const a2 = await client(port, '/a', server);
    const b1 = await client(port, '/b', server);

    expect(server.broadcast('to all')).toBe(3);
    await until(() => [a1, a2, b1].every((c) => c.received.length === 1), 'everyone to receive "to all"');

    expect(server.broadcast(Buffer.from([1, 2, 3]), { path: '/a' })).toBe(2);
    await until(() => a1.received.length === 2 && a2.received.length === 2, 'route /a to receive the bytes');
    expect(a1.received[1]).toEqual(Buffer.from([1, 2, 3]));

    const [senderSide] = [...server.connections];
    expect(server.broadcast('not to the sender', { except: senderSide })).toBe(2);
    await until(() => a1.received.length + a2.received.length + b1.received.length === 7, 'two more deliveries');
    expect([a1, a2, b1].filter((c) => c.received.includes('not to the sender'))).toHaveLength(2);
    // b1 got only what was meant for everyone.
    expect(b1.received.filter((m) => m === 'to all')).toHaveLength(1);
    expect(b1.received.some((m) => Buffer.isBuffer(m))).toBe(false);
  });

  it('frames the message once: every connection is handed the same prepared frame, and gets the same bytes', async () => {
    const server = new WebSocketServer({ heartbeat: false });
    server.route('/a', {});
    const port = await start(server);
    const peers = [await client(port, '/a', server), await client(port, '/a', server), await client(port, '/a', server)];
    const sendPrepared = vi.spyOn(Connection.prototype, 'sendPrepared');
    const send = vi.spyOn(Connection.prototype, 'send');

    expect(server.broadcast('framed once')).toBe(3);
    // One call per connection on the server's side, each with the one frame
    // prepared for all of them: a frame prepared per connection would be a
    // new object each time. No connection framed it for itself with send().
    expect(sendPrepared.mock.instances).toHaveLength(3);
    expect(new Set(sendPrepared.mock.instances)).toEqual(new Set(server.connections));
    const frames = new Set(sendPrepared.mock.calls.map(([frame]) => frame));
    expect(frames.size).toBe(1);
    expect(send).not.toHaveBeenCalled();
    const [frame] = frames;
    // RFC 6455 §5.2: FIN and text opcode, unmasked, 11 payload bytes.
    expect(Buffer.from(frame!.header)).toEqual(Buffer.from([0x81, 11]));
    expect(Buffer.from(frame!.payload).toString()).toBe('framed once');
    await until(() => peers.every((peer) => peer.received.length === 1), 'every peer to receive the broadcast');
    for (const peer of peers) expect(peer.received).toEqual(['framed once']);
  });

  it('refuses a path no route is mounted at', () => {
    const server = new WebSocketServer({ heartbeat: false });
    servers.push(server);
    expect(() => server.broadcast('x', { path: '/nowhere' })).toThrow(/no route is mounted at \/nowhere/);
  });
});

describe('WebSocketServer.publish / subscribe / unsubscribe', () => {
  it('delivers a topic to its subscribers only, until they unsubscribe', async () => {
    const pubsub = new PubSub();
    const server = new WebSocketServer({ heartbeat: false, pubsub });
    server.route('/t', {
      message(connection, data) {
        if (data === 'join') server.subscribe(connection, 'news');
        if (data === 'leave') server.unsubscribe(connection, 'news');
      },
    });
    const port = await start(server);
    const reader = await client(port, '/t', server);
    const other = await client(port, '/t', server);
    reader.connection.send('join');
    await until(() => pubsub.subscriberCount('news') === 1, 'the subscription');

    await server.publish('news', 'first');
    await until(() => reader.received.length === 1, 'the first publish');
    expect(reader.received).toEqual(['first']);

    reader.connection.send('leave');
    await until(() => pubsub.subscriberCount('news') === 0, 'the unsubscription');
    await server.publish('news', 'second');
    // A marker through the same connection proves nothing else is on the way.
    server.broadcast('marker');
    await until(() => reader.received.includes('marker') && other.received.includes('marker'), 'the marker');
    expect(reader.received).toEqual(['first', 'marker']);
    expect(other.received).toEqual(['marker']);
    await pubsub.close();
  });

  it('throws a UsageError naming the option when the server has no hub', () => {
    const server = new WebSocketServer({ heartbeat: false });
    servers.push(server);
    expect(() => server.publish('t', 'x')).toThrow(UsageError);
    expect(() => server.publish('t', 'x')).toThrow(/new WebSocketServer\(\{ pubsub: new PubSub\(\) \}\)/);
  });
});
