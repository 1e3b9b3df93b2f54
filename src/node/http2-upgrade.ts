import {
  constants as h2,
  createServer as createHttp2Server,
  type Http2Server,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseExtensions, type ExtensionOffer } from '../protocol/handshake/extensions-header.js';
import type { RequestHead } from '../protocol/handshake/http-head.js';
import { parseSubprotocols } from '../protocol/handshake/subprotocol.js';

/**
 * The server's side of WebSockets over HTTP/2 (RFC 8441): the extended
 * CONNECT request checked and turned into the request head the upgrade
 * pipeline already knows, and the answers (200, or a refusal) written as
 * HTTP/2 headers. The WebSocket then runs on the stream's DATA frames, the
 * stream standing where the TCP connection stands in RFC 6455 (§5 of 8441:
 * END_STREAM for the TCP FIN, RST_STREAM for the TCP reset).
 */

/** `:method CONNECT` with `:protocol websocket` (RFC 8441 §4): a WebSocket, as opposed to some other request on the session. */
export function isWebSocketConnect(headers: IncomingHttpHeaders): boolean {
  return headers[h2.HTTP2_HEADER_METHOD] === 'CONNECT' && headers[':protocol'] === 'websocket';
}

export type ExtendedConnectValidation =
  | { ok: true; head: RequestHead; protocols: string[]; extensions: ExtensionOffer[] }
  | { ok: false; status: number; reason: string; headers?: Array<[string, string]> };

/** HTTP/2 header blocks carry lower-case names (RFC 9113 §8.2.1); values may come as arrays for repeated fields. */
function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Check an extended CONNECT against RFC 8441 §4-§5 and RFC 9113 §8.3, and
 * give the pipeline a request head: the target from `:path`, `host` from
 * `:authority` (RFC 9113 §8.3.1: it takes the place of Host), the other
 * fields as they came. What 8441 changes from RFC 6455 §4.1: no
 * Sec-WebSocket-Key (and so no Accept), no Upgrade/Connection (they are
 * connection-specific, forbidden in HTTP/2, §8.2.2 of 9113);
 * Sec-WebSocket-Version 13 is still required. A wrong version is answered
 * 400 with `sec-websocket-version: 13`: the 426 of RFC 6455 §4.4 asks for
 * an Upgrade, which does not exist in HTTP/2.
 */
export function validateExtendedConnect(headers: IncomingHttpHeaders): ExtendedConnectValidation {
  const path = headers[h2.HTTP2_HEADER_PATH];
  const scheme = headers[h2.HTTP2_HEADER_SCHEME];
  const authority = headers[h2.HTTP2_HEADER_AUTHORITY];
  // RFC 8441 §4: an extended CONNECT carries :scheme and :path, unlike a plain CONNECT.
  if (typeof path !== 'string' || !path.startsWith('/')) return { ok: false, status: 400, reason: 'extended CONNECT needs a :path' };
  if (typeof scheme !== 'string' || scheme === '') return { ok: false, status: 400, reason: 'extended CONNECT needs a :scheme' };
  if (typeof authority !== 'string' || authority === '' || /[,\s]/.test(authority)) {
    return { ok: false, status: 400, reason: 'missing or invalid :authority' };
  }
  const version = joined(headers['sec-websocket-version']);
  if (version !== '13') {
    return {
      ok: false,
      status: 400,
      reason: version === undefined ? 'missing sec-websocket-version' : `unsupported WebSocket version ${version}`,
      headers: [['sec-websocket-version', '13']],
    };
  }
  let protocols: string[] = [];
  const protocolHeader = joined(headers['sec-websocket-protocol']);
  if (protocolHeader !== undefined) {
    const parsed = parseSubprotocols(protocolHeader);
    if (!parsed.ok) return { ok: false, status: 400, reason: `invalid sec-websocket-protocol: ${parsed.reason}` };
    protocols = parsed.protocols;
  }
  let extensions: ExtensionOffer[] = [];
  const extensionHeader = joined(headers['sec-websocket-extensions']);
  if (extensionHeader !== undefined) {
    const parsed = parseExtensions(extensionHeader);
    if (!parsed.ok) return { ok: false, status: 400, reason: `invalid sec-websocket-extensions: ${parsed.reason}` };
    extensions = parsed.offers;
  }
  const fields = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    fields.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  fields.set('host', authority);
  return { ok: true, head: { method: 'CONNECT', target: path, httpVersion: '2.0', headers: fields }, protocols, extensions };
}

/** The stream, when this transport is an HTTP/2 stream (the server keeps both kinds in the same maps). */
export function asHttp2Stream(transport: Duplex): ServerHttp2Stream | null {
  const candidate = transport as Partial<ServerHttp2Stream>;
  return typeof candidate.respond === 'function' && candidate.session !== undefined ? (transport as ServerHttp2Stream) : null;
}

