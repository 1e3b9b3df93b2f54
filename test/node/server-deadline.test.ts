import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as connectHttp2 } from 'node:http2';
import { connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, WebSocketServer, type Route, type ServerOptions } from '../../src/index.js';
import { RawClient, upgradeRequest } from './raw-client.js';
import { ManualClock } from './manual-clock.js';
import { closesWithin, settle, until } from '../wait.js';
import { useSelfSignedCertificate } from './test-certificates.js';

/**
 * One deadline from TCP accept to the open connection (`handshakeTimeout`),
 * whatever the handshake is waiting for: a TLS handshake that never starts,
 * a request that never ends, an `authenticate` that never settles; and for
 * sockets handed over by node:http, from the call to `handleUpgrade`, or
 * from TCP accept for those given to `admitConnection`.
 * The deadlines run on a manual clock: a test steps it to a millisecond
 * short of the deadline, checks nothing was cut, steps past the deadline
 * plus the sweep's lateness (a quarter of the timeout), then waits for the
 * socket's close. Each test has its own port.
 */

/** The handshake timeout, in ms of the manual clock. */
const TIMEOUT = 500;
/** The most the sweep may be late, by its documentation: a quarter of the timeout. */
const LATENESS = TIMEOUT / 4;
/** Real ms to wait for a close the server has already decided: it only has to cross loopback. */
const BOUND = 5000;

