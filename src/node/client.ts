import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { buildUpgradeRequest, validateUpgradeResponse } from '../protocol/handshake/client-handshake.js';
import { generateClientKey } from '../protocol/handshake/accept-key.js';
import { formatExtensions } from '../protocol/handshake/extensions-header.js';
import { ResponseHeadParser, type HeadLimits, type ResponseHead } from '../protocol/handshake/http-head.js';
import { readResponseBody } from '../protocol/handshake/response-body.js';
import {
  acceptServerResponse,
  buildClientOffer,
  checkDeflateOptions,
  DEFAULT_DEFLATE_THRESHOLD,
  type DeflateOptions,
} from '../protocol/permessage-deflate.js';
import { Role } from '../protocol/role.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { HandshakeError } from './errors.js';
import { selectProxy, type ProxySelection } from './proxy-env.js';
import { openTunnel } from './proxy-tunnel.js';
import { Http2ConnectFailure, openWebSocketStream, responseExtensions } from './http2-client.js';
import { createZlibCodec } from './zlib-codec.js';
import { nodeTimers, type TimerSource } from './timer-source.js';

export interface ClientDeflateOptions extends DeflateOptions {
  level?: number;
  memLevel?: number;
}

export interface ConnectOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: readonly string[];
  /** Extra request headers. */
  headers?: Record<string, string> | ReadonlyArray<readonly [string, string]>;
  origin?: string;
  /** Offer permessage-deflate (default true). */
  perMessageDeflate?: boolean | ClientDeflateOptions;
  /** Milliseconds for TCP connect + TLS + upgrade. Default 10 s. */
  handshakeTimeout?: number;
  maxMessageSize?: number;
  closeTimeout?: number;
  highWaterMark?: number;
  maxBufferedAmount?: number;
  backpressurePolicy?: 'close' | 'drop';
  /** Ping at this interval (ms) and drop the connection when nothing came back since the last ping. Default off. */
  heartbeat?: number | false;
  /** Options for wss:// (ca, rejectUnauthorized, servername...). */
  tls?: TlsConnectionOptions;
  /** Abort the attempt (TCP connect, TLS, upgrade); it then rejects with `WS_ERR_ABORTED`. */
  signal?: AbortSignal;
  headLimits?: Partial<HeadLimits>;
  /**
   * Go through this proxy: `http://[user:password@]host:port` (HTTP CONNECT,
   * Basic credentials), `socks5://` (names resolved here) or `socks5h://`
   * (names resolved by the proxy), port 1080 when none is given. `false`
   * connects directly whatever the environment says. Default: the
   * environment, as curl reads it (`wss_proxy`/`https_proxy`/`HTTPS_PROXY`
   * for wss://, `ws_proxy`/`http_proxy` for ws://, then `ALL_PROXY`;
   * `NO_PROXY` applies to both, see `src/node/proxy-env.ts`).
   */
  proxy?: string | false;
  /**
   * wss:// only: open the WebSocket as an HTTP/2 stream (RFC 8441 extended
   * CONNECT) rather than an HTTP/1.1 upgrade. WebSockets to the same origin
   * with equal `tls` options share one HTTP/2 connection, which
   * closes when the last of them has. Fails with `WS_ERR_CONNECT_FAILED`
   * when the server does not speak h2 or does not announce
   * SETTINGS_ENABLE_CONNECT_PROTOCOL. Not through a proxy. Default false.
   */
  http2?: boolean;
  /**
   * @internal The clock and timers behind the handshake timeout and the
   * heartbeat. Tests pass a clock they advance by hand. Default: Node's.
   */
  timers?: TimerSource;
}

/** A refusal's body is kept for the error message, up to this many bytes. */
const MAX_REFUSAL_BODY = 4096;

/**
 * Open a WebSocket connection to a `ws://` or `wss://` URL (`http(s)://` are
 * taken as their WebSocket counterparts). Resolves once the server accepted
 * the upgrade; rejects with a `HandshakeError` saying why otherwise (the
 * HTTP status, when the server answered with one).
 */
