import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { closeWhenIdle } from '../../node/http2-upgrade.js';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { basename, dirname } from 'node:path';
import { WebSocketServer, type Route, type ServerOptions } from '../../node/server.js';
import { DEFAULT_HEAD_LIMITS } from '../../protocol/handshake/http-head.js';
import { MemoryBroker } from '../../pubsub/memory-broker.js';
import { PubSub } from '../../pubsub/pubsub.js';
import { historyPolicyOf, socketPath, type App } from '../app.js';
import { createLogger, logServerEntry, type Logger, type LogLevel } from './log.js';
import { normalizeAllowedOrigin, originPolicy, type OriginPredicate } from './origin-policy.js';
import { EventLoopDelayWindow, formatPrometheus, metricFamilies, processStartTimeSeconds, PROMETHEUS_CONTENT_TYPE, takeReading } from './metrics.js';
import { pageDirOf, WEB_MODULES_DIR, WIRE_FOLDER, wireModulesDirOf } from './paths.js';
import { serveStatic } from './static.js';
import { VENDOR_CACHE_CONTROL, VENDOR_PREFIX, vendorFile } from './vendor.js';

export interface AppServerOptions {
  apps: readonly App[];
  logLevel?: LogLevel;
  /** Where log lines go (default stdout). */
  logWrite?: (line: string) => void;
  pubsub?: PubSub;
  /**
   * Options for the WebSocket side (limits, deflate, heartbeat...). The
   * message size limit defaults to `DEFAULT_APP_MAX_MESSAGE_BYTES` here,
   * not to the library's 64 MiB; routes that need more set their own.
   */
  websocket?: Omit<ServerOptions, 'log' | 'tls' | 'pubsub'>;
  /**
   * Origins, besides the server's own, whose pages may open the apps'
   * WebSockets: `https://example.com`, `null`, or `*` for any. Requests
   * without an Origin header (programs, not browsers) are always accepted;
   * other origins get 403. A route that sets its own `origins` keeps them.
   */
  allowedOrigins?: readonly string[];
  /**
   * One deadline, in milliseconds from TCP accept: by then the TLS
   * handshake (https://) and the request head must be done and, for a
   * WebSocket, the connection open (origin check and the app's hooks
   * included). Past it: before TLS, the connection is closed; without a
   * complete head, 408; with the upgrade's hooks still running, 503 (a
   * peer that does not then close is cut 1 s later). It is checked every
   * quarter of the timeout (at least 10 ms, at most 1 s), so the answer
   * comes at most that late: by 11 s after accept by default. Default
   * 10 s. Also the WebSocket side's handshake timeout unless
   * `websocket.handshakeTimeout` says otherwise (that one then runs from
   * accept; node:http's own head timeout, from the same accept without
   * TLS and from the end of TLS with it, stays this one).
   */
  handshakeTimeout?: number;
  /**
   * Serve https:// and wss:// with this certificate and key; the server's
   * own origin is then `https://HOST:PORT`. ALPN offers h2 and http/1.1 on
   * the same port: pages are served over either, and WebSockets arrive as
   * HTTP/1.1 upgrades or as HTTP/2 extended CONNECT streams (RFC 8441,
   * SETTINGS_ENABLE_CONNECT_PROTOCOL announced), the apps seeing the same
   * connections either way.
   */
  tls?: TlsOptions;
}

/**
 * Largest WebSocket message the apps host accepts by default: 1 MiB, the
 * limit python-websockets ships with. With permessage-deflate on, this
 * bounds what one connection can make the server inflate; the library's
 * 64 MiB would let 50 connections hold gigabytes.
 */
export const DEFAULT_APP_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Default for `AppServerOptions.handshakeTimeout`. */
export const DEFAULT_APP_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The shipped server's own limits (issue 9, item 10), for every route that
 * sets none of its own (the chat sets its own rate): far above what the
 * applications do in normal use, low enough that one client or one flood
 * cannot take the process. No cap per client address by default: behind a
 * proxy (docs/deploy) every client has the proxy's address.
 */
export const DEFAULT_APP_LIMITS = {
  /** More open connections get 503. */
  maxConnections: 10_000,
  /**
   * Connections counted from TCP accept until their request head is in
   * and, for a WebSocket, until it is open: the TLS handshake, the request
   * head (pages' requests too), the origin check and the app's hooks.
   * More are refused at once: 503, or, before TLS, closed.
   */
  maxHandshakes: 1_000,
  /** Per connection: 100 messages a second (200 at once); past it messages are dropped, and sustained abuse is closed with 1008. */
  rateLimit: { messagesPerSecond: 100, messageBurst: 200 },
} as const;

