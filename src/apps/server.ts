import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname } from 'node:path';
import { WebSocketServer, type Route, type ServerOptions } from '../node/server.js';
import { PubSub } from '../pubsub/pubsub.js';
import { socketPath, type App } from './app.js';
import { createLogger, logFrames, logServerEntry, type Logger, type LogLevel } from './log.js';
import {
  EventLoopDelayWindow,
  formatPrometheus,
  metricFamilies,
  processStartTimeSeconds,
  PROMETHEUS_CONTENT_TYPE,
  takeReading,
} from './metrics.js';
import { pageDirOf, WEB_MODULES_DIR } from './paths.js';
import { serveStatic } from './static.js';
import { VENDOR_CACHE_CONTROL, VENDOR_PREFIX, vendorFile } from './vendor.js';

export interface AppServerOptions {
  apps: readonly App[];
  logLevel?: LogLevel;
  /** Where log lines go (default stdout). */
  logWrite?: (line: string) => void;
  pubsub?: PubSub;
  /** Options for the WebSocket side (limits, deflate, heartbeat...). */
  websocket?: Omit<ServerOptions, 'log' | 'tls'>;
}

/**
 * The shell's own WebSocket endpoint: it answers the text `ping` with
 * `pong`, so the home page can tell whether the server is reachable without
 * depending on any application.
 */
export const SHELL_SOCKET_PATH = '/ws';

/**
 * One HTTP server for the pages and the WebSocket endpoints of several
 * applications: `/` lists them, `/<app>/` serves an app's page, `/<app>/ws`
 * is its WebSocket, `/web/` the shared browser modules, `/vendor/` the
 * front-end libraries (whitelisted files from node_modules), `/api/apps` the
 * list as JSON, `/metrics` the server's figures as Prometheus text, `/ws` the
 * shell's reachability endpoint.
 *
 * Logs: one line per WebSocket open, close and refused handshake at `info`;
 * at `debug` also one per HTTP request and one per frame either way.
 */
export class AppServer {
  readonly websockets: WebSocketServer;
  readonly pubsub: PubSub;
  readonly log: Logger;
  private readonly http: Server;
  private readonly apps: readonly App[];
  private readonly stops: Array<() => void> = [];
  /** Event-loop delay between two scrapes of `/metrics`. */
  private readonly scrapeLoopDelay = new EventLoopDelayWindow();

  constructor(options: AppServerOptions) {
    this.apps = options.apps;
    this.log = createLogger(options.logLevel ?? 'info', options.logWrite);
    this.pubsub = options.pubsub ?? new PubSub();
    const log = this.log;
    this.websockets = new AppWebSocketServer(
      { perMessageDeflate: true, ...options.websocket, log: (entry) => logServerEntry(log, entry) },
      log.level === 'debug' ? log : null,
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
    this.http = createServer((request, response) => {
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
    });
    this.http.on('upgrade', (request, socket, head) => this.websockets.handleUpgrade(request, socket, head));
    this.http.on('clientError', (_error, socket) => socket.destroy());
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
    this.http.closeAllConnections();
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
      this.sendJson(response, this.apps.map((app) => ({ name: app.name, title: app.title, summary: app.summary, page: app.pageDir !== undefined ? `/${app.name}/` : null, socket: socketPath(app) })));
      return;
    }
    if (path === '/metrics') {
      this.sendMetrics(response);
      return;
    }
    if (path.startsWith('/web/') && (await serveStatic(request, response, WEB_MODULES_DIR, path.slice('/web'.length)))) return;
    if (path.startsWith(VENDOR_PREFIX)) {
      const file = vendorFile(path.slice(VENDOR_PREFIX.length));
      if (file !== null && (await serveStatic(request, response, dirname(file), `/${basename(file)}`, { cacheControl: VENDOR_CACHE_CONTROL }))) return;
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
      if (await serveStatic(request, response, app.pageDir!, path.slice(app.name.length + 1))) return;
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

/**
 * The WebSocket server the apps mount their routes on. At debug level it
 * wraps every route so that each connection logs its frames from the moment
 * it opens; otherwise it adds nothing.
 */
class AppWebSocketServer extends WebSocketServer {
  constructor(
    options: ServerOptions,
    private readonly frameLog: Logger | null,
  ) {
    super(options);
  }

  override route<Context = undefined>(path: string, route: Route<Context>): this {
    const log = this.frameLog;
    if (log === null) return super.route(path, route);
    // Everything else is inherited from the app's route, methods of a class included.
    const wrapped = Object.create(route) as Route<Context>;
    wrapped.open = (connection) => {
      logFrames(log, path, connection);
      route.open?.call(route, connection);
    };
    return super.route(path, wrapped);
  }
}
