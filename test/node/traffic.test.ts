import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import type { Connection } from '../../src/node/connection.js';
import { WebSocketServer, type RouteTraffic } from '../../src/node/server.js';
import { prepareFrame } from '../../src/protocol/protocol.js';
import { until } from '../wait.js';

/**
 * The traffic counters: per connection (data messages and payload bytes,
 * each way) and per route on the server (open connections summed with the
 * closed ones carried over), over real sockets on 127.0.0.1.
 */

const servers: WebSocketServer[] = [];
const clients: Connection<undefined>[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate('test over');
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

interface Harness {
  port: number;
  server: WebSocketServer;
  /** Server-side connections, in the order they opened. */
  accepted: Connection<unknown>[];
}

async function start(): Promise<Harness> {
  const server = new WebSocketServer({ heartbeat: false, perMessageDeflate: true });
  servers.push(server);
  const accepted: Connection<unknown>[] = [];
  server.route('/echo', {
    open: (connection) => accepted.push(connection),
    message: (connection, data, isBinary) => connection.send(data, { binary: isBinary }),
  });
  server.route('/sink', { open: (connection) => accepted.push(connection) });
  server.route('*', { open: (connection) => accepted.push(connection) });
  const { port } = await server.listen(0);
  return { port, server, accepted };
}

async function open(port: number, path: string): Promise<Connection<undefined>> {
  const client = await connect(`ws://127.0.0.1:${port}${path}`, { handshakeTimeout: 3000 });
  clients.push(client);
  return client;
}

function routeOf(server: WebSocketServer, path: string): RouteTraffic {
  const entry = server.traffic().find((route) => route.path === path);
  if (entry === undefined) throw new Error(`no route ${path}`);
  return entry;
}

describe('Connection traffic counters', () => {
  it('count data messages and payload bytes both ways, before compression and after decompression', async () => {
    const h = await start();
    const client = await open(h.port, '/echo');
    expect(client.extensions).toContain('permessage-deflate');
    const text = 'é'.repeat(5000); // 10 000 UTF-8 bytes, compressed to far fewer on the wire
    const binary = Buffer.alloc(3000, 7);
    let echoes = 0;
    client.on('message', () => echoes++);
    client.send(text);
    client.send(binary);
    await until(() => echoes === 2, 'two echoes', 3000);
    const server = h.accepted[0]!;
    expect([client.messagesSent, client.bytesSent, client.messagesReceived, client.bytesReceived]).toEqual([2, 13_000, 2, 13_000]);
    expect([server.messagesReceived, server.bytesReceived, server.messagesSent, server.bytesSent]).toEqual([2, 13_000, 2, 13_000]);
  });

  it('count a fragmented message once, with all its bytes', async () => {
    const h = await start();
    const client = await open(h.port, '/sink');
    await until(() => h.accepted.length === 1, 'the server side', 3000);
    client.send(Buffer.alloc(1000), { fragmentSize: 100 });
    client.sendFragment('abc', false);
    client.sendFragment('de', true);
    expect([client.messagesSent, client.bytesSent]).toEqual([2, 1005]);
    const server = h.accepted[0]!;
    await until(() => server.messagesReceived === 2, 'both messages', 3000);
    expect(server.bytesReceived).toBe(1005);
  });

  it('count prepared (publish/subscribe) sends by their payload', async () => {
    const h = await start();
    const client = await open(h.port, '/sink');
    await until(() => h.accepted.length === 1, 'the server side', 3000);
    const frame = prepareFrame(new TextEncoder().encode('hello'), false);
    const server = h.accepted[0]!;
    expect(server.sendPrepared(frame)).toBe('written');
    expect(server.sendPrepared(frame)).toBe('written');
    expect([server.messagesSent, server.bytesSent]).toEqual([2, 10]);
    await until(() => client.messagesReceived === 2, 'both messages', 3000);
    expect(client.bytesReceived).toBe(10);
  });

  it('do not count what was not sent, nor pings and pongs', async () => {
    const h = await start();
    const client = await open(h.port, '/sink');
    await client.ping('are you there');
    client.close(1000);
    await new Promise((resolve) => client.once('close', resolve));
    expect(client.send('too late')).toBe('closed');
    expect([client.messagesSent, client.bytesSent, client.messagesReceived, client.bytesReceived]).toEqual([0, 0, 0, 0]);
  });
});

describe('WebSocketServer.traffic()', () => {
  it('lists every route in mount order, with zeros before any connection', async () => {
    const h = await start();
    expect(h.server.traffic()).toEqual(
      ['/echo', '/sink', '*'].map((path) => ({
        path,
        connections: 0,
        opened: 0,
        messagesReceived: 0,
        bytesReceived: 0,
        messagesSent: 0,
        bytesSent: 0,
      })),
    );
  });

  it('sums open connections and carries over the counts of closed ones', async () => {
    const h = await start();
    const first = await open(h.port, '/echo');
    const second = await open(h.port, '/echo');
    let echoes = 0;
    first.on('message', () => echoes++);
    second.on('message', () => echoes++);
    for (let i = 0; i < 5; i++) first.send('abcd');
    for (let i = 0; i < 3; i++) second.send('xy');
    await until(() => echoes === 8, 'eight echoes', 3000);
    expect(routeOf(h.server, '/echo')).toMatchObject({
      connections: 2,
      opened: 2,
      messagesReceived: 8,
      bytesReceived: 26,
      messagesSent: 8,
      bytesSent: 26,
    });

    first.close(1000);
    await until(() => routeOf(h.server, '/echo').connections === 1, 'the close on the server', 3000);
    expect(routeOf(h.server, '/echo')).toMatchObject({
      connections: 1,
      opened: 2,
      messagesReceived: 8,
      bytesReceived: 26,
      messagesSent: 8,
      bytesSent: 26,
    });

    second.send('z');
    await until(() => echoes === 9, 'the ninth echo', 3000);
    second.close(1000);
    await until(() => routeOf(h.server, '/echo').connections === 0, 'the second close', 3000);
    expect(routeOf(h.server, '/echo')).toMatchObject({
      connections: 0,
      opened: 2,
      messagesReceived: 9,
      bytesReceived: 27,
      messagesSent: 9,
      bytesSent: 27,
    });
    expect(routeOf(h.server, '/sink')).toMatchObject({ connections: 0, opened: 0, messagesReceived: 0 });
  });

  it('counts connections taken by the catch-all under `*`, whatever their path', async () => {
    const h = await start();
    const a = await open(h.port, '/somewhere');
    const b = await open(h.port, '/elsewhere?x=1');
    a.send('1');
    b.send('22');
    await until(() => routeOf(h.server, '*').messagesReceived === 2, 'both messages', 3000);
    expect(routeOf(h.server, '*')).toMatchObject({ connections: 2, opened: 2, bytesReceived: 3 });
    expect(h.server.traffic().map((route) => route.path)).toEqual(['/echo', '/sink', '*']);
  });
});
