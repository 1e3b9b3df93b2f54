import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type CloseInfo, type Connection, type Route, type SendStatus, type ServerOptions } from '../../src/index.js';
import {
  OP,
  RawClient,
  closePayload,
  deflateMessage,
  frame,
  parseClose,
  settlesWithin,
  type FrameSpec,
  type UpgradeRequestOptions,
} from './raw-client.js';
import { until } from '../wait.js';

/**
 * A server connection driven byte by byte from a raw TCP peer: framing
 * rules (RFC 6455 §5), failure close codes (§7.4.1), permessage-deflate on
 * the wire (RFC 7692), the closing handshake (§7.1), backpressure and pings.
 */

const servers: WebSocketServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

interface Harness {
  port: number;
  server: WebSocketServer;
  connections: Connection<unknown>[];
  closes: CloseInfo[];
  errors: Error[];
  drains: number;
}

/** An echo server (unless `route` says otherwise) that records what happens to its connections. */
async function start(options: ServerOptions = {}, route: Route<unknown> = {}): Promise<Harness> {
  const server = new WebSocketServer({ heartbeat: false, ...options });
  servers.push(server);
  const harness: Harness = { port: 0, server, connections: [], closes: [], errors: [], drains: 0 };
  server.route('*', {
    message(connection, data, isBinary) {
      connection.send(data, { binary: isBinary });
    },
    ...route,
    open(connection) {
      harness.connections.push(connection);
      route.open?.(connection);
    },
    close(connection, info) {
      harness.closes.push(info);
      route.close?.(connection, info);
    },
    error(connection, error) {
      harness.errors.push(error);
      route.error?.(connection, error);
    },
    drain(connection) {
      harness.drains++;
      route.drain?.(connection);
    },
  });
  harness.port = (await server.listen(0)).port;
  return harness;
}

async function connectRaw(harness: Harness, request: UpgradeRequestOptions = {}): Promise<RawClient> {
  const { client } = await RawClient.upgrade(harness.port, request);
  clients.push(client);
  return client;
}

/** The bytes a server sends for an unfragmented, uncompressed frame. */
function serverFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  return frame({ opcode, payload, mask: false });
}

/**
 * Read the server's close frame after a violation: FIN, no RSV, unmasked,
 * the expected code, a reason of at most 123 bytes; then the server must
 * close the TCP connection (§7.1.1: the server closes first).
 */
async function expectFailure(client: RawClient, code: number): Promise<string> {
  const received = await client.readFrame();
  expect(received.bytes[0]).toBe(0x88);
  expect(received.masked).toBe(false);
  const close = parseClose(received);
  expect(close.code).toBe(code);
  expect(Buffer.byteLength(close.reason)).toBeLessThanOrEqual(123);
  expect(received.bytes).toEqual(serverFrame(OP.close, closePayload(code, close.reason)));
  await client.waitEnd();
  expect(client.buffered).toBe(0);
  return close.reason;
}

