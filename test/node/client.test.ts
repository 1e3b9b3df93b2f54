import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, HandshakeError, reject, UsageError, WebSocketServer, type Connection, type HandshakeErrorCode } from '../../src/index.js';
import { makeSelfSignedCertificate, type SelfSignedCertificate } from './test-certificates.js';

/**
 * connect() against small servers written in the test: a raw TCP server
 * that reads the upgrade request and answers with whatever bytes the test
 * scripts, so every way a handshake can go wrong can be staged; and
 * Sockeye's own server where a real WebSocket endpoint is needed (TLS).
 */

const WAIT_MS = 10_000;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** RFC 6455 §4.2.2 item 5.4, computed here independently of the code under test. */
function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

interface RawRequest {
  line: string;
  /** Lower-cased names. */
  headers: Map<string, string>;
  /** Resolves when the server side of this TCP connection has closed. */
  closed: Promise<void>;
}

interface RawServer {
  port: number;
  requests: RawRequest[];
  close(): Promise<void>;
}

const servers: RawServer[] = [];

/** A TCP server on 127.0.0.1 that parses each request head and lets `respond` answer it. */
async function rawServer(respond: (request: RawRequest, socket: Socket) => void): Promise<RawServer> {
  const requests: RawRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        sockets.delete(socket);
        resolve();
      }),
    );
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const [line = '', ...fields] = head.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const field of fields) {
        const colon = field.indexOf(':');
        headers.set(field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim());
      }
      const request = { line, headers, closed };
      requests.push(request);
      respond(request, socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const raw: RawServer = {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(raw);
  return raw;
}

/** A 101 answer to `request`, correct unless the test overrides or adds lines. */
function switching(request: RawRequest, extra: string[] = [], accept = acceptKey(request.headers.get('sec-websocket-key') ?? '')): string {
  return ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, ...extra, '', ''].join(
    '\r\n',
  );
}

/** A server answering every request with the same 101 (plus `extra` header lines). */
function answering(extra: string[] = []): Promise<RawServer> {
  return rawServer((request, socket) => socket.write(switching(request, extra)));
}

