import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, WebSocketServer, type CloseInfo, type Connection } from '../../src/index.js';
import { computeAcceptKey } from '../../src/protocol/handshake/accept-key.js';
import { ManualClock } from './manual-clock.js';
import { until } from '../wait.js';

/**
 * connect()'s `heartbeat` option, its ticks stepped on a manual clock: a
 * ping per tick, and a drop at the tick that finds the previous ping
 * unanswered (nothing at all received since it went out).
 */

const peers: Server[] = [];
const peerSockets: Socket[] = [];
const servers: WebSocketServer[] = [];
const clients: Connection<undefined>[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  for (const socket of peerSockets.splice(0)) socket.destroy();
  await Promise.all(peers.splice(0).map((peer) => new Promise((resolve) => peer.close(resolve))));
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

/** A peer that completes the upgrade, then only records what it receives: it never answers a ping. */
async function silentPeer(): Promise<{ url: string; received: () => Buffer }> {
  let received = Buffer.alloc(0);
  const peer = createServer((socket) => {
    peerSockets.push(socket);
    socket.on('error', () => {});
    let head = '';
    let upgraded = false;
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) {
        received = Buffer.concat([received, chunk]);
        return;
      }
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      upgraded = true;
      const key = /^sec-websocket-key:[ \t]*(\S+)/im.exec(head)?.[1] ?? '';
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n\r\n`,
      );
    });
  });
  peers.push(peer);
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  return { url: `ws://127.0.0.1:${(peer.address() as AddressInfo).port}/`, received: () => received };
}

describe('the client heartbeat', () => {
  it('pings at each tick and drops a peer that stays silent at the next one, saying why', async () => {
    const peer = await silentPeer();
    const clock = new ManualClock();
    const client = await connect(peer.url, { heartbeat: 100, timers: clock, perMessageDeflate: false });
    clients.push(client);
    const closed = new Promise<CloseInfo>((resolve) => client.once('close', resolve));

    clock.advance(100);
    // RFC 6455 §5.5.2: an empty ping, masked as every client frame is (§5.3): 2 header bytes and the 4-byte key.
    await until(() => peer.received().length >= 6, 'the first ping at the peer');
    expect(peer.received().subarray(0, 2)).toEqual(Buffer.from([0x89, 0x80]));
    expect(client.state).toBe('open');

    clock.advance(100);
    const info = await closed;
    expect(info).toMatchObject({ code: 1006, reason: 'no pong within 100 ms', wasClean: false, initiator: 'local' });
    expect(info.error).toMatchObject({ name: 'ConnectionError', code: 'WS_ERR_HEARTBEAT_TIMEOUT' });
    // One ping, nothing else before the close frame (opcode 8) that went out with the drop.
    await until(() => peer.received().length > 6, 'the close frame at the peer');
    expect(peer.received()[6]).toBe(0x88);
  });

  it('keeps a connection whose server answers every ping', async () => {
    const server = new WebSocketServer({ heartbeat: false }).route('*', {});
    servers.push(server);
    const { port } = await server.listen(0);
    const clock = new ManualClock();
    const client = await connect(`ws://127.0.0.1:${port}/`, { heartbeat: 100, timers: clock });
    clients.push(client);
    let pongs = 0;
    client.on('pong', () => void pongs++);
    for (let tick = 1; tick <= 4; tick++) {
      clock.advance(100);
      await until(() => pongs === tick, `the pong to ping ${tick}`);
      expect(client.state).toBe('open');
    }
  });
});
