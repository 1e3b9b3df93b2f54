import { createHash } from 'node:crypto';
import {
  connect as connectHttp2,
  constants as h2,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { parseExtensions } from '../protocol/handshake/extensions-header.js';

/**
 * The client's side of WebSockets over HTTP/2 (RFC 8441): one TLS
 * connection (a `ClientHttp2Session`) per origin, shared by every WebSocket
 * to it, each WebSocket an extended CONNECT stream. A session is opened on
 * the first WebSocket and closed (GOAWAY) when its last one has closed.
 */

export interface Http2Target {
  host: string;
  port: number;
  /** `host:port` as the URL wrote it: `:authority` (RFC 9113 §8.3.1). */
  authority: string;
  path: string;
}

/** Why an extended CONNECT failed, for the caller to wrap in its own error. */
export class Http2ConnectFailure extends Error {
  override readonly name = 'Http2ConnectFailure';
  constructor(
    readonly kind: 'connect' | 'unsupported' | 'refused' | 'invalid',
    message: string,
    readonly status?: number,
    readonly body?: string,
    override readonly cause?: Error,
  ) {
    super(message);
  }
}

interface PooledSession {
  session: ClientHttp2Session;
  /** Resolves once the server's SETTINGS are in and allow extended CONNECT (RFC 8441 §3). */
  ready: Promise<void>;
  /** WebSockets open or opening on it. */
  users: number;
}

/** Sessions by origin and TLS options: a WebSocket with other certificates or CAs does not share a session. */
const pool = new Map<string, PooledSession>();
/** Objects and functions among TLS options (a secure context, checkServerIdentity) are told apart by identity. */
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;

/**
 * The TLS options as a key: equal options (the same CA text, the same
 * certificate...) give the same key even when passed as new objects on
 * every call, so those WebSockets share a session.
 */
function tlsKey(tls: TlsConnectionOptions | undefined): string {
  if (tls === undefined) return '';
  const digest = createHash('sha256');
  const add = (value: unknown): void => {
    if (value === undefined || value === null) digest.update('-');
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') digest.update(`${typeof value}:${String(value)};`);
    else if (value instanceof Uint8Array) digest.update('bytes:').update(value).update(';');
    else if (Array.isArray(value)) {
      digest.update('[');
      for (const item of value) add(item);
      digest.update(']');
    } else if (typeof value === 'object' || typeof value === 'function') {
      let id = objectIds.get(value);
      if (id === undefined) {
        id = nextObjectId++;
        objectIds.set(value, id);
      }
      digest.update(`object:${id};`);
    }
  };
  for (const name of Object.keys(tls).sort()) {
    digest.update(`${name}=`);
    add((tls as Record<string, unknown>)[name]);
  }
  return digest.digest('hex');
}

function poolKey(target: Http2Target, tls: TlsConnectionOptions | undefined): string {
  return `${target.host}|${target.port}|${tlsKey(tls)}`;
}

/** `promise`, or a rejection once `signal` aborts (the caller turns that into its timeout or abort error). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(new Http2ConnectFailure('connect', 'aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Http2ConnectFailure('connect', 'aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function openSession(target: Http2Target, tls: TlsConnectionOptions | undefined): PooledSession {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const session = connectHttp2(`https://${host}:${target.port}`, {
    // IP addresses are not sent as SNI (RFC 6066 §3).
    servername: isIp(target.host) ? '' : target.host,
    ...tls,
  });
  const ready = new Promise<void>((resolve, reject) => {
    // A TLS server that does not offer h2 by ALPN (RFC 7301) ends the session before any SETTINGS.
    let alpn: string | undefined;
    session.once('connect', () => (alpn = session.alpnProtocol));
    const failed = (error: Error): void => {
      const why =
        alpn !== undefined && alpn !== 'h2' ?
          ` (it does not speak HTTP/2: ALPN chose ${typeof alpn === 'string' && alpn !== '' ? alpn : 'nothing'})`
        : '';
      reject(new Http2ConnectFailure('connect', `cannot connect to ${target.authority}: ${error.message}${why}`, undefined, undefined, error));
    };
    session.once('error', failed);
    session.once('close', () => reject(new Http2ConnectFailure('connect', `${target.authority} closed the HTTP/2 connection`)));
    session.once('remoteSettings', (settings) => {
      session.off('error', failed);
      if (session.alpnProtocol !== 'h2') {
        reject(new Http2ConnectFailure('unsupported', `${target.authority} does not speak HTTP/2 (ALPN chose ${String(session.alpnProtocol)})`));
      } else if (settings.enableConnectProtocol !== true) {
        reject(
          new Http2ConnectFailure(
            'unsupported',
            `${target.authority} speaks HTTP/2 but does not announce SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3): no WebSockets over HTTP/2 there`,
          ),
        );
      } else {
        resolve();
      }
    });
  });
  // Errors after the session was ready reach its streams; the session itself is let go.
  session.on('error', () => undefined);
  const pooled: PooledSession = { session, ready, users: 0 };
  ready.catch(() => undefined);
  return pooled;
}

/**
 * Open an extended CONNECT stream for a WebSocket (RFC 8441 §4): `:method
 * CONNECT`, `:protocol websocket`, `:scheme https`, `:path`,
 * `:authority`, `sec-websocket-version: 13`, and the offered subprotocols
 * and extensions; no key (§5). Resolves with the stream and the response's
 * header fields once the server answered 2xx; a refusal rejects with its
 * status and (up to 4 KiB of) its body.
 */
export async function openWebSocketStream(
  target: Http2Target,
  fields: ReadonlyArray<readonly [string, string]>,
  options: { tls?: TlsConnectionOptions; signal?: AbortSignal },
): Promise<{ stream: ClientHttp2Stream; headers: IncomingHttpHeaders; release: () => void }> {
  const key = poolKey(target, options.tls);
  let pooled = pool.get(key);
  if (pooled === undefined || pooled.session.closed || pooled.session.destroyed) {
    pooled = openSession(target, options.tls);
    const mine = pooled;
    pool.set(key, mine);
    mine.session.once('close', () => {
      if (pool.get(key) === mine) pool.delete(key);
    });
  }
  const session = pooled;
  session.users++;
  let released = false;
  /** `failed`: this WebSocket never opened; a session nobody else uses is then cut rather than closed politely. */
  const release = (failed = false): void => {
    if (released) return;
    released = true;
    session.users--;
    // The last WebSocket on the session is gone: GOAWAY, then the TLS connection ends.
    if (session.users === 0) {
      if (pool.get(key) === session) pool.delete(key);
      if (failed) session.session.destroy();
      else session.session.close();
    }
  };
  try {
    // A server that never sends its SETTINGS must not outlive the caller's deadline.
    await abortable(session.ready, options.signal);
    const request: OutgoingHttpHeaders = {
      [h2.HTTP2_HEADER_METHOD]: 'CONNECT',
      ':protocol': 'websocket',
      [h2.HTTP2_HEADER_SCHEME]: 'https',
      [h2.HTTP2_HEADER_PATH]: target.path,
      [h2.HTTP2_HEADER_AUTHORITY]: target.authority,
      'sec-websocket-version': '13',
    };
    for (const [name, value] of fields) {
      const lower = name.toLowerCase();
      // RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2; Host is :authority's.
      if (lower === 'host' || lower === 'connection' || lower === 'upgrade' || lower === 'keep-alive' || lower === 'transfer-encoding') continue;
      const previous = request[lower];
      request[lower] = previous === undefined ? value : `${String(previous)}, ${value}`;
    }
    const stream = session.session.request(request, { endStream: false, signal: options.signal });
    const headers = await abortable(
      new Promise<IncomingHttpHeaders>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', (error) =>
          reject(
            new Http2ConnectFailure('connect', `the WebSocket stream to ${target.authority} failed: ${error.message}`, undefined, undefined, error),
          ),
        );
        stream.once('close', () =>
          reject(
            new Http2ConnectFailure('invalid', `${target.authority} closed the stream before answering (RST_STREAM code ${stream.rstCode ?? '?'})`),
          ),
        );
      }),
      options.signal,
    ).catch((error: unknown) => {
      stream.destroy();
      throw error;
    });
    const status = Number(headers[h2.HTTP2_HEADER_STATUS]);
    if (status < 200 || status >= 300) {
      const body = await readBody(stream);
      stream.destroy();
      throw new Http2ConnectFailure('refused', `server refused the WebSocket with ${status}${body === '' ? '' : `: ${body}`}`, status, body);
    }
    stream.once('close', () => release());
    return { stream, headers, release: () => release() };
  } catch (error) {
    release(true);
    throw error;
  }
}

/** A refusal's text, up to 4 KiB, half a second at most. */
function readBody(stream: ClientHttp2Stream): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(Buffer.concat(chunks).subarray(0, 4096).toString('utf8').trim());
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= 4096) done();
    };
    const timer = setTimeout(done, 500);
    stream.on('data', onData);
    stream.once('end', done);
    stream.once('close', done);
  });
}

/** The response's `sec-websocket-extensions`, parsed; null when malformed. */
export function responseExtensions(headers: IncomingHttpHeaders): ReturnType<typeof parseExtensions> | null {
  const value = headers['sec-websocket-extensions'];
  if (value === undefined) return { ok: true, offers: [] };
  return parseExtensions(Array.isArray(value) ? value.join(', ') : value);
}
