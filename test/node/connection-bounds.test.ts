import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from '../../src/index.js';
import { Connection, type CloseInfo, type SendStatus } from '../../src/node/connection.js';
import type { CompressionCodec } from '../../src/protocol/codec.js';
import { Opcode } from '../../src/protocol/opcode.js';
import { Role } from '../../src/protocol/role.js';
import { ManualSocket } from './manual-socket.js';
import { bufferMemory, MiB } from './memory.js';
import { useSocketPairs } from './socket-pair.js';
import { frame, OP, RawClient } from './raw-client.js';
import { until } from '../wait.js';

/**
 * Output bounds (issue 9, items 1 and 3): frames the connection writes on
 * its own (pongs) count against the limits, a peer that sends without
 * reading is stopped by TCP backpressure and cut off, and data waiting for
 * the permessage-deflate compressor counts in `bufferedAmount`, in `send()`
 * statuses and in the buffer limit.
 */

const socketPair = useSocketPairs();
const wsServers: WebSocketServer[] = [];
const rawClients: RawClient[] = [];

afterEach(async () => {
  for (const client of rawClients.splice(0)) client.destroy();
  await Promise.all(wsServers.splice(0).map((s) => s.close({ timeout: 100 })));
});

function closed(connection: Connection<unknown>): Promise<CloseInfo> {
  return new Promise((resolve) => connection.once('close', resolve));
}

/** A masked ping from a client (server side's view), with a 125-byte payload: 131 bytes on the wire. */
const PING = frame({ opcode: OP.ping, payload: Buffer.alloc(125, 0x70) });

describe('a peer that pings and never reads', () => {
  it('is stopped by TCP backpressure with bounded memory, then cut off by the heartbeat', async () => {
    const [local, peer] = await socketPair();
    peer.on('error', () => {}); // reset when the server gives up on it
    peer.pause(); // reads nothing, ever
    const connection = Connection.adopt(local, { role: Role.Server, closeTimeout: 200 }, undefined);
    const ending = closed(connection);
    let pings = 0;
    connection.on('ping', () => pings++);
    // 200,000 pings in writes of 1,000 (131 KB each): 26 MB of input asking for 25 MB of pongs,
    // far more than the kernel buffers between the two ends hold (4 MiB send buffer at most here).
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => PING));
    const before = bufferMemory();

    // Write while the socket takes it, waiting for 'drain' when it does not, until all is
    // written or neither side can move: the server stopped reading and our writes back up.
    const serverStopped = (): boolean => local.isPaused();
    let stalled = false;
    for (let writes = 0; writes < 200 && !stalled; writes++) {
      if (peer.write(burst)) continue;
      stalled = await new Promise<boolean>((resolve) => {
        const deadline = performance.now() + 10_000;
        const poll = setInterval(() => {
          if (serverStopped() && peer.writableLength > 0) finish(true);
          else if (performance.now() > deadline) finish(false);
        }, 5);
        const onDrain = (): void => finish(false);
        function finish(value: boolean): void {
          clearInterval(poll);
          peer.off('drain', onDrain);
          resolve(value);
        }
        peer.once('drain', onDrain);
      });
    }
    // Whether the rest waits in our socket or in kernel buffers, the server must have stopped.
    await until(serverStopped, 'the server to stop reading', 10_000);
    const growth = bufferMemory() - before;

    // Without the bound the server reads all 200 writes and keeps ~18 MB of pongs the kernel refused.
    expect(pings).toBeLessThan(200_000);
    expect(connection.bufferedAmount).toBeLessThan(1 * MiB);
    expect(growth).toBeLessThan(8 * MiB);
    expect(connection.state).toBe('open');

    // It is not reading our pongs nor anything else: two heartbeat ticks without a sign of life drop it.
    connection.heartbeat(1000);
    connection.heartbeat(1000);
    const info = await ending;
    expect(info.code).toBe(1006);
    expect(info.error).toMatchObject({ code: 'WS_ERR_HEARTBEAT_TIMEOUT' });
  });
});

