import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket as WsClient, WebSocketServer as WsServer } from 'ws';
import { CloseCode, connect, WebSocketServer, type CloseInfo, type Connection } from '../../src/index.js';
import { RawClient, closePayload, OP, parseClose } from './raw-client.js';
import { until } from '../wait.js';

/**
 * Close codes 1012 (service restart), 1013 (try again later) and 1014 (bad
 * gateway), from the IANA registry, on the wire in both directions and in
 * close(); and server.close() checks its code before it stops anything.
 */

const ours: WebSocketServer[] = [];
const theirs: WsServer[] = [];

afterEach(async () => {
  await Promise.all(ours.splice(0).map((server) => server.close({ timeout: 100 }).catch(() => undefined)));
  await Promise.all(theirs.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function closed(connection: Connection<unknown>): Promise<CloseInfo> {
  return new Promise((resolve) => connection.once('close', resolve));
}

describe('1012-1014 from the IANA registry', () => {
  it.each([1012, 1013, 1014])('our client reports %i sent by a ws server, and echoes it', async (code) => {
    const server = new WsServer({ host: '127.0.0.1', port: 0 });
    theirs.push(server);
    const echoed = new Promise<number>((resolve) => {
      server.on('connection', (socket) => {
        socket.on('close', (peerCode) => resolve(peerCode));
        socket.close(code, 'restarting');
      });
    });
    await new Promise((resolve) => server.once('listening', resolve));
    const connection = await connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const info = await closed(connection);
    expect(info).toMatchObject({ code, reason: 'restarting', wasClean: true, initiator: 'remote' });
    expect(await echoed).toBe(code);
  });

  it.each([CloseCode.ServiceRestart, CloseCode.TryAgainLater, CloseCode.BadGateway])(
    'our server closes every connection with %i on shutdown, and a ws client hears it',
    async (code) => {
      const server = new WebSocketServer({ heartbeat: false });
      ours.push(server);
      server.route('/', {});
      const { port } = await server.listen(0);
      const client = new WsClient(`ws://127.0.0.1:${port}/`);
      await new Promise((resolve) => client.once('open', resolve));
      const heard = new Promise<number>((resolve) => client.once('close', (peerCode) => resolve(peerCode)));
      await server.close({ code, reason: 'back soon' });
      expect(await heard).toBe(code);
    },
  );

  it('a peer may send 1013 and our server reports it', async () => {
    const infos: CloseInfo[] = [];
    const server = new WebSocketServer({ heartbeat: false });
    ours.push(server);
    server.route('/', { close: (_connection, info) => void infos.push(info) });
    const { port } = await server.listen(0);
    const { client } = await RawClient.upgrade(port);
    client.send({ opcode: OP.close, payload: closePayload(1013, 'busy') });
    expect(parseClose(await client.readFrame())).toEqual({ code: 1013, reason: '' });
    await client.waitEnd();
    client.destroy();
    await until(() => infos.length > 0, 'the close hook', 2000);
    expect(infos[0]).toMatchObject({ code: 1013, reason: 'busy', wasClean: true });
  });
});

describe('server.close() checks its arguments first', () => {
  it.each([999, 1005, 1006, 1015, 2000, 5000])('close({ code: %i }) rejects and the server still accepts connections', async (code) => {
    const server = new WebSocketServer({ heartbeat: false });
    ours.push(server);
    server.route('/', { message: (connection, data) => void connection.send(data) });
    const { port } = await server.listen(0);
    const before = await connect(`ws://127.0.0.1:${port}/`);
    await expect(server.close({ code })).rejects.toMatchObject({ name: 'UsageError', code: 'WS_ERR_INVALID_CLOSE_CODE' });
    // Still listening, and the open connection was left alone.
    const after = await connect(`ws://127.0.0.1:${port}/`);
    for (const connection of [before, after]) {
      const echoed = new Promise((resolve) => connection.once('message', resolve));
      connection.send('still here');
      expect(await echoed).toBe('still here');
      connection.close(1000);
    }
  });

  it('a reason over 123 bytes is refused the same way', async () => {
    const server = new WebSocketServer({ heartbeat: false });
    ours.push(server);
    server.route('/', {});
    const { port } = await server.listen(0);
    await expect(server.close({ reason: 'x'.repeat(124) })).rejects.toMatchObject({ code: 'WS_ERR_CLOSE_REASON_TOO_LONG' });
    const connection = await connect(`ws://127.0.0.1:${port}/`);
    connection.close(1000);
  });
});