describe('framing rules end to end (RFC 6455 §5)', () => {
  it('fails an unmasked client frame with exactly 88 1e 03 ea "client frames must be masked" and closes TCP', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.send({ opcode: OP.text, payload: 'hi', mask: false });
    const received = await client.readFrame();
    expect(received.bytes).toEqual(Buffer.concat([Buffer.from([0x88, 0x1e, 0x03, 0xea]), Buffer.from('client frames must be masked')]));
    await client.waitEnd();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    const info = harness.closes[0]!;
    expect(info).toMatchObject({ code: 1006, wasClean: false, initiator: 'local' });
    expect(info.error).toMatchObject({ name: 'ProtocolError', code: 'WS_ERR_EXPECTED_MASK', closeCode: 1002 });
    expect(harness.errors).toHaveLength(1);
  });

  const violations: Array<[string, FrameSpec[] | Buffer, number]> = [
    ['RSV1 without a negotiated extension', [{ opcode: OP.text, payload: 'x', rsv1: true }], 1002],
    ['RSV2', [{ opcode: OP.text, payload: 'x', rsv2: true }], 1002],
    ['RSV3', [{ opcode: OP.binary, payload: 'x', rsv3: true }], 1002],
    ['unknown data opcode 0x3', [{ opcode: 0x3, payload: 'x' }], 1002],
    ['unknown control opcode 0xb', [{ opcode: 0xb }], 1002],
    ['a fragmented ping', [{ opcode: OP.ping, payload: 'p', fin: false }], 1002],
    ['a ping of 126 bytes', [{ opcode: OP.ping, payload: Buffer.alloc(126, 1) }], 1002],
    ['a continuation frame without a message in progress', [{ opcode: OP.continuation, payload: 'x' }], 1002],
    [
      'a new text frame while a fragmented message is in progress',
      [
        { opcode: OP.text, payload: 'a', fin: false },
        { opcode: OP.text, payload: 'b' },
      ],
      1002,
    ],
    // §5.2: a 16-bit length field holding 5.
    ['a non-minimal length encoding', Buffer.from([0x82, 0xfe, 0x00, 0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5]), 1002],
    ['invalid UTF-8 in a single text frame', [{ opcode: OP.text, payload: Buffer.from([0x68, 0x69, 0xc0, 0xaf]) }], 1007],
    ['a text frame ending inside a UTF-8 sequence', [{ opcode: OP.text, payload: Buffer.from([0x61, 0xe2, 0x82]) }], 1007],
    ['a close frame with a 1-byte payload', [{ opcode: OP.close, payload: Buffer.from([0x03]) }], 1002],
    ['a close reason that is not UTF-8', [{ opcode: OP.close, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }], 1007],
  ];

  it.each(violations)('fails %s with %i', async (_what, input, code) => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.write(Buffer.isBuffer(input) ? input : Buffer.concat(input.map(frame)));
    await expectFailure(client, code);
  });

  it.each([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000])('fails a close frame with code %i with 1002', async (code) => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.send({ opcode: OP.close, payload: closePayload(code, 'x') });
    const reason = await expectFailure(client, 1002);
    expect(reason).toBe(`invalid close code ${code}`);
  });

  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999])('echoes a close frame with code %i', async (code) => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.send({ opcode: OP.close, payload: closePayload(code, 'bye') });
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.close, closePayload(code)));
    await client.waitEnd();
  });

  it('fails invalid UTF-8 in a middle fragment before the last fragment is sent', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.send({ opcode: OP.text, payload: 'valid start ', fin: false });
    client.send({ opcode: OP.continuation, payload: Buffer.from([0x61, 0xff]), fin: false });
    const reason = await expectFailure(client, 1007);
    expect(reason).toBe('text message is not valid UTF-8');
  });

  it('fails a UTF-8 sequence broken across a fragment boundary before the last fragment is sent', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    // E2 82 starts a 3-byte sequence (U+20AC); the next fragment continues it with 0x28, not a continuation byte.
    client.send({ opcode: OP.text, payload: Buffer.from([0x61, 0xe2, 0x82]), fin: false });
    client.send({ opcode: OP.continuation, payload: Buffer.from([0x28, 0x61]), fin: false });
    await expectFailure(client, 1007);
  });

  it('accepts a UTF-8 sequence split across fragments', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const euro = Buffer.from('€uro', 'utf8');
    client.send({ opcode: OP.text, payload: euro.subarray(0, 1), fin: false });
    client.send({ opcode: OP.continuation, payload: euro.subarray(1, 2), fin: false });
    client.send({ opcode: OP.continuation, payload: euro.subarray(2) });
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, '€uro'));
  });

  it('fails a single frame over maxMessageSize with 1009', async () => {
    const harness = await start({ maxMessageSize: 1024 });
    const client = await connectRaw(harness);
    client.send({ opcode: OP.binary, payload: Buffer.alloc(1024, 7) });
    expect((await client.readFrame()).payload).toEqual(Buffer.alloc(1024, 7));
    client.send({ opcode: OP.binary, payload: Buffer.alloc(1025, 7) });
    await expectFailure(client, 1009);
  });

  it('fails a fragmented message over maxMessageSize with 1009 before it ends', async () => {
    const harness = await start({ maxMessageSize: 1024 });
    const client = await connectRaw(harness);
    client.send({ opcode: OP.text, payload: 'a'.repeat(600), fin: false });
    client.send({ opcode: OP.continuation, payload: 'b'.repeat(600), fin: false });
    await expectFailure(client, 1009);
  });

  it("applies a route's maxMessageSize over the server's", async () => {
    const harness = await start({ maxMessageSize: 1 << 20 }, { maxMessageSize: 10 });
    const client = await connectRaw(harness);
    client.send({ opcode: OP.text, payload: 'eleven char' });
    await expectFailure(client, 1009);
  });

  it('ignores whatever the client sends after the violation', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.write(
      Buffer.concat([frame({ opcode: 0x3 }), frame({ opcode: OP.text, payload: 'not echoed' }), frame({ opcode: OP.ping, payload: 'not answered' })]),
    );
    await expectFailure(client, 1002);
  });
});

