import { once } from 'node:events';
import { connect as connectHttp2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type Settings } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import { ConnectionState, type Connection } from '../../src/node/connection.js';
import { HandshakeError } from '../../src/node/errors.js';
import { WebSocket } from '../../src/node/websocket.js';
import { WebSocketServer } from '../../src/node/server.js';
import { reject, type UpgradeRequest } from '../../src/node/upgrade.js';
import { makeTestCertificates, type TestCertificates } from './test-certificates.js';

/**
 * WebSockets over HTTP/2 (RFC 8441) against a WebSocketServer with `tls`
 * and `http2`: Node's own http2 client sending extended CONNECT by hand
 * (frames masked here, RFC 6455 §5.3), then Sockeye's client with
 * `http2: true`. One port serves both h2 and HTTP/1.1 (ALPN).
 */

const WAIT_MS = 10_000;
let pki: TestCertificates;
let server: WebSocketServer;
let port = 0;
/** What the routes saw: each request's method (CONNECT over h2, GET over HTTP/1.1) and its open connection. */
let seen: Array<{ method: string; connection: Connection<UpgradeRequest> }> = [];
const sessions: ClientHttp2Session[] = [];

beforeAll(async () => {
  pki = makeTestCertificates();
  server = new WebSocketServer({ tls: { cert: pki.serverCert, key: pki.serverKey }, http2: true, heartbeat: false, perMessageDeflate: true });
  server.route<UpgradeRequest>('/echo', {
    origins: ['https://good.example'],
    protocols: ['chat.v2'],
    authenticate: (request) => request,
    open: (connection) => void seen.push({ method: connection.context.method, connection }),
    message: (connection, data, isBinary) => void connection.send(data, { binary: isBinary }),
  });
  server.route<UpgradeRequest>('/private', {
    authenticate: (request) =>
      request.headers.get('authorization') === 'Bearer open-sesame' ?
        request
      : reject(401, 'a bearer token is required', [['WWW-Authenticate', 'Bearer realm="sockeye-test"']]),
    open: (connection) => void seen.push({ method: connection.context.method, connection }),
  });
  port = (await server.listen(0)).port;
});
afterAll(async () => {
  await server.close({ timeout: 500 });
  pki.remove();
});
afterEach(async () => {
  for (const session of sessions.splice(0)) session.destroy();
  seen = [];
  // The next test counts connections: wait for this one's to be gone (the peer's FIN ends them).
  const open = [...server.connections].filter((connection) => connection.state !== ConnectionState.Closed);
  await timeout(Promise.all(open.map((connection) => new Promise((resolve) => connection.once('close', resolve)))), 'the connections to close');
});

function timeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** An h2 session to the server, once its SETTINGS are in. */
async function session(): Promise<{ session: ClientHttp2Session; settings: Settings }> {
  const opened = connectHttp2(`https://127.0.0.1:${port}`, { ca: pki.ca });
  sessions.push(opened);
  const [settings] = (await timeout(once(opened, 'remoteSettings'), 'the server SETTINGS')) as [Settings];
  return { session: opened, settings };
}

/** An extended CONNECT (RFC 8441 §4) for `/echo` with these extra fields; resolves with the stream and the response. */
async function extendedConnect(
  on: ClientHttp2Session,
  fields: Record<string, string> = {},
): Promise<{ stream: ClientHttp2Stream; headers: IncomingHttpHeaders }> {
  const stream = on.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': '/echo',
      ':authority': `127.0.0.1:${port}`,
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'chat.v2',
      origin: 'https://good.example',
      ...fields,
    },
    { endStream: false },
  );
  const [headers] = (await timeout(once(stream, 'response'), 'the response')) as [IncomingHttpHeaders];
  return { stream, headers };
}

/** A masked text frame, FIN set, payload under 126 bytes (RFC 6455 §5.2-§5.3). */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** The next unmasked frame from the server: opcode and payload (short frames only). */
async function readFrame(stream: ClientHttp2Stream): Promise<{ opcode: number; payload: Buffer }> {
  let buffered = Buffer.alloc(0);
  for (;;) {
    if (buffered.length >= 2 && buffered.length >= 2 + (buffered[1]! & 0x7f)) {
      const length = buffered[1]! & 0x7f;
      stream.pause();
      const rest = buffered.subarray(2 + length);
      if (rest.length > 0) stream.unshift(rest);
      return { opcode: buffered[0]! & 0x0f, payload: buffered.subarray(2, 2 + length) };
    }
    const [chunk] = (await timeout(once(stream, 'data'), 'a frame')) as [Buffer];
    buffered = Buffer.concat([buffered, chunk]);
  }
}