/**
 * The shell's own WebSocket endpoint: it answers the text `ping` with
 * `pong`, so the home page can tell whether the server is reachable without
 * depending on any application.
 */
export const SHELL_SOCKET_PATH = '/ws';

/**
 * One HTTP server for the pages and the WebSocket endpoints of several
 * applications: `/` lists them, `/<app>/` serves an app's page, `/<app>/ws`
 * is its WebSocket, `/<app>/wire/` the app's wire-format modules (compiled
 * from src/apps/<app>/wire/, for its page), `/web/` the shared browser
 * modules, `/vendor/` the front-end libraries (whitelisted files from
 * node_modules), `/api/apps` the list as JSON, `/metrics` the server's
 * figures as Prometheus text, `/ws` the shell's reachability endpoint.
 *
 * Logs: one line per WebSocket open, close and refused handshake at `info`;
 * at `debug` also one per HTTP request and one per frame either way.
 */
export class AppServer {
  readonly websockets: WebSocketServer;
  readonly pubsub: PubSub;
  readonly log: Logger;
  private readonly http: Server | Http2SecureServer;
  /** With `tls`: every TLS connection (HTTP/1.1 or h2), to end them at close. */
  private readonly tlsSockets = new Set<TLSSocket>();
  private readonly apps: readonly App[];
  private readonly stops: Array<() => void> = [];
  /** Event-loop delay between two scrapes of `/metrics`. */
  private readonly scrapeLoopDelay = new EventLoopDelayWindow();