describe('fragmented messages and control frames (§5.4, §5.5)', () => {
  it('answers each ping with an identical pong while a fragmented message is in progress', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const parts = ['one ', 'two ', 'three ', 'four'];
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      client.send({ opcode: i === 0 ? OP.text : OP.continuation, payload: parts[i]!, fin: last });
      if (last) break;
      const ping = `ping ${i}`;
      client.send({ opcode: OP.ping, payload: ping });
      // The pong is the next frame: nothing of the message was echoed early.
      expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.pong, ping));
    }
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'one two three four'));
  });

  it('answers an empty ping with an empty pong and ignores unsolicited pongs', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.send({ opcode: OP.pong, payload: 'unsolicited' });
    client.send({ opcode: OP.ping });
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x8a, 0x00]));
  });

  it('answers a ping of 125 bytes, the largest allowed', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const payload = Buffer.alloc(125, 0x5a);
    client.send({ opcode: OP.ping, payload });
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.pong, payload));
  });

  it('reassembles a binary message with empty fragments and extended lengths', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const big = Buffer.alloc(70_000, 0xab);
    client.send({ opcode: OP.binary, payload: Buffer.alloc(0), fin: false });
    client.send({ opcode: OP.continuation, payload: big.subarray(0, 300), fin: false });
    client.send({ opcode: OP.continuation, payload: Buffer.alloc(0), fin: false });
    client.send({ opcode: OP.continuation, payload: big.subarray(300) });
    const echoed = await client.readFrame();
    expect(echoed.bytes.subarray(0, 10)).toEqual(Buffer.from([0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]));
    expect(echoed.payload.equals(big)).toBe(true);
  });

  it('delivers frames that arrive one byte at a time', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const bytes = Buffer.concat([
      frame({ opcode: OP.text, payload: 'sl', fin: false }),
      frame({ opcode: OP.ping, payload: 'p' }),
      frame({ opcode: OP.continuation, payload: 'ow' }),
    ]);
    for (const byte of bytes) {
      client.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.pong, 'p'));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'slow'));
  });
});

