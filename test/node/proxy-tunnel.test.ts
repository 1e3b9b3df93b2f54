import { lookup } from 'node:dns/promises';
import { connect as connectTcp, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { connect, HandshakeError, ProxyError, WebSocket, WebSocketServer, type Connection } from '../../src/index.js';
import { parseProxyUrl } from '../../src/node/proxy-env.js';
import { openTunnel } from '../../src/node/proxy-tunnel.js';
import { ReconnectingWebSocket } from '../../src/node/reconnecting.js';
import { makeSelfSignedCertificate, type SelfSignedCertificate } from './test-certificates.js';

/**
 * connect() through proxies written here, on 127.0.0.1 port 0: an HTTP
 * CONNECT proxy and a SOCKS5 proxy, each counting the tunnels it opened and
 * recording what it was asked for, in front of a Sockeye WebSocketServer
 * (ws:// and, with a certificate made by openssl, wss://).
 */

const WAIT_MS = 10_000;

// ---- test proxies ----------------------------------------------------------------

interface TestProxy {
  port: number;
  /** Tunnels opened to a target (after any authentication). */
  tunnels: number;
  /** What each client asked to reach: "host:port" as sent (CONNECT target, or SOCKS address). */
  requested: string[];
  /** Proxy-Authorization headers (HTTP) or "user:pass" (SOCKS), as received. */
  credentials: string[];
  /** Resolves with the client socket the next time a request arrives (before the answer). */
  nextRequest(): Promise<Socket>;
  /** Resolves when every client connection to the proxy has closed. */
  allClosed(): Promise<void>;
  url(credentials?: string): string;
  close(): Promise<void>;
}

interface ProxyBehaviour {
  /** "user:pass" the client must present. */
  credentials?: string;
  /** HTTP: refuse CONNECT with this status. SOCKS: answer the CONNECT with this REP code. */
  refuse?: number;
  /** Never answer the request. */
  silent?: boolean;
  /** HTTP: answer with a head that never ends. */
  endlessHead?: boolean;
}

const proxies: TestProxy[] = [];

async function startProxy(scheme: 'http' | 'socks5' | 'socks5h', behaviour: ProxyBehaviour = {}): Promise<TestProxy> {
  const sockets = new Set<Socket>();
  let closedWaiters: Array<() => void> = [];
  let requestWaiters: Array<(socket: Socket) => void> = [];
  const proxy: TestProxy = {
    port: 0,
    tunnels: 0,
    requested: [],
    credentials: [],
    nextRequest: () => new Promise((resolve) => requestWaiters.push(resolve)),
    allClosed: () => (sockets.size === 0 ? Promise.resolve() : new Promise((resolve) => closedWaiters.push(resolve))),
    url: (credentials) => `${scheme}://${credentials === undefined ? '' : `${credentials}@`}127.0.0.1:${proxy.port}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const requestArrived = (socket: Socket): void => {
    const waiters = requestWaiters;
    requestWaiters = [];
    for (const waiter of waiters) waiter(socket);
  };
  /** Connect to the target and splice the two sockets together once `answer` is written. */
  const tunnel = (client: Socket, reader: ByteReader, host: string, port: number, answer: (ok: boolean) => Buffer | string): void => {
    const upstream = connectTcp({ host, port });
    upstream.on('error', () => {
      client.end(answer(false));
    });
    upstream.once('connect', () => {
      proxy.tunnels += 1;
      client.write(answer(true));
      reader.release();
      client.pipe(upstream).pipe(client);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  };

  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => {});
    client.once('close', () => {
      sockets.delete(client);
      if (sockets.size === 0) {
        const waiters = closedWaiters;
        closedWaiters = [];
        for (const waiter of waiters) waiter();
      }
    });
    const reader = byteReader(client);
    void (async () => {
      if (scheme === 'http') {
        const head = await reader.until('\r\n\r\n', 16 * 1024);
        const [line = '', ...fields] = head.toString('latin1').split('\r\n');
        const [method, target = ''] = line.split(' ');
        proxy.requested.push(target);
        const auth = fields.find((field) => field.toLowerCase().startsWith('proxy-authorization:'));
        if (auth !== undefined) proxy.credentials.push(auth.slice(auth.indexOf(':') + 1).trim());
        requestArrived(client);
        if (behaviour.silent === true) return;
        if (behaviour.endlessHead === true) {
          client.write('HTTP/1.1 200 Connection established\r\n');
          const filler = `X-Filler: ${'a'.repeat(1000)}\r\n`.repeat(64);
          // Bounded: 200 writes of 64 KiB, far past any head limit; stops when the client hangs up.
          for (let i = 0; i < 200 && !client.destroyed; i++) {
            if (!client.write(filler)) await new Promise((resolve) => client.once('drain', resolve).once('close', resolve));
          }
          return;
        }
        if (method !== 'CONNECT') return void client.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
        if (behaviour.credentials !== undefined) {
          const expected = `Basic ${Buffer.from(behaviour.credentials, 'utf8').toString('base64')}`;
          if (auth === undefined || auth.slice(auth.indexOf(':') + 1).trim() !== expected) {
            return void client.end(
              'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n',
            );
          }
        }
        if (behaviour.refuse !== undefined) return void client.end(`HTTP/1.1 ${behaviour.refuse} Forbidden\r\nContent-Length: 0\r\n\r\n`);
        const colon = target.lastIndexOf(':');
        const host = target.slice(0, colon).replace(/^\[|\]$/g, '');
        tunnel(client, reader, host, Number(target.slice(colon + 1)), (ok) =>
          ok ? 'HTTP/1.1 200 Connection established\r\n\r\n' : 'HTTP/1.1 502 Bad Gateway\r\n\r\n',
        );
        return;
      }
      // SOCKS5, RFC 1928 / RFC 1929, server side.
      const [version = 0, count = 0] = await reader.take(2);
      const methods = [...(await reader.take(count))];
      if (version !== 5) return void client.destroy();
      if (behaviour.credentials !== undefined) {
        if (!methods.includes(2)) return void client.end(Buffer.from([5, 0xff]));
        client.write(Buffer.from([5, 2]));
        const [, userLength = 0] = await reader.take(2);
        const user = (await reader.take(userLength)).toString('utf8');
        const [passLength = 0] = await reader.take(1);
        const pass = (await reader.take(passLength)).toString('utf8');
        proxy.credentials.push(`${user}:${pass}`);
        if (`${user}:${pass}` !== behaviour.credentials) return void client.end(Buffer.from([1, 1]));
        client.write(Buffer.from([1, 0]));
      } else {
        if (!methods.includes(0)) return void client.end(Buffer.from([5, 0xff]));
        client.write(Buffer.from([5, 0]));
      }
      const [, command, , atyp] = await reader.take(4);
      let host: string;
      if (atyp === 1) host = [...(await reader.take(4))].join('.');
      else if (atyp === 4) host = ((await reader.take(16)).toString('hex').match(/.{4}/g) ?? []).join(':');
      else host = (await reader.take((await reader.take(1))[0]!)).toString('utf8');
      const port = (await reader.take(2)).readUInt16BE(0);
      proxy.requested.push(`${atyp === 4 ? `[${host}]` : host}:${port}`);
      requestArrived(client);
      if (behaviour.silent === true) return;
      const reply = (rep: number): Buffer => Buffer.from([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
      if (command !== 1) return void client.end(reply(7));
      if (behaviour.refuse !== undefined) return void client.end(reply(behaviour.refuse));
      tunnel(client, reader, host, port, (ok) => reply(ok ? 0 : 5));
    })().catch(() => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as AddressInfo).port;
  proxies.push(proxy);
  return proxy;
}

interface ByteReader {
  take(count: number): Promise<Buffer>;
  until(marker: string, max: number): Promise<Buffer>;
  /** Stop reading: what was not taken goes back into the paused socket, for pipe(). */
  release(): void;
}

/** Reads a client's bytes on demand, for the proxies' side of the handshakes. */
function byteReader(socket: Socket): ByteReader {
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let ended = false;
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  };
  socket.on('data', onData);
  socket.once('close', () => {
    ended = true;
    wake?.();
  });
  const waitFor = async (enough: () => boolean): Promise<void> => {
    while (!enough()) {
      if (ended) throw new Error('client went away');
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return {
    async take(count) {
      await waitFor(() => buffered.length >= count);
      const taken = buffered.subarray(0, count);
      buffered = buffered.subarray(count);
      return taken;
    },
    async until(marker, max) {
      await waitFor(() => buffered.includes(marker) || buffered.length > max);
      const end = buffered.indexOf(marker);
      if (end < 0) throw new Error('head too large');
      const head = buffered.subarray(0, end);
      buffered = buffered.subarray(end + marker.length);
      return head;
    },
    release() {
      socket.pause();
      socket.off('data', onData);
      if (buffered.length > 0) socket.unshift(buffered);
      buffered = Buffer.alloc(0);
    },
  };
}

// ---- the WebSocket server behind the proxies ----------------------------------------

let tls: SelfSignedCertificate | undefined;
let cert = '';
let plain: WebSocketServer;
let secure: WebSocketServer;
let plainPort = 0;
let securePort = 0;
/** Server names (SNI) the wss:// server was sent. */
const serverNames: string[] = [];
/** What "localhost" resolves to here: the servers listen there, so socks5:// (resolved locally) reaches them. */
let localAddress = '127.0.0.1';

beforeAll(async () => {
  localAddress = (await lookup('localhost')).address;
  tls = makeSelfSignedCertificate();
  cert = tls.cert;
  const key = tls.key;
  const echo = {
    message: (connection: Connection<undefined>, data: string | Buffer, isBinary: boolean) => void connection.send(data, { binary: isBinary }),
  };
  plain = new WebSocketServer({ heartbeat: false }).route('/echo', echo);
  const context = createSecureContext({ key, cert });
  secure = new WebSocketServer({
    tls: {
      key,
      cert,
      // Records the SNI each client sent (called only when one was sent).
      SNICallback: (servername, done) => {
        serverNames.push(servername);
        done(null, context);
      },
    },
    heartbeat: false,
  }).route('/echo', echo);
  plainPort = (await plain.listen(0, localAddress)).port;
  securePort = (await secure.listen(0, localAddress)).port;
});

afterAll(async () => {
  await plain?.close({ timeout: 100 });
  await secure?.close({ timeout: 100 });
  tls?.remove();
});

beforeEach(() => {
  // connect() applies NO_PROXY from the environment even to an explicit
  // proxy (as curl does); a CI machine's NO_PROXY=localhost must not change these tests.
  vi.stubEnv('NO_PROXY', '');
  vi.stubEnv('no_proxy', '');
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

const wsUrl = (): string => `ws://localhost:${plainPort}/echo`;
const wssUrl = (): string => `wss://localhost:${securePort}/echo`;

async function roundTrip(connection: Connection<undefined>, text: string): Promise<unknown> {
  const echoed = withTimeout(new Promise((resolve) => connection.once('message', resolve)));
  connection.send(text);
  const result = await echoed;
  connection.close(1000);
  return result;
}

async function failure(attempt: Promise<unknown>): Promise<HandshakeError> {
  const outcome = await withTimeout(
    attempt.then(
      () => null,
      (error: unknown) => error,
    ),
  );
  if (!(outcome instanceof HandshakeError)) throw new Error(`expected a HandshakeError, got ${String(outcome)}`);
  return outcome;
}

function withTimeout<T>(promise: Promise<T>, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- tests -------------------------------------------------------------------------

describe('connect() through an HTTP CONNECT proxy', () => {
  it('tunnels ws:// and a message round-trips', async () => {
    const proxy = await startProxy('http');
    const connection = await connect(wsUrl(), { proxy: proxy.url() });
    expect(await roundTrip(connection, 'through CONNECT')).toBe('through CONNECT');
    expect(proxy.tunnels).toBe(1);
    expect(proxy.requested).toEqual([`localhost:${plainPort}`]);
    expect(proxy.credentials).toEqual([]);
  });

  it('tunnels wss:// with TLS to the server (name checked against the certificate)', async () => {
    const proxy = await startProxy('http');
    const connection = await connect(wssUrl(), { proxy: proxy.url(), tls: { ca: cert } });
    expect(await roundTrip(connection, 'TLS in CONNECT')).toBe('TLS in CONNECT');
    expect(proxy.tunnels).toBe(1);
    expect(proxy.requested).toEqual([`localhost:${securePort}`]);
  });

  it('sends the target host as SNI inside the tunnel, and no SNI for an IP address (RFC 6066 §3)', async () => {
    const proxy = await startProxy('http');
    serverNames.length = 0;
    const named = await connect(wssUrl(), { proxy: proxy.url(), tls: { ca: cert } });
    expect(await roundTrip(named, 'sni')).toBe('sni');
    expect(serverNames).toEqual(['localhost']);
    if (localAddress === '127.0.0.1') {
      // The certificate also names IP 127.0.0.1: it verifies without SNI.
      const byAddress = await connect(`wss://127.0.0.1:${securePort}/echo`, { proxy: proxy.url(), tls: { ca: cert } });
      expect(await roundTrip(byAddress, 'no sni')).toBe('no sni');
      expect(serverNames).toEqual(['localhost']);
    }
  });

  it('checks the server certificate through the tunnel (untrusted: WS_ERR_CONNECT_FAILED)', async () => {
    const proxy = await startProxy('http');
    const error = await failure(connect(wssUrl(), { proxy: proxy.url() }));
    expect(error.code).toBe('WS_ERR_CONNECT_FAILED');
    expect(error.message).toMatch(/self[- ]signed/i);
    expect(proxy.tunnels).toBe(1);
  });

  it('sends Basic credentials from the URL, percent-decoded', async () => {
    const proxy = await startProxy('http', { credentials: 'al@ice:pa:ss wörd' });
    const connection = await connect(wsUrl(), { proxy: proxy.url('al%40ice:pa%3Ass%20w%C3%B6rd') });
    expect(await roundTrip(connection, 'authenticated')).toBe('authenticated');
    expect(proxy.credentials).toEqual([`Basic ${Buffer.from('al@ice:pa:ss wörd', 'utf8').toString('base64')}`]);
    expect(proxy.tunnels).toBe(1);
  });

  it('407 gives WS_ERR_PROXY_AUTH naming the proxy, never the password', async () => {
    const proxy = await startProxy('http', { credentials: 'alice:right' });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url('alice:wrong-secret') }));
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.code).toBe('WS_ERR_PROXY_AUTH');
    expect(error.status).toBe(407);
    expect((error as ProxyError).proxy).toBe(`http://alice@127.0.0.1:${proxy.port}`);
    expect(error.message).toContain(`127.0.0.1:${proxy.port}`);
    expect(error.message).toContain('407');
    expect(error.message).not.toContain('wrong-secret');
    expect(proxy.tunnels).toBe(0);
  });

  it('407 without credentials says none were given', async () => {
    const proxy = await startProxy('http', { credentials: 'alice:right' });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url() }));
    expect(error.code).toBe('WS_ERR_PROXY_AUTH');
    expect(error.message).toMatch(/no credentials/);
  });

  it('403 gives WS_ERR_PROXY_REFUSED with the status', async () => {
    const proxy = await startProxy('http', { refuse: 403 });
    const error = await failure(connect(wssUrl(), { proxy: proxy.url(), tls: { ca: cert } }));
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.code).toBe('WS_ERR_PROXY_REFUSED');
    expect(error.status).toBe(403);
    expect(error.message).toContain(`http://127.0.0.1:${proxy.port}`);
    expect(proxy.tunnels).toBe(0);
  });

  it('stops reading a response head that never ends (WS_ERR_PROXY_FAILED) and hangs up', async () => {
    const proxy = await startProxy('http', { endlessHead: true });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url(), headLimits: { maxHeadBytes: 8 * 1024 } }));
    expect(error.code).toBe('WS_ERR_PROXY_FAILED');
    await withTimeout(proxy.allClosed());
  });

  it('an unreachable proxy gives WS_ERR_PROXY_FAILED', async () => {
    const proxy = await startProxy('http');
    const url = proxy.url();
    await proxy.close();
    proxies.splice(proxies.indexOf(proxy), 1);
    const error = await failure(connect(wsUrl(), { proxy: url }));
    expect(error.code).toBe('WS_ERR_PROXY_FAILED');
    expect(error.message).toContain(url);
  });

  it('honours the handshake timeout while the proxy says nothing, and closes its connection', async () => {
    const proxy = await startProxy('http', { silent: true });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url(), handshakeTimeout: 300 }));
    expect(error.code).toBe('WS_ERR_HANDSHAKE_TIMEOUT');
    await withTimeout(proxy.allClosed());
  });

  it('honours the AbortSignal while the proxy says nothing, and closes its connection', async () => {
    const proxy = await startProxy('http', { silent: true });
    const controller = new AbortController();
    const arrived = proxy.nextRequest();
    const attempt = failure(connect(wsUrl(), { proxy: proxy.url(), signal: controller.signal }));
    await withTimeout(arrived);
    controller.abort();
    expect((await attempt).code).toBe('WS_ERR_ABORTED');
    await withTimeout(proxy.allClosed());
  });
});

