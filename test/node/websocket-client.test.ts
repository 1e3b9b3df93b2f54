import type { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/protocol/errors.js';
import { Opcode } from '../../src/protocol/opcode.js';
import type { Connection } from '../../src/node/connection.js';
import { HandshakeError } from '../../src/node/errors.js';
import { reject } from '../../src/node/upgrade.js';
import { WebSocketServer, type Route, type ServerOptions } from '../../src/node/server.js';
import { ClientState, WebSocketClient, type ClientError, type WebSocketClientEvents } from '../../src/node/websocket-client.js';

/**
 * The native client against a real in-process server on 127.0.0.1: the
 * events it reports and their order, frames, pongs and round-trip times,
 * bytes written, compression, aborts, and async iteration whose slow
 * consumer pushes back on the server.
 */

const servers: WebSocketServer[] = [];
const clients: WebSocketClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.abort();
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

function newClient(): WebSocketClient {
  const client = new WebSocketClient();
  clients.push(client);
  return client;
}

/** Every event the client emits, as one line each, in order. */
function record(client: WebSocketClient): string[] {
  const log: string[] = [];
  client.on('stateChanged', (state, previous) => log.push(`state ${previous}->${state}`));
  client.on('connected', () => log.push('connected'));
  client.on('textMessage', (text) => log.push(`text ${text}`));
  client.on('binaryMessage', (bytes) => log.push(`binary ${bytes.toString('hex')}`));
  client.on('error', (error) => log.push(`error ${error.code}`));
  client.on('disconnected', (info) => log.push(`disconnected ${info.code} ${info.initiator} ${info.wasClean ? 'clean' : 'unclean'}`));
  return log;
}

async function until(condition: () => boolean, what: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * The next `event` of the client. Unlike events.once(), an `error` event
 * does not reject it: the client reports errors and then disconnects.
 */
function next<E extends keyof WebSocketClientEvents>(client: WebSocketClient, event: E): Promise<WebSocketClientEvents[E]> {
  return new Promise((resolve) => {
    (client as unknown as EventEmitter).once(event, (...args: unknown[]) => resolve(args as WebSocketClientEvents[E]));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('WebSocketClient events', () => {
  it('reports a session in order: connecting, open, connected, messages, closing, closed, disconnected', async () => {
    const harness = await start({
      open(connection) {
        connection.send('hello');
        connection.send(Buffer.from([1, 2, 3]));
      },
    });
    const client = newClient();
    const log = record(client);
    await client.open(harness.url);
    expect(client.state).toBe(ClientState.Open);
    await until(() => log.length >= 5, 'both messages');
    client.close(1000, 'done');
    expect(client.state).toBe(ClientState.Closing);
    const [info] = await next(client, 'disconnected');
    expect(log).toEqual([
      'state closed->connecting',
      'state connecting->open',
      'connected',
      'text hello',
      'binary 010203',
      'state open->closing',
      'state closing->closed',
      'disconnected 1000 local clean',
    ]);
    // The server's answer echoes the code only (RFC 6455 §5.5.1): the reason reported is the peer's, empty.
    expect(info).toMatchObject({ code: 1000, reason: '', wasClean: true, initiator: 'local' });
    expect(client.closeCode).toBe(1000);
  });

  it('reports a close the server started with its code and reason', async () => {
    const harness = await start({
      message(connection) {
        connection.close(4001, 'bye now');
      },
    });
    const client = newClient();
    const log = record(client);
    await client.open(harness.url);
    client.send('close me');
    const [info] = await next(client, 'disconnected');
    expect(info).toMatchObject({ code: 4001, reason: 'bye now', wasClean: true, initiator: 'remote' });
    expect(log.slice(-2)).toEqual(['state open->closed', 'disconnected 4001 remote clean']);
  });

  it('reports a refused handshake as error, closed, disconnected 1006, and rejects open() with the HTTP status', async () => {
    const harness = await start({ authenticate: () => reject(403, 'no entry') });
    const client = newClient();
    const log = record(client);
    const errors: ClientError[] = [];
    client.on('error', (error) => errors.push(error));
    const failure = await client.open(harness.url).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(HandshakeError);
    expect((failure as HandshakeError).status).toBe(403);
    expect((failure as HandshakeError).message).toMatch(/403/);
    expect(errors).toEqual([failure]);
    expect(client.lastError).toBe(failure);
    expect(log).toEqual([
      'state closed->connecting',
      'error WS_ERR_HANDSHAKE_REFUSED',
      'state connecting->closed',
      'disconnected 1006 transport unclean',
    ]);
  });

  it('does not turn an open() failure nobody awaits into an unhandled rejection', async () => {
    // vitest fails the run on an unhandled rejection, so ignoring the promise here must be safe.
    const client = newClient();
    const disconnected = next(client, 'disconnected');
    void client.open('ws://127.0.0.1:1/');
    const [info] = await disconnected;
    expect(info.code).toBe(1006);
    expect(info.error).toBeInstanceOf(HandshakeError);
    expect((info.error as HandshakeError).code).toBe('WS_ERR_CONNECT_FAILED');
    expect(info.error!.message).toMatch(/cannot connect to ws:\/\/127\.0\.0\.1:1/);
  });

  it('reports a connection lost without a close frame as an error and an unclean 1006', async () => {
    const harness = await start();
    const client = newClient();
    const log = record(client);
    await client.open(harness.url);
    harness.connections[0]!.terminate();
    const [info] = await next(client, 'disconnected');
    expect(info).toMatchObject({ code: 1006, wasClean: false });
    expect(log.slice(-3)).toEqual(['error WS_ERR_CONNECTION_LOST', 'state open->closed', 'disconnected 1006 transport unclean']);
  });

  it('abort() drops the connection at once, with 1006 and no error event', async () => {
    const harness = await start();
    const client = newClient();
    const log = record(client);
    await client.open(harness.url);
    client.abort();
    const [info] = await next(client, 'disconnected');
    expect(info).toMatchObject({ code: 1006, wasClean: false });
    expect(log.filter((line) => line.startsWith('error'))).toEqual([]);
    await until(() => harness.server.connections.size === 0, 'the server to see the connection go');
  });

  it('abort() while connecting gives up the attempt: open() rejects, disconnected 1006, the late socket is dropped', async () => {
    let admit: () => void = () => {};
    const admitted = new Promise<void>((resolve) => (admit = resolve));
    let asked = false;
    const harness = await start({
      authenticate: () => {
        asked = true;
        return admitted;
      },
    });
    const client = newClient();
    const log = record(client);
    const opening = client.open(harness.url);
    await until(() => asked, 'the upgrade request to reach the server');
    client.abort();
    await expect(opening).rejects.toMatchObject({ code: 'WS_ERR_TERMINATED' });
    expect(client.state).toBe(ClientState.Closed);
    expect(log).toEqual(['state closed->connecting', 'state connecting->closed', 'disconnected 1006 local unclean']);
    admit();
    await until(() => harness.connections.length === 1, 'the server to accept late');
    await until(() => harness.server.connections.size === 0, 'the late connection to be dropped');
    expect(log).toHaveLength(3);
  });

  it('refuses open() unless closed, and can be opened again after a close', async () => {
    const harness = await start({ message: (connection, data) => connection.send(data) });
    const client = newClient();
    await client.open(harness.url);
    expect(() => client.open(harness.url)).toThrow(UsageError);
    client.close();
    await next(client, 'disconnected');
    await client.open(harness.url);
    client.send('again');
    const [text] = await next(client, 'textMessage');
    expect(text).toBe('again');
  });

  it('answers send() with "closed" and rejects ping() when not open', async () => {
    const client = newClient();
    expect(client.send('x')).toBe('closed');
    await expect(client.ping()).rejects.toBeInstanceOf(UsageError);
  });
});

describe('WebSocketClient frames, pongs, bytes written, compression', () => {
  it('reports each frame of a fragmented message with its opcode and last-frame flag, then the message', async () => {
    const harness = await start({
      open(connection) {
        connection.send('abcdefgh', { fragmentSize: 3, compress: false });
      },
    });
    const client = newClient();
    const frames: Array<[string, boolean, Opcode]> = [];
    client.on('frame', (payload, isLastFrame, opcode) => frames.push([payload.toString(), isLastFrame, opcode]));
    const text = next(client, 'textMessage');
    await client.open(harness.url, { perMessageDeflate: false });
    expect((await text)[0]).toBe('abcdefgh');
    expect(frames).toEqual([
      ['abc', false, Opcode.Text],
      ['def', false, Opcode.Continuation],
      ['gh', true, Opcode.Continuation],
    ]);
  });

  it('ping() resolves the round-trip time and the pong event carries it with the payload', async () => {
    const harness = await start();
    const client = newClient();
    await client.open(harness.url);
    const pong = next(client, 'pong');
    const rtt = await client.ping('abc');
    const [reported, payload] = await pong;
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(5000);
    expect(reported).toBe(rtt);
    expect(payload.toString()).toBe('abc');
  });

  it('reports an unsolicited pong with an undefined round-trip time', async () => {
    const harness = await start({ open: (connection) => void connection.pong('beat') });
    const client = newClient();
    const pong = next(client, 'pong');
    await client.open(harness.url);
    const [rtt, payload] = await pong;
    expect(rtt).toBeUndefined();
    expect(payload.toString()).toBe('beat');
  });

  it('reports bytes written, frame headers and mask included (RFC 6455 §5.2)', async () => {
    const harness = await start();
    const client = newClient();
    let written = 0;
    client.on('bytesWritten', (count) => (written += count));
    await client.open(harness.url, { perMessageDeflate: false });
    client.send('hello');
    // 2 header bytes + 4 masking-key bytes (a client masks every frame, §5.3) + 5 payload bytes.
    await until(() => written === 11, 'the bytes of one frame');
    client.send(Buffer.alloc(200));
    // 2 bytes + 2 extended length bytes (126..65535, §5.2) + 4 mask + 200.
    await until(() => written === 11 + 208, 'the bytes of a second frame');
    await until(() => harness.received.length === 2, 'the server to receive both');
  });

  it('negotiates permessage-deflate by default and compresses unless a send says compress: false', async () => {
    const rsv1: boolean[] = [];
    const harness = await start(
      { open: (connection) => connection.on('frame', (frame) => rsv1.push(frame.rsv1)) },
      { perMessageDeflate: { threshold: 0 } },
    );
    const client = newClient();
    await client.open(harness.url, { perMessageDeflate: { threshold: 0 } });
    expect(client.perMessageDeflate).toBe(true);
    const text = 'compress me '.repeat(20);
    client.send(text);
    client.send(text, { compress: false });
    await until(() => harness.received.length === 2, 'both messages');
    expect(harness.received).toEqual([text, text]);
    // RSV1 marks a compressed message's first frame (RFC 7692 §6).
    expect(rsv1).toEqual([true, false]);
  });

  it('does not offer compression with perMessageDeflate: false', async () => {
    const harness = await start({}, { perMessageDeflate: true });
    const client = newClient();
    await client.open(harness.url, { perMessageDeflate: false });
    expect(client.perMessageDeflate).toBe(false);
    expect(client.extensions).toBe('');
    expect(harness.connections[0]!.extensions).toBe('');
  });
});

describe('WebSocketClient async iteration', () => {
  it('yields messages in order and ends when the server closes', async () => {
    const harness = await start({
      open(connection) {
        for (let i = 0; i < 5; i++) connection.send(`m${i}`);
        connection.send(Buffer.from([9]));
        connection.close(1000);
      },
    });
    const client = newClient();
    const opening = client.open(harness.url);
    // Asked for while connecting: it must not miss what the server sends on open.
    const iterator = client.messages();
    const seen: Array<string | Buffer> = [];
    for await (const message of iterator) seen.push(message);
    await opening;
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', Buffer.from([9])]);
    expect(client.state).toBe(ClientState.Closed);
    expect(client.closeCode).toBe(1000);
  });

  it('iterating a connection that fails to open ends at once', async () => {
    const client = newClient();
    void client.open('ws://127.0.0.1:1/');
    const iterator = client[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('an iterator stopped while connecting never attaches: a later one works and reading is not paused', async () => {
    const harness = await start({
      open(connection) {
        for (let i = 0; i < 40; i++) connection.send(`m${i}`);
      },
    });
    const client = newClient();
    const opening = client.open(harness.url);
    const abandoned = client.messages({ highWaterMark: 2 });
    expect(() => client.messages()).toThrow(UsageError);
    expect(await abandoned.return!()).toEqual({ done: true, value: undefined });
    let texts = 0;
    client.on('textMessage', () => texts++);
    await opening;
    // Had the abandoned iterator attached, it would have paused reading after 2 messages.
    await until(() => texts === 40, 'every message as an event');
    const later = client.messages();
    await later.return!();
  });

  it('allows one iterator at a time', async () => {
    const harness = await start();
    const client = newClient();
    await client.open(harness.url);
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
    const client = newClient();
    await client.open(harness.url, { perMessageDeflate: false });
    const iterator = client.messages({ highWaterMark: 4 });
    const first = await iterator.next();
    expect((first.value as Buffer).readUInt32BE(0)).toBe(0);
    // Nothing consumed for a while: the client stops reading once 4 messages wait.
    await sleep(300);
    const server = harness.connections[0]!;
    expect(server.bufferedAmount).toBeGreaterThan((count * size) / 2);
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
    await until(() => server.bufferedAmount === 0, 'the server to drain');
  });

  it('without an iterator the same burst drains: the pause above is the iterator\'s doing', async () => {
    const size = 64 * 1024;
    const count = 400;
    const harness = await start({
      open(connection) {
        for (let i = 0; i < count; i++) connection.send(Buffer.alloc(size), { compress: false });
      },
    });
    const client = newClient();
    let received = 0;
    client.on('binaryMessage', () => received++);
    await client.open(harness.url, { perMessageDeflate: false });
    await until(() => received === count, 'every message');
    expect(harness.connections[0]!.bufferedAmount).toBe(0);
  });

  it('break leaves the connection open and reading again', async () => {
    const harness = await start({ message: (connection, data) => connection.send(data) });
    const client = newClient();
    await client.open(harness.url);
    for (let i = 0; i < 10; i++) client.send(`m${i}`);
    const seen: string[] = [];
    for await (const message of client.messages({ highWaterMark: 2 })) {
      seen.push(message as string);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['m0', 'm1', 'm2']);
    expect(client.state).toBe(ClientState.Open);
    // Messages queued in the iterator when it stopped go with it; new ones arrive as events.
    const after = new Promise<string>((resolve) => {
      client.on('textMessage', (message) => {
        if (message === 'after') resolve(message);
      });
    });
    client.send('after');
    expect(await after).toBe('after');
    expect(harness.received).toHaveLength(11);
  });
});