describe('extended CONNECT by hand (node:http2 client)', () => {
  it('announces SETTINGS_ENABLE_CONNECT_PROTOCOL, answers 200 with the subprotocol, and echoes on the stream', async () => {
    const { session: h2, settings } = await session();
    expect(settings.enableConnectProtocol).toBe(true);
    const { stream, headers } = await extendedConnect(h2);
    expect(headers[':status']).toBe(200);
    expect(headers['sec-websocket-protocol']).toBe('chat.v2');
    // No key and no accept over HTTP/2 (RFC 8441 §5).
    expect(headers['sec-websocket-accept']).toBeUndefined();
    stream.write(maskedText('over h2'));
    const frame = await readFrame(stream);
    expect(frame).toEqual({ opcode: 0x1, payload: Buffer.from('over h2') });
    expect(seen.map((entry) => entry.method)).toEqual(['CONNECT']);
    expect(seen[0]!.connection.protocol).toBe('chat.v2');
  });

  it('carries two WebSockets on one HTTP/2 connection', async () => {
    const { session: h2 } = await session();
    const first = await extendedConnect(h2);
    const second = await extendedConnect(h2);
    expect([first.headers[':status'], second.headers[':status']]).toEqual([200, 200]);
    expect(first.stream.id).not.toBe(second.stream.id);
    second.stream.write(maskedText('two'));
    first.stream.write(maskedText('one'));
    expect((await readFrame(first.stream)).payload.toString()).toBe('one');
    expect((await readFrame(second.stream)).payload.toString()).toBe('two');
    expect(seen).toHaveLength(2);
    // Both connections' peer is the one TLS connection of the session.
    const local = (h2.socket as { localPort?: number }).localPort;
    expect(seen.map((entry) => entry.connection.remotePort)).toEqual([local, local]);
    expect(server.connections.size).toBe(2);
  });

  it('refuses a foreign origin with 403 and a missing version with 400, like an HTTP/1.1 upgrade', async () => {
    const { session: h2 } = await session();
    const foreign = await extendedConnect(h2, { origin: 'https://evil.example' });
    expect(foreign.headers[':status']).toBe(403);
    const noVersion = h2.request(
      { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/echo', ':authority': `127.0.0.1:${port}` },
      { endStream: false },
    );
    const [headers] = (await timeout(once(noVersion, 'response'), 'the response')) as [IncomingHttpHeaders];
    expect(headers[':status']).toBe(400);
    expect(headers['sec-websocket-version']).toBe('13');
    const unknown = await extendedConnect(h2, { ':path': '/nowhere' });
    expect(unknown.headers[':status']).toBe(404);
    expect(seen).toHaveLength(0);
    // The session survives refusals: a good request still opens.
    expect((await extendedConnect(h2)).headers[':status']).toBe(200);
  });

  it("answers an authenticate hook's reject(401) on the stream, with its WWW-Authenticate; 200 with the credentials", async () => {
    const { session: h2 } = await session();
    const refused = await extendedConnect(h2, { ':path': '/private' });
    expect(refused.headers[':status']).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="sockeye-test"');
    let body = '';
    refused.stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    await timeout(once(refused.stream, 'end'), 'the refusal body');
    expect(body).toBe('a bearer token is required\n');
    expect(seen).toHaveLength(0);
    const allowed = await extendedConnect(h2, { ':path': '/private', authorization: 'Bearer open-sesame' });
    expect(allowed.headers[':status']).toBe(200);
    expect(allowed.headers['www-authenticate']).toBeUndefined();
    expect(seen.map((entry) => [entry.method, entry.connection.context.path])).toEqual([['CONNECT', '/private']]);
  });

  it('closes the WebSocket with a close frame, then END_STREAM', async () => {
    const { session: h2 } = await session();
    const { stream } = await extendedConnect(h2);
    await timeout(new Promise<void>((resolve) => (seen.length > 0 ? resolve() : setImmediate(resolve))), 'open');
    const closed = new Promise<number>((resolve) => seen[0]!.connection.once('close', (info) => resolve(info.code)));
    seen[0]!.connection.close(1000, 'bye');
    const frame = await readFrame(stream);
    expect(frame.opcode).toBe(0x8);
    expect(frame.payload.readUInt16BE(0)).toBe(1000);
    // Answer the close (masked, code 1000), then end our side.
    const mask = [1, 2, 3, 4];
    stream.end(Buffer.from([0x88, 0x82, ...mask, 0x03 ^ 1, 0xe8 ^ 2]));
    expect(await timeout(closed, 'the close')).toBe(1000);
    await timeout(once(stream, 'close'), 'the stream to close');
  });
});

describe('HTTP/2 sessions', () => {
  it("ends the server's WebSockets (1006) when the client's TCP connection goes away", async () => {
    const { session: h2 } = await session();
    await extendedConnect(h2);
    await extendedConnect(h2);
    expect(seen).toHaveLength(2);
    const closes = seen.map(({ connection }) => new Promise<number>((resolve) => connection.once('close', (info) => resolve(info.code))));
    h2.destroy();
    expect(await timeout(Promise.all(closes), 'the server-side closes')).toEqual([1006, 1006]);
  });

  it('answers 503 on the stream when an authenticate hook outlives the handshake deadline', async () => {
    const slow = new WebSocketServer({ tls: { cert: pki.serverCert, key: pki.serverKey }, http2: true, heartbeat: false, handshakeTimeout: 200 });
    slow.route('/slow', { authenticate: () => new Promise<undefined>(() => undefined) });
    const { port: slowPort } = await slow.listen(0);
    try {
      const h2 = connectHttp2(`https://127.0.0.1:${slowPort}`, { ca: pki.ca });
      sessions.push(h2);
      const stream = h2.request(
        {
          ':method': 'CONNECT',
          ':protocol': 'websocket',
          ':scheme': 'https',
          ':path': '/slow',
          ':authority': `127.0.0.1:${slowPort}`,
          'sec-websocket-version': '13',
        },
        { endStream: false },
      );
      const [headers] = (await timeout(once(stream, 'response'), 'the response')) as [IncomingHttpHeaders];
      expect(headers[':status']).toBe(503);
      expect(slow.connections.size).toBe(0);
    } finally {
      await slow.close({ timeout: 200 });
    }
  });

  it('closes a session that only sends PINGs: frames other than streams do not extend the deadline', async () => {
    const strict = new WebSocketServer({ tls: { cert: pki.serverCert, key: pki.serverKey }, http2: true, heartbeat: false, handshakeTimeout: 300 });
    strict.route('*', {});
    const { port: strictPort } = await strict.listen(0);
    try {
      const pinger = connectHttp2(`https://127.0.0.1:${strictPort}`, { ca: pki.ca });
      sessions.push(pinger);
      pinger.on('error', () => undefined);
      const closed = once(pinger, 'close');
      await timeout(once(pinger, 'remoteSettings'), 'the server SETTINGS');
      // One PING at a time, each answered, until the server ends the session (bounded: WAIT_MS of them at most).
      let pings = 0;
      while (!pinger.closed && !pinger.destroyed && pings < WAIT_MS / 20) {
        const answered = await new Promise<boolean>((resolve) => {
          if (!pinger.ping((error) => resolve(error === null))) resolve(false);
        });
        if (!answered) break;
        pings++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await timeout(closed, 'the session to close');
      // Answered PINGs are traffic, but no stream: they must not keep the session past the deadline (else the loop runs to its bound).
      expect(pings).toBeLessThan(WAIT_MS / 20);
    } finally {
      await strict.close({ timeout: 200 });
    }
  });

  it('closes a session that opens no stream within the handshake deadline', async () => {
    const strict = new WebSocketServer({ tls: { cert: pki.serverCert, key: pki.serverKey }, http2: true, heartbeat: false, handshakeTimeout: 200 });
    strict.route('*', {});
    const { port: strictPort } = await strict.listen(0);
    try {
      const idle = connectHttp2(`https://127.0.0.1:${strictPort}`, { ca: pki.ca });
      sessions.push(idle);
      idle.on('error', () => undefined);
      const goaway = once(idle, 'goaway');
      await timeout(once(idle, 'remoteSettings'), 'the server SETTINGS');
      // GOAWAY with NO_ERROR (RFC 9113 §6.8): the server ended it, nothing failed.
      const [code] = (await timeout(goaway, 'the GOAWAY')) as [number];
      expect(code).toBe(0);
      await timeout(once(idle, 'close'), 'the session to close');
    } finally {
      await strict.close({ timeout: 200 });
    }
  });
});

describe('connect(url, { http2: true })', () => {
  it('opens WebSockets as streams of one shared HTTP/2 connection', async () => {
    const url = `wss://127.0.0.1:${port}/echo`;
    // Equal TLS options in separate objects still share the session.
    const [a, b] = await Promise.all([
      connect(url, { http2: true, tls: { ca: pki.ca }, protocols: ['chat.v2'], origin: 'https://good.example' }),
      connect(url, { http2: true, tls: { ca: pki.ca }, protocols: ['chat.v2'], origin: 'https://good.example' }),
    ]);
    expect(a.protocol).toBe('chat.v2');
    expect(a.extensions).toMatch(/permessage-deflate/);
    const echoed = (connection: Connection<undefined>): Promise<unknown> => new Promise((resolve) => connection.once('message', resolve));
    const fromA = echoed(a);
    const fromB = echoed(b);
    a.send('a'.repeat(4000));
    b.send('b');
    expect(await timeout(fromA, 'a')).toBe('a'.repeat(4000));
    expect(await timeout(fromB, 'b')).toBe('b');
    expect(seen.map((entry) => entry.method)).toEqual(['CONNECT', 'CONNECT']);
    const ports = new Set(seen.map((entry) => entry.connection.remotePort));
    expect(ports.size).toBe(1);
    const closes = [a, b].map((connection) => new Promise((resolve) => connection.once('close', (info) => resolve(info.wasClean))));
    a.close();
    b.close();
    expect(await timeout(Promise.all(closes), 'both closes')).toEqual([true, true]);
  });

  it('reports a refusal with its status, and the same port still takes HTTP/1.1 upgrades', async () => {
    const refused = await connect(`wss://127.0.0.1:${port}/echo`, { http2: true, tls: { ca: pki.ca }, origin: 'https://evil.example' }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(HandshakeError);
    expect((refused as HandshakeError).code).toBe('WS_ERR_HANDSHAKE_REFUSED');
    expect((refused as HandshakeError).status).toBe(403);
    const http1 = await connect(`wss://127.0.0.1:${port}/echo`, { tls: { ca: pki.ca }, protocols: ['chat.v2'] });
    const echoed = new Promise((resolve) => http1.once('message', resolve));
    http1.send('h1');
    expect(await timeout(echoed, 'the echo')).toBe('h1');
    expect(seen.map((entry) => entry.method)).toEqual(['GET']);
    http1.close();
  });

  it('the WHATWG WebSocket takes the option too', async () => {
    const socket = new WebSocket(`wss://127.0.0.1:${port}/echo`, ['chat.v2'], { http2: true, tls: { ca: pki.ca }, origin: 'https://good.example' });
    const echoed = new Promise<unknown>((resolve, reject) => {
      socket.onopen = () => socket.send('whatwg over h2');
      socket.onmessage = (event) => resolve(event.data);
      socket.onerror = () => reject(new Error('the WebSocket failed'));
    });
    expect(await timeout(echoed, 'the echo')).toBe('whatwg over h2');
    expect(socket.protocol).toBe('chat.v2');
    expect(seen.map((entry) => entry.method)).toEqual(['CONNECT']);
    const closed = new Promise((resolve) => (socket.onclose = (event) => resolve(event.code)));
    socket.close(1000);
    expect(await timeout(closed, 'the close')).toBe(1000);
  });

  it('times out on a server that negotiates h2 but never sends its SETTINGS', async () => {
    const sockets = new Set<TLSSocket>();
    const mute = createTlsServer({ cert: pki.serverCert, key: pki.serverKey, ALPNProtocols: ['h2'] }, (socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    try {
      const mutePort = (mute.address() as AddressInfo).port;
      const failure = await connect(`wss://127.0.0.1:${mutePort}/`, { http2: true, tls: { ca: pki.ca }, handshakeTimeout: 300 }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(HandshakeError);
      expect((failure as HandshakeError).code).toBe('WS_ERR_HANDSHAKE_TIMEOUT');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  });

  it('fails clearly against a TLS server without http2', async () => {
    const plain = new WebSocketServer({ tls: { cert: pki.serverCert, key: pki.serverKey }, heartbeat: false });
    plain.route('*', {});
    const { port: plainPort } = await plain.listen(0);
    try {
      const failure = await connect(`wss://127.0.0.1:${plainPort}/`, { http2: true, tls: { ca: pki.ca } }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(HandshakeError);
      expect((failure as HandshakeError).code).toBe('WS_ERR_CONNECT_FAILED');
      expect((failure as HandshakeError).message).toMatch(/does not speak HTTP\/2/);
    } finally {
      await plain.close({ timeout: 200 });
    }
  });
});