describe('connect() through a SOCKS5 proxy', () => {
  it('socks5:// resolves the name here and sends the address; a message round-trips', async () => {
    const proxy = await startProxy('socks5');
    const connection = await connect(wsUrl(), { proxy: proxy.url() });
    expect(await roundTrip(connection, 'through SOCKS5')).toBe('through SOCKS5');
    expect(proxy.tunnels).toBe(1);
    const expected = isIP(localAddress) === 6 ? `[${localAddress}]` : localAddress;
    expect(proxy.requested).toEqual([`${expected}:${plainPort}`]);
  });

  it('socks5h:// sends the name for the proxy to resolve', async () => {
    const proxy = await startProxy('socks5h');
    const connection = await connect(wsUrl(), { proxy: proxy.url() });
    expect(await roundTrip(connection, 'name resolved remotely')).toBe('name resolved remotely');
    expect(proxy.requested).toEqual([`localhost:${plainPort}`]);
  });

  it('tunnels wss:// with TLS to the server', async () => {
    const proxy = await startProxy('socks5h');
    const connection = await connect(wssUrl(), { proxy: proxy.url(), tls: { ca: cert } });
    expect(await roundTrip(connection, 'TLS in SOCKS')).toBe('TLS in SOCKS');
    expect(proxy.tunnels).toBe(1);
  });

  it('sends an IPv4 target as an address (ATYP 1), also for socks5h://', async () => {
    const proxy = await startProxy('socks5h');
    // Whether the tunnel opens depends on where the server listens (what localhost resolves to); what was asked for does not.
    await openTunnel(parseProxyUrl(proxy.url()), { host: '127.0.0.1', port: plainPort }).then(
      (socket) => socket.destroy(),
      () => {},
    );
    expect(proxy.requested).toEqual([`127.0.0.1:${plainPort}`]);
  });

  it('authenticates with username/password (RFC 1929), percent-decoded', async () => {
    const proxy = await startProxy('socks5', { credentials: 'bob:s3 cret' });
    const connection = await connect(wsUrl(), { proxy: proxy.url('bob:s3%20cret') });
    expect(await roundTrip(connection, 'socks auth')).toBe('socks auth');
    expect(proxy.credentials).toEqual(['bob:s3 cret']);
    expect(proxy.tunnels).toBe(1);
  });

  it('wrong credentials give WS_ERR_PROXY_AUTH naming the proxy, never the password', async () => {
    const proxy = await startProxy('socks5', { credentials: 'bob:right' });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url('bob:wrong-secret') }));
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.code).toBe('WS_ERR_PROXY_AUTH');
    expect((error as ProxyError).proxy).toBe(`socks5://bob@127.0.0.1:${proxy.port}`);
    expect((error as ProxyError).socksReply).toBe(1);
    expect(error.message).not.toContain('wrong-secret');
    expect(proxy.tunnels).toBe(0);
  });

  it('a proxy that wants credentials none were given for: WS_ERR_PROXY_AUTH', async () => {
    const proxy = await startProxy('socks5', { credentials: 'bob:right' });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url() }));
    expect(error.code).toBe('WS_ERR_PROXY_AUTH');
    expect((error as ProxyError).socksReply).toBe(0xff);
  });

  it('general failure (REP 1) gives WS_ERR_PROXY_REFUSED with the reply', async () => {
    const proxy = await startProxy('socks5h', { refuse: 1 });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url() }));
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.code).toBe('WS_ERR_PROXY_REFUSED');
    expect((error as ProxyError).socksReply).toBe(1);
    expect(error.message).toMatch(/general SOCKS server failure/);
    expect(error.message).toContain(`socks5h://127.0.0.1:${proxy.port}`);
    expect(proxy.tunnels).toBe(0);
  });

  it('REP 5 says connection refused', async () => {
    const proxy = await startProxy('socks5h', { refuse: 5 });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url() }));
    expect(error.code).toBe('WS_ERR_PROXY_REFUSED');
    expect((error as ProxyError).socksReply).toBe(5);
    expect(error.message).toMatch(/connection refused/);
  });

  it('honours the handshake timeout while the proxy says nothing', async () => {
    const proxy = await startProxy('socks5h', { silent: true });
    const error = await failure(connect(wsUrl(), { proxy: proxy.url(), handshakeTimeout: 300 }));
    expect(error.code).toBe('WS_ERR_HANDSHAKE_TIMEOUT');
    await withTimeout(proxy.allClosed());
  });
});