/** Await a handshake that must fail, and return its HandshakeError. */
async function failure(attempt: Promise<Connection<undefined>>, code: HandshakeErrorCode): Promise<HandshakeError> {
  const outcome = await attempt.then(
    (connection) => {
      connection.terminate();
      return new Error('the handshake succeeded');
    },
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(HandshakeError);
  const error = outcome as HandshakeError;
  expect(error.code, error.message).toBe(code);
  return error;
}

function url(server: RawServer, path = '/'): string {
  return `ws://127.0.0.1:${server.port}${path}`;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe('the upgrade request', () => {
  it('carries the path, query, Host, Origin, offered subprotocols and extra headers', async () => {
    const server = await answering(['Sec-WebSocket-Protocol: p2']);
    const connection = await connect(url(server, '/a/b?x=1&y=two'), {
      origin: 'https://app.example',
      protocols: ['p1', 'p2'],
      headers: { 'X-Custom': 'custom value', Authorization: 'Bearer t0ken' },
    });
    const { line, headers } = server.requests[0]!;
    expect(line).toBe('GET /a/b?x=1&y=two HTTP/1.1');
    expect(headers.get('host')).toBe(`127.0.0.1:${server.port}`);
    expect(headers.get('origin')).toBe('https://app.example');
    expect(headers.get('sec-websocket-protocol')).toBe('p1, p2');
    expect(headers.get('x-custom')).toBe('custom value');
    expect(headers.get('authorization')).toBe('Bearer t0ken');
    expect(headers.get('upgrade')?.toLowerCase()).toBe('websocket');
    expect(headers.get('connection')?.toLowerCase()).toContain('upgrade');
    expect(headers.get('sec-websocket-version')).toBe('13');
    // §4.1: the key is a random 16-byte value, base64-encoded.
    expect(Buffer.from(headers.get('sec-websocket-key')!, 'base64')).toHaveLength(16);
    expect(headers.get('sec-websocket-extensions')).toMatch(/^permessage-deflate/);
    expect(connection.protocol).toBe('p2');
    connection.terminate();
  });

  it('takes extra headers as a list of pairs, and sends no extension offer when deflate is off', async () => {
    const server = await answering();
    const connection = await connect(url(server), {
      headers: [
        ['X-Trace', 'one'],
        ['Cookie', 'session=abc'],
      ],
      perMessageDeflate: false,
    });
    const { headers } = server.requests[0]!;
    expect(headers.get('x-trace')).toBe('one');
    expect(headers.get('cookie')).toBe('session=abc');
    expect(headers.has('sec-websocket-extensions')).toBe(false);
    expect(headers.has('origin')).toBe(false);
    connection.terminate();
  });

  it('uses a fresh key for every connection', async () => {
    const server = await answering();
    const first = await connect(url(server));
    const second = await connect(url(server));
    expect(server.requests[0]!.headers.get('sec-websocket-key')).not.toBe(server.requests[1]!.headers.get('sec-websocket-key'));
    first.terminate();
    second.terminate();
  });

  it('refuses header values that would inject lines, and headers the handshake owns, before connecting', async () => {
    const server = await answering();
    await expect(connect(url(server), { headers: { 'X-Bad': 'a\r\nInjected: 1' } })).rejects.toBeInstanceOf(UsageError);
    await expect(connect(url(server), { headers: { 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAAAA==' } })).rejects.toBeInstanceOf(UsageError);
    await expect(connect(url(server), { protocols: ['not a token'] })).rejects.toBeInstanceOf(UsageError);
    expect(server.requests).toHaveLength(0);
  });
});

describe('URLs', () => {
  it.each([
    ['ftp://127.0.0.1/', 'unsupported scheme'],
    ['not a url', 'not a valid URL'],
    ['ws://127.0.0.1:1/chat#section', 'fragment'],
  ])('rejects %s (WS_ERR_INVALID_URL) without throwing synchronously', async (address, message) => {
    let attempt: Promise<Connection<undefined>> | undefined;
    expect(() => (attempt = connect(address))).not.toThrow();
    const error = await failure(attempt!, 'WS_ERR_INVALID_URL');
    expect(error.message).toContain(message);
  });

  it('takes http:// as ws://', async () => {
    const server = await answering();
    const connection = await connect(`http://127.0.0.1:${server.port}/via-http`);
    expect(server.requests[0]!.line).toBe('GET /via-http HTTP/1.1');
    connection.terminate();
  });

  it('sends "/" when the URL has no path', async () => {
    const server = await answering();
    const connection = await connect(`ws://127.0.0.1:${server.port}`);
    expect(server.requests[0]!.line).toBe('GET / HTTP/1.1');
    connection.terminate();
  });
});

describe('a refused handshake', () => {
  it('reports the HTTP status and the body the server sent (WS_ERR_HANDSHAKE_REFUSED)', async () => {
    const body = 'origin https://evil.example is not allowed';
    const server = await rawServer((_, socket) =>
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
    );
    const error = await failure(connect(url(server)), 'WS_ERR_HANDSHAKE_REFUSED');
    expect(error.status).toBe(403);
    expect(error.body).toBe(body);
    expect(error.message).toContain('403');
    expect(error.message).toContain(body);
  });

  it('reads a body without Content-Length up to the end of the connection', async () => {
    const server = await rawServer((_, socket) => {
      socket.write('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      setTimeout(() => socket.end('try again later'), 20);
    });
    const error = await failure(connect(url(server)), 'WS_ERR_HANDSHAKE_REFUSED');
    expect(error).toMatchObject({ status: 503, body: 'try again later' });
  });

  it("reports a Sockeye route's reject(401, reason)", async () => {
    const sockeye = new WebSocketServer({ heartbeat: false });
    sockeye.route('/private', { authenticate: () => reject(401, 'missing token') });
    const { port } = await sockeye.listen(0);
    try {
      const error = await failure(connect(`ws://127.0.0.1:${port}/private`), 'WS_ERR_HANDSHAKE_REFUSED');
      expect(error.status).toBe(401);
      expect(error.message).toContain('missing token');
    } finally {
      await sockeye.close({ timeout: 100 });
    }
  });
});

describe('transport failures', () => {
  it('reports a closed port as WS_ERR_CONNECT_FAILED with the socket error as cause', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const error = await failure(connect(`ws://127.0.0.1:${port}/`), 'WS_ERR_CONNECT_FAILED');
    expect((error.cause as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNREFUSED');
  });

  it('gives up on a server that accepts TCP and never answers (WS_ERR_HANDSHAKE_TIMEOUT), closing the socket', async () => {
    const server = await rawServer(() => {});
    const started = performance.now();
    await failure(connect(url(server), { handshakeTimeout: 300 }), 'WS_ERR_HANDSHAKE_TIMEOUT');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    await expect(withTimeout(server.requests[0]!.closed)).resolves.toBeUndefined();
  });

  it('stops a handshake in progress when its signal aborts (WS_ERR_ABORTED), closing the socket', async () => {
    const server = await rawServer(() => {});
    const controller = new AbortController();
    const attempt = connect(url(server), { signal: controller.signal, handshakeTimeout: 5000 });
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = (): void => (server.requests.length > 0 ? resolve() : void setTimeout(check, 5));
        check();
      }),
    );
    const started = performance.now();
    controller.abort();
    await failure(attempt, 'WS_ERR_ABORTED');
    // Well before the 5 s handshake timeout; the slack is for a loaded machine.
    expect(performance.now() - started).toBeLessThan(4000);
    await expect(withTimeout(server.requests[0]!.closed)).resolves.toBeUndefined();
  });

  it('does not connect at all with a signal that already aborted', async () => {
    const server = await rawServer(() => {});
    const controller = new AbortController();
    controller.abort();
    await failure(connect(url(server), { signal: controller.signal }), 'WS_ERR_ABORTED');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.requests).toHaveLength(0);
  });

  it('times out on a response head that never completes', async () => {
    const server = await rawServer((_, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'));
    await failure(connect(url(server), { handshakeTimeout: 300 }), 'WS_ERR_HANDSHAKE_TIMEOUT');
  });

  it('reports a server closing the connection before answering as WS_ERR_INVALID_RESPONSE', async () => {
    const server = await rawServer((_, socket) => socket.end());
    await failure(connect(url(server)), 'WS_ERR_INVALID_RESPONSE');
  });

  it('reports an answer that is not HTTP as WS_ERR_INVALID_RESPONSE', async () => {
    const server = await rawServer((_, socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    await failure(connect(url(server)), 'WS_ERR_INVALID_RESPONSE');
  });
});

describe('validating the 101 response (RFC 6455 §4.1)', () => {
  it('fails on a wrong Sec-WebSocket-Accept (WS_ERR_INVALID_RESPONSE)', async () => {
    const server = await rawServer((request, socket) => socket.write(switching(request, [], acceptKey('dGhlIHNhbXBsZSBub25jZQ=='))));
    const error = await failure(connect(url(server)), 'WS_ERR_INVALID_RESPONSE');
    expect(error.status).toBe(101);
    expect(error.message).toContain('Sec-WebSocket-Accept');
  });

  it('fails without Upgrade: websocket', async () => {
    const server = await rawServer((request, socket) => socket.write(switching(request).replace('Upgrade: websocket\r\n', 'Upgrade: h2c\r\n')));
    await failure(connect(url(server)), 'WS_ERR_INVALID_RESPONSE');
  });

  it('fails when the server selects a subprotocol that was not offered', async () => {
    const server = await answering(['Sec-WebSocket-Protocol: chat.v3']);
    const error = await failure(connect(url(server), { protocols: ['chat.v1', 'chat.v2'] }), 'WS_ERR_INVALID_RESPONSE');
    expect(error.message).toContain('chat.v3');
  });

  it('fails when the server selects a subprotocol although none was offered', async () => {
    const server = await answering(['Sec-WebSocket-Protocol: chat.v1']);
    await failure(connect(url(server)), 'WS_ERR_INVALID_RESPONSE');
  });

  it('proceeds without a subprotocol when the server selects none', async () => {
    const server = await answering();
    const connection = await connect(url(server), { protocols: ['chat.v1'] });
    expect(connection.protocol).toBe('');
    connection.terminate();
  });

  it('fails when the server accepts permessage-deflate that was not offered (WS_ERR_EXTENSION_REJECTED)', async () => {
    const server = await answering(['Sec-WebSocket-Extensions: permessage-deflate']);
    await failure(connect(url(server), { perMessageDeflate: false }), 'WS_ERR_EXTENSION_REJECTED');
  });

  it('fails when the server answers with an extension of another name (WS_ERR_EXTENSION_REJECTED)', async () => {
    const server = await answering(['Sec-WebSocket-Extensions: x-webkit-deflate-frame']);
    const error = await failure(connect(url(server)), 'WS_ERR_EXTENSION_REJECTED');
    expect(error.message).toContain('x-webkit-deflate-frame');
  });

  it('fails on permessage-deflate parameters outside RFC 7692 (server_max_window_bits=7)', async () => {
    const server = await answering(['Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7']);
    await failure(connect(url(server)), 'WS_ERR_EXTENSION_REJECTED');
  });

  it('accepts the permessage-deflate answer and reports it', async () => {
    const server = await answering(['Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover']);
    const connection = await connect(url(server));
    expect(connection.extensions).toBe('permessage-deflate; server_no_context_takeover');
    connection.terminate();
  });

  it('delivers frames that arrive in the same packet as the 101', async () => {
    // An unmasked text frame "hi" (§5.7), written together with the response head.
    const server = await rawServer((request, socket) =>
      socket.write(Buffer.concat([Buffer.from(switching(request), 'latin1'), Buffer.from([0x81, 0x02, 0x68, 0x69])])),
    );
    const connection = await connect(url(server), { perMessageDeflate: false });
    const message = await withTimeout(new Promise((resolve) => connection.once('message', (data, isBinary) => resolve({ data, isBinary }))));
    expect(message).toEqual({ data: 'hi', isBinary: false });
    connection.terminate();
  });
});

describe('wss://', () => {
  let tls: SelfSignedCertificate | undefined;
  let key = '';
  let cert = '';
  let sockeye: WebSocketServer;
  let port = 0;

  beforeAll(async () => {
    tls = makeSelfSignedCertificate();
    ({ key, cert } = tls);
    sockeye = new WebSocketServer({ tls: { key, cert }, heartbeat: false });
    sockeye.route('/echo', { message: (connection, data, isBinary) => connection.send(data, { binary: isBinary }) });
    port = (await sockeye.listen(0)).port;
  });

  afterAll(async () => {
    await sockeye?.close({ timeout: 100 });
    tls?.remove();
  });

  const echoOnce = async (connection: Connection<undefined>): Promise<unknown> => {
    const echoed = withTimeout(new Promise((resolve) => connection.once('message', resolve)));
    connection.send('over TLS');
    return echoed;
  };

  it('connects to a TLS server whose certificate verifies against the given CA', async () => {
    const connection = await connect(`wss://127.0.0.1:${port}/echo`, { tls: { ca: cert } });
    expect(await echoOnce(connection)).toBe('over TLS');
    connection.close(1000);
  });

  it('connects with rejectUnauthorized: false', async () => {
    const connection = await connect(`wss://127.0.0.1:${port}/echo`, { tls: { rejectUnauthorized: false } });
    expect(await echoOnce(connection)).toBe('over TLS');
    connection.close(1000);
  });

  it('refuses an untrusted certificate by default (WS_ERR_CONNECT_FAILED)', async () => {
    const error = await failure(connect(`wss://127.0.0.1:${port}/echo`), 'WS_ERR_CONNECT_FAILED');
    expect(error.message).toMatch(/self[- ]signed/i);
  });

  it('checks the certificate against the host name it is given', async () => {
    const error = await failure(connect(`wss://127.0.0.1:${port}/echo`, { tls: { ca: cert, servername: 'other.example' } }), 'WS_ERR_CONNECT_FAILED');
    expect(error.message).toMatch(/other\.example|altnames/i);
  });
});

function withTimeout<T>(promise: Promise<T>, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