describe('permessage-deflate on the wire (RFC 7692)', () => {
  const offer = { extra: ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'] };
  const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

  it('accepts an offer and answers with the agreed parameters', async () => {
    const harness = await start({ perMessageDeflate: true });
    const { client, response } = await RawClient.upgrade(harness.port, offer);
    clients.push(client);
    expect(response.headers.get('sec-websocket-extensions')).toBe('permessage-deflate');
    expect(harness.connections[0]!.extensions).toBe('permessage-deflate');
  });

  it('does not negotiate when the server has it off', async () => {
    const harness = await start();
    const { client, response } = await RawClient.upgrade(harness.port, offer);
    clients.push(client);
    expect(response.headers.has('sec-websocket-extensions')).toBe(false);
    client.send({ opcode: OP.text, payload: deflateMessage('x'), rsv1: true });
    await expectFailure(client, 1002);
  });

  it('handles compressed and uncompressed messages mixed, in order', async () => {
    const harness = await start({ perMessageDeflate: true });
    const client = await connectRaw(harness, offer);
    const fragmented = deflateMessage('compressed and fragmented');
    client.write(
      Buffer.concat([
        frame({ opcode: OP.text, payload: deflateMessage('first, compressed'), rsv1: true }),
        frame({ opcode: OP.text, payload: 'second, plain' }),
        frame({ opcode: OP.text, payload: fragmented.subarray(0, 5), rsv1: true, fin: false }),
        frame({ opcode: OP.ping, payload: 'mid' }),
        frame({ opcode: OP.continuation, payload: fragmented.subarray(5) }),
        frame({ opcode: OP.binary, payload: deflateMessage(Buffer.from([0, 1, 2, 3])), rsv1: true }),
        frame({ opcode: OP.binary, payload: Buffer.from([9, 9]) }),
        // §7.2.3.6: an empty message compresses to a single 0x00 byte.
        frame({ opcode: OP.text, payload: Buffer.from([0x00]), rsv1: true }),
      ]),
    );
    // Replies under the 1024-byte threshold go out uncompressed.
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'first, compressed'));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'second, plain'));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.pong, 'mid'));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'compressed and fragmented'));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.binary, Buffer.from([0, 1, 2, 3])));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.binary, Buffer.from([9, 9])));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, ''));
  });

  it('compresses replies over the threshold, with RSV1 on the first frame only', async () => {
    const harness = await start({ perMessageDeflate: true });
    const client = await connectRaw(harness, offer);
    const text = 'sockeye '.repeat(500);
    client.send({ opcode: OP.text, payload: deflateMessage(text), rsv1: true });
    const reply = await client.readFrame();
    expect(reply).toMatchObject({ fin: true, rsv1: true, opcode: OP.text, masked: false });
    expect(reply.payload.length).toBeLessThan(text.length / 10);
    // §7.2.2: append 00 00 ff ff and inflate; the stream is sync-flushed, not finished.
    const inflated = inflateRawSync(Buffer.concat([reply.payload, TAIL]), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    expect(inflated.toString('utf8')).toBe(text);
  });

  it('fails a compressed bomb over maxMessageSize with 1009 quickly', async () => {
    const harness = await start({ perMessageDeflate: true, maxMessageSize: 64 * 1024 });
    const client = await connectRaw(harness, offer);
    const bomb = deflateMessage(Buffer.alloc(32 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const started = performance.now();
    client.send({ opcode: OP.binary, payload: bomb, rsv1: true });
    const reason = await expectFailure(client, 1009);
    expect(reason).toContain('decompressed message exceeds 65536 bytes');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('fails RSV1 on a continuation frame with 1002', async () => {
    const harness = await start({ perMessageDeflate: true });
    const client = await connectRaw(harness, offer);
    const data = deflateMessage('some text to split');
    client.send({ opcode: OP.text, payload: data.subarray(0, 4), rsv1: true, fin: false });
    client.send({ opcode: OP.continuation, payload: data.subarray(4), rsv1: true });
    await expectFailure(client, 1002);
  });

  it('fails RSV1 on a control frame with 1002', async () => {
    const harness = await start({ perMessageDeflate: true });
    const client = await connectRaw(harness, offer);
    client.send({ opcode: OP.ping, payload: 'p', rsv1: true });
    await expectFailure(client, 1002);
  });

  it('fails data that does not inflate with 1007', async () => {
    const harness = await start({ perMessageDeflate: true });
    const client = await connectRaw(harness, offer);
    // BTYPE 11 is reserved (RFC 1951 §3.2.3): an error in the first byte.
    client.send({ opcode: OP.text, payload: Buffer.from([0xff, 0xff, 0xff]), rsv1: true });
    await expectFailure(client, 1007);
  });
});

describe('closing handshake (§7.1)', () => {
  it('echoes the status code of a client-initiated close, closes TCP, and reports a clean remote close', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.send({ opcode: OP.close, payload: closePayload(1000, 'done') });
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    await client.waitEnd();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    expect(harness.closes[0]).toEqual({ code: 1000, reason: 'done', wasClean: true, initiator: 'remote' });
    expect(harness.errors).toEqual([]);
  });

  it('answers an empty close frame with an empty one and reports 1005', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.send({ opcode: OP.close });
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x88, 0x00]));
    await client.waitEnd();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    expect(harness.closes[0]).toMatchObject({ code: 1005, reason: '', wasClean: true, initiator: 'remote' });
  });

  it('delivers messages that precede the close frame in the same packet, then nothing after it', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.write(
      Buffer.concat([
        frame({ opcode: OP.text, payload: 'before' }),
        frame({ opcode: OP.close, payload: closePayload(1001) }),
        frame({ opcode: OP.text, payload: 'after' }),
      ]),
    );
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'before'));
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.close, closePayload(1001)));
    await client.waitEnd();
    expect(client.buffered).toBe(0);
  });

  it('sends exactly 88 05 0f a0 62 79 65 for close(4000, "bye") and reports a clean local close', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const connection = harness.connections[0]!;
    connection.close(4000, 'bye');
    expect(connection.state).toBe('closing');
    expect(connection.send('too late')).toBe('closed');
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x88, 0x05, 0x0f, 0xa0, 0x62, 0x79, 0x65]));
    // The server waits for the answer before closing TCP.
    expect(await settlesWithin(client.waitEnd(), 50)).toBe(false);
    client.send({ opcode: OP.close, payload: closePayload(4000, 'ok') });
    await client.waitEnd();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    expect(harness.closes[0]).toEqual({ code: 4000, reason: 'ok', wasClean: true, initiator: 'local' });
    expect(connection.state).toBe('closed');
  });

  it('still delivers messages the client sent before answering a server close', async () => {
    const received: string[] = [];
    const harness = await start({}, { message: (_c, data) => received.push(String(data)) });
    const client = await connectRaw(harness);
    harness.connections[0]!.close(1000);
    await client.readFrame();
    client.send({ opcode: OP.text, payload: 'in flight' });
    client.send({ opcode: OP.close, payload: closePayload(1000) });
    await client.waitEnd();
    expect(received).toEqual(['in flight']);
  });

  it('destroys the socket after closeTimeout when the peer never answers the close frame', async () => {
    const harness = await start({ closeTimeout: 100 });
    const client = await connectRaw(harness);
    // The timer starts inside close(): taken before it, `started` makes the lower bound sound on any machine.
    const started = performance.now();
    harness.connections[0]!.close(1000, 'please answer');
    expect(parseClose(await client.readFrame())).toEqual({ code: 1000, reason: 'please answer' });
    // The close timeout is the connection's own timer on the real clock: the upper bound only
    // catches a timeout that never fires, so it leaves a busy machine seconds of room.
    await client.waitEnd(5000);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(90);
    expect(elapsed).toBeLessThan(5000);
    await until(() => harness.closes.length === 1, 'the close event');
    const info = harness.closes[0]!;
    expect(info).toMatchObject({ code: 1006, wasClean: false, initiator: 'local' });
    expect(info.error).toMatchObject({ name: 'ConnectionError', code: 'WS_ERR_CLOSE_TIMEOUT' });
  });

  it('closes a connection whose peer ends TCP without a close frame', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.socket.end();
    await client.waitClosed(1000);
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    expect(harness.closes[0]).toMatchObject({ code: 1006, wasClean: false, initiator: 'transport' });
  });

  it('reports a connection that drops without a close frame as 1006 from the transport', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    client.destroy();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    const info = harness.closes[0]!;
    expect(info).toMatchObject({ code: 1006, wasClean: false, initiator: 'transport' });
    expect(info.error).toMatchObject({ code: 'WS_ERR_CONNECTION_LOST' });
  });
});