describe('proxy from the environment (process.env, read by connect() by default)', () => {
  it('ALL_PROXY sends ws:// through the proxy', async () => {
    const proxy = await startProxy('socks5h');
    vi.stubEnv('ALL_PROXY', proxy.url());
    const connection = await connect(wsUrl());
    expect(await roundTrip(connection, 'from ALL_PROXY')).toBe('from ALL_PROXY');
    expect(proxy.tunnels).toBe(1);
  });

  it('HTTPS_PROXY sends wss:// through the proxy', async () => {
    const proxy = await startProxy('http');
    vi.stubEnv('HTTPS_PROXY', proxy.url());
    const connection = await connect(wssUrl(), { tls: { ca: cert } });
    expect(await roundTrip(connection, 'from HTTPS_PROXY')).toBe('from HTTPS_PROXY');
    expect(proxy.tunnels).toBe(1);
  });

  it('NO_PROXY reaches the server directly: the proxy opens no tunnel', async () => {
    const proxy = await startProxy('http');
    vi.stubEnv('ALL_PROXY', proxy.url());
    vi.stubEnv('NO_PROXY', 'example.com, .localhost, localhost');
    const connection = await connect(wsUrl());
    expect(await roundTrip(connection, 'direct')).toBe('direct');
    expect(proxy.tunnels).toBe(0);
    expect(proxy.requested).toEqual([]);
  });

  it('proxy: false ignores the environment', async () => {
    const proxy = await startProxy('http');
    vi.stubEnv('ALL_PROXY', proxy.url());
    const connection = await connect(wsUrl(), { proxy: false });
    expect(await roundTrip(connection, 'direct')).toBe('direct');
    expect(proxy.requested).toEqual([]);
  });

  it('an unusable proxy URL in the environment rejects with WS_ERR_INVALID_URL', async () => {
    vi.stubEnv('ALL_PROXY', 'socks4://127.0.0.1:1');
    const error = await failure(connect(wsUrl()));
    expect(error.code).toBe('WS_ERR_INVALID_URL');
    expect(error.message).toContain('ALL_PROXY');
  });
});