  constructor(options: AppServerOptions) {
    this.apps = options.apps;
    this.log = createLogger(options.logLevel ?? 'info', options.logWrite);
    // Each app's topics keep the history it asks for (App.topicHistory).
    this.pubsub = options.pubsub ?? new PubSub({ broker: new MemoryBroker({ history: historyPolicyOf(options.apps) }) });
    const log = this.log;
    const handshakeTimeout = options.handshakeTimeout ?? DEFAULT_APP_HANDSHAKE_TIMEOUT_MS;
    if (!(handshakeTimeout > 0) || !Number.isFinite(handshakeTimeout)) throw new RangeError(`invalid handshakeTimeout: ${handshakeTimeout}`);
    const allowed = (options.allowedOrigins ?? []).map((entry) => {
      const normalized = normalizeAllowedOrigin(entry);
      if (normalized === null) throw new RangeError(`not an origin: ${JSON.stringify(entry)} (use scheme://host[:port], null or *)`);
      return normalized;
    });
    this.websockets = new AppWebSocketServer(
      {
        perMessageDeflate: true,
        maxMessageSize: DEFAULT_APP_MAX_MESSAGE_BYTES,
        maxConnections: DEFAULT_APP_LIMITS.maxConnections,
        maxHandshakes: DEFAULT_APP_LIMITS.maxHandshakes,
        rateLimit: DEFAULT_APP_LIMITS.rateLimit,
        handshakeTimeout,
        ...options.websocket,
        // The apps' hub, so a route may also use server.publish/subscribe.
        pubsub: this.pubsub,
        log: (entry) => logServerEntry(log, entry),
        // Debug level: one line per frame either way (the library's frame log).
        logFrames: log.level === 'debug',
      },
      originPolicy(allowed, options.tls !== undefined),
    );
    this.websockets.route(SHELL_SOCKET_PATH, {
      message(connection, data, isBinary) {
        if (!isBinary && data === 'ping') connection.send('pong');
      },
    });
    for (const app of this.apps) {
      const stop = app.mount(this.websockets, { pubsub: this.pubsub, log });
      if (typeof stop === 'function') this.stops.push(stop);
    }
    const httpOptions = {
      // The head limit the WebSocket side's own parser uses: larger heads get 431.
      maxHeaderSize: DEFAULT_HEAD_LIMITS.maxHeadBytes,
      // Node checks the two timeouts below on this interval: a quarter of the
      // deadline keeps a slow connection's overrun small without a busy timer.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(handshakeTimeout / 4))),
      // A request head must be complete within the deadline (slowloris); the
      // apps take no request bodies, so the whole request gets no longer.
      headersTimeout: handshakeTimeout,
      requestTimeout: handshakeTimeout,
    };
    const handler = (request: IncomingMessage, response: ServerResponse): void => {
      if (request.httpVersionMajor === 1) {
        const socket = request.socket;
        // Refused while node:http read the request (over maxHandshakes, or past the deadline): that answer is out.
        if (socket.writableEnded) return;
        // Not an upgrade: served here, no longer a handshake in progress.
        this.websockets.releaseConnection(socket);
      }
      if (log.level === 'debug') {
        // Read the address now: once the socket is gone, remoteAddress is undefined.
        const remote = request.socket.remoteAddress ?? '-';
        // 'close' always comes; 'finish' may not when the client hangs up first.
        response.once('close', () => log.debug(`http ${request.method ?? '-'} ${request.url ?? ''} ${response.statusCode} ${remote}`));
      }
      this.handle(request, response).catch((error: unknown) => {
        log.info(`error ${request.url ?? ''} ${error instanceof Error ? error.message : String(error)}`);
        if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        response.end('internal error\n');
      });
    };
    if (options.tls === undefined) {
      const http = createServer(httpOptions, handler);
      // The handshake deadline and maxHandshakes count from TCP accept, while node:http reads the request.
      http.on('connection', (socket: Socket) => this.websockets.admitConnection(socket));
      this.http = http;
    } else {
      this.http = this.createSecure(options.tls, httpOptions, handler);
    }
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.websockets.handleUpgrade(request, socket, head));
    this.http.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
      this.websockets.releaseConnection(socket);
      answerClientError(error, socket);
    });
  }

  /**
   * node:http2's secure server with HTTP/1.1 allowed: the same handler
   * serves both (the compatibility API has the request and response
   * methods the handler uses), and HTTP/1.1 connections get the same
   * header-size and timeout bounds as the plain server.
   */
  private createSecure(
    tls: TlsOptions,
    httpOptions: { maxHeaderSize: number; connectionsCheckingInterval: number; headersTimeout: number; requestTimeout: number },
    handler: (request: IncomingMessage, response: ServerResponse) => void,
  ): Http2SecureServer {
    const server = createSecureServer(
      {
        ...tls,
        allowHTTP1: true,
        // node:tls would otherwise give a TCP connection 120 s to complete TLS.
        handshakeTimeout: httpOptions.headersTimeout,
        settings: { enableConnectProtocol: true, maxHeaderListSize: httpOptions.maxHeaderSize },
      },
      handler as unknown as (request: Http2ServerRequest, response: Http2ServerResponse) => void,
    );
    // node:http reads these from the server object for HTTP/1.1 connections (allowHTTP1).
    Object.assign(server, httpOptions);
    // An extended CONNECT with :protocol websocket (RFC 8441 §4) comes as 'connect'; other CONNECTs are not served here.
    server.on('connect', (request: Http2ServerRequest, response: Http2ServerResponse) => {
      if (this.websockets.handleHttp2Stream(request.stream, request.headers)) return;
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('method not allowed\n');
    });
    // Counted and timed from TCP accept, through TLS, as the library's own wss:// server does.
    server.on('connection', (socket: Socket) => this.websockets.admitConnection(socket, { tls: true }));
    server.on('secureConnection', (socket: TLSSocket) => {
      this.tlsSockets.add(socket);
      socket.once('close', () => this.tlsSockets.delete(socket));
      // h2: each WebSocket stream counts on its own (handleHttp2Stream); the session, made
      // just before this, is already on its first-stream deadline (admitHttp2Session).
      if (socket.alpnProtocol === 'h2') this.websockets.releaseConnection(socket);
      else this.websockets.admitConnection(socket);
    });
    // A session's protocol error ends that session only.
    server.on('sessionError', () => undefined);
    // An h2 connection must open a stream by the handshake deadline from TCP accept, as an HTTP/1.1 one must
    // send its request; once its streams have all closed, its idle timer closes it after the same time.
    server.on('session', (session: ServerHttp2Session) => {
      this.websockets.admitHttp2Session(session);
      closeWhenIdle(session, httpOptions.headersTimeout);
    });
    return server;
  }

  /** Listen on `port` (0: an ephemeral one) and resolve with the bound address. */
  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  /** Stop the apps' timers, close every WebSocket with 1001, then stop listening. */
  async close(): Promise<void> {
    for (const stop of this.stops) stop();
    this.scrapeLoopDelay.close();
    const httpClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    await this.websockets.close();
    if ('closeAllConnections' in this.http) this.http.closeAllConnections();
    for (const socket of this.tlsSockets) socket.destroy();
    await httpClosed;
    await this.pubsub.close();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('method not allowed\n');
      return;
    }
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === '/api/apps') {
      this.sendJson(
        response,
        this.apps.map((app) => ({
          name: app.name,
          title: app.title,
          summary: app.summary,
          page: app.pageDir !== undefined ? `/${app.name}/` : null,
          socket: socketPath(app),
        })),
      );
      return;
    }
    if (path === '/metrics') {
      this.sendMetrics(response);
      return;
    }
    if (path.startsWith('/web/') && (await serveStatic(request, response, WEB_MODULES_DIR, path.slice('/web'.length)))) return;
    if (path.startsWith(VENDOR_PREFIX)) {
      const file = vendorFile(path.slice(VENDOR_PREFIX.length));
      if (file !== null && (await serveStatic(request, response, dirname(file), `/${basename(file)}`, { cacheControl: VENDOR_CACHE_CONTROL })))
        return;
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end(`not found: ${path}\n`);
      return;
    }
    const segment = path.split('/')[1] ?? '';
    const app = this.apps.find((candidate) => candidate.name === segment && candidate.pageDir !== undefined);
    if (app !== undefined) {
      if (path === `/${app.name}`) {
        response.writeHead(301, { Location: `/${app.name}/` });
        response.end();
        return;
      }
      const wire = `/${app.name}/${WIRE_FOLDER}/`;
      if (path.startsWith(wire)) {
        if (await serveStatic(request, response, wireModulesDirOf(app.name), path.slice(wire.length - 1))) return;
      } else if (await serveStatic(request, response, app.pageDir!, path.slice(app.name.length + 1))) {
        return;
      }
    } else if (await serveStatic(request, response, pageDirOf('home'), path)) {
      return;
    }
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    response.end(`not found: ${path}\n`);
  }

  /** The Prometheus text exposition of the server's figures, read at the time of the request. */
  private sendMetrics(response: ServerResponse): void {
    const body = formatPrometheus(
      metricFamilies({
        reading: takeReading(this.websockets),
        loop: this.scrapeLoopDelay.take(),
        pubsub: this.pubsub.stats,
        server: this.websockets.counters(),
        startTimeSeconds: processStartTimeSeconds(),
      }),
    );
    response.writeHead(200, {
      'Content-Type': PROMETHEUS_CONTENT_TYPE,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    });
    response.end(body);
  }

  private sendJson(response: ServerResponse, value: unknown): void {
    const body = JSON.stringify(value);
    response.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-cache',
    });
    response.end(body);
  }
}

