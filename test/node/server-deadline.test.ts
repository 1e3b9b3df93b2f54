import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, WebSocketServer, type Route, type ServerOptions } from '../../src/index.js';
import { RawClient, upgradeRequest } from './raw-client.js';

/**
 * One deadline from TCP accept to the open connection (`handshakeTimeout`),
 * whatever the handshake is waiting for: a TLS handshake that never starts,
 * a request that never ends, an `authenticate` that never settles; and for
 * sockets handed over by node:http, from the call to `handleUpgrade`.
 * Every test waits for the socket's close, each on its own port.
 */

/** Short enough to wait for, long enough for a request on loopback to arrive on a busy machine. */
const TIMEOUT = 500;
/** Far above the deadline plus the sweep's quarter-timeout lateness, far below node:tls's 120 s. */
const BOUND = 3000;

const servers: WebSocketServer[] = [];
const httpServers: HttpServer[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  await Promise.all(httpServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function track<T extends Socket>(socket: T): T {
  sockets.push(socket);
  return socket;
}

/** Resolves with the ms from now until `socket` closes; rejects past `bound`. */
function closesWithin(socket: Socket, bound: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the socket was still open after ${bound} ms`)), bound);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
  });
}

function makeServer(route: Route<unknown>, options: ServerOptions = {}): WebSocketServer {
  const server = new WebSocketServer({ heartbeat: false, handshakeTimeout: TIMEOUT, ...options });
  server.route('/', route);
  servers.push(server);
  return server;
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

describe('an authenticate that never settles', () => {
  it('is cut at the handshake timeout with 503 and its socket is closed', async () => {
    let opened = 0;
    const server = makeServer({ authenticate: never, open: () => void opened++ });
    const { port } = await server.listen(0);
    const client = await RawClient.open(port);
    track(client.socket);
    const closed = closesWithin(client.socket, BOUND);
    client.write(upgradeRequest());
    const response = await client.readResponse(BOUND);
    expect(response.status).toBe(503);
    const elapsed = await closed;
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 10);
    expect(opened).toBe(0);
    expect(server.connections.size).toBe(0);
  });

  it('that settles after the deadline opens nothing', async () => {
    let release: (context: unknown) => void = () => {};
    let opened = 0;
    const server = makeServer({
      authenticate: () => new Promise((resolve) => (release = resolve)),
      open: () => void opened++,
    });
    const { port } = await server.listen(0);
    const client = await RawClient.open(port);
    track(client.socket);
    client.write(upgradeRequest());
    expect((await client.readResponse(BOUND)).status).toBe(503);
    release({ user: 'late' });
    // Let the resumed pipeline run to its end.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(opened).toBe(0);
    expect(server.connections.size).toBe(0);
    expect(client.buffered).toBe(0);
  });

  it('on a socket from node:http (handleUpgrade) is cut the same way, counted from the call', async () => {
    const server = makeServer({ authenticate: never });
    const http = createHttpServer((_request, response) => response.end());
    httpServers.push(http);
    http.on('upgrade', (request, socket, head) => server.handleUpgrade(request, socket, head));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const client = await RawClient.open((http.address() as AddressInfo).port);
    track(client.socket);
    const closed = closesWithin(client.socket, BOUND);
    client.write(upgradeRequest());
    expect((await client.readResponse(BOUND)).status).toBe(503);
    expect(await closed).toBeGreaterThanOrEqual(TIMEOUT - 10);
  });
});

describe('wss://: the deadline starts at TCP accept', () => {
  let dir = '';
  let key = '';
  let cert = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sockeye-deadline-'));
    const made = spawnSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8', timeout: 10_000 },
    );
    if (made.status !== 0) throw new Error(`these tests need openssl for a test certificate: ${made.error?.message ?? made.stderr}`);
    key = readFileSync(join(dir, 'key.pem'), 'utf8');
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  });

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('closes a TCP connection that never starts TLS within the handshake timeout', async () => {
    const server = makeServer({}, { tls: { key, cert } });
    const { port } = await server.listen(0);
    const socket = track(connectTcp({ port, host: '127.0.0.1' }));
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const elapsed = await closesWithin(socket, BOUND);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 10);
  });

  it('answers 408 to a client that completes TLS and sends no request', async () => {
    // Long enough for a TLS handshake on a busy machine, short enough to wait for.
    const server = makeServer({}, { tls: { key, cert }, handshakeTimeout: 1000 });
    const { port } = await server.listen(0);
    const socket = track(connectTls({ port, host: '127.0.0.1', ca: cert }));
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    await closesWithin(socket, BOUND);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('maxHandshakes counts TCP connections still before TLS: one more is closed at once', async () => {
    const server = makeServer({}, { tls: { key, cert }, handshakeTimeout: 10_000, maxHandshakes: 1 });
    const { port } = await server.listen(0);
    const open = (): Socket => {
      const socket = track(connectTcp({ port, host: '127.0.0.1' }));
      socket.on('error', () => {});
      return socket;
    };
    const pair = [open(), open()];
    // Whichever the server accepted second is closed long before the 10 s deadline; the other stays.
    const first = await Promise.race(
      pair.map((socket, index) =>
        closesWithin(socket, BOUND).then(
          () => index,
          // The one left open: not a failure, and never the first to settle before the other closed.
          () => new Promise<number>(() => {}),
        ),
      ),
    );
    const survivor = pair[1 - first]!;
    expect(survivor.destroyed).toBe(false);
    expect(server.counters().refused[503]).toBe(1);
  });

  it('still opens connections that complete in time', async () => {
    const server = makeServer({ message: (connection, data) => void connection.send(data) }, { tls: { key, cert }, handshakeTimeout: 10_000 });
    const { port } = await server.listen(0);
    const connection = await connect(`wss://127.0.0.1:${port}/`, { tls: { ca: cert } });
    const echoed = new Promise((resolve) => connection.once('message', resolve));
    connection.send('hello');
    expect(await echoed).toBe('hello');
    connection.close(1000);
  });
});