describe('the WHATWG WebSocket and ReconnectingWebSocket through a proxy', () => {
  it('WebSocket takes the proxy option', async () => {
    const proxy = await startProxy('http');
    const socket = new WebSocket(wsUrl(), [], { proxy: proxy.url() });
    const echoed = await withTimeout(
      new Promise<unknown>((resolve, reject) => {
        socket.onopen = () => socket.send('whatwg');
        socket.onmessage = (event) => resolve(event.data);
        socket.onerror = () => reject(new Error('error event'));
      }),
    );
    socket.close();
    expect(echoed).toBe('whatwg');
    expect(proxy.tunnels).toBe(1);
  });

  it('ReconnectingWebSocket follows the environment', async () => {
    const proxy = await startProxy('socks5h');
    vi.stubEnv('ALL_PROXY', proxy.url());
    const socket = new ReconnectingWebSocket(wsUrl());
    const echoed = await withTimeout(
      new Promise<unknown>((resolve) => {
        socket.on('open', () => socket.send('reconnecting'));
        socket.on('message', ({ data }) => resolve(data));
      }),
    );
    socket.close();
    expect(echoed).toBe('reconnecting');
    expect(proxy.tunnels).toBe(1);
  });

  it('ReconnectingWebSocket takes an explicit proxy in connectOptions', async () => {
    const proxy = await startProxy('http');
    // No proxy variable is set (beforeEach clears only NO_PROXY): the tunnel can come only from connectOptions.
    for (const name of ['ALL_PROXY', 'all_proxy', 'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy']) vi.stubEnv(name, '');
    const socket = new ReconnectingWebSocket(wsUrl(), { connectOptions: { proxy: proxy.url() } });
    const echoed = await withTimeout(
      new Promise<unknown>((resolve) => {
        socket.on('open', () => socket.send('explicit proxy'));
        socket.on('message', ({ data }) => resolve(data));
      }),
    );
    socket.close();
    expect(echoed).toBe('explicit proxy');
    expect(proxy.tunnels).toBe(1);
    expect(proxy.requested).toEqual([`localhost:${plainPort}`]);
  });
});