/** Header fields RFC 9113 §8.2.2 forbids in HTTP/2: a refusal built for HTTP/1.1 drops them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding']);

/** Refuse the WebSocket with an HTTP status and a short text body; the stream then ends. */
export function refuseStream(
  stream: ServerHttp2Stream,
  status: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]> = [],
): void {
  if (stream.destroyed || stream.closed) return;
  const fields: OutgoingHttpHeaders = { [h2.HTTP2_HEADER_STATUS]: status, 'content-type': 'text/plain; charset=utf-8' };
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (!CONNECTION_SPECIFIC.has(lower)) fields[lower] = value;
  }
  try {
    if (!stream.headersSent) stream.respond(fields);
    stream.end(`${reason}\n`);
  } catch {
    stream.destroy();
  }
}

/**
 * Accept (RFC 8441 §5: a 2xx answer, here 200) with the chosen subprotocol
 * and extensions; false when the stream went away meanwhile.
 */
export function acceptStream(stream: ServerHttp2Stream, protocol: string | undefined, extensions: string): boolean {
  if (stream.destroyed || stream.closed || stream.headersSent) return false;
  const fields: OutgoingHttpHeaders = { [h2.HTTP2_HEADER_STATUS]: 200 };
  if (protocol !== undefined) fields['sec-websocket-protocol'] = protocol;
  if (extensions !== '') fields['sec-websocket-extensions'] = extensions;
  stream.respond(fields);
  exposePeer(stream);
  return true;
}

/**
 * A `Connection` reads its peer's address from its transport, as a TCP
 * socket has it; an HTTP/2 stream's peer is its session's socket's.
 */
function exposePeer(stream: ServerHttp2Stream): void {
  const socket = stream.session?.socket as Socket | undefined;
  const remoteAddress = socket?.remoteAddress;
  const remotePort = socket?.remotePort;
  Object.defineProperty(stream, 'remoteAddress', { value: remoteAddress, configurable: true });
  Object.defineProperty(stream, 'remotePort', { value: remotePort, configurable: true });
}

/** The peer address of a transport of either kind, for logs and per-address caps. */
export function remoteAddressOf(transport: Duplex): string | undefined {
  const stream = asHttp2Stream(transport);
  if (stream === null) return (transport as Socket).remoteAddress;
  return (stream.session?.socket as Socket | undefined)?.remoteAddress;
}

/**
 * End (GOAWAY, RFC 9113 §6.8) a session that has carried no stream for
 * `ms`, so a peer cannot hold a TLS connection open by opening nothing
 * on it: once its streams have all closed, and as a backstop before the
 * first (the server's handshake sweep holds that first stream to the
 * deadline from TCP accept, see `admitHttp2Session`). A session with a
 * WebSocket on it stays, however quiet (the WebSocket has its own
 * heartbeat and idle timeout).
 */
export function closeWhenIdle(session: ServerHttp2Session, ms: number): void {
  let open = 0;
  session.on('stream', (stream: ServerHttp2Stream) => {
    open++;
    stream.once('close', () => open--);
  });
  // Node re-arms the timer on every frame, so it fires again after a stream's last frames.
  session.setTimeout(ms, () => {
    if (open === 0) session.close();
  });
}

/**
 * An HTTP/2 server without a listening socket of its own: TLS connections
 * that chose `h2` by ALPN are handed to it. Its SETTINGS announce
 * SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3), without which a client
 * may not send an extended CONNECT. Every stream goes to `onStream`;
 * sessions are tracked so that `close()` can end them.
 */
export class Http2Acceptor {
  private readonly server: Http2Server;
  private readonly sessions = new Set<ServerHttp2Session>();

  /** `idleMs`: a session without streams for this long is closed (see `closeWhenIdle`). */
  constructor(onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void, idleMs: number) {
    this.server = createHttp2Server({ settings: { enableConnectProtocol: true } });
    this.server.on('session', (session: ServerHttp2Session) => {
      closeWhenIdle(session, idleMs);
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      // A session's failure (a protocol error by the peer) ends that session, not the server.
      session.on('error', () => session.destroy());
    });
    this.server.on('stream', onStream);
  }

  /** Speak HTTP/2 on this TLS socket (ALPN chose `h2`); the session made for it. */
  adopt(socket: Socket): ServerHttp2Session | undefined {
    let adopted: ServerHttp2Session | undefined;
    const take = (session: ServerHttp2Session): void => {
      adopted = session;
    };
    // The session is made synchronously, inside the 'connection' handler.
    this.server.once('session', take);
    this.server.emit('connection', socket);
    this.server.off('session', take);
    // The peer's FIN ends the HTTP/2 connection: no more frames can come, so
    // no stream on it can finish its closing handshake (HTTP/2 has no
    // half-closed connection, only half-closed streams, RFC 9113 §5.1).
    // Node's session, fed through the TLS socket's JS stream, would
    // otherwise wait for its streams indefinitely.
    socket.once('end', () => {
      if (adopted !== undefined && !adopted.destroyed) adopted.destroy();
    });
    return adopted;
  }

  /** Sessions open now (each one TLS connection). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** GOAWAY to every session: no new streams; they end once their streams have. `destroy` cuts them at once. */
  close(destroy = false): void {
    for (const session of this.sessions) {
      if (destroy) session.destroy();
      else session.close();
    }
  }
}
