import { lookup } from 'node:dns/promises';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ResponseHeadParser, type HeadLimits } from '../protocol/handshake/http-head.js';
import { HandshakeError, ProxyError } from './errors.js';
import type { ProxyEndpoint } from './proxy-env.js';

/**
 * A TCP connection to a WebSocket server through a proxy: HTTP CONNECT
 * (RFC 9110 §9.3.6, Basic credentials RFC 7617) or SOCKS5 (RFC 1928, with
 * username/password RFC 1929), and for wss:// TLS with the server on top of
 * the tunnel. What the proxy sends back is read with a bound (the HTTP head
 * limits; a SOCKS5 reply is at most 262 bytes), and the caller's signal stops
 * the attempt wherever it is.
 */

export interface TunnelOptions {
  /** The WebSocket server's host name or IP address (IPv6 without brackets). */
  host: string;
  port: number;
  /**
   * For wss://: TLS with the server through the tunnel, with these options.
   * The server name (SNI, certificate check) is `host` unless these set
   * `servername`; IP addresses are not sent as SNI (RFC 6066 §3).
   */
  tls?: TlsConnectionOptions;
  /** Aborting destroys the sockets and rejects with `WS_ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Bounds on the proxy's answer to CONNECT (default: the HTTP head defaults, 16 KiB). */
  headLimits?: Partial<HeadLimits>;
}

/**
 * Open a tunnel through `proxy` to `options.host:options.port`. Resolves with
 * the socket to speak WebSocket on: for plain ws:// the proxy connection
 * itself, paused (attach a 'data' listener, then `resume()`); for wss:// a
 * TLS socket whose handshake with the server has completed. Rejects with a
 * `ProxyError` when the proxy refuses or fails, a `HandshakeError`
 * (`WS_ERR_CONNECT_FAILED`) when the name cannot be resolved or TLS with the
 * server fails, `WS_ERR_ABORTED` when the signal fires.
 */
export async function openTunnel(proxy: ProxyEndpoint, options: TunnelOptions): Promise<Socket> {
  const { signal } = options;
  const target = `${bracketed(options.host)}:${options.port}`;
  const abortError = (): HandshakeError => new HandshakeError('WS_ERR_ABORTED', `the connection to ${target} through ${proxy.display} was aborted`);
  if (aborted(signal)) throw abortError();
  checkCredentials(proxy);

  // socks5:// resolves the name here and sends the address (curl does the
  // same); socks5h:// sends the name and the proxy resolves it.
  let address = options.host;
  if (proxy.kind === 'socks5' && isIP(address) === 0) {
    try {
      address = (await lookup(address)).address;
    } catch (error) {
      throw new HandshakeError(
        'WS_ERR_CONNECT_FAILED',
        `cannot resolve ${options.host}: ${(error as Error).message}`,
        undefined,
        undefined,
        error as Error,
      );
    }
    if (aborted(signal)) throw abortError();
  }

  const socket = connectTcp({ host: proxy.host, port: proxy.port });
  const reader = new TunnelReader(socket, proxy, signal, abortError);
  try {
    await reader.connected;
    if (proxy.kind === 'http') await httpConnect(socket, reader, proxy, target, options.headLimits);
    else await socks5Connect(socket, reader, proxy, address, options.port);
    if (options.tls === undefined) {
      const rest = reader.release(true);
      if (rest.length > 0) socket.unshift(rest);
      return socket;
    }
    // A TLS server speaks only after the ClientHello: bytes already here
    // came from the proxy, and would corrupt the TLS stream.
    if (reader.release(false).length > 0) {
      throw new ProxyError('WS_ERR_PROXY_FAILED', `${proxy.display} sent data after opening the tunnel, before TLS started`, proxy.display);
    }
    return await startTls(socket, proxy, options, abortError);
  } catch (error) {
    reader.release(false);
    socket.destroy();
    throw error;
  }
}

