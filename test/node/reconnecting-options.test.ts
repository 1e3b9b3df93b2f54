import { afterEach, describe, expect, it } from 'vitest';
import { ReconnectingWebSocket, type ReconnectingWebSocketEventMap } from '../../src/node/reconnecting.js';
import { WebSocketServer } from '../../src/node/server.js';
import type { Connection } from '../../src/node/connection.js';
import { WebSocket } from '../../src/node/websocket.js';
import { useSelfSignedCertificate } from './test-certificates.js';

/**
 * The Node reconnecting client takes what `connect()` takes (headers, TLS,
 * ...) as `connectOptions`, next to its own `protocols`, and uses them on
 * every attempt, reconnections included.
 */

const servers: WebSocketServer[] = [];
const clients: ReconnectingWebSocket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

function nextEvent<K extends keyof ReconnectingWebSocketEventMap>(client: ReconnectingWebSocket, type: K): Promise<ReconnectingWebSocketEventMap[K]> {
  return new Promise((resolve) => {
    const off = client.on(type, (event) => {
      off();
      resolve(event);
    });
  });
}

interface Handshake {
  token: string | undefined;
  origin: string | undefined;
  protocols: readonly string[];
}

describe('ReconnectingWebSocket connectOptions', () => {
  it('sends the headers, origin and subprotocols on the first attempt and on every reconnection', async () => {
    const handshakes: Handshake[] = [];
    const open: Connection<Handshake>[] = [];
    const server = new WebSocketServer({ heartbeat: false });
    servers.push(server);
    server.route<Handshake>('/feed', {
      protocols: ['feed.v2'],
      authenticate(request) {
        const seen = { token: request.headers.get('x-token'), origin: request.origin, protocols: request.protocols };
        handshakes.push(seen);
        return seen;
      },
      open: (connection) => void open.push(connection),
    });
    const { port } = await server.listen(0);

    const client = new ReconnectingWebSocket(`ws://127.0.0.1:${port}/feed`, {
      protocols: ['feed.v2', 'feed.v1'],
      backoff: { initialDelay: 10, maxDelay: 50 },
      connectOptions: { headers: { 'X-Token': 'secret' }, origin: 'https://app.example' },
    });
    clients.push(client);
    expect(await nextEvent(client, 'open')).toMatchObject({ reconnected: false, protocol: 'feed.v2' });

    // The server drops the TCP connection: the client comes back by itself.
    const closed = nextEvent(client, 'close');
    const reopened = nextEvent(client, 'open');
    open[0]!.terminate();
    expect(await closed).toMatchObject({ willReconnect: true });
    expect(await reopened).toMatchObject({ reconnected: true, protocol: 'feed.v2' });

    const expected: Handshake = { token: 'secret', origin: 'https://app.example', protocols: ['feed.v2', 'feed.v1'] };
    expect(handshakes).toEqual([expected, expected]);
  });

  it('refuses connectOptions together with a WebSocket class of its own', () => {
    expect(() => new ReconnectingWebSocket('ws://127.0.0.1:1/', { WebSocket, connectOptions: { headers: { a: 'b' } } })).toThrow(TypeError);
  });

  describe('over TLS', () => {
    const tls = useSelfSignedCertificate();
    let port = 0;

    async function tlsServer(): Promise<void> {
      const server = new WebSocketServer({ tls: { key: tls.key, cert: tls.cert }, heartbeat: false });
      servers.push(server);
      server.route('/echo', { message: (connection, data, isBinary) => connection.send(data, { binary: isBinary }) });
      port = (await server.listen(0)).port;
    }

    it('trusts the CA it is given', async () => {
      await tlsServer();
      const client = new ReconnectingWebSocket(`wss://127.0.0.1:${port}/echo`, { maxAttempts: 1, connectOptions: { tls: { ca: tls.cert } } });
      clients.push(client);
      const first = await Promise.race([nextEvent(client, 'open').then(() => 'open'), nextEvent(client, 'close').then(() => 'close')]);
      expect(first).toBe('open');
      client.send('over tls');
      expect((await nextEvent(client, 'message')).data).toBe('over tls');
    });

    it('fails the attempt without it (the certificate is not trusted by default)', async () => {
      await tlsServer();
      const client = new ReconnectingWebSocket(`wss://127.0.0.1:${port}/echo`, { maxAttempts: 1, connectOptions: { headers: { a: 'b' } } });
      clients.push(client);
      let opened = false;
      client.on('open', () => (opened = true));
      expect((await nextEvent(client, 'close')).willReconnect).toBe(false);
      expect(opened).toBe(false);
    });
  });
});