describe('output bounds on a transport whose writes the test completes', () => {
  it('fails with WS_ERR_BUFFER_LIMIT when a ping arrives while more than maxBufferedAmount waits, whatever the policy', async () => {
    const socket = new ManualSocket();
    const connection = Connection.adopt(
      socket.asSocket(),
      { role: Role.Server, maxBufferedAmount: 10_000, highWaterMark: 1_000_000, backpressurePolicy: 'drop' },
      undefined,
    );
    const ending = closed(connection);
    // The application's own message may pass the limit when nothing is buffered (the policy's rule)...
    expect(connection.send(Buffer.alloc(20_000))).toBe('written');
    await until(() => socket.heldWrites > 0, 'the batch to reach the socket', 2000);
    expect(connection.bufferedAmount).toBeGreaterThan(10_000);
    // ...but a pong the peer's ping asks for does not get the same pass.
    socket.receive(frame({ opcode: OP.ping, payload: 'x' }));
    const info = await ending;
    expect(info.error).toMatchObject({ code: 'WS_ERR_BUFFER_LIMIT' });
  });

  it('stops reading when input made it write past the high-water mark, and reads again once the output is taken', async () => {
    const socket = new ManualSocket();
    const connection = Connection.adopt(socket.asSocket(), { role: Role.Server, highWaterMark: 1000 }, undefined);
    let pings = 0;
    connection.on('ping', () => pings++);
    const ping = frame({ opcode: OP.ping, payload: Buffer.alloc(100, 1) }); // a 102-byte pong each
    // Output below the mark: reading goes on.
    socket.receive(Buffer.concat(Array.from({ length: 5 }, () => ping)));
    await until(() => socket.heldWrites === 1, 'the first batch', 2000);
    expect(socket.isPaused()).toBe(false);
    // Now 510 bytes wait; 20 more pings make 2,550: the next read that adds output stops reading.
    socket.receive(Buffer.concat(Array.from({ length: 20 }, () => ping)));
    await until(() => pings === 25, 'the second read', 2000);
    await until(() => socket.writableLength === 2550, 'the second batch', 2000);
    socket.receive(ping);
    await until(() => pings === 26, 'the third read', 2000);
    expect(socket.isPaused()).toBe(true);
    // Bytes that arrive now wait in the socket.
    socket.receive(ping);
    await until(() => socket.writableLength === 2652, 'the third batch', 2000);
    expect(pings).toBe(26);
    // The kernel takes the first two batches: 102 bytes left, under the mark, but reading
    // waits for the write made after the pause, which carries the check.
    socket.accept(2);
    expect(socket.writableLength).toBe(102);
    socket.accept(1);
    await until(() => pings === 27, 'reading to resume', 2000);
    expect(socket.isPaused()).toBe(false);
  });

  it("keeps reading while only the application's own sends are backed up", async () => {
    const socket = new ManualSocket();
    const connection = Connection.adopt(socket.asSocket(), { role: Role.Server, highWaterMark: 1000 }, undefined);
    const received: string[] = [];
    connection.on('message', (data) => received.push(String(data)));
    expect(connection.send(Buffer.alloc(50_000))).toBe('queued');
    await until(() => socket.heldWrites > 0, 'the batch to reach the socket', 2000);
    // Two peers that both send a lot must not both stop reading: input that makes no output is read.
    for (let i = 0; i < 3; i++) socket.receive(frame({ opcode: OP.text, payload: `m${i}` }));
    await until(() => received.length === 3, 'the three messages', 2000);
    expect(socket.isPaused()).toBe(false);
  });

  it("reads again only when no reason to pause holds: the application's pause outlasts the output pause", async () => {
    const socket = new ManualSocket();
    const connection = Connection.adopt(socket.asSocket(), { role: Role.Server, highWaterMark: 10 }, undefined);
    let pings = 0;
    connection.on('ping', () => pings++);
    // The first pong (22 bytes) waits in the socket; a second ping while it waits stops reading.
    socket.receive(frame({ opcode: OP.ping, payload: Buffer.alloc(20) }));
    await until(() => socket.writableLength === 22, 'the first pong in the socket', 2000);
    socket.receive(frame({ opcode: OP.ping, payload: Buffer.alloc(20) }));
    await until(() => socket.writableLength === 44, 'the second pong in the socket', 2000);
    expect(socket.isPaused()).toBe(true);
    connection.pause();
    socket.receive(frame({ opcode: OP.ping, payload: 'held' }));
    socket.accept();
    await until(() => socket.heldWrites === 0 && socket.writableLength === 0, 'the output to be taken', 2000);
    // Output drained, but the application still holds reading.
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.isPaused()).toBe(true);
    expect(pings).toBe(2);
    connection.resume();
    await until(() => pings === 3, 'the held ping', 2000);
  });
});