describe('openTunnel', () => {
  /** Ask a silent proxy for `host`, then abort: returns what the proxy was asked for. */
  const askFor = async (scheme: 'http' | 'socks5h', host: string): Promise<string[]> => {
    const proxy = await startProxy(scheme, { silent: true });
    const controller = new AbortController();
    const arrived = proxy.nextRequest();
    const attempt = failure(openTunnel(parseProxyUrl(proxy.url()), { host, port: 4321, signal: controller.signal }));
    await withTimeout(arrived);
    controller.abort();
    expect((await attempt).code).toBe('WS_ERR_ABORTED');
    await withTimeout(proxy.allClosed());
    return proxy.requested;
  };

  it('sends IPv6 targets as 16-byte addresses to SOCKS5 (ATYP 4), embedded IPv4 included', async () => {
    expect(await askFor('socks5h', '::1')).toEqual(['[0000:0000:0000:0000:0000:0000:0000:0001]:4321']);
    expect(await askFor('socks5h', '2001:db8::a:b')).toEqual(['[2001:0db8:0000:0000:0000:0000:000a:000b]:4321']);
    expect(await askFor('socks5h', '::ffff:192.0.2.1')).toEqual(['[0000:0000:0000:0000:0000:ffff:c000:0201]:4321']);
    expect(await askFor('socks5h', '1:2:3:4:5:6:7:8')).toEqual(['[0001:0002:0003:0004:0005:0006:0007:0008]:4321']);
  });

  it('brackets IPv6 targets in the CONNECT request target', async () => {
    expect(await askFor('http', '::1')).toEqual(['[::1]:4321']);
  });

  it('rejects at once when the signal is already aborted, without contacting the proxy', async () => {
    const proxy = await startProxy('http');
    const error = await failure(openTunnel(parseProxyUrl(proxy.url()), { host: 'localhost', port: plainPort, signal: AbortSignal.abort() }));
    expect(error.code).toBe('WS_ERR_ABORTED');
    expect(proxy.requested).toEqual([]);
  });

  /** A one-shot proxy that answers its first bytes with `reply`, whatever they were. */
  const scriptedSockets = new Set<Socket>();
  const scripted = async (reply: Buffer | string): Promise<{ url: string; server: Server }> => {
    const server = createServer((socket) => {
      scriptedSockets.add(socket);
      socket.once('close', () => scriptedSockets.delete(socket));
      socket.on('error', () => {});
      socket.once('data', () => socket.write(reply));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  };
  const stop = (server: Server): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve());
      for (const socket of scriptedSockets) socket.destroy();
    });

  it('keeps bytes that came right after the 2xx head for the next reader', async () => {
    const { url, server } = await scripted('HTTP/1.1 200 Connection established\r\n\r\nfirst bytes of the server');
    try {
      const socket = await openTunnel(parseProxyUrl(url), { host: 'localhost', port: 1 });
      const data = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
      socket.resume();
      expect(await withTimeout(data)).toBe('first bytes of the server');
      socket.destroy();
    } finally {
      await stop(server);
    }
  });

  it('refuses bytes after the 2xx head when TLS must start (WS_ERR_PROXY_FAILED)', async () => {
    const { url, server } = await scripted('HTTP/1.1 200 Connection established\r\n\r\nnot a TLS record');
    try {
      const error = await failure(openTunnel(parseProxyUrl(url), { host: 'localhost', port: 1, tls: {} }));
      expect(error.code).toBe('WS_ERR_PROXY_FAILED');
      expect(error.message).toMatch(/before TLS/);
    } finally {
      await stop(server);
    }
  });

  it('a SOCKS5 reply with another version byte is WS_ERR_PROXY_FAILED', async () => {
    const { url, server } = await scripted(Buffer.from([4, 0]));
    try {
      const error = await failure(openTunnel(parseProxyUrl(url.replace('http:', 'socks5h:')), { host: 'localhost', port: 1 }));
      expect(error.code).toBe('WS_ERR_PROXY_FAILED');
      expect(error.message).toMatch(/not a SOCKS5 proxy/);
    } finally {
      await stop(server);
    }
  });

  it('hands back a paused socket carrying the tunnel', async () => {
    const proxy = await startProxy('http');
    const socket = await openTunnel(parseProxyUrl(proxy.url()), { host: 'localhost', port: plainPort });
    expect(socket.isPaused()).toBe(true);
    const answer = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
    socket.resume();
    socket.write(`GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    // Not an upgrade: the WebSocket server answers with an HTTP error, which proves the bytes crossed the tunnel.
    expect(await withTimeout(answer)).toMatch(/^HTTP\/1\.1 4\d\d /);
    socket.destroy();
  });
});