const servers: WebSocketServer[] = [];
const httpServers: HttpServer[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  // Newest first: a TLS socket before the TCP socket under it (the other order has crashed Node 20's TLS wrap).
  for (const socket of sockets.splice(0).reverse()) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  await Promise.all(httpServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function track<T extends Socket>(socket: T): T {
  sockets.push(socket);
  return socket;
}

function makeServer(route: Route<unknown>, options: ServerOptions = {}, clock = new ManualClock()): WebSocketServer {
  const server = new WebSocketServer({ heartbeat: false, handshakeTimeout: TIMEOUT, timers: clock, ...options });
  server.route('/', route);
  servers.push(server);
  return server;
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

/**
 * Step `clock` to a millisecond short of the deadline and check the server
 * refused nothing (the sweep runs inside `advance`, and a refusal is counted
 * as it is made), then past the deadline plus the sweep's lateness.
 */
function stepPastDeadline(clock: ManualClock, server: WebSocketServer, status: number): void {
  clock.advance(TIMEOUT - 1);
  expect(server.counters().refused).toEqual({});
  clock.advance(LATENESS + 1);
  expect(server.counters().refused).toEqual({ [status]: 1 });
}

describe('an authenticate that never settles', () => {
  it('is cut at the handshake timeout with 503 and its socket is closed', async () => {
    let opened = 0;
    let asked = 0;
    const clock = new ManualClock();
    const server = makeServer({ authenticate: () => (asked++, never()), open: () => void opened++ }, {}, clock);
    const { port } = await server.listen(0);
    const client = await RawClient.open(port);
    track(client.socket);
    client.write(upgradeRequest());
    await until(() => asked === 1, 'authenticate to be called');
    stepPastDeadline(clock, server, 503);
    const response = await client.readResponse(BOUND);
    expect(response.status).toBe(503);
    await closesWithin(client.socket, BOUND);
    expect(opened).toBe(0);
    expect(server.connections.size).toBe(0);
  });

  it('that settles after the deadline opens nothing', async () => {
    let release: ((context: unknown) => void) | null = null;
    let opened = 0;
    const clock = new ManualClock();
    const server = makeServer(
      {
        authenticate: () => new Promise((resolve) => (release = resolve)),
        open: () => void opened++,
      },
      {},
      clock,
    );
    const { port } = await server.listen(0);
    const client = await RawClient.open(port);
    track(client.socket);
    client.write(upgradeRequest());
    await until(() => release !== null, 'authenticate to be called');
    stepPastDeadline(clock, server, 503);
    expect((await client.readResponse(BOUND)).status).toBe(503);
    release!({ user: 'late' });
    // Let the resumed pipeline run to its end.
    await settle();
    expect(opened).toBe(0);
    expect(server.connections.size).toBe(0);
    expect(client.buffered).toBe(0);
  });

  it('on a socket from node:http (handleUpgrade) is cut the same way, counted from the call', async () => {
    const clock = new ManualClock();
    let asked = 0;
    const server = makeServer({ authenticate: () => (asked++, never()) }, {}, clock);
    const http = createHttpServer((_request, response) => response.end());
    httpServers.push(http);
    let handedOver = false;
    http.on('upgrade', (request, socket, head) => {
      // node:http read the request on its own clock; the deadline starts here, at the server's now.
      clock.advance(TIMEOUT * 10);
      handedOver = true;
      server.handleUpgrade(request, socket, head);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const client = await RawClient.open((http.address() as AddressInfo).port);
    track(client.socket);
    client.write(upgradeRequest());
    await until(() => handedOver && asked === 1, 'the upgrade to reach authenticate');
    stepPastDeadline(clock, server, 503);
    expect((await client.readResponse(BOUND)).status).toBe(503);
    await closesWithin(client.socket, BOUND);
  });
});

describe('wss://: the deadline starts at TCP accept', () => {
  const tls = useSelfSignedCertificate();

  /** A raw TCP connection to `port`, once the server has taken it (its handshake sweep is armed). */
  async function tcpAccepted(port: number, clock: ManualClock): Promise<Socket> {
    const socket = track(connectTcp({ port, host: '127.0.0.1' }));
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    await until(() => clock.pending > 0, 'the server to take the TCP connection');
    return socket;
  }

  it('closes a TCP connection that never starts TLS at the handshake timeout', async () => {
    const clock = new ManualClock();
    const server = makeServer({}, { tls: { key: tls.key, cert: tls.cert } }, clock);
    const { port } = await server.listen(0);
    const socket = await tcpAccepted(port, clock);
    clock.advance(TIMEOUT - 1);
    await settle();
    expect(socket.closed).toBe(false);
    clock.advance(LATENESS + 1);
    await closesWithin(socket, BOUND);
  });

  it('answers 408 to a client that completes TLS late and sends no request, on the deadline from TCP accept', async () => {
    const clock = new ManualClock();
    const server = makeServer({}, { tls: { key: tls.key, cert: tls.cert } }, clock);
    const { port } = await server.listen(0);
    const tcp = await tcpAccepted(port, clock);
    // All but a millisecond of the deadline goes by before TLS even starts; the connection is still served.
    clock.advance(TIMEOUT - 1);
    const socket = track(connectTls({ socket: tcp, servername: 'localhost', ca: tls.cert }));
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    // TLS 1.3: the server sends its session ticket once its side of the handshake is done,
    // so with the ticket in, the server has the connection waiting for its request.
    await new Promise((resolve) => socket.once('session', resolve));
    expect(server.counters().refused).toEqual({});
    // The deadline did not restart with TLS: the sweep's lateness later, the request is overdue.
    clock.advance(LATENESS + 1);
    expect(server.counters().refused).toEqual({ 408: 1 });
    await closesWithin(socket, BOUND);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('with http2, closes a session that opens no stream by the deadline from TCP accept, not a timeout after TLS', async () => {
    // A long timeout on the manual clock: node:http2's own timers run on real time, and must not be what closes the session.
    const timeout = 60_000;
    const clock = new ManualClock();
    const server = makeServer({}, { tls: { key: tls.key, cert: tls.cert }, http2: true, handshakeTimeout: timeout }, clock);
    const { port } = await server.listen(0);
    const tcp = await tcpAccepted(port, clock);
    // All but a millisecond of the deadline goes by before TLS starts; the session is still made.
    clock.advance(timeout - 1);
    const session = connectHttp2(`https://127.0.0.1:${port}`, {
      createConnection: () => track(connectTls({ socket: tcp, servername: 'localhost', ca: tls.cert, ALPNProtocols: ['h2'] })),
    });
    session.on('error', () => {});
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    await settle();
    expect(session.closed).toBe(false);
    // No stream by the deadline from accept: the sweep's lateness later, the session is closed.
    clock.advance(timeout / 4 + 1);
    await closesWithin(session, BOUND);
  });

  it('maxHandshakes counts TCP connections still before TLS: one more is closed at once', async () => {
    const server = makeServer({}, { tls: { key: tls.key, cert: tls.cert }, handshakeTimeout: 10_000, maxHandshakes: 1 });
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
    const server = makeServer(
      { message: (connection, data) => void connection.send(data) },
      { tls: { key: tls.key, cert: tls.cert }, handshakeTimeout: 10_000 },
    );
    const { port } = await server.listen(0);
    const connection = await connect(`wss://127.0.0.1:${port}/`, { tls: { ca: tls.cert } });
    const echoed = new Promise((resolve) => connection.once('message', resolve));
    connection.send('hello');
    expect(await echoed).toBe('hello');
    connection.close(1000);
  });
});

describe('sockets from node:http given to admitConnection', () => {
  /** A node:http server that hands its connections to `server` from accept, and its upgrades to handleUpgrade. */
  async function fedBy(server: WebSocketServer): Promise<number> {
    const http = createHttpServer((request, response) => {
      // Not an upgrade: node:http answers it; it is no longer a handshake.
      server.releaseConnection(request.socket);
      response.end('page\n');
    });
    httpServers.push(http);
    http.on('connection', (socket: Socket) => server.admitConnection(socket));
    http.on('upgrade', (request, socket, head) => server.handleUpgrade(request, socket, head));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return (http.address() as AddressInfo).port;
  }

  it('runs one deadline from TCP accept: a head that took all but 1 ms of it leaves 1 ms for the hooks, not a fresh timeout', async () => {
    const clock = new ManualClock();
    let asked = 0;
    const server = makeServer({ authenticate: () => (asked++, never()) }, {}, clock);
    const client = await RawClient.open(await fedBy(server));
    track(client.socket);
    const request = upgradeRequest();
    client.write(request.slice(0, 20));
    await until(() => clock.pending > 0, 'the server to take the connection');
    clock.advance(TIMEOUT - 1);
    expect(server.counters().refused).toEqual({});
    client.write(request.slice(20));
    await until(() => asked === 1, 'the upgrade to reach authenticate');
    // Past accept + timeout by the sweep's lateness; a deadline from handleUpgrade would still be TIMEOUT - 1 away.
    clock.advance(LATENESS + 1);
    expect(server.counters().refused).toEqual({ 503: 1 });
    expect((await client.readResponse(BOUND)).status).toBe(503);
    await closesWithin(client.socket, BOUND);
  });

  it('answers 408 to a connection whose request is not in by the deadline from accept', async () => {
    const clock = new ManualClock();
    const server = makeServer({}, {}, clock);
    const client = await RawClient.open(await fedBy(server));
    track(client.socket);
    client.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await until(() => clock.pending > 0, 'the server to take the connection');
    stepPastDeadline(clock, server, 408);
    expect((await client.readResponse(BOUND)).status).toBe(408);
    await closesWithin(client.socket, BOUND);
  });

  it('counts them against maxHandshakes while node:http reads the request; releaseConnection gives the slot back', async () => {
    // On a manual clock left alone, the deadline never comes: whatever is refused is refused by the cap.
    const server = makeServer({}, { maxHandshakes: 1 });
    const port = await fedBy(server);
    const first = await RawClient.open(port);
    track(first.socket);
    first.write('GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const second = await RawClient.open(port);
    track(second.socket);
    second.write('GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // Refused at once, with a status since HTTP can be spoken.
    expect((await second.readResponse(BOUND)).status).toBe(503);
    await closesWithin(second.socket, BOUND);
    expect(first.socket.closed).toBe(false);
    first.write('\r\n');
    expect((await first.readResponse(BOUND)).status).toBe(200);
    // The page was answered: its slot is free, though its connection stays open (keep-alive).
    const third = await RawClient.open(port);
    track(third.socket);
    third.write('GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect((await third.readResponse(BOUND)).status).toBe(200);
    expect(server.counters().refused).toEqual({ 503: 1 });
  });
});