describe('backpressure', () => {
  const MiB = 1024 * 1024;

  /** Send 1 MiB messages, one per event-loop turn, until `stop` says so (at most 200). */
  async function flood(connection: Connection<unknown>, stop: (status: SendStatus) => boolean): Promise<SendStatus[]> {
    const statuses: SendStatus[] = [];
    for (let i = 0; i < 200; i++) {
      const message = Buffer.alloc(MiB, i & 0xff);
      const status = connection.send(message);
      statuses.push(status);
      if (stop(status)) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return statuses;
  }

  it("with the 'close' policy, queues while the peer is slow and closes once maxBufferedAmount is exceeded", async () => {
    const harness = await start({ maxBufferedAmount: 2 * MiB, highWaterMark: 64 * 1024 });
    const client = await connectRaw(harness);
    client.pause();
    const connection = harness.connections[0]!;
    const statuses = await flood(connection, (status) => status === 'closed');
    expect(statuses[0]).toBe('queued');
    expect(statuses.at(-1)).toBe('closed');
    expect(statuses.slice(0, -1).every((status) => status === 'queued')).toBe(true);
    await until(() => harness.closes.length === 1, 'the close event', 2000);
    expect(harness.closes[0]).toMatchObject({ code: 1006, wasClean: false });
    expect(harness.closes[0]!.error).toMatchObject({ code: 'WS_ERR_BUFFER_LIMIT' });
    expect(connection.send('more')).toBe('closed');
  });

  it("with the 'drop' policy, refuses and counts messages, keeps the connection, and drains when the peer reads again", async () => {
    const harness = await start({ maxBufferedAmount: 2 * MiB, backpressurePolicy: 'drop' });
    const client = await connectRaw(harness);
    client.pause();
    const connection = harness.connections[0]!;
    const statuses = await flood(connection, (status) => status === 'dropped');
    statuses.push(connection.send(Buffer.alloc(MiB)), connection.send(Buffer.alloc(MiB)));
    const accepted = statuses.filter((status) => status === 'queued').length;
    expect(statuses.slice(0, accepted).every((status) => status === 'queued')).toBe(true);
    expect(statuses.slice(accepted)).toEqual(['dropped', 'dropped', 'dropped']);
    expect(connection.droppedMessages).toBe(3);
    expect(connection.bufferedAmount).toBeGreaterThan(64 * 1024);
    expect(connection.state).toBe('open');

    const drained = connection.drained();
    expect(await settlesWithin(drained, 50)).toBe(false);
    client.resume();
    expect(await settlesWithin(drained, 5000)).toBe(true);
    expect(harness.drains).toBeGreaterThanOrEqual(1);
    // Every accepted message arrives whole and in order; the dropped ones never do.
    for (let i = 0; i < accepted; i++) {
      const received = await client.readFrame(5000);
      expect(received.bytes.subarray(0, 10)).toEqual(Buffer.from([0x82, 0x7f, 0, 0, 0, 0, 0, 0x10, 0, 0]));
      expect(received.payload.equals(Buffer.alloc(MiB, i & 0xff))).toBe(true);
    }
    expect(connection.send('after')).toBe('written');
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'after'));
    expect(harness.closes).toEqual([]);
  });

  it("answers 'written' while buffered data stays under the high-water mark", async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const connection = harness.connections[0]!;
    expect(connection.send('small')).toBe('written');
    expect(connection.bufferedAmount).toBe(7);
    await connection.drained();
    expect((await client.readFrame()).bytes).toEqual(serverFrame(OP.text, 'small'));
    expect(connection.bufferedAmount).toBe(0);
  });
});