function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** What the two credential schemes can carry; caught before anything is sent. */
function checkCredentials(proxy: ProxyEndpoint): void {
  if (proxy.username === '' && proxy.password === '') return;
  const invalid = (why: string): HandshakeError => new HandshakeError('WS_ERR_INVALID_URL', `proxy ${proxy.display}: ${why}`);
  if (proxy.kind === 'http') {
    // RFC 7617 §2: the user-id cannot contain a colon, the first one ends it.
    if (proxy.username.includes(':')) throw invalid('a Basic user name cannot contain ":"');
    return;
  }
  // RFC 1929 §2: ULEN and PLEN are one octet each, and at least 1.
  const user = Buffer.byteLength(proxy.username, 'utf8');
  const pass = Buffer.byteLength(proxy.password, 'utf8');
  if (user < 1 || user > 255 || pass < 1 || pass > 255) throw invalid('SOCKS5 user name and password must each be 1 to 255 bytes');
}

// ---- HTTP CONNECT -------------------------------------------------------------

async function httpConnect(
  socket: Socket,
  reader: TunnelReader,
  proxy: ProxyEndpoint,
  target: string,
  headLimits: Partial<HeadLimits> | undefined,
): Promise<void> {
  // RFC 9110 §9.3.6: the request target of CONNECT is the authority
  // (host:port, IPv6 in brackets), and Host carries the same.
  let request = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n`;
  if (proxy.username !== '' || proxy.password !== '') {
    // RFC 7617 §2 with charset UTF-8 (§2.1), sent to the proxy (RFC 9110 §11.7.2).
    const token = Buffer.from(`${proxy.username}:${proxy.password}`, 'utf8').toString('base64');
    request += `Proxy-Authorization: Basic ${token}\r\n`;
  }
  socket.write(`${request}\r\n`, 'latin1');

  const parser = new ResponseHeadParser(headLimits);
  // Each pass consumes a chunk; the parser's byte limit ends the loop.
  for (;;) {
    const result = parser.push(await reader.chunk());
    if (result.kind === 'incomplete') continue;
    if (result.kind === 'error') {
      throw new ProxyError('WS_ERR_PROXY_FAILED', `${proxy.display} answered CONNECT with an invalid response: ${result.reason}`, proxy.display);
    }
    const { status, reason } = result.head;
    // RFC 9110 §9.3.6: any 2xx means the proxy switched to tunnel mode.
    if (status >= 200 && status < 300) {
      reader.unread(result.rest);
      return;
    }
    const code = status === 407 ? 'WS_ERR_PROXY_AUTH' : 'WS_ERR_PROXY_REFUSED';
    const hint =
      status === 407 ?
        proxy.username === '' ?
          ' (no credentials were given)'
        : ' (the credentials were not accepted)'
      : '';
    throw new ProxyError(code, `${proxy.display} refused to CONNECT to ${target}: ${status} ${reason}${hint}`.trimEnd(), proxy.display, status);
  }
}

// ---- SOCKS5 -------------------------------------------------------------------

const SOCKS_VERSION = 0x05;
const METHOD_NONE = 0x00;
const METHOD_USERPASS = 0x02;
const METHOD_REFUSED = 0xff;
const CMD_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/** RFC 1928 §6, the REP field. */
const SOCKS_REPLIES: Readonly<Record<number, string>> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

async function socks5Connect(socket: Socket, reader: TunnelReader, proxy: ProxyEndpoint, host: string, port: number): Promise<void> {
  const withCredentials = proxy.username !== '' || proxy.password !== '';
  const failed = (why: string): ProxyError => new ProxyError('WS_ERR_PROXY_FAILED', `${proxy.display}: ${why}`, proxy.display);

  // RFC 1928 §3: version, the methods offered; the server picks one.
  socket.write(Buffer.from(withCredentials ? [SOCKS_VERSION, 2, METHOD_NONE, METHOD_USERPASS] : [SOCKS_VERSION, 1, METHOD_NONE]));
  const [version, method] = await reader.exactly(2);
  if (version !== SOCKS_VERSION) throw failed(`not a SOCKS5 proxy (version byte ${version})`);
  if (method === METHOD_REFUSED) {
    const why =
      withCredentials ? 'accepts none of the offered methods (none, username/password)' : 'requires authentication and no credentials were given';
    throw new ProxyError('WS_ERR_PROXY_AUTH', `${proxy.display} ${why}`, proxy.display, undefined, METHOD_REFUSED);
  }
  if (method === METHOD_USERPASS && withCredentials) {
    // RFC 1929 §2: VER=1, ULEN, UNAME, PLEN, PASSWD; the answer is VER, STATUS (0 = success).
    const user = Buffer.from(proxy.username, 'utf8');
    const pass = Buffer.from(proxy.password, 'utf8');
    socket.write(Buffer.concat([Buffer.from([0x01, user.length]), user, Buffer.from([pass.length]), pass]));
    const [, status] = await reader.exactly(2);
    if (status !== 0) {
      throw new ProxyError(
        'WS_ERR_PROXY_AUTH',
        `${proxy.display} rejected the user name and password (status ${status})`,
        proxy.display,
        undefined,
        status,
      );
    }
  } else if (method !== METHOD_NONE) {
    throw failed(`chose method ${method}, which was not offered`);
  }

  // RFC 1928 §4: CONNECT to the address (IPv4, IPv6) or the domain name.
  const family = isIP(host);
  let address: Buffer;
  if (family === 4) address = Buffer.from([ATYP_IPV4, ...host.split('.').map(Number)]);
  else if (family === 6) address = Buffer.concat([Buffer.from([ATYP_IPV6]), ipv6Bytes(host)]);
  else {
    const name = Buffer.from(host, 'utf8');
    if (name.length > 255) throw new HandshakeError('WS_ERR_INVALID_URL', `host name too long for SOCKS5: ${host.slice(0, 40)}...`);
    address = Buffer.concat([Buffer.from([ATYP_DOMAIN, name.length]), name]);
  }
  const portBytes = Buffer.from([port >> 8, port & 0xff]);
  socket.write(Buffer.concat([Buffer.from([SOCKS_VERSION, CMD_CONNECT, 0x00]), address, portBytes]));

  // RFC 1928 §6: VER, REP, RSV, ATYP, BND.ADDR, BND.PORT.
  const [replyVersion, reply, , atyp] = await reader.exactly(4);
  if (replyVersion !== SOCKS_VERSION) throw failed(`invalid reply (version byte ${replyVersion})`);
  if (reply !== 0) {
    const meaning = SOCKS_REPLIES[reply!] ?? 'unassigned reply code';
    throw new ProxyError(
      'WS_ERR_PROXY_REFUSED',
      `${proxy.display} refused to connect to ${bracketed(host)}:${port}: ${meaning} (SOCKS5 reply ${reply})`,
      proxy.display,
      undefined,
      reply,
    );
  }
  // The bound address is of no use to a client; it is read so the bytes after it are the server's.
  if (atyp === ATYP_IPV4) await reader.exactly(4 + 2);
  else if (atyp === ATYP_IPV6) await reader.exactly(16 + 2);
  else if (atyp === ATYP_DOMAIN) await reader.exactly((await reader.exactly(1))[0]! + 2);
  else throw failed(`invalid reply (address type ${atyp})`);
}

/** The 16 bytes of an IPv6 address in text form (as `net.isIP` accepted it; may end in dotted IPv4). */
function ipv6Bytes(text: string): Buffer {
  let hex = text;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // "::ffff:192.0.2.1": the dotted quad is the last two groups.
    const [a = 0, b = 0, c = 0, d = 0] = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    hex = text.slice(0, lastColon);
    if (hex.endsWith(':')) hex += ':'; // "::192.0.2.1" keeps its "::"
  }
  const [head = '', rest] = hex.split('::') as [string, string | undefined];
  const front = head === '' ? [] : head.split(':').map((group) => parseInt(group, 16));
  const back = rest === undefined || rest === '' ? [] : rest.split(':').map((group) => parseInt(group, 16));
  const zeros = new Array<number>(8 - front.length - back.length - tail.length).fill(0);
  const bytes = Buffer.alloc(16);
  [...front, ...zeros, ...back, ...tail].forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}

// ---- TLS over the tunnel -----------------------------------------------------

function startTls(socket: Socket, proxy: ProxyEndpoint, options: TunnelOptions, abortError: () => HandshakeError): Promise<Socket> {
  const { signal } = options;
  return new Promise((resolve, reject) => {
    const secure = connectTls({
      host: options.host,
      servername: isIP(options.host) === 0 ? options.host : undefined,
      ...options.tls,
      socket,
    });
    const done = (error: HandshakeError | null): void => {
      secure.off('secureConnect', onSecure);
      secure.off('error', onError);
      secure.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (error === null) {
        resolve(secure);
      } else {
        secure.destroy();
        reject(error);
      }
    };
    const onSecure = (): void => done(null);
    const onError = (error: Error): void =>
      done(
        new HandshakeError(
          'WS_ERR_CONNECT_FAILED',
          `TLS with ${bracketed(options.host)}:${options.port} through ${proxy.display} failed: ${error.message}`,
          undefined,
          undefined,
          error,
        ),
      );
    const onClose = (): void =>
      done(new ProxyError('WS_ERR_PROXY_FAILED', `the tunnel through ${proxy.display} closed during the TLS handshake`, proxy.display));
    const onAbort = (): void => done(abortError());
    secure.once('secureConnect', onSecure);
    secure.on('error', onError);
    secure.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- reading the proxy's answers -----------------------------------------------

/**
 * Collects what the proxy sends until the tunnel is open, and turns the end
 * of the connection, a socket error or the caller's abort into the rejection
 * of whatever read is pending. Holds at most what the proxy sent unasked
 * plus one chunk: each read takes what it needs.
 */
class TunnelReader {
  readonly connected: Promise<void>;
  private queue: Buffer[] = [];
  private queued = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private released = false;

  constructor(
    private readonly socket: Socket,
    private readonly proxy: ProxyEndpoint,
    private readonly signal: AbortSignal | undefined,
    private readonly abortError: () => HandshakeError,
  ) {
    this.connected = new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      this.onFailure = (error) => {
        reject(error);
        this.failWith(error);
      };
    });
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    signal?.addEventListener('abort', this.onAbort, { once: true });
    // A rejection nobody awaits yet (the abort can come before `await connected`).
    this.connected.catch(() => {});
  }

  private onFailure: (error: Error) => void = () => {};

  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.notify();
  };

  private readonly onError = (error: Error): void => {
    this.onFailure(
      new ProxyError(
        'WS_ERR_PROXY_FAILED',
        `cannot use proxy ${this.proxy.display}: ${error.message}`,
        this.proxy.display,
        undefined,
        undefined,
        error,
      ),
    );
  };

  private readonly onClose = (): void => {
    this.onFailure(
      new ProxyError('WS_ERR_PROXY_FAILED', `${this.proxy.display} closed the connection before the tunnel was open`, this.proxy.display),
    );
  };

  private readonly onAbort = (): void => {
    this.onFailure(this.abortError());
    this.socket.destroy();
  };

  private failWith(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async until(enough: () => boolean): Promise<void> {
    while (!enough()) {
      if (this.failure !== null) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.failure !== null) throw this.failure;
  }

  /** Whatever has arrived (at least one byte). */
  async chunk(): Promise<Buffer> {
    await this.until(() => this.queued > 0);
    const all = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
    this.queue = [];
    this.queued = 0;
    return all;
  }

  /** Exactly `count` bytes (count is at most a few hundred here). */
  async exactly(count: number): Promise<Buffer> {
    await this.until(() => this.queued >= count);
    const all = Buffer.concat(this.queue);
    this.queue = all.length > count ? [all.subarray(count)] : [];
    this.queued = all.length - count;
    return all.subarray(0, count);
  }

  /** Put bytes back in front (what followed the proxy's answer). */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.queue.unshift(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    this.queued += bytes.length;
  }

  /**
   * Stop listening and hand back the bytes not consumed. `pause` stops the
   * flow first, so nothing is emitted before the next owner listens.
   */
  release(pause: boolean): Buffer {
    if (this.released) return Buffer.alloc(0);
    this.released = true;
    if (pause) this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    this.signal?.removeEventListener('abort', this.onAbort);
    const rest = Buffer.concat(this.queue);
    this.queue = [];
    this.queued = 0;
    return rest;
  }
}
