import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type Connection as PublicConnection } from '../../src/index.js';
import { Connection, type CloseInfo } from '../../src/node/connection.js';
import { Opcode } from '../../src/protocol/opcode.js';
import { Role } from '../../src/protocol/role.js';
import { ManualSocket } from './manual-socket.js';
import { useSocketPairs } from './socket-pair.js';
import { frame, OP, RawClient } from './raw-client.js';
import { until } from '../wait.js';

/**
 * The heartbeat and paused reading (issue 9, item 7). The rule: while the
 * application holds a connection paused (`pause()`, or a message iterator
 * that fell behind), pongs cannot be read, so a heartbeat tick neither
 * pings nor drops it, and `resume()` starts a fresh interval. While reading
 * waits for backed-up output, a peer that keeps taking that output is
 * alive. Ticks are driven by calling `heartbeat()`, the per-tick entry
 * point, so no test waits on a timer.
 */

const socketPair = useSocketPairs();
const wsServers: WebSocketServer[] = [];
const rawClients: RawClient[] = [];

afterEach(async () => {
  for (const client of rawClients.splice(0)) client.destroy();
  await Promise.all(wsServers.splice(0).map((s) => s.close({ timeout: 100 })));
});

/** Pings the connection has written, counted as the core frames them. */
function countPings(connection: Connection<unknown>): { readonly count: number } {
  const counter = { count: 0 };
  connection.on('wire', (f) => {
    if (f.direction === 'out' && f.opcode === Opcode.Ping) counter.count++;
  });
  return counter;
}

describe('heartbeat while the application holds reading paused', () => {
  it('neither pings nor drops, and starts a fresh interval on resume()', async () => {
    const [local, peer] = await socketPair();
    const connection = Connection.adopt(local, { role: Role.Server, closeTimeout: 100 }, undefined);
    const pings = countPings(connection);
    let closeInfo: CloseInfo | null = null;
    connection.on('close', (info) => (closeInfo = info));

    connection.heartbeat(1000); // a ping goes out...
    expect(pings.count).toBe(1);
    connection.pause(); // ...and the application pauses before the pong could be read
    for (let i = 0; i < 5; i++) connection.heartbeat(1000);
    expect(pings.count).toBe(1);
    expect(connection.state).toBe('open');

    connection.resume();
    connection.heartbeat(1000); // fresh interval: a new ping, no drop
    expect(pings.count).toBe(2);
    expect(connection.state).toBe('open');
    // The peer answers (any frame is a sign of life); the next tick pings again.
    const heard = new Promise<void>((resolve) => connection.once('pong', () => resolve()));
    peer.write(frame({ opcode: OP.pong }));
    await heard;
    connection.heartbeat(1000);
    expect(pings.count).toBe(3);
    // And the heartbeat still works: a tick with nothing heard since the last ping drops the peer.
    const closing = new Promise<CloseInfo>((resolve) => connection.once('close', resolve));
    connection.heartbeat(1000);
    expect((await closing).error).toMatchObject({ code: 'WS_ERR_HEARTBEAT_TIMEOUT' });
    expect(closeInfo).not.toBeNull();
  });

  it('is not reset by resume() on a connection that was not paused', async () => {
    const [local] = await socketPair();
    const connection = Connection.adopt(local, { role: Role.Server, closeTimeout: 100 }, undefined);
    const closing = new Promise<CloseInfo>((resolve) => connection.once('close', resolve));
    connection.heartbeat(1000);
    connection.resume();
    connection.heartbeat(1000);
    expect((await closing).error).toMatchObject({ code: 'WS_ERR_HEARTBEAT_TIMEOUT' });
  });

  it('does not drop a peer whose messages wait in an iterator that fell behind', async () => {
    const [local, peer] = await socketPair();
    const connection = Connection.adopt(local, { role: Role.Server }, undefined);
    const iterator = connection.messages({ highWaterMark: 2 });
    peer.write(Buffer.concat([1, 2, 3].map((n) => frame({ opcode: OP.text, payload: `m${n}` }))));
    await until(() => local.isPaused(), 'the iterator to pause reading', 2000);
    for (let i = 0; i < 3; i++) connection.heartbeat(1000);
    expect(connection.state).toBe('open');
    expect((await iterator.next()).value).toBe('m1');
    await iterator.return!();
  });
});

describe('heartbeat while reading waits for backed-up output', () => {
  it('keeps a peer that takes our output, and drops one that stopped taking it', async () => {
    const socket = new ManualSocket();
    const connection = Connection.adopt(socket.asSocket(), { role: Role.Server, highWaterMark: 10, closeTimeout: 100 }, undefined);
    const closing = new Promise<CloseInfo>((resolve) => connection.once('close', resolve));
    // Two pings whose pongs the kernel does not take: reading stops.
    socket.receive(frame({ opcode: OP.ping, payload: Buffer.alloc(20) }));
    await until(() => socket.writableLength === 22, 'the first pong', 2000);
    socket.receive(frame({ opcode: OP.ping, payload: Buffer.alloc(20) }));
    await until(() => socket.writableLength === 44, 'the second pong', 2000);
    expect(socket.isPaused()).toBe(true);

    connection.heartbeat(1000); // ping
    await until(() => socket.writableLength === 46, 'the heartbeat ping', 2000);
    socket.accept(1); // the peer read the first pong: output still over the mark, reading still paused
    expect(socket.isPaused()).toBe(true);
    connection.heartbeat(1000); // progress since the ping: alive
    expect(connection.state).toBe('open');
    connection.heartbeat(1000); // nothing taken since: dropped
    expect((await closing).error).toMatchObject({ code: 'WS_ERR_HEARTBEAT_TIMEOUT' });
  });
});

describe('pause() in the open hook', () => {
  it('holds: the server starts reading only if the hook did not pause', async () => {
    const wss = new WebSocketServer({ heartbeat: false });
    wsServers.push(wss);
    const opened: PublicConnection<unknown>[] = [];
    const received: string[] = [];
    wss.route('/', {
      open(connection) {
        connection.pause();
        opened.push(connection);
      },
      message(_connection, data) {
        received.push(String(data));
      },
    });
    const { port } = await wss.listen(0);
    // The message comes in the same write as the handshake, so it is in hand before the hook runs.
    const { client } = await RawClient.upgrade(port, {}, frame({ opcode: OP.text, payload: 'early' }));
    rawClients.push(client);
    client.send({ opcode: OP.text, payload: 'later' });
    await until(() => opened.length === 1, 'the open hook', 2000);
    const connection = opened[0]!;
    // Neither what came with the handshake nor what came after is read until resume().
    expect((connection as unknown as { socket: Socket }).socket.isPaused()).toBe(true);
    expect(received).toEqual([]);
    connection.resume();
    await until(() => received.length === 2, 'both messages', 2000);
    expect(received).toEqual(['early', 'later']);
  });
});
