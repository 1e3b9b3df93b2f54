import { constants, inflateRawSync } from 'node:zlib';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type CloseInfo, type Route } from '../../src/index.js';
import { Connection } from '../../src/node/connection.js';
import { createZlibCodec } from '../../src/node/zlib-codec.js';
import { Role } from '../../src/protocol/role.js';
import { OP, RawClient, closePayload, frame, parseClose, type RawFrame } from './raw-client.js';

/**
 * Closing waits for what is already queued, compressed or not (issue 9,
 * item 6): with permessage-deflate a message may still be in the
 * compressor, with a close frame queued behind it, when the connection
 * decides to end TCP (peer's close, peer's FIN, heartbeat drop, failing
 * handler). RFC 6455 §7.1.1: the TCP connection closes after the close frame.
 */

const servers: WebSocketServer[] = [];
const clients: RawClient[] = [];
const netServers: Server[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  await Promise.all(netServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

interface Harness {
  port: number;
  connections: Connection<unknown>[];
  closes: CloseInfo[];
}

/** An echo server with permessage-deflate (threshold 1 KiB by default); `route` adds or replaces hooks. */
async function echoServer(route: Route<unknown> = {}): Promise<Harness> {
  const server = new WebSocketServer({ heartbeat: false, perMessageDeflate: true, closeTimeout: 2000 });
  servers.push(server);
  const harness: Harness = { port: 0, connections: [], closes: [] };
  server.route('*', {
    message(connection, data, isBinary) {
      connection.send(data, { binary: isBinary });
    },
    error() {},
    ...route,
    open(connection) {
      harness.connections.push(connection);
    },
    close(_connection, info) {
      harness.closes.push(info);
    },
  });
  harness.port = (await server.listen(0)).port;
  return harness;
}

async function connectDeflate(harness: Harness, after?: Buffer): Promise<RawClient> {
  const { client, response } = await RawClient.upgrade(harness.port, { extra: ['Sec-WebSocket-Extensions: permessage-deflate'] }, after);
  clients.push(client);
  expect(response.headers.get('sec-websocket-extensions')).toMatch(/^permessage-deflate/);
  return client;
}

/** RFC 7692 §7.2.2: append 00 00 ff ff and inflate. */
function inflated(received: RawFrame): string {
  expect(received.rsv1).toBe(true);
  const data = Buffer.concat([received.payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]);
  // The stream has no final block: stop at the end of the sync-flushed data.
  return inflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
}

/** Text above the compression threshold that compresses well, different for each run. */
function message(run: number): string {
  return `run ${run}: ${'the quick brown fox jumps over the lazy dog '.repeat(100)}`;
}

describe('closing with a message still in the compressor', () => {
  it('writes the echo and the close reply before ending TCP when message and close come in one write (20 runs)', async () => {
    const harness = await echoServer();
    for (let run = 0; run < 20; run++) {
      const client = await connectDeflate(harness);
      client.write(Buffer.concat([frame({ opcode: OP.text, payload: message(run) }), frame({ opcode: OP.close, payload: closePayload(1000) })]));
      const echo = await client.readFrame();
      expect(echo.opcode).toBe(OP.text);
      expect(inflated(echo)).toBe(message(run));
      const close = await client.readFrame();
      expect(parseClose(close).code).toBe(1000);
      await client.waitEnd();
      client.destroy();
    }
    await expect.poll(() => harness.closes.length).toBe(20);
    expect(harness.closes.map((info) => [info.code, info.wasClean])).toEqual(Array(20).fill([1000, true]));
  });

  it('writes the echo before ending TCP when the peer half-closes right after its message (half-open socket, as node:http hands over)', async () => {
    // A standalone net server without allowHalfOpen lets Node end the socket on the peer's FIN by itself;
    // sockets from node:http allow half-open connections, and then the connection decides.
    const listener = createServer({ allowHalfOpen: true });
    netServers.push(listener);
    const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const client = await RawClient.open((listener.address() as AddressInfo).port);
    clients.push(client);
    const socket = await accepted;
    const codec = createZlibCodec(
      { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
      'server',
    );
    const connection = Connection.adopt(socket, { role: Role.Server, deflate: { codec, threshold: 1024 }, closeTimeout: 2000 }, undefined);
    connection.on('message', (data) => connection.send(data));
    client.write(frame({ opcode: OP.text, payload: message(1) }));
    client.socket.end();
    const echo = await client.readFrame();
    expect(inflated(echo)).toBe(message(1));
    await client.waitEnd();
  });

  it('writes a message being compressed, the ping and the close frame before ending TCP when the heartbeat drops the peer', async () => {
    const harness = await echoServer();
    const client = await connectDeflate(harness);
    await expect.poll(() => harness.connections.length).toBe(1);
    const connection = harness.connections[0]!;
    expect(connection.send(message(2))).not.toBe('closed');
    // Two ticks with nothing heard in between: the second drops the peer, while the message is still compressing.
    connection.heartbeat(1000);
    connection.heartbeat(1000);
    expect(inflated(await client.readFrame())).toBe(message(2));
    expect((await client.readFrame()).opcode).toBe(OP.ping);
    expect(parseClose(await client.readFrame()).code).toBe(1001);
    await client.waitEnd();
  });

  it('writes the echo and the 1011 close frame before ending TCP when the message handler fails after sending', async () => {
    const harness = await echoServer({
      message(connection, data) {
        connection.send(data);
        throw new Error('handler broke after sending');
      },
    });
    const client = await connectDeflate(harness);
    client.write(frame({ opcode: OP.text, payload: message(3) }));
    expect(inflated(await client.readFrame())).toBe(message(3));
    expect(parseClose(await client.readFrame()).code).toBe(1011);
    await client.waitEnd();
  });
});