export function connect(address: string | URL, options: ConnectOptions = {}): Promise<Connection<undefined>> {
  let target: ReturnType<typeof resolveTarget>;
  let deflateOptions: ClientDeflateOptions | null;
  let proxy: ProxySelection | null;
  try {
    target = resolveTarget(address);
    proxy = selectProxy(new URL(`${target.secure ? 'wss' : 'ws'}://${target.hostHeader}`), { proxy: options.proxy });
    const deflate = options.perMessageDeflate ?? true;
    deflateOptions =
      deflate === false ? null
      : deflate === true ? {}
      : deflate;
    if (deflateOptions !== null) checkDeflateOptions(deflateOptions);
  } catch (error) {
    return Promise.reject(error);
  }
  const key = generateClientKey();
  const protocols = options.protocols ?? [];
  const extraHeaders: Array<readonly [string, string]> =
    Array.isArray(options.headers) ? [...(options.headers as ReadonlyArray<readonly [string, string]>)] : Object.entries(options.headers ?? {});
  let request: string;
  try {
    request = buildUpgradeRequest({
      host: target.hostHeader,
      path: target.path,
      key,
      protocols,
      extensions: deflateOptions === null ? undefined : formatExtensions([buildClientOffer(deflateOptions)]),
      origin: options.origin,
      headers: extraHeaders,
    });
  } catch (error) {
    return Promise.reject(error);
  }

  const signal = options.signal;
  if (signal?.aborted === true) {
    return Promise.reject(new HandshakeError('WS_ERR_ABORTED', `the connection to ${target.display} was aborted`));
  }
  if (options.http2 === true) {
    if (!target.secure)
      return Promise.reject(new HandshakeError('WS_ERR_INVALID_URL', 'WebSockets over HTTP/2 need wss:// (HTTP/2 is spoken over TLS here)'));
    if (proxy !== null)
      return Promise.reject(
        new HandshakeError(
          'WS_ERR_INVALID_URL',
          `WebSockets over HTTP/2 do not go through a proxy here (${proxy.endpoint.display}); pass proxy: false or drop http2`,
        ),
      );
    return connectOverHttp2(target, options, deflateOptions, protocols, extraHeaders);
  }
  return new Promise((resolve, reject) => {
    // Assigned by start(): at once when direct, once the tunnel is open through a proxy.
    let socket!: Socket;
    const tunnel = proxy === null ? null : new AbortController();
    const parser = new ResponseHeadParser(options.headLimits);
    let settled = false;

    const onAbort = (): void => fail(new HandshakeError('WS_ERR_ABORTED', `the connection to ${target.display} was aborted`));
    const fail = (error: HandshakeError): void => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      tunnel?.abort();
      (socket as Socket | undefined)?.destroy();
      reject(error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeout = options.handshakeTimeout ?? 10_000;
    const timers = options.timers ?? nodeTimers;
    const timer = timers.setTimeout(() => {
      fail(new HandshakeError('WS_ERR_HANDSHAKE_TIMEOUT', `no upgrade from ${target.display} within ${timeout} ms`));
    }, timeout);

    const onData = (chunk: Buffer): void => {
      const result = parser.push(chunk);
      if (result.kind === 'incomplete') return;
      socket.off('data', onData);
      if (result.kind === 'error') {
        fail(new HandshakeError('WS_ERR_INVALID_RESPONSE', `invalid HTTP response: ${result.reason}`));
        return;
      }
      const head = result.head;
      if (head.status !== 101) {
        collectBody(socket, head, result.rest, (body) => {
          const detail = body !== '' ? `: ${body}` : '';
          fail(
            new HandshakeError(
              'WS_ERR_HANDSHAKE_REFUSED',
              `server refused the upgrade with ${head.status} ${head.reason}${detail}`,
              head.status,
              body,
            ),
          );
        });
        return;
      }
      const validation = validateUpgradeResponse(head, { key, protocols });
      if (!validation.ok) {
        fail(new HandshakeError('WS_ERR_INVALID_RESPONSE', `invalid upgrade response: ${validation.reason}`, head.status));
        return;
      }
      let deflate: ConnectionOptions['deflate'] = null;
      const extensions = head.headers.get('sec-websocket-extensions') ?? '';
      if (validation.extensions.length > 0) {
        if (deflateOptions === null) {
          fail(new HandshakeError('WS_ERR_EXTENSION_REJECTED', 'server accepted extensions that were not offered', 101));
          return;
        }
        const agreed = acceptServerResponse(validation.extensions, deflateOptions);
        if (!agreed.ok) {
          fail(new HandshakeError('WS_ERR_EXTENSION_REJECTED', `unacceptable extension response: ${agreed.reason}`, 101));
          return;
        }
        if (agreed.params !== null) {
          deflate = {
            codec: createZlibCodec(agreed.params, 'client', { level: deflateOptions.level, memLevel: deflateOptions.memLevel }),
            threshold: deflateOptions.threshold ?? DEFAULT_DEFLATE_THRESHOLD,
          };
        }
      }
      settled = true;
      timers.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      const connection = openClientConnection(socket, options, deflate, validation.protocol, extensions, timers);
      resolve(connection);
      // Frames that came with the 101 are delivered after the caller got the
      // connection. A microtask queued after resolve() runs after the
      // reactions to it (`.then`, `await connect()`), so listeners attached
      // there hear them; process.nextTick would run before any of those.
      // Microtasks also run before the socket can deliver later bytes.
      if (result.rest.length > 0) {
        const rest = result.rest;
        queueMicrotask(() => connection.receiveInitial(rest));
      }
    };
    const start = (opened: Socket, tunnelled: boolean): void => {
      socket = opened;
      if (tunnelled) socket.write(request, 'latin1');
      else socket.once(target.secure ? 'secureConnect' : 'connect', () => socket.write(request, 'latin1'));
      socket.on('error', (error) => {
        fail(new HandshakeError('WS_ERR_CONNECT_FAILED', `cannot connect to ${target.display}: ${error.message}`, undefined, undefined, error));
      });
      socket.on('close', () => {
        fail(new HandshakeError('WS_ERR_INVALID_RESPONSE', `${target.display} closed the connection during the handshake`));
      });
      socket.on('data', onData);
      // A plain tunnel comes paused so nothing it carried was emitted unheard.
      if (tunnelled) socket.resume();
    };
    if (proxy === null) {
      start(
        target.secure ?
          connectTls({ host: target.host, port: target.port, servername: isIp(target.host) ? undefined : target.host, ...options.tls })
        : connectTcp({ host: target.host, port: target.port }),
        false,
      );
    } else {
      openTunnel(proxy.endpoint, {
        host: target.host,
        port: target.port,
        tls: target.secure ? (options.tls ?? {}) : undefined,
        signal: tunnel!.signal,
        headLimits: options.headLimits,
      }).then(
        (opened) => (settled ? opened.destroy() : start(opened, true)),
        (error: unknown) =>
          fail(
            error instanceof HandshakeError ? error : (
              new HandshakeError(
                'WS_ERR_CONNECT_FAILED',
                `cannot connect to ${target.display} through ${proxy.endpoint.display}`,
                undefined,
                undefined,
                error as Error,
              )
            ),
          ),
      );
    }
  });
}

/**
 * connect() over HTTP/2: the same offer as the HTTP/1.1 request, sent as
 * an extended CONNECT's fields (RFC 8441 §4-§5), the same checks of the
 * answer (RFC 6455 §4.1: a selected subprotocol must have been offered,
 * extensions must answer ours), and the same `Connection` on the stream.
 */
async function connectOverHttp2(
  target: ReturnType<typeof resolveTarget>,
  options: ConnectOptions,
  deflateOptions: ClientDeflateOptions | null,
  protocols: readonly string[],
  extraHeaders: ReadonlyArray<readonly [string, string]>,
): Promise<Connection<undefined>> {
  const fields: Array<readonly [string, string]> = [];
  if (protocols.length > 0) fields.push(['sec-websocket-protocol', protocols.join(', ')]);
  if (deflateOptions !== null) fields.push(['sec-websocket-extensions', formatExtensions([buildClientOffer(deflateOptions)])]);
  if (options.origin !== undefined) fields.push(['origin', options.origin]);
  fields.push(...extraHeaders);
  const timeout = options.handshakeTimeout ?? 10_000;
  const deadline = AbortSignal.timeout(timeout);
  const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
  let opened: Awaited<ReturnType<typeof openWebSocketStream>>;
  try {
    opened = await openWebSocketStream({ host: target.host, port: target.port, authority: target.hostHeader, path: target.path }, fields, {
      tls: options.tls,
      signal,
    });
  } catch (error) {
    if (deadline.aborted) throw new HandshakeError('WS_ERR_HANDSHAKE_TIMEOUT', `no answer from ${target.display} within ${timeout} ms`);
    if (options.signal?.aborted === true) throw new HandshakeError('WS_ERR_ABORTED', `the connection to ${target.display} was aborted`);
    if (error instanceof Http2ConnectFailure) {
      const code =
        error.kind === 'refused' ? 'WS_ERR_HANDSHAKE_REFUSED'
        : error.kind === 'invalid' ? 'WS_ERR_INVALID_RESPONSE'
        : 'WS_ERR_CONNECT_FAILED';
      throw new HandshakeError(code, error.message, error.status, error.body, error.cause ?? error);
    }
    throw new HandshakeError(
      'WS_ERR_CONNECT_FAILED',
      `cannot connect to ${target.display}: ${asMessage(error)}`,
      undefined,
      undefined,
      error instanceof Error ? error : undefined,
    );
  }
  const { stream, headers } = opened;
  const refuse = (code: 'WS_ERR_INVALID_RESPONSE' | 'WS_ERR_EXTENSION_REJECTED', message: string): never => {
    stream.destroy();
    throw new HandshakeError(code, message, 200);
  };
  const protocolField = headers['sec-websocket-protocol'];
  const protocol = Array.isArray(protocolField) ? protocolField.join(', ') : protocolField;
  if (protocol !== undefined && !protocols.includes(protocol)) {
    refuse(
      'WS_ERR_INVALID_RESPONSE',
      `invalid upgrade response: server selected subprotocol ${JSON.stringify(protocol)} but ${protocols.length === 0 ? 'none was offered' : 'it was not offered'}`,
    );
  }
  const parsed = responseExtensions(headers);
  if (parsed === null || !parsed.ok) return refuse('WS_ERR_INVALID_RESPONSE', 'invalid upgrade response: malformed sec-websocket-extensions');
  let deflate: ConnectionOptions['deflate'] = null;
  if (parsed.offers.length > 0) {
    if (deflateOptions === null) return refuse('WS_ERR_EXTENSION_REJECTED', 'server accepted extensions that were not offered');
    const agreed = acceptServerResponse(parsed.offers, deflateOptions);
    if (!agreed.ok) return refuse('WS_ERR_EXTENSION_REJECTED', `unacceptable extension response: ${agreed.reason}`);
    if (agreed.params !== null) {
      deflate = {
        codec: createZlibCodec(agreed.params, 'client', { level: deflateOptions.level, memLevel: deflateOptions.memLevel }),
        threshold: deflateOptions.threshold ?? DEFAULT_DEFLATE_THRESHOLD,
      };
    }
  }
  const extensionsField = headers['sec-websocket-extensions'];
  // The stream stands where the TCP socket stands in RFC 6455 (RFC 8441 §5).
  const extensions = Array.isArray(extensionsField) ? extensionsField.join(', ') : (extensionsField ?? '');
  return openClientConnection(stream as unknown as Socket, options, deflate, protocol, extensions, options.timers ?? nodeTimers);
}

/** The client's side of an upgraded connection, over TCP or an HTTP/2 stream, with its heartbeat started. */
function openClientConnection(
  socket: Socket,
  options: ConnectOptions,
  deflate: ConnectionOptions['deflate'],
  protocol: string | undefined,
  extensions: string,
  timers: TimerSource,
): Connection<undefined> {
  const connection = Connection.adopt<undefined>(
    socket,
    {
      role: Role.Client,
      maxMessageSize: options.maxMessageSize,
      deflate,
      highWaterMark: options.highWaterMark,
      maxBufferedAmount: options.maxBufferedAmount,
      backpressurePolicy: options.backpressurePolicy,
      closeTimeout: options.closeTimeout,
      protocol,
      extensions,
    },
    undefined,
  );
  startHeartbeat(connection, options.heartbeat, timers);
  return connection;
}

function asMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function startHeartbeat(connection: Connection<undefined>, interval: number | false | undefined, timers: TimerSource): void {
  if (interval === undefined || interval === false || interval <= 0) return;
  const timer = timers.setInterval(() => connection.heartbeat(interval), interval);
  timer.unref();
  connection.once('close', () => timers.clearInterval(timer));
}

/**
 * Read what a refusing server says: its body as framed by the head (chunked
 * bodies de-chunked), up to 4 KiB of it and 16 KiB of raw input, half a
 * second at most.
 */
function collectBody(socket: Socket, head: ResponseHead, first: Uint8Array, done: (body: string) => void): void {
  let received = Buffer.from(first);
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    const { body } = readResponseBody(head, received, MAX_REFUSAL_BODY);
    done(Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8').trim());
  };
  // Chunk framing may cost more bytes than the text it carries; past this much input, stop anyway.
  const enough = (): boolean => received.length >= 4 * MAX_REFUSAL_BODY || readResponseBody(head, received, MAX_REFUSAL_BODY).complete;
  const onData = (chunk: Buffer): void => {
    const room = 4 * MAX_REFUSAL_BODY - received.length;
    received = Buffer.concat([received, chunk.subarray(0, Math.max(0, room))]);
    if (enough()) finish();
  };
  const timer = setTimeout(finish, 500);
  if (enough()) {
    finish();
    return;
  }
  socket.on('data', onData);
  socket.once('end', finish);
  socket.once('close', finish);
}

function resolveTarget(address: string | URL): {
  secure: boolean;
  host: string;
  port: number;
  hostHeader: string;
  path: string;
  display: string;
} {
  let url: URL;
  try {
    url = typeof address === 'string' ? new URL(address) : address;
  } catch {
    throw new HandshakeError('WS_ERR_INVALID_URL', `not a valid URL: ${String(address)}`);
  }
  const scheme = url.protocol;
  if (scheme !== 'ws:' && scheme !== 'wss:' && scheme !== 'http:' && scheme !== 'https:') {
    throw new HandshakeError('WS_ERR_INVALID_URL', `unsupported scheme ${scheme} (use ws: or wss:)`);
  }
  // RFC 6455 §3: fragment identifiers are meaningless in WebSocket URIs.
  if (url.hash !== '') throw new HandshakeError('WS_ERR_INVALID_URL', 'WebSocket URLs cannot have a fragment');
  const secure = scheme === 'wss:' || scheme === 'https:';
  const port =
    url.port === '' ?
      secure ? 443
      : 80
    : Number(url.port);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    secure,
    host,
    port,
    hostHeader: url.host,
    path: (url.pathname === '' ? '/' : url.pathname) + url.search,
    display: `${secure ? 'wss' : 'ws'}://${url.host}`,
  };
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