describe('pongs queued behind a compression', () => {
  it('count too: a flood of empty pings during a long compression stops reading', async () => {
    const socket = new ManualSocket();
    const compressions: Array<() => void> = [];
    const codec: CompressionCodec = {
      compress(data, _fin, done) {
        const copy = Uint8Array.from(data);
        compressions.push(() => done(null, copy));
      },
      decompress(data, _fin, _limit, done) {
        done(null, [Uint8Array.from(data)], false);
      },
      close() {},
    };
    const connection = Connection.adopt(socket.asSocket(), { role: Role.Server, deflate: { codec, threshold: 0 } }, undefined);
    let pings = 0;
    connection.on('ping', () => pings++);
    connection.send('held in the compressor');
    await new Promise((resolve) => setImmediate(resolve)); // the stream starts flowing: reads are delivered as they come
    // 50 reads of 1,000 empty pings: each pong waits behind the compression, 2 header bytes each.
    const ping = frame({ opcode: OP.ping });
    const read = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    for (let i = 0; i < 50; i++) socket.receive(read);
    // Past the 64 KiB mark (32,768 pongs) the next read that adds one stops reading.
    expect(socket.isPaused()).toBe(true);
    expect(pings).toBe(33_000);
    expect(connection.bufferedAmount).toBeGreaterThan(64 * 1024);
    // The compression ends, everything is written and taken: reading resumes and the rest is answered.
    compressions.shift()!();
    await until(() => socket.heldWrites > 0, 'the batch', 2000);
    socket.accept();
    await until(() => pings === 50_000, 'the remaining pings', 2000);
  });
});

describe('drain', () => {
  it("comes when output falls under a high-water mark below the socket's own (16 KiB)", async () => {
    const socket = new ManualSocket();
    const connection = Connection.adopt(socket.asSocket(), { role: Role.Server, highWaterMark: 1000 }, undefined);
    let drains = 0;
    connection.on('drain', () => drains++);
    expect(connection.send(Buffer.alloc(5000))).toBe('queued');
    await until(() => socket.heldWrites === 1, 'the batch to reach the socket', 2000);
    // 5,004 bytes wait: under the socket's own mark, so it will not emit 'drain' itself.
    expect(socket.writableNeedDrain).toBe(false);
    expect(drains).toBe(0);
    socket.accept();
    await until(() => drains === 1, 'drain', 2000);
    expect(connection.bufferedAmount).toBe(0);
  });
});

describe('backpressure with permessage-deflate', () => {
  it('counts messages waiting for the compressor: queued, then dropped at the limit, bufferedAmount never 0, memory bounded', async () => {
    const wss = new WebSocketServer({
      heartbeat: false,
      perMessageDeflate: true,
      maxBufferedAmount: 4 * MiB,
      backpressurePolicy: 'drop',
    });
    wsServers.push(wss);
    const opened: Connection<unknown>[] = [];
    wss.route('/', { open: (connection) => void opened.push(connection) });
    const { port } = await wss.listen(0, '127.0.0.1');
    const { client, response } = await RawClient.upgrade(port, { extra: ['Sec-WebSocket-Extensions: permessage-deflate'] });
    rawClients.push(client);
    expect(response.headers.get('sec-websocket-extensions')).toMatch(/^permessage-deflate/);
    client.pause(); // never reads
    await until(() => opened.length === 1, 'the connection', 2000);
    const connection = opened[0]!;
    let framesOut = 0;
    connection.on('wire', (f) => {
      if (f.direction === 'out' && f.opcode === Opcode.Binary) framesOut++;
    });

    // Incompressible, so what is compressed costs as much as it weighs.
    const payload = randomBytes(256 * 1024);
    const before = bufferMemory();
    const statuses: SendStatus[] = [];
    const buffered: number[] = [];
    for (let i = 0; i < 400; i++) {
      statuses.push(connection.send(payload));
      buffered.push(connection.bufferedAmount);
    }
    const accepted = statuses.filter((s) => s !== 'dropped').length;
    // Every accepted message has come out of the compressor and been framed.
    await until(() => framesOut === accepted, 'the accepted messages to be compressed', 20_000);
    const growth = bufferMemory() - before;

    // Each waits for the compressor as 256 KiB plus a 10-byte header: 15 fit in 4 MiB, the 16th would pass it.
    expect(statuses.slice(0, 15)).toEqual(Array(15).fill('queued'));
    expect(statuses.slice(15)).toEqual(Array(385).fill('dropped'));
    expect(connection.droppedMessages).toBe(385);
    expect(Math.min(...buffered)).toBeGreaterThan(0);
    // Unbounded, 400 compressed copies (100 MB) would wait in the socket.
    expect(growth).toBeLessThan(16 * MiB);
  });
});
