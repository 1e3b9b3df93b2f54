import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/protocol/errors.js';
import { Opcode } from '../../src/protocol/opcode.js';
import { connect } from '../../src/node/client.js';
import { ConnectionState, type CloseInfo, type Connection, type FrameInfo } from '../../src/node/connection.js';
import { WebSocketServer, type Route, type ServerOptions } from '../../src/node/server.js';
import type { WireFrame } from '../../src/node/wire-trace.js';
import { until } from '../wait.js';

/**
 * `connect()` and its `Connection` as the native client, against a real
 * in-process server on 127.0.0.1: state changes and their order among the
 * other events, the close info kept after the end, frames, pongs with their
 * round-trip time, bytes written, compression, and async iteration whose
 * slow consumer pushes back on the server. (The handshake itself, refusals
 * and aborts while connecting are pinned in client.test.ts.)
 */

const servers: WebSocketServer[] = [];
const clients: Connection<undefined>[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

interface Harness {
  url: string;
  server: WebSocketServer;
  connections: Connection<unknown>[];
  received: Array<string | Buffer>;
}

/** A server that records what it receives; `route` adds behaviour. */
async function start(route: Route<unknown> = {}, options: ServerOptions = {}): Promise<Harness> {
  const server = new WebSocketServer({ heartbeat: false, ...options });
  servers.push(server);
  const harness: Harness = { url: '', server, connections: [], received: [] };
  server.route('*', {
    ...route,
    open(connection) {
      harness.connections.push(connection);
      route.open?.(connection);
    },
    message(connection, data, isBinary) {
      harness.received.push(data);
      route.message?.(connection, data, isBinary);
    },
  });
  const { port } = await server.listen(0);
  harness.url = `ws://127.0.0.1:${port}/`;
  return harness;
}

/**
 * Closed by afterEach. Called as `track(await connect(...))`: frames that
 * came with the 101 are delivered just after the caller's `await`, so
 * listeners must be attached in the same continuation, with no extra hop.
 */
function track(client: Connection<undefined>): Connection<undefined> {
  clients.push(client);
  return client;
}

/** State changes, messages, the peer's close frame and the end, one line each, in order. */
function record(client: Connection<undefined>): string[] {
  const log: string[] = [];
  client.on('stateChanged', (state, previous) => log.push(`state ${previous}->${state}`));
  client.on('message', (data, isBinary) => log.push(isBinary ? `binary ${(data as Buffer).toString('hex')}` : `text ${data as string}`));
  client.on('closing', (code, reason) => log.push(`closing ${code} ${reason}`));
  client.on('close', (info) => log.push(`close ${info.code} ${info.initiator} ${info.wasClean ? 'clean' : 'unclean'}`));
  return log;
}

function closed(client: Connection<undefined>): Promise<CloseInfo> {
  return new Promise((resolve) => client.once('close', resolve));
}

describe('Connection state changes', () => {
  it('reports a session in order: messages, open->closing, closing->closed, close', async () => {
    const harness = await start({
      open(connection) {
        connection.send('hello');
        connection.send(Buffer.from([1, 2, 3]));
      },
    });
    const client = track(await connect(harness.url));
    const log = record(client);
    expect(client.state).toBe(ConnectionState.Open);
    expect(client.closeInfo).toBeNull();
    await until(() => log.length >= 2, 'both messages', 5000);
    const ended = closed(client);
    client.close(1000, 'done');
    expect(client.state).toBe(ConnectionState.Closing);
    const info = await ended;
    expect(log).toEqual([
      'text hello',
      'binary 010203',
      'state open->closing',
      // The server's answer echoes the code only (RFC 6455 §5.5.1): the reason reported is the peer's, empty.
      'closing 1000 ',
      'state closing->closed',
      'close 1000 local clean',
    ]);
    expect(info).toMatchObject({ code: 1000, reason: '', wasClean: true, initiator: 'local' });
    expect(client.closeInfo).toBe(info);
    expect(client.state).toBe(ConnectionState.Closed);
  });

  it('reports a close the server started: closing on its close frame, closed when TCP ends', async () => {
    const harness = await start({ message: (connection) => connection.close(4001, 'bye now') });
    const client = track(await connect(harness.url));
    const log = record(client);
    const ended = closed(client);
    client.send('close me');
    const info = await ended;
    expect(info).toMatchObject({ code: 4001, reason: 'bye now', wasClean: true, initiator: 'remote' });
    expect(log).toEqual(['state open->closing', 'closing 4001 bye now', 'state closing->closed', 'close 4001 remote clean']);
  });

  it('goes straight from open to closed when the connection is lost without a close frame', async () => {
    const harness = await start();
    const client = track(await connect(harness.url));
    const log = record(client);
    const ended = closed(client);
    harness.connections[0]!.terminate();
    const info = await ended;
    expect(info).toMatchObject({ code: 1006, wasClean: false, initiator: 'transport' });
    expect(info.error).toMatchObject({ code: 'WS_ERR_CONNECTION_LOST' });
    expect(log).toEqual(['state open->closed', 'close 1006 transport unclean']);
    expect(client.closeInfo).toBe(info);
  });

  it('terminate() drops the connection at once: open->closed, 1006, and the server sees it go', async () => {
    const harness = await start();
    const client = track(await connect(harness.url));
    const log = record(client);
    const ended = closed(client);
    client.terminate();
    const info = await ended;
    expect(info).toMatchObject({ code: 1006, wasClean: false });
    expect(info.error).toMatchObject({ code: 'WS_ERR_TERMINATED' });
    expect(log).toEqual(['state open->closed', 'close 1006 transport unclean']);
    await until(() => harness.server.connections.size === 0, 'the server to see the connection go', 5000);
  });

  it('reports a protocol failure as open->closing after the error, then closed', async () => {
    // A pong longer than 125 bytes breaks RFC 6455 §5.5; written raw by the test server.
    const harness = await start({
      open(connection) {
        connection.writeFrame(Buffer.from([0x8a, 126, 0, 126]), Buffer.alloc(126));
      },
    });
    const client = track(await connect(harness.url));
    const log: string[] = [];
    client.on('error', (error) => log.push(`error ${(error as { code?: string }).code}`));
    client.on('stateChanged', (state, previous) => log.push(`state ${previous}->${state}`));
    const info = await closed(client);
    expect(info.code).toBe(1006);
    expect(log[0]).toMatch(/^error WS_ERR_/);
    expect(log.slice(1)).toEqual(['state open->closing', 'state closing->closed']);
  });

  it('reports each transition once: a second close() or terminate() after closing adds none', async () => {
    const harness = await start();
    const client = track(await connect(harness.url));
    const states: string[] = [];
    client.on('stateChanged', (state) => states.push(state));
    const ended = closed(client);
    client.close(1000);
    client.close(1001);
    expect(states).toEqual([ConnectionState.Closing]);
    await ended;
    client.terminate();
    client.close();
    expect(states).toEqual([ConnectionState.Closing, ConnectionState.Closed]);
  });

  it('answers send() with "closed" and rejects ping() once closed', async () => {
    const harness = await start();
    const client = track(await connect(harness.url));
    const ended = closed(client);
    client.close();
    await ended;
    expect(client.send('x')).toBe('closed');
    await expect(client.ping()).rejects.toBeInstanceOf(UsageError);
  });
});

describe('Connection frames, pongs, bytes written, compression', () => {
  it('reports each frame of a fragmented message with its opcode and fin flag, then the message', async () => {
    const harness = await start({
      open(connection) {
        connection.send('abcdefgh', { fragmentSize: 3, compress: false });
      },
    });
    const client = track(await connect(harness.url, { perMessageDeflate: false }));
    const frames: Array<[string, boolean, Opcode]> = [];
    client.on('frame', (frame: FrameInfo) => frames.push([frame.payload.toString(), frame.fin, frame.opcode]));
    const text = await new Promise((resolve) => client.once('message', resolve));
    expect(text).toBe('abcdefgh');
    expect(frames).toEqual([
      ['abc', false, Opcode.Text],
      ['def', false, Opcode.Continuation],
      ['gh', true, Opcode.Continuation],
    ]);
  });

  it('ping() resolves the round-trip time and the pong event carries the payload and that time', async () => {
    const harness = await start();
    const client = track(await connect(harness.url));
    const pong = new Promise<[Buffer, number | undefined]>((resolve) => client.once('pong', (payload, rtt) => resolve([payload, rtt])));
    const rtt = await client.ping('abc');
    const [payload, reported] = await pong;
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(5000);
    expect(reported).toBe(rtt);
    expect(payload.toString()).toBe('abc');
  });

  it('reports an unsolicited pong with an undefined round-trip time', async () => {
    const harness = await start({ message: (connection) => void connection.pong('beat') });
    const client = track(await connect(harness.url));
    const pong = new Promise<[Buffer, number | undefined]>((resolve) => client.once('pong', (payload, rtt) => resolve([payload, rtt])));
    client.send('pong me');
    const [payload, rtt] = await pong;
    expect(rtt).toBeUndefined();
    expect(payload.toString()).toBe('beat');
  });

  it('reports bytes written, frame headers and mask included (RFC 6455 §5.2)', async () => {
    const harness = await start();
    const client = track(await connect(harness.url, { perMessageDeflate: false }));
    let written = 0;
    client.on('written', (count) => (written += count));
    client.send('hello');
    // 2 header bytes + 4 masking-key bytes (a client masks every frame, §5.3) + 5 payload bytes.
    await until(() => written === 11, 'the bytes of one frame', 5000);
    client.send(Buffer.alloc(200));
    // 2 bytes + 2 extended length bytes (126..65535, §5.2) + 4 mask + 200.
    await until(() => written === 11 + 208, 'the bytes of a second frame', 5000);
    await until(() => harness.received.length === 2, 'the server to receive both', 5000);
  });

  it("logs every frame header both ways on the wire event: ours masked (§5.3), the server's not, control frames included", async () => {
    const harness = await start({ message: (connection, data) => void connection.send(data) });
    const client = track(await connect(harness.url, { perMessageDeflate: false }));
    const frames: WireFrame[] = [];
    client.on('wire', (frame) => frames.push(frame));
    client.send('hello');
    await client.ping('p');
    await until(() => frames.some((f) => f.direction === 'in' && f.opcode === Opcode.Text), 'the echo', 5000);
    const summary = frames.map((f) => `${f.direction} ${f.opcode} ${f.fin} ${f.masked} ${f.length}`);
    expect(summary).toEqual(
      expect.arrayContaining([
        `out ${Opcode.Text} true true 5`,
        `out ${Opcode.Ping} true true 1`,
        `in ${Opcode.Pong} true false 1`,
        `in ${Opcode.Text} true false 5`,
      ]),
    );
    expect(frames).toHaveLength(4);
  });

  it('negotiates permessage-deflate by default and compresses unless a send says compress: false', async () => {
    const rsv1: boolean[] = [];
    const harness = await start(
      { open: (connection) => connection.on('frame', (frame) => rsv1.push(frame.rsv1)) },
      { perMessageDeflate: { threshold: 0 } },
    );
    const client = track(await connect(harness.url, { perMessageDeflate: { threshold: 0 } }));
    expect(client.extensions).toMatch(/^permessage-deflate\b/);
    const text = 'compress me '.repeat(20);
    client.send(text);
    client.send(text, { compress: false });
    await until(() => harness.received.length === 2, 'both messages', 5000);
    expect(harness.received).toEqual([text, text]);
    // RSV1 marks a compressed message's first frame (RFC 7692 §6).
    expect(rsv1).toEqual([true, false]);
  });

  it('does not offer compression with perMessageDeflate: false', async () => {
    const harness = await start({}, { perMessageDeflate: true });
    const client = track(await connect(harness.url, { perMessageDeflate: false }));
    expect(client.extensions).toBe('');
    expect(harness.connections[0]!.extensions).toBe('');
  });
});

describe('Connection async iteration', () => {
  it('yields what the server sends on open, in order, ends when the server closes, and keeps the close info', async () => {
    const harness = await start({
      open(connection) {
        for (let i = 0; i < 5; i++) connection.send(`m${i}`);
        connection.send(Buffer.from([9]));
        connection.close(1000);
      },
    });
    const client = track(await connect(harness.url));
    const seen: Array<string | Buffer> = [];
    for await (const message of client) seen.push(message);
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', Buffer.from([9])]);
    expect(client.state).toBe(ConnectionState.Closed);
    expect(client.closeInfo).toMatchObject({ code: 1000, initiator: 'remote', wasClean: true });
  });

  it('allows one iterator at a time', async () => {
    const harness = await start();
    const client = track(await connect(harness.url));
    const first = client.messages();
    expect(() => client.messages()).toThrow(UsageError);
    await first.return!();
    const second = client.messages();
    await second.return!();
  });

  it('a slow consumer pauses reading: the server buffers and its sends are queued; nothing is lost', async () => {
    const size = 64 * 1024;
    const count = 400; // 25 MiB: far more than loopback socket buffers hold
    const harness = await start({
      open(connection) {
        for (let i = 0; i < count; i++) {
          const message = Buffer.alloc(size, i % 256);
          message.writeUInt32BE(i, 0);
          connection.send(message, { compress: false });
        }
      },
    });
    const client = track(await connect(harness.url, { perMessageDeflate: false }));
    const iterator = client.messages({ highWaterMark: 4 });
    const first = await iterator.next();
    expect((first.value as Buffer).readUInt32BE(0)).toBe(0);
    // Nothing consumed: the client stops reading once 4 messages wait, so
    // most of the burst stays with the server (it would drain otherwise, see below).
    const server = harness.connections[0]!;
    await until(() => server.bufferedAmount > (count * size) / 2, 'the server to hold most of the burst', 5000);
    expect(server.send('one more')).toBe('queued');

    let next = 1;
    for await (const message of iterator) {
      if (typeof message === 'string') {
        expect(message).toBe('one more');
        break;
      }
      expect(message.readUInt32BE(0)).toBe(next);
      next++;
    }
    expect(next).toBe(count);
    await until(() => server.bufferedAmount === 0, 'the server to drain', 5000);
  });

  it("without an iterator the same burst drains: the pause above is the iterator's doing", async () => {
    const size = 64 * 1024;
    const count = 400;
    const harness = await start({
      open(connection) {
        for (let i = 0; i < count; i++) connection.send(Buffer.alloc(size), { compress: false });
      },
    });
    const client = track(await connect(harness.url, { perMessageDeflate: false }));
    let received = 0;
    client.on('message', () => received++);
    await until(() => received === count, 'every message', 5000);
    expect(harness.connections[0]!.bufferedAmount).toBe(0);
  });

  it('break leaves the connection open and reading again', async () => {
    const harness = await start({ message: (connection, data) => connection.send(data) });
    const client = track(await connect(harness.url));
    for (let i = 0; i < 10; i++) client.send(`m${i}`);
    const seen: string[] = [];
    for await (const message of client.messages({ highWaterMark: 2 })) {
      seen.push(message as string);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['m0', 'm1', 'm2']);
    expect(client.state).toBe(ConnectionState.Open);
    // Messages queued in the iterator when it stopped go with it; new ones arrive as events.
    const after = new Promise<string>((resolve) => {
      client.on('message', (message) => {
        if (message === 'after') resolve(message);
      });
    });
    client.send('after');
    expect(await after).toBe('after');
    expect(harness.received).toHaveLength(11);
  });
});