describe('ping round trip', () => {
  it('resolves connection.ping() with the RTT once the matching pong arrives', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const connection = harness.connections[0]!;
    const pongs: Array<[string, number | undefined]> = [];
    connection.on('pong', (payload, rtt) => pongs.push([payload.toString(), rtt]));
    const rtt = connection.ping('abc');
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x89, 0x03, 0x61, 0x62, 0x63]));
    client.send({ opcode: OP.pong, payload: 'xyz' });
    expect(await settlesWithin(rtt, 50)).toBe(false);
    client.send({ opcode: OP.pong, payload: 'abc' });
    const value = await rtt;
    expect(value).toBeGreaterThanOrEqual(0);
    expect(value).toBeLessThan(1000);
    expect(pongs).toEqual([
      ['xyz', undefined],
      ['abc', value],
    ]);
  });

  it('rejects a pending ping when the connection closes first', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const rtt = harness.connections[0]!.ping();
    const outcome = rtt.then(
      () => 'resolved',
      (error: Error & { code?: string }) => error.code,
    );
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x89, 0x00]));
    client.destroy();
    expect(await outcome).toBe('WS_ERR_NOT_OPEN');
  });

  it('refuses ping() and send() once the peer is gone without a close frame', async () => {
    const harness = await start();
    const client = await connectRaw(harness);
    const connection = harness.connections[0]!;
    client.destroy();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    expect(connection.state).toBe('closed');
    expect(connection.send('anyone?')).toBe('closed');
    expect(connection.sendFragment('anyone?', true)).toBe('closed');
    const outcome = connection.ping('x').then(
      () => 'resolved',
      (error: Error & { code?: string }) => error.code,
    );
    expect(await settlesWithin(outcome, 500)).toBe(true);
    expect(await outcome).toBe('WS_ERR_NOT_OPEN');
  });
});