/** How long a refused client has to read its answer before the socket is destroyed. */
const CLIENT_ERROR_LINGER_MS = 1000;

/**
 * node:http could not read a request (a syntax error, a head over
 * `maxHeaderSize`, or a head not complete in time): answer with the status
 * RFC 9110 gives (400, 408 §15.5.9, 431 RFC 6585 §5) rather than a reset,
 * then close. The response is written with a FIN so the client reads it;
 * the socket is destroyed shortly after in case the peer never closes.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const status = clientErrorStatus(error.code);
  if (status !== null && socket.writableEnded) {
    // Answered already (the WebSocket side's 408 at the handshake deadline): let that answer go out.
    lingerThenDestroy(socket);
    return;
  }
  if (status === null || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${
    status === 408 ? 'request head not received in time'
    : status === 431 ? 'request head too large'
    : 'malformed request'
  }\n`;
  const reason =
    status === 408 ? 'Request Timeout'
    : status === 431 ? 'Request Header Fields Too Large'
    : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  lingerThenDestroy(socket);
}

/** Give the peer `CLIENT_ERROR_LINGER_MS` to read what was written and close; then destroy the socket. */
function lingerThenDestroy(socket: Duplex): void {
  const linger = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

/** The status for a node:http client error code; `null` when the peer is gone (nothing to answer). */
function clientErrorStatus(code: string | undefined): number | null {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code !== undefined && code.startsWith('HPE_')) return 400;
  return null;
}

/**
 * The WebSocket server the apps mount their routes on. Every route gets the
 * host's Origin policy unless it brings its own.
 */
class AppWebSocketServer extends WebSocketServer {
  constructor(
    options: ServerOptions,
    private readonly origins: OriginPredicate,
  ) {
    super(options);
  }

  override route<Context = undefined>(path: string, route: Route<Context>): this {
    if (route.origins !== undefined) return super.route(path, route);
    // Everything else is inherited from the app's route, methods of a class included.
    const wrapped = Object.create(route) as Route<Context>;
    wrapped.origins = this.origins;
    return super.route(path, wrapped);
  }
}
