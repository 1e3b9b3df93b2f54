import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { reject, WebSocketServer, type CloseInfo, type Route, type ServerOptions } from '../../src/index.js';
import { OP, RawClient, SAMPLE_ACCEPT, SAMPLE_KEY, frame, upgradeRequest } from './raw-client.js';
import { until } from '../wait.js';
import { ManualClock } from './manual-clock.js';

const servers: WebSocketServer[] = [];
const httpServers: HttpServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  await Promise.all(
    httpServers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

const echo: Route<unknown> = {
  message(connection, data, isBinary) {
    connection.send(data, { binary: isBinary });
  },
};

async function start(routes: Record<string, Route<unknown>>, options: ServerOptions = {}): Promise<number> {
  const server = new WebSocketServer({ heartbeat: false, ...options });
  for (const [path, route] of Object.entries(routes)) server.route(path, route);
  servers.push(server);
  return (await server.listen(0)).port;
}

async function open(port: number): Promise<RawClient> {
  const client = await RawClient.open(port);
  clients.push(client);
  return client;
}

/** Send `request` on a fresh connection and read the whole refusal. */
async function refusal(port: number, request: string) {
  const client = await open(port);
  client.write(request);
  const response = await client.readResponse();
  await client.waitEnd();
  return response;
}

async function upgraded(port: number, request: string): Promise<RawClient> {
  const client = await open(port);
  client.write(request);
  const response = await client.readHead();
  expect(response.statusLine).toBe('HTTP/1.1 101 Switching Protocols');
  return client;
}

/** The one text frame a server sends for `text` (unmasked, FIN, no RSV). */
function serverText(text: string): Buffer {
  return frame({ opcode: OP.text, payload: text, mask: false });
}

describe('opening handshake (RFC 6455 §4.2)', () => {
  it('answers the request of §1.3 with exactly the 101 of §1.3', async () => {
    const port = await start({ '/chat': { protocols: ['chat'] } });
    const client = await open(port);
    client.write(
      'GET /chat HTTP/1.1\r\n' +
        'Host: server.example.com\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\n` +
        'Origin: http://example.com\r\n' +
        'Sec-WebSocket-Protocol: chat, superchat\r\n' +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    );
    const response = await client.readHead();
    expect(response.head).toBe(
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
        'Sec-WebSocket-Protocol: chat\r\n\r\n',
    );
    expect(client.buffered).toBe(0);
  });

  it('answers a minimal request with no subprotocol or extension headers', async () => {
    const port = await start({ '*': {} });
    const client = await open(port);
    client.write(upgradeRequest());
    const response = await client.readHead();
    expect(response.head).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' + `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`,
    );
  });

  it('refuses a non-GET method with 405 and Allow: GET, then closes the TCP connection', async () => {
    const port = await start({ '*': {} });
    const response = await refusal(port, upgradeRequest({ method: 'POST' }));
    expect(response.statusLine).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(response.headers.get('allow')).toBe('GET');
    expect(response.headers.get('connection')).toBe('close');
    expect(response.body).toContain('POST');
  });

  it('refuses version 8 with 426 and Sec-WebSocket-Version: 13', async () => {
    const port = await start({ '*': {} });
    const request = upgradeRequest({ omit: ['Sec-WebSocket-Version'], extra: ['Sec-WebSocket-Version: 8'] });
    const response = await refusal(port, request);
    expect(response.status).toBe(426);
    expect(response.headers.get('sec-websocket-version')).toBe('13');
    expect(response.headers.get('upgrade')).toBe('websocket');
  });

  it('refuses a missing Sec-WebSocket-Version with 426', async () => {
    const port = await start({ '*': {} });
    const response = await refusal(port, upgradeRequest({ omit: ['Sec-WebSocket-Version'] }));
    expect(response.status).toBe(426);
    expect(response.headers.get('sec-websocket-version')).toBe('13');
  });

  it.each([
    ['not base64 of 16 bytes', ['Sec-WebSocket-Key: not-a-key']],
    ['base64 of 15 bytes', ['Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA']],
    ['missing', []],
  ])('refuses a Sec-WebSocket-Key that is %s with 400', async (_what, lines) => {
    const port = await start({ '*': {} });
    const response = await refusal(port, upgradeRequest({ omit: ['Sec-WebSocket-Key'], extra: lines }));
    expect(response.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(response.body).toContain('Sec-WebSocket-Key');
  });

  it('refuses a request without Host with 400', async () => {
    const port = await start({ '*': {} });
    const response = await refusal(port, upgradeRequest({ omit: ['Host'] }));
    expect(response.status).toBe(400);
    expect(response.body).toBe('missing Host header');
  });

  it('refuses a request without Upgrade: websocket with 426 naming the protocol', async () => {
    const port = await start({ '*': {} });
    const response = await refusal(port, upgradeRequest({ omit: ['Upgrade'] }));
    expect(response.status).toBe(426);
    expect(response.headers.get('upgrade')).toBe('websocket');
    expect(response.headers.get('connection')).toBe('Upgrade, close');
  });

  it('refuses a request without Connection: Upgrade with 426', async () => {
    const port = await start({ '*': {} });
    const response = await refusal(port, upgradeRequest({ omit: ['Connection'], extra: ['Connection: keep-alive'] }));
    expect(response.status).toBe(426);
    expect(response.body).toBe('expected Connection: Upgrade');
  });

  it('refuses a malformed Sec-WebSocket-Extensions header with 400', async () => {
    const port = await start({ '*': {} }, { perMessageDeflate: true });
    const response = await refusal(port, upgradeRequest({ extra: ['Sec-WebSocket-Extensions: permessage-deflate;;'] }));
    expect(response.status).toBe(400);
    expect(response.body).toContain('Sec-WebSocket-Extensions');
  });

  it('refuses an upgrade head larger than the limit with 431', async () => {
    const port = await start({ '*': {} });
    // 40 lines of 500 bytes: every line and the count are fine, the 16 KiB total is not.
    const filler = Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${'a'.repeat(500)}`);
    const response = await refusal(port, upgradeRequest({ extra: filler }));
    expect(response.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });

  it('refuses more than 100 header lines with 431', async () => {
    const port = await start({ '*': {} });
    const many = Array.from({ length: 101 }, (_, i) => `X-H${i}: 1`);
    const response = await refusal(port, upgradeRequest({ extra: many }));
    expect(response.status).toBe(431);
  });

  it('refuses one header line over 8 KiB with 431', async () => {
    const port = await start({ '*': {} });
    const response = await refusal(port, upgradeRequest({ extra: [`X-Long: ${'b'.repeat(8 * 1024)}`] }));
    expect(response.status).toBe(431);
  });

  it('applies the server headLimits option', async () => {
    const port = await start({ '*': {} }, { headLimits: { maxHeaders: 5 } });
    const response = await refusal(port, upgradeRequest({ extra: ['X-One: 1'] }));
    expect(response.status).toBe(431);
    const client = await upgraded(port, upgradeRequest());
    expect(client.buffered).toBe(0);
  });

  it('answers 404 for a path no route serves when only specific routes exist', async () => {
    const port = await start({ '/chat': {}, '/clock': {} });
    const response = await refusal(port, upgradeRequest({ path: '/nope?x=1' }));
    expect(response.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(response.body).toBe('no WebSocket endpoint at /nope');
    await upgraded(port, upgradeRequest({ path: '/clock?x=1' }));
  });

  /**
   * On a manual clock: nothing is refused a millisecond before the deadline
   * (the sweep runs inside `advance`, and a refusal is counted as it is
   * made), and the refusal is made by the deadline plus a quarter of the
   * timeout, the sweep's documented lateness.
   */
  async function stepPastDeadline(clock: ManualClock, server: WebSocketServer, timeout: number): Promise<void> {
    await until(() => clock.pending > 0, 'the server to take the connection');
    clock.advance(timeout - 1);
    expect(server.counters().refused).toEqual({});
    clock.advance(timeout / 4 + 1);
    expect(server.counters().refused).toEqual({ 408: 1 });
  }

  it('cuts off a client that sends half a request and stalls, at the handshake timeout', async () => {
    const clock = new ManualClock();
    const port = await start({ '*': {} }, { handshakeTimeout: 100, timers: clock });
    const client = await open(port);
    client.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websock');
    await stepPastDeadline(clock, servers.at(-1)!, 100);
    const response = await client.readResponse();
    await client.waitEnd();
    expect(response.status).toBe(408);
  });

  it('cuts off a client that connects and sends nothing', async () => {
    const clock = new ManualClock();
    const port = await start({ '*': {} }, { handshakeTimeout: 80, timers: clock });
    const client = await open(port);
    await stepPastDeadline(clock, servers.at(-1)!, 80);
    const response = await client.readResponse();
    expect(response.status).toBe(408);
    await client.waitEnd();
  });

  it('processes frames that arrive in the same packet as the upgrade request', async () => {
    const port = await start({ '*': echo });
    const client = await open(port);
    client.write(
      Buffer.concat([
        Buffer.from(upgradeRequest(), 'latin1'),
        frame({ opcode: OP.text, payload: 'first' }),
        frame({ opcode: OP.binary, payload: Buffer.from([1, 2, 3]) }),
      ]),
    );
    expect((await client.readHead()).status).toBe(101);
    expect((await client.readFrame()).bytes).toEqual(serverText('first'));
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x82, 0x03, 1, 2, 3]));
  });

  it('processes a request split into single bytes', async () => {
    const port = await start({ '*': echo });
    const client = await open(port);
    const request = Buffer.from(upgradeRequest(), 'latin1');
    for (let i = 0; i < request.length; i++) {
      client.write(request.subarray(i, i + 1));
      if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await client.readHead()).status).toBe(101);
    client.send({ opcode: OP.text, payload: 'ok' });
    expect((await client.readFrame()).bytes).toEqual(serverText('ok'));
  });
});

describe('upgrade pipeline', () => {
  it('refuses an origin outside the allowlist with 403 and accepts one inside it, case-insensitively', async () => {
    const port = await start({ '*': { origins: ['https://app.example'] } });
    const refused = await refusal(port, upgradeRequest({ extra: ['Origin: https://evil.example'] }));
    expect(refused.statusLine).toBe('HTTP/1.1 403 Forbidden');
    expect(refused.body).toBe('origin https://evil.example is not allowed');
    await upgraded(port, upgradeRequest({ extra: ['Origin: https://APP.example'] }));
    // Non-browser clients send no Origin; they pass unless requireOrigin is set.
    await upgraded(port, upgradeRequest());
  });

  it('refuses a request without Origin when requireOrigin is set', async () => {
    const port = await start({ '*': { requireOrigin: true } });
    const refused = await refusal(port, upgradeRequest());
    expect(refused.status).toBe(403);
  });

  it('sends the status and reason of reject() from authenticate', async () => {
    const port = await start({ '*': { authenticate: () => reject(401, 'missing token', [['WWW-Authenticate', 'Bearer']]) } });
    const response = await refusal(port, upgradeRequest());
    expect(response.statusLine).toBe('HTTP/1.1 401 Unauthorized');
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(response.headers.get('content-length')).toBe('13');
    expect(response.body).toBe('missing token');
  });

  it('makes the value authenticate returned from the query string the connection context', async () => {
    const contexts: unknown[] = [];
    const route: Route<{ user: string }> = {
      authenticate(request) {
        const token = request.query.get('token');
        return token === null ? reject(401, 'missing token') : { user: token };
      },
      open(connection) {
        contexts.push(connection.context);
        connection.send(`hello ${connection.context.user}`);
      },
    };
    const server = new WebSocketServer({ heartbeat: false }).route('/ws', route);
    servers.push(server);
    const { port } = await server.listen(0);
    const client = await upgraded(port, upgradeRequest({ path: '/ws?token=alice&x=1' }));
    expect((await client.readFrame()).bytes).toEqual(serverText('hello alice'));
    expect(contexts).toEqual([{ user: 'alice' }]);
    expect((await refusal(port, upgradeRequest({ path: '/ws' }))).status).toBe(401);
  });

  it('waits for an asynchronous authenticate', async () => {
    let settled = false;
    const port = await start({
      '*': {
        authenticate: async (request) => {
          await new Promise((resolve) => setTimeout(resolve, 50));
          settled = true;
          return request.headers.get('authorization') === 'Bearer good' ? 'ok' : reject(403, 'bad credentials');
        },
        open: (connection) => connection.send(String(connection.context)),
      },
    });
    const client = await upgraded(port, upgradeRequest({ extra: ['Authorization: Bearer good'] }));
    expect(settled).toBe(true);
    expect((await client.readFrame()).bytes).toEqual(serverText('ok'));
    const refused = await refusal(port, upgradeRequest({ extra: ['Authorization: Bearer bad'] }));
    expect(refused.status).toBe(403);
    expect(refused.body).toBe('bad credentials');
  });

  it('answers 500 when authenticate throws, and logs the error', async () => {
    const logged: string[] = [];
    const port = await start(
      {
        '/sync': {
          authenticate: () => {
            throw new Error('database down');
          },
        },
        '/async': { authenticate: () => Promise.reject(new Error('database down')) },
      },
      { log: (entry) => logged.push(entry.event === 'error' ? `error ${entry.error.message}` : entry.event) },
    );
    const sync = await refusal(port, upgradeRequest({ path: '/sync' }));
    expect(sync.statusLine).toBe('HTTP/1.1 500 Internal Server Error');
    // The error text stays on the server.
    expect(sync.body).not.toContain('database');
    expect((await refusal(port, upgradeRequest({ path: '/async' }))).status).toBe(500);
    expect(logged.filter((line) => line === 'error database down')).toHaveLength(2);
  });

  it("selects the server's most preferred subprotocol among those offered", async () => {
    const protocols: string[] = [];
    const port = await start({ '*': { protocols: ['v2.sockeye', 'v1.sockeye'], open: (c) => protocols.push(c.protocol) } });
    const client = await open(port);
    client.write(upgradeRequest({ extra: ['Sec-WebSocket-Protocol: v1.sockeye, other', 'Sec-WebSocket-Protocol: v2.sockeye'] }));
    const response = await client.readHead();
    expect(response.status).toBe(101);
    expect(response.headers.get('sec-websocket-protocol')).toBe('v2.sockeye');
    await new Promise((resolve) => setImmediate(resolve));
    expect(protocols).toEqual(['v2.sockeye']);
  });

  it('selects no subprotocol when none of the offered ones is supported, or none is offered', async () => {
    const port = await start({ '*': { protocols: ['v1.sockeye'] } });
    for (const extra of [['Sec-WebSocket-Protocol: mqtt, stomp'], []]) {
      const client = await open(port);
      client.write(upgradeRequest({ extra }));
      const response = await client.readHead();
      expect(response.status).toBe(101);
      expect(response.headers.has('sec-websocket-protocol')).toBe(false);
    }
  });

  it('refuses when a protocols function rejects', async () => {
    const port = await start({ '*': { protocols: (offered) => (offered.includes('v3') ? 'v3' : reject(400, 'v3 required')) } });
    const refused = await refusal(port, upgradeRequest({ extra: ['Sec-WebSocket-Protocol: v1'] }));
    expect(refused.status).toBe(400);
    expect(refused.body).toBe('v3 required');
    const client = await open(port);
    client.write(upgradeRequest({ extra: ['Sec-WebSocket-Protocol: v1, v3'] }));
    expect((await client.readHead()).headers.get('sec-websocket-protocol')).toBe('v3');
  });
});

describe('handleUpgrade on an existing node:http server', () => {
  async function httpWithUpgrades(routes: Record<string, Route<unknown>>): Promise<number> {
    const wss = new WebSocketServer({ heartbeat: false });
    for (const [path, route] of Object.entries(routes)) wss.route(path, route);
    servers.push(wss);
    const http = createHttpServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '10' });
      response.end('plain http');
    });
    http.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head));
    httpServers.push(http);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return (http.address() as AddressInfo).port;
  }

  it('gives the same exact 101 and a working connection', async () => {
    const port = await httpWithUpgrades({ '/ws': echo });
    const client = await open(port);
    client.write(Buffer.concat([Buffer.from(upgradeRequest({ path: '/ws' }), 'latin1'), frame({ opcode: OP.text, payload: 'early' })]));
    const response = await client.readHead();
    expect(response.head).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' + `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`,
    );
    expect((await client.readFrame()).bytes).toEqual(serverText('early'));
    client.send({ opcode: OP.text, payload: 'later' });
    expect((await client.readFrame()).bytes).toEqual(serverText('later'));
  });

  it('refuses bad upgrades the same way', async () => {
    const port = await httpWithUpgrades({ '/ws': echo });
    expect((await refusal(port, upgradeRequest({ path: '/other' }))).status).toBe(404);
    const badKey = await refusal(port, upgradeRequest({ path: '/ws', omit: ['Sec-WebSocket-Key'], extra: ['Sec-WebSocket-Key: x'] }));
    expect(badKey.status).toBe(400);
  });

  it('closes the connection when the peer ends TCP without a close frame', async () => {
    const closes: CloseInfo[] = [];
    const port = await httpWithUpgrades({ '/ws': { close: (_connection, info) => closes.push(info) } });
    const client = await upgraded(port, upgradeRequest({ path: '/ws' }));
    // node:http sockets allow half-open connections; the server must not keep this one.
    client.socket.end();
    await client.waitClosed(1000);
    await until(() => closes.length === 1, 'the close event', 1000);
    expect(closes[0]).toMatchObject({ code: 1006, wasClean: false, initiator: 'transport' });
  });

  it('leaves plain HTTP requests to the HTTP server', async () => {
    const port = await httpWithUpgrades({ '/ws': echo });
    const client = await open(port);
    client.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    const response = await client.readResponse();
    expect(response.status).toBe(200);
    expect(response.body).toBe('plain http');
  });
});
