import type { IncomingMessage } from 'node:http';
import { constants as http2Constants, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { CloseCode } from '../protocol/close-code.js';
import { formatExtensions, type ExtensionOffer } from '../protocol/handshake/extensions-header.js';
import { headersFromRaw, RequestHeadParser, type HeadLimits, type RequestHead } from '../protocol/handshake/http-head.js';
import { buildAcceptResponse, buildRejection, validateUpgradeRequest } from '../protocol/handshake/server-handshake.js';
import { DEFAULT_DEFLATE_THRESHOLD, negotiateServer, type DeflateOptions } from '../protocol/permessage-deflate.js';
import { UsageError } from '../protocol/errors.js';
import { encodeClosePayload } from '../protocol/protocol.js';
import { Role } from '../protocol/role.js';
import { Connection, ConnectionState, type CloseInfo, type ConnectionOptions, type SendData, type WireFrame } from './connection.js';
import { Admission } from './admission.js';
import { ConnectionError } from './errors.js';
import { ConnectionRate, ratePolicy, type RateLimitKind, type RateLimitOptions, type RatePolicy } from './rate-limit.js';
import { copyCounters, countClose, countRefusal, emptyCounters, type ServerCounters } from './server-counters.js';
import { compileRoutePattern, isRoutePattern, type RouteParams, type RoutePattern } from './route-pattern.js';
import { checkOrigin, chooseProtocol, IncomingUpgrade, UpgradeRejection, type UpgradeRequest } from './upgrade.js';
import { isThenable } from './thenable.js';
import { broadcast, type BroadcastOptions } from './broadcast.js';
import type { TopicHub } from './topic-hub.js';
import { createZlibCodec } from './zlib-codec.js';
import {
  acceptStream,
  asHttp2Stream,
  Http2Acceptor,
  isWebSocketConnect,
  refuseStream,
  remoteAddressOf,
  validateExtendedConnect,
} from './http2-upgrade.js';
import { isToken } from '../protocol/handshake/http-syntax.js';
import { isPlainPath, pathOf } from '../protocol/handshake/request-target.js';
import { ZlibLimiter } from './zlib-limiter.js';
import { nodeTimers, type TimerHandle, type TimerSource } from './timer-source.js';

/**
 * Hooks and policy for one path. `Context` is what `authenticate` returns.
 *
 * Every hook may be `async`. The server does not wait for the promise a
 * hook returns (messages keep arriving while an async `message` hook runs),
 * but it watches it: a hook that throws or whose promise rejects closes its
 * connection with 1011 and the generic reason "internal error" (the error's
 * text stays on the server), and the failure is reported through `error`
 * below and the server's `onError`. A failing hook before the upgrade
 * (`origins`, `authenticate`, `protocols`) refuses the request with 500.
 */
export interface Route<Context = undefined> {
  /**
   * Allowed `Origin` values (compared case-insensitively), or a predicate.
   * Requests without an Origin header (non-browser clients) pass unless
   * `requireOrigin` is set. A refused origin gets 403.
   */
  origins?: readonly string[] | ((origin: string, request: UpgradeRequest) => boolean | Promise<boolean>);
  requireOrigin?: boolean;
  /**
   * Decide who is connecting, from a token in the query string, a header,
   * a cookie... Return the connection's context, or `reject(status, reason)`.
   */
  authenticate?(request: UpgradeRequest): Context | UpgradeRejection | Promise<Context | UpgradeRejection>;
  /**
   * Subprotocols this route speaks, in order of preference; or a function
   * that picks one of the offered ones (or rejects). Without it, none is selected.
   */
  protocols?:
    | readonly string[]
    | ((
        offered: readonly string[],
        request: UpgradeRequest,
      ) => string | undefined | UpgradeRejection | Promise<string | undefined | UpgradeRejection>);
  /** Override the server's limit for this route. */
  maxMessageSize?: number;
  /** This route's rate limits per connection, replacing the server's `rateLimit`; `false` for none. */
  rateLimit?: RateLimitOptions | false;
  /**
   * `false`: hand text messages to `message` as Buffers of their UTF-8
   * bytes (validated, `isBinary` false) instead of strings. A route that
   * only passes text on (an echo, a relay) then neither decodes it nor
   * encodes it again: `connection.send(data, { binary: isBinary })` sends
   * the same bytes back as text. Default true.
   */
  decodeText?: boolean;

  open?(connection: Connection<Context>): HookResult;
  message?(connection: Connection<Context>, data: string | Buffer, isBinary: boolean): HookResult;
  close?(connection: Connection<Context>, info: CloseInfo): HookResult;
  /**
   * Every failure of one of this route's connections: protocol and socket
   * errors, timeouts, and failed hooks. A hook that threw or rejected
   * arrives as a `ConnectionError` with code `WS_ERR_HANDLER_FAILED` and
   * what was thrown as its `cause` (also after the connection closed, for a
   * failing `close` hook). If this hook fails in turn, that is logged and
   * passed to `onError`, and changes nothing else.
   */
  error?(connection: Connection<Context>, error: Error): HookResult;
  drain?(connection: Connection<Context>): HookResult;
  /**
   * A received message went over the rate limit and was not handed to
   * `message`. Answer in-band here if the application has a way to (an
   * error message); when `info.closing` is set the server closes the
   * connection with 1008 right after this hook returns, and what the hook
   * sent goes out before the close frame. A hook that closes the
   * connection itself (with a reason of its own) is not overridden.
   * Messages that arrive once the close has begun are neither delivered
   * nor reported.
   */
  limited?(connection: Connection<Context>, info: RateLimited): HookResult;
}

/** A message refused by a rate limit, as the `limited` hook sees it. */
export interface RateLimited {
  /** The allowance it went over. */
  limit: RateLimitKind;
  data: string | Buffer;
  isBinary: boolean;
  /** Sustained abuse (or `onExceeded: 'close'`): the connection is closed with 1008 after the hook. */
  closing: boolean;
}

/**
 * What the open/message/close/error/drain hooks return: nothing, or a
 * promise (an `async` hook), which the server watches for a rejection.
 * Declared `unknown` rather than `void | Promise<void>` so that shorthand
 * hooks such as `message: (c, data) => c.send(data)` stay valid: TypeScript
 * lets a function that returns a value stand for one returning `void`, but
 * not for one returning `void | Promise<void>`. Values other than promises
 * are ignored.
 */
export type HookResult = unknown;

/** The hooks of a route, as named in `HookFailure`. */
export type HookName = 'origins' | 'authenticate' | 'protocols' | 'open' | 'message' | 'drain' | 'close' | 'error' | 'limited';

/** Where a hook failed: passed to the server's `onError` with what the hook threw. */
export interface HookFailure {
  /** The route's path as mounted (`*` for the catch-all). */
  path: string;
  hook: HookName;
  /** The connection, for the hooks that run once it is open. */
  connection?: Connection<unknown>;
  /** The request, for the hooks that run before the upgrade. */
  request?: UpgradeRequest;
}

export interface ServerDeflateOptions extends DeflateOptions {
  /** Most zlib operations running at once, across all connections of the server. Default 10. */
  concurrency?: number;
  /** zlib compression level, default 1 (fast; messages are usually small). */
  level?: number;
  /** zlib memLevel (1-9), default 8; lower trades ratio for memory per connection. */
  memLevel?: number;
}

export interface ServerOptions {
  /** Largest message accepted, after decompression. Default 64 MiB. */
  maxMessageSize?: number;
  /** permessage-deflate, off by default. `true` takes the defaults. */
  perMessageDeflate?: boolean | ServerDeflateOptions;
  /**
   * One deadline, in ms, for everything between TCP accept and the open
   * connection: the TLS handshake (wss://), the upgrade request, and the
   * route's hooks before the upgrade (an `authenticate` that never settles).
   * For `handleUpgrade` it runs from the call, or from TCP accept for a
   * socket given to `admitConnection`. A request head not in by then is
   * answered 408, a pipeline not done 503; a TLS handshake not done is cut
   * (no HTTP can be spoken yet). With the `http2` option, an HTTP/2 session
   * that has opened no stream by then gets GOAWAY and is closed, and each
   * extended CONNECT has the timeout again for its hooks. Checked on a sweep every quarter of the
   * timeout (at least 10 ms, at most 1 s): a connection is cut at most that
   * late. Default 10 s.
   */
  handshakeTimeout?: number;
  /** Close connections with no traffic either way for this many ms (code 1001). Default 0: off. */
  idleTimeout?: number;
  /**
   * Ping every connection at this interval (ms) and drop those that did not
   * answer the previous ping: default 30 s; `false` turns it off.
   */
  heartbeat?: number | false;
  /** Closing handshake timeout, ms. Default 5000. */
  closeTimeout?: number;
  highWaterMark?: number;
  /**
   * Most bytes that may wait to be sent on one connection before
   * `backpressurePolicy` applies. Default 64 MiB. It bounds everything the
   * connection sends: `send()`, `broadcast()`, pongs, and topic deliveries
   * of a `PubSub` hub, which first apply the hub's own, lower limit
   * (`maxSubscriberBuffer`, default 1 MiB, checked before this one).
   */
  maxBufferedAmount?: number;
  /**
   * Past `maxBufferedAmount`: `close` (default) fails the connection (its
   * socket is destroyed: no close frame fits behind a full buffer), `drop`
   * refuses the message and counts it. A `PubSub` hub's
   * `slowSubscriberPolicy` closes by default too (1008, with the closing
   * handshake), at its lower limit.
   */
  backpressurePolicy?: 'close' | 'drop';
  /** Bounds on the upgrade request (head bytes, header count, line length). */
  headLimits?: Partial<HeadLimits>;
  /** Serve wss:// with these TLS options when listening standalone. */
  tls?: TlsOptions;
  /**
   * With `tls`, when listening standalone: offer `h2` besides `http/1.1` by
   * ALPN on the same port, and accept WebSockets over HTTP/2 streams
   * (RFC 8441 extended CONNECT), several on one connection, through the
   * same routes and hooks as HTTP/1.1 upgrades. Default false.
   */
  http2?: boolean;
  /** Called for each notable event (open, close, refused upgrade); off by default. */
  log?: (entry: ServerLogEntry) => void;
  /**
   * Also log every frame in both directions (`frame` entries: opcode, FIN,
   * RSV1, masking, length), as python-websockets' debug log does. For
   * debugging: it costs an object per frame. Needs `log`.
   */
  logFrames?: boolean;
  /**
   * The hub behind `publish()`, `subscribe()` and `unsubscribe()`: a
   * `PubSub` from `sockeye/pubsub` (in memory, or on Redis for several
   * processes). Without one those three throw; `broadcast()` needs none.
   */
  pubsub?: TopicHub;
  /**
   * Every hook that threw or rejected, on any route, with what it threw
   * (as an Error) and where. Called once per failure, before the
   * connection is closed; an `onError` that throws is ignored.
   */
  onError?: (error: Error, failure: HookFailure) => void;
  /**
   * Rate limits per connection for every route that does not set its own.
   * Off by default: a library cannot guess what an application's traffic
   * looks like (the shipped `sockeye serve` turns limits on).
   */
  rateLimit?: RateLimitOptions;
  /** Most connections open at once; more upgrade requests get 503. Default: no cap. */
  maxConnections?: number;
  /** Most connections open at once from one client address; more get 429. Default: no cap. */
  maxConnectionsPerAddress?: number;
  /**
   * Most connections in their opening handshake at once (TLS, request,
   * pre-upgrade hooks); more are answered 503 at once (or, before TLS,
   * closed). With `handleUpgrade`, a socket counts from `admitConnection`
   * (or else from `handleUpgrade`). Default: no cap.
   */
  maxHandshakes?: number;
  /** The clock for rate limits, in ms (tests inject one). Default `performance.now`. */
  now?: () => number;
  /**
   * @internal The clock and timers behind the heartbeat, the handshake
   * deadlines and the shutdown timeout (and the rate limits, without `now`).
   * Tests pass a clock they advance by hand. Default: Node's.
   */
  timers?: TimerSource;
}

export type ServerLogEntry =
  | { event: 'open'; path: string; remoteAddress: string | undefined; protocol: string; extensions: string }
  | { event: 'close'; path: string; remoteAddress: string | undefined; code: number; reason: string; wasClean: boolean }
  | { event: 'refused'; path: string; remoteAddress: string | undefined; status: number; reason: string }
  | { event: 'error'; path: string; remoteAddress: string | undefined; error: Error; hook?: HookName }
  /** With `logFrames`: every frame header in either direction, control frames included (payloads are not logged). */
  | { event: 'frame'; path: string; remoteAddress: string | undefined; frame: WireFrame };

export interface ShutdownOptions {
  code?: number;
  reason?: string;
  /** Milliseconds to wait for peers' close frames before destroying what is left. Default: closeTimeout. */
  timeout?: number;
}

/** Data messages and their payload bytes, as counted by each `Connection`. */
export interface TrafficCounts {
  messagesReceived: number;
  bytesReceived: number;
  messagesSent: number;
  bytesSent: number;
}

/** One route's traffic since the server started: open connections plus those already closed. */
export interface RouteTraffic extends TrafficCounts {
  /** The path the route was mounted on (`*` for the catch-all). */
  path: string;
  /** Connections open now. */
  connections: number;
  /** Connections accepted since the server started. */
  opened: number;
}

/** Per route: its open connections, and the counts of the closed ones carried over. */
interface RouteTally {
  readonly open: Set<Connection<unknown>>;
  opened: number;
  readonly closed: TrafficCounts;
}

const DEFAULT_HEARTBEAT_MS = 30_000;
const NO_PARAMS: RouteParams = Object.freeze({});
/** The close reason sent with 1011 when a hook fails; what it threw stays on the server. */
const INTERNAL_ERROR_REASON = 'internal error';

type AnyRoute = Route<unknown>;

/** A socket in the opening handshake. */
interface PendingHandshake {
  /** The time, on the server's clock (`timers.now()`), by which the connection must be open. */
  readonly deadline: number;
  /** The request head is in: what is left is the upgrade pipeline (the hooks). */
  headIn: boolean;
}

/** A route as mounted: its hooks, its checked rate policy, its traffic. */
interface MountedRoute {
  /** The path as mounted (`*` for the catch-all). */
  readonly key: string;
  readonly route: AnyRoute;
  readonly rate: RatePolicy | null;
  /** For a path with parameters or a prefix; null for an exact path (or `*`). */
  readonly pattern: RoutePattern | null;
  readonly tally: RouteTally;
}

/** What the server keeps for each connection it adopted (in `connection.serverData`). */
interface Mount {
  readonly server: WebSocketServer;
  readonly route: AnyRoute;
  /** The connection's allowances, when its route has rate limits. */
  readonly rate: ConnectionRate | null;
  /** The address its admission slot was counted under, if the server counts them. */
  readonly admitted: string | undefined;
  readonly tally: RouteTally;
  /** The request's path. */
  readonly path: string;
  /** The route's path as mounted (`*` for the catch-all). */
  readonly key: string;
  /** What the route's pattern matched in the request path. */
  readonly params: RouteParams;
  /** Only kept when logging, which is the only use of it. */
  readonly remoteAddress: string | undefined;
}

export class WebSocketServer {
  /** Every route by the path it was mounted on: exact paths are looked up here directly. */
  private readonly routes = new Map<string, MountedRoute>();
  /** Routes with parameters or a prefix, in mount order, tried when no exact path matches. */
  private readonly patterns: MountedRoute[] = [];
  private readonly connectionSet = new Set<Connection<unknown>>();
  private readonly admission: Admission | null;
  private readonly clock: () => number;
  private readonly stats = emptyCounters();
  /** Sockets in the opening handshake (upgrade request or pre-upgrade hooks), with their deadline. */
  private readonly handshaking = new Map<Duplex, PendingHandshake>();
  /** wss:// only: TCP connections whose TLS handshake is not done, by remote address and port. */
  private readonly tlsPending = new Map<string, { socket: Socket; deadline: number }>();
  /**
   * HTTP/2 sessions (the `http2` option) that have not opened a stream yet,
   * with the deadline from their TCP accept: the handshake timeout covers
   * TLS and the first extended CONNECT together, as it covers TLS and the
   * request head over HTTP/1.1.
   */
  private readonly sessionsWaiting = new Map<ServerHttp2Session, number>();
  private handshakeSweep: TimerHandle | null = null;
  private readonly options: ServerOptions;
  private readonly deflate: ServerDeflateOptions | null;
  private readonly limiter: ZlibLimiter | null;
  private netServer: NetServer | null = null;
  /** `http2` option: the HTTP/2 sessions of TLS connections that chose h2. */
  private http2: Http2Acceptor | null = null;
  private heartbeatTimer: TimerHandle | null = null;
  /** The `timers` option: what deadlines are measured with and sweeps run on. */
  private readonly timers: TimerSource;
  private shuttingDown = false;

  constructor(options: ServerOptions = {}) {
    this.options = options;
    const deflate = options.perMessageDeflate;
    this.deflate =
      deflate === true ? {}
      : deflate === false || deflate === undefined ? null
      : deflate;
    this.limiter = this.deflate === null ? null : new ZlibLimiter(this.deflate.concurrency ?? 10);
    const maxTotal = capOption(options.maxConnections, 'maxConnections');
    const maxPerAddress = capOption(options.maxConnectionsPerAddress, 'maxConnectionsPerAddress');
    capOption(options.maxHandshakes, 'maxHandshakes');
    this.admission = maxTotal === Infinity && maxPerAddress === Infinity ? null : new Admission(maxTotal, maxPerAddress);
    this.timers = options.timers ?? nodeTimers;
    const timers = this.timers;
    this.clock = options.now ?? (() => timers.now());
    // Check the default rate limits now rather than at the first route.
    if (options.rateLimit !== undefined) ratePolicy(options.rateLimit);
  }

  /**
   * Mount hooks on a path; the query string is ignored. A path is matched
   * exactly (`/chat`), or is a pattern: `/room/:id` (one segment per
   * parameter) or `/files/*` (everything under `/files/`), whose values
   * the hooks find in `request.params` and `routeParams(connection)`.
   * Exact paths are looked up first, then patterns in the order they were
   * mounted, then `*`, which catches every other path. Mounting the same
   * path again replaces its hooks. Throws a UsageError for a path that does
   * not start with "/" (other than `*`) or a malformed pattern.
   */
  route<Context = undefined>(path: string, route: Route<Context>): this {
    if (path !== '*' && !path.startsWith('/')) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', `a route path starts with "/" (or is "*"): got "${path}", did you mean "/${path}"?`);
    }
    const pattern = path !== '*' && isRoutePattern(path) ? compileRoutePattern(path) : null;
    const limits = route.rateLimit === false ? undefined : (route.rateLimit ?? this.options.rateLimit);
    const previous = this.routes.get(path);
    const mounted: MountedRoute = {
      key: path,
      route: route as AnyRoute,
      rate: limits === undefined ? null : ratePolicy(limits),
      pattern,
      tally: previous?.tally ?? { open: new Set(), opened: 0, closed: { messagesReceived: 0, bytesReceived: 0, messagesSent: 0, bytesSent: 0 } },
    };
    this.routes.set(path, mounted);
    if (pattern !== null) {
      const index = this.patterns.findIndex((entry) => entry.key === path);
      if (index >= 0) this.patterns[index] = mounted;
      else this.patterns.push(mounted);
    }
    return this;
  }

  /**
   * Count a message the application refused under a limit of its own (an
   * allowance of image bytes, say) toward its connection's sustained abuse,
   * together with the refusals of the route's `rateLimit`, and in the
   * `rateLimited` counter. Answers true when this refusal makes it
   * sustained abuse (`abuseLimit` within `abuseWindowMs`): the application
   * then closes the connection, 1008 being the code that fits (RFC 6455
   * §7.4.1). Answers false, counting nothing, for a connection whose route
   * has no rate limit or that this server did not accept.
   */
  rateViolation(connection: Connection<unknown>): boolean {
    const mount = connection.serverData as Partial<Mount> | undefined;
    if (mount?.server !== this || mount.rate == null) return false;
    this.stats.rateLimited++;
    return mount.rate.refused(this.clock());
  }

  /**
   * What the server has done since it started (see `ServerCounters`): a
   * copy, taken now. Messages dropped under the backpressure policy `drop`
   * include those of the connections still open.
   */
  counters(): ServerCounters {
    const counters = copyCounters(this.stats);
    for (const connection of this.connectionSet) counters.backpressureDrops += connection.droppedMessages;
    return counters;
  }

  /**
   * Traffic per route, in the order the routes were mounted: the counters of
   * its open connections summed, plus those of its closed ones. Costs one
   * pass over the open connections; nothing is counted per message here.
   */
  traffic(): RouteTraffic[] {
    const result: RouteTraffic[] = [];
    for (const { key: path, tally } of this.routes.values()) {
      const { closed } = tally;
      const entry: RouteTraffic = {
        path,
        connections: tally.open.size,
        opened: tally.opened,
        messagesReceived: closed.messagesReceived,
        bytesReceived: closed.bytesReceived,
        messagesSent: closed.messagesSent,
        bytesSent: closed.bytesSent,
      };
      for (const connection of tally.open) addTraffic(entry, connection);
      result.push(entry);
    }
    return result;
  }

  /** Open connections, all routes together. */
  get connections(): ReadonlySet<Connection<unknown>> {
    return this.connectionSet;
  }

  /**
   * Send one message to every open connection of the server, or of one
   * route (`path`: the route as mounted, e.g. `/chat` or `/room/:id`),
   * framed once for all of them. Returns how many connections took it.
   *
   * This process's connections only: a broadcast does not go through the
   * `pubsub` hub, so with a `RedisBroker` it does not reach clients
   * connected to other nodes. To reach every node, subscribe connections to
   * a topic and use `publish(topic, data)`.
   */
  broadcast(data: SendData, options: BroadcastOptions & { path?: string } = {}): number {
    if (options.path === undefined) return broadcast(this.connectionSet, data, options);
    const mounted = this.routes.get(options.path);
    if (mounted === undefined) throw new UsageError('WS_ERR_INVALID_ARGUMENT', `no route is mounted at ${options.path}`);
    return broadcast(mounted.tally.open, data, options);
  }

  /**
   * Publish to a topic of the server's hub (`pubsub` option): every
   * subscriber, in every process the hub's broker reaches, gets it, framed
   * once per process. Resolves once the broker stored it.
   */
  publish(topic: string, data: string | Uint8Array, options?: { binary?: boolean }): Promise<unknown> {
    return this.hub('publish').publish(topic, data, options);
  }

  /** Subscribe a connection to a topic of the server's hub; it leaves its topics when it closes. False if already subscribed. */
  subscribe(connection: Connection<unknown>, topic: string): boolean {
    return this.hub('subscribe').subscribe(connection, topic);
  }

  /** False if the connection was not subscribed to the topic. */
  unsubscribe(connection: Connection<unknown>, topic: string): boolean {
    return this.hub('unsubscribe').unsubscribe(connection, topic);
  }

  private hub(method: string): TopicHub {
    const hub = this.options.pubsub;
    if (hub === undefined) {
      throw new UsageError(
        'WS_ERR_INVALID_ARGUMENT',
        `${method}() needs a hub: new WebSocketServer({ pubsub: new PubSub() }) (PubSub from sockeye/pubsub)`,
      );
    }
    return hub;
  }

  /**
   * Listen on a port (0 for an ephemeral one) and resolve with the bound
   * address. `host` defaults to 127.0.0.1: only this machine can connect
   * until you pass `'0.0.0.0'` (every IPv4 interface), `'::'` (IPv6, and
   * IPv4 where the system maps it) or an interface's address. If binding
   * fails (EADDRINUSE...), the promise rejects and `listen()` may be called
   * again.
   */
  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    if (this.netServer !== null) return Promise.reject(new Error('the server is already listening'));
    let server: NetServer;
    if (this.options.tls === undefined) {
      if (this.options.http2 === true)
        return Promise.reject(new UsageError('WS_ERR_INVALID_ARGUMENT', 'the http2 option needs tls: browsers speak HTTP/2 only over TLS'));
      // allowHalfOpen: a peer's FIN must not make Node end our side while
      // messages (a compression still running) and the close reply are on
      // their way; the connection ends TCP itself once they are written.
      server = createNetServer({ allowHalfOpen: true }, (socket) => this.acceptSocket(socket, this.timers.now()));
    } else if (this.options.http2 === true) {
      // RFC 7301: the client offers protocols, the server picks; h2 first (RFC 9113 §3.2).
      const acceptor = (this.http2 ??= new Http2Acceptor((stream, headers) => this.onHttp2Stream(stream, headers), this.handshakeTimeout));
      server = createTlsServer({ allowHalfOpen: true, ALPNProtocols: ['h2', 'http/1.1'], ...this.options.tls }, (socket) => {
        const acceptedAt = this.tlsDone(socket);
        if (socket.alpnProtocol !== 'h2') {
          this.acceptSocket(socket, acceptedAt);
          return;
        }
        if (this.shuttingDown) {
          socket.destroy();
          return;
        }
        socket.setNoDelay(true);
        const session = acceptor.adopt(socket);
        if (session !== undefined) this.awaitFirstStream(session, acceptedAt);
      });
      server.on('connection', (socket: Socket) => this.acceptTls(socket));
      server.on('tlsClientError', (_error, socket) => socket.destroy());
    } else {
      server = createTlsServer({ allowHalfOpen: true, ...this.options.tls }, (socket) => this.acceptSocket(socket, this.tlsDone(socket)));
      // The deadline starts at TCP accept, not once TLS is done: node:tls
      // alone would hold a peer that never starts TLS for 120 s.
      server.on('connection', (socket: Socket) => this.acceptTls(socket));
      // A failed TLS handshake ends that socket, not the server.
      server.on('tlsClientError', (_error, socket) => socket.destroy());
    }
    this.netServer = server;
    return new Promise((resolve, reject) => {
      const failed = (error: Error): void => {
        // Not listening after all (EADDRINUSE, EACCES...): listen() may be called again.
        if (this.netServer === server) this.netServer = null;
        reject(error);
      };
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        // Later errors of the listening socket (EMFILE on accept, say) must not go unheard and end the process.
        server.on('error', (error) => this.log({ event: 'error', path: '', remoteAddress: undefined, error }));
        this.startHeartbeat();
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /**
   * Take an upgrade from an existing node:http or node:https server:
   * `httpServer.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head))`.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Ended: refused already (over maxHandshakes, or past the deadline) while node:http was reading the request.
    if (this.shuttingDown || socket.writableEnded) {
      socket.destroy();
      return;
    }
    this.startHeartbeat();
    const admitted = this.handshaking.get(socket);
    if (admitted !== undefined && !admitted.headIn) {
      // Counted since admitConnection: the slot is held and the deadline from accept runs on.
      admitted.headIn = true;
    } else {
      const full = this.handshakesFull();
      // node:http has read the request: the deadline covers the hooks from here.
      this.handshaking.set(socket, { deadline: this.timers.now() + this.handshakeTimeout, headIn: true });
      if (full) {
        socket.on('error', noop);
        this.refuse(socket, '', 503, 'too many handshakes in progress');
        return;
      }
    }
    this.sweepHandshakes();
    const parsed: RequestHead = {
      method: request.method ?? 'GET',
      target: request.url ?? '/',
      httpVersion: request.httpVersion,
      headers: headersFromRaw(request.rawHeaders),
    };
    socket.on('error', noop);
    this.startUpgrade(parsed, socket, head);
  }

  /**
   * With `handleUpgrade`: call with every socket the node:http, node:https
   * or node:http2 server accepts, from its 'connection' event, so that one
   * `handshakeTimeout` runs from TCP accept to the open connection (rather
   * than node:http's head timeout and then a fresh one from
   * `handleUpgrade`), and `maxHandshakes` counts the connections whose
   * request node:http is still reading. On a TLS server, call it from
   * 'connection' with `{ tls: true }` (the TCP socket, before TLS), then
   * from 'secureConnection' with the TLS socket, which keeps the TCP
   * connection's deadline and slot.
   *
   * The socket holds a handshake slot until `handleUpgrade` takes it,
   * `releaseConnection` lets it go, or it closes. By the deadline, a socket
   * whose request is not in is answered 408 and closed (before TLS: closed).
   * Over `maxHandshakes` it is refused at once, 503 and closed (before TLS:
   * closed), and the answer is false.
   */
  admitConnection(socket: Socket, options: { tls?: boolean } = {}): boolean {
    if (this.shuttingDown) {
      socket.destroy();
      return false;
    }
    if (options.tls === true) {
      this.acceptTls(socket);
      return !socket.destroyed;
    }
    // TLS done on a connection admitted before TLS: its slot moves here, its deadline stays.
    const acceptedAt = this.tlsPending.has(pendingKey(socket)) ? this.tlsDone(socket) : null;
    if (acceptedAt === null && this.handshakesFull()) {
      this.refuse(socket, '', 503, 'too many handshakes in progress');
      return false;
    }
    this.handshaking.set(socket, { deadline: (acceptedAt ?? this.timers.now()) + this.handshakeTimeout, headIn: false });
    socket.once('close', () => {
      this.handshaking.delete(socket);
    });
    this.sweepHandshakes();
    return true;
  }

  /**
   * A socket given to `admitConnection` no longer counts as a handshake: its
   * request was not an upgrade (node:http answers it), or, over TLS, ALPN
   * chose h2, whose streams count one by one in `handleHttp2Stream`. A
   * socket whose upgrade is under way keeps its slot.
   */
  releaseConnection(socket: Socket): void {
    const pending = this.handshaking.get(socket);
    if (pending !== undefined && !pending.headIn) this.handshaking.delete(socket);
    // Before or just after TLS: the entry of the TCP socket (named by its address and port, as the TLS socket over it is).
    this.tlsPending.delete(pendingKey(socket));
  }

  /**
   * An HTTP/2 session of your own node:http2 server, whose TCP connections
   * go to `admitConnection(socket, { tls: true })`: call it from the
   * server's 'session' event. The session must open its first stream by
   * the deadline from TCP accept, or it gets GOAWAY and is closed, as the
   * `http2` option's own sessions are; its TLS socket stops counting as a
   * handshake (each extended CONNECT counts on its own in
   * `handleHttp2Stream`).
   */
  admitHttp2Session(session: ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    const socket = session.socket as Socket;
    const acceptedAt = this.tlsPending.has(pendingKey(socket)) ? this.tlsDone(socket) : this.timers.now();
    this.awaitFirstStream(session, acceptedAt);
  }

  /**
   * Take a WebSocket over HTTP/2 (RFC 8441) from an existing node:http2
   * server, created with `settings: { enableConnectProtocol: true }` (the
   * client may not send an extended CONNECT otherwise, RFC 8441 §3):
   * `h2server.on('stream', (stream, headers) => { if (!wss.handleHttp2Stream(stream, headers)) serveOther(stream, headers); })`.
   * The request goes through the same routes and hooks as an HTTP/1.1
   * upgrade (`request.method` is `CONNECT`, `host` comes from
   * `:authority`); accepted, it is answered 200 and the stream carries the
   * connection. Returns false, touching nothing, for a stream that is not
   * a CONNECT with `:protocol websocket`.
   */
  handleHttp2Stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
    if (!isWebSocketConnect(headers)) return false;
    if (this.shuttingDown) {
      // RFC 9113 §8.7: REFUSED_STREAM tells the client nothing was processed.
      stream.close(http2Constants.NGHTTP2_REFUSED_STREAM);
      return true;
    }
    this.startHeartbeat();
    stream.pause();
    stream.on('error', noop);
    const full = this.handshakesFull();
    // The head came in one HEADERS block: the deadline covers the hooks from here.
    this.handshaking.set(stream, { deadline: this.timers.now() + this.handshakeTimeout, headIn: true });
    const path = pathOf(String(headers[':path'] ?? ''));
    if (full) {
      this.refuse(stream, path, 503, 'too many handshakes in progress');
      return true;
    }
    this.sweepHandshakes();
    const validation = validateExtendedConnect(headers);
    if (!validation.ok) {
      this.refuse(stream, path, validation.status, validation.reason, validation.headers);
      return true;
    }
    this.startUpgrade(validation.head, stream, new Uint8Array(0), {
      ok: true,
      key: null,
      protocols: validation.protocols,
      extensions: validation.extensions,
    });
    return true;
  }

  /** A stream on one of the `http2` option's own sessions: WebSockets only; anything else is not served here. */
  private onHttp2Stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (this.handleHttp2Stream(stream, headers)) return;
    stream.on('error', noop);
    const method = headers[':method'];
    if (method === 'CONNECT') refuseStream(stream, 501, 'only CONNECT with :protocol websocket is served here');
    else refuseStream(stream, 404, 'this server serves WebSockets only (extended CONNECT, RFC 8441)');
  }

  /**
   * Graceful shutdown: stop accepting, send every peer a close frame (1001 by
   * default), wait for their answers up to the timeout, then destroy the rest.
   * Rejects with a UsageError, changing nothing, for a code that may not be
   * sent (RFC 6455 §7.4) or a reason over 123 bytes.
   */
  async close(options: ShutdownOptions = {}): Promise<void> {
    const code = options.code ?? CloseCode.GoingAway;
    const reason = options.reason ?? 'server shutting down';
    // Check the code and reason before anything stops: a refused close leaves the server as it was.
    encodeClosePayload(code, reason);
    this.shuttingDown = true;
    if (this.heartbeatTimer !== null) this.timers.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    const listening = this.netServer;
    this.netServer = null;
    const stopped = listening === null ? Promise.resolve() : new Promise<void>((resolve) => listening.close(() => resolve()));
    // GOAWAY: no new streams; each session ends once its WebSockets have closed.
    this.http2?.close();
    for (const socket of this.handshaking.keys()) socket.destroy();
    for (const { socket } of this.tlsPending.values()) socket.destroy();
    if (this.handshakeSweep !== null) this.timers.clearInterval(this.handshakeSweep);
    this.handshakeSweep = null;
    this.handshaking.clear();
    this.tlsPending.clear();
    this.sessionsWaiting.clear();
    const timeout = options.timeout ?? this.options.closeTimeout ?? 5000;
    const closing = [...this.connectionSet].map(
      (connection) =>
        new Promise<void>((resolve) => {
          connection.once('close', () => resolve());
          connection.close(code, reason);
        }),
    );
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = this.timers.setTimeout(resolve, timeout);
    });
    await Promise.race([Promise.all(closing), deadline]);
    if (timer !== undefined) this.timers.clearTimeout(timer);
    for (const connection of this.connectionSet) connection.terminate('server shut down');
    this.http2?.close(true);
    await stopped;
  }

  // ---- accepting -----------------------------------------------------------

  /** Whether `maxHandshakes` connections are in their opening handshake already. */
  private handshakesFull(): boolean {
    const max = this.options.maxHandshakes;
    return max !== undefined && this.handshaking.size + this.tlsPending.size >= max;
  }

  private get handshakeTimeout(): number {
    return this.options.handshakeTimeout ?? 10_000;
  }

  /** wss://: a TCP connection, before TLS. Its deadline starts now. */
  private acceptTls(socket: Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    if (this.handshakesFull()) {
      // No HTTP before TLS: all a peer can be told is that the connection ends.
      countRefusal(this.stats, 503);
      socket.destroy();
      return;
    }
    const key = pendingKey(socket);
    this.tlsPending.set(key, { socket, deadline: this.timers.now() + this.handshakeTimeout });
    socket.once('close', () => {
      if (this.tlsPending.get(key)?.socket === socket) this.tlsPending.delete(key);
    });
    this.sweepHandshakes();
  }

  /**
   * An HTTP/2 session must open its first stream by the deadline from TCP
   * accept; from then on its idle timer (see `closeWhenIdle`) and each
   * stream's own deadline take over.
   */
  private awaitFirstStream(session: ServerHttp2Session, acceptedAt: number): void {
    this.sessionsWaiting.set(session, acceptedAt + this.handshakeTimeout);
    const settled = (): void => {
      this.sessionsWaiting.delete(session);
    };
    session.once('stream', settled);
    session.once('close', settled);
    this.sweepHandshakes();
  }

  /** wss://: TLS is done; when the TCP connection was accepted (its address and port name it while it lives). */
  private tlsDone(socket: Socket): number {
    const key = pendingKey(socket);
    const pending = this.tlsPending.get(key);
    this.tlsPending.delete(key);
    return pending === undefined ? this.timers.now() : pending.deadline - this.handshakeTimeout;
  }

  private acceptSocket(socket: Socket, acceptedAt: number): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    // Over TLS the slot was counted before the TLS handshake, under tlsPending.
    const full = this.handshakesFull();
    const pending: PendingHandshake = { deadline: acceptedAt + this.handshakeTimeout, headIn: full };
    this.handshaking.set(socket, pending);
    socket.on('error', noop);
    // Half-open sockets (allowHalfOpen): a peer that ends before its upgrade is done will never complete one.
    socket.once('end', destroyOnEnd);
    if (full) {
      this.refuse(socket, '', 503, 'too many handshakes in progress');
      return;
    }
    this.sweepHandshakes();
    const parser = new RequestHeadParser(this.options.headLimits);
    const onClose = (): void => {
      this.handshaking.delete(socket);
    };
    const onData = (chunk: Buffer): void => {
      const result = parser.push(chunk);
      if (result.kind === 'incomplete') return;
      // The head is in; the deadline still runs until the connection is open.
      pending.headIn = true;
      // Drop both listeners: a closure left on the socket would keep the
      // parser and the head alive as long as the connection.
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (result.kind === 'error') {
        this.refuse(socket, '', result.status, result.reason);
        return;
      }
      this.startUpgrade(result.head, socket, result.rest);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  }

  /**
   * One timer for every pending handshake rather than one each: it runs
   * while handshakes are pending and ends those past their deadline (never
   * early; at most a quarter of the timeout late): 408 if the request head
   * is not in, 503 if the pipeline (an async hook) is not done, and a TCP
   * connection still in its TLS handshake is destroyed.
   */
  private sweepHandshakes(): void {
    if (this.handshakeSweep !== null) return;
    const timeout = this.handshakeTimeout;
    this.handshakeSweep = this.timers.setInterval(
      () => {
        const now = this.timers.now();
        for (const [socket, pending] of this.handshaking) {
          if (now < pending.deadline) continue;
          if (pending.headIn) this.refuse(socket, '', 503, 'the upgrade could not be completed in time');
          else this.refuse(socket, '', 408, 'the upgrade request did not arrive in time');
        }
        for (const [key, pending] of this.tlsPending) {
          if (now < pending.deadline) continue;
          this.tlsPending.delete(key);
          pending.socket.destroy();
        }
        for (const [session, deadline] of this.sessionsWaiting) {
          if (now < deadline) continue;
          this.sessionsWaiting.delete(session);
          // GOAWAY; with no stream open the session then ends at once.
          session.close();
        }
        if (this.handshaking.size === 0 && this.tlsPending.size === 0 && this.sessionsWaiting.size === 0 && this.handshakeSweep !== null) {
          this.timers.clearInterval(this.handshakeSweep);
          this.handshakeSweep = null;
        }
      },
      Math.max(10, Math.min(1000, timeout / 4)),
    );
    this.handshakeSweep.unref();
  }

  /**
   * Run the upgrade, whose promise nobody awaits: the hooks' failures are
   * handled inside it, and anything else that throws (a bug, an exhausted
   * resource) ends that socket and is logged, rather than becoming an
   * unhandled rejection that ends the process.
   */
  private startUpgrade(head: RequestHead, socket: Duplex, rest: Uint8Array, http2?: Http2Offer): void {
    this.upgrade(head, socket, rest, http2).catch((error: unknown) => {
      this.handshaking.delete(socket);
      socket.destroy();
      this.log({ event: 'error', path: pathOf(head.target), remoteAddress: remoteAddressOf(socket), error: asError(error) });
    });
  }

  /** `http2`: what an extended CONNECT offered, already checked (RFC 8441 has no key); else the head is an HTTP/1.1 upgrade to check. */
  private async upgrade(head: RequestHead, socket: Duplex, rest: Uint8Array, http2?: Http2Offer): Promise<void> {
    const validation = http2 ?? validateUpgradeRequest(head);
    const path = pathOf(head.target);
    if (!validation.ok) {
      this.refuse(socket, path, validation.status, validation.reason, validation.headers);
      return;
    }
    // Most targets are plain paths; parse a URL only for the others (escapes,
    // dot-segments, absolute form), so the path is the URL's pathname either way.
    let url: URL | null = null;
    let pathname = path;
    if (!isPlainPath(path)) {
      try {
        url = new URL(head.target, `http://${head.headers.get('host') ?? 'localhost'}`);
      } catch {
        this.refuse(socket, path, 400, 'invalid request target');
        return;
      }
      pathname = url.pathname;
    }
    let mounted = this.routes.get(pathname);
    let params: RouteParams = NO_PARAMS;
    // A pattern's key is the pattern itself, which a request path could equal by chance.
    if (mounted?.pattern != null) mounted = undefined;
    if (mounted === undefined) {
      for (const candidate of this.patterns) {
        const matched = candidate.pattern!.match(pathname);
        if (matched !== null) {
          mounted = candidate;
          params = matched;
          break;
        }
      }
      mounted ??= this.routes.get('*');
    }
    if (mounted === undefined) {
      this.refuse(socket, pathname, 404, `no WebSocket endpoint at ${pathname}`);
      return;
    }
    const request = new IncomingUpgrade(head, pathname, url, validation.protocols, validation.extensions, socket, params);
    const admission = this.admission;
    if (admission === null) {
      await this.runPipeline(mounted, request, validation.key, socket, rest, undefined);
      return;
    }
    // The slot is held from here: through the hooks, then by the open connection.
    const address = admission.countsAddresses ? request.remoteAddress : undefined;
    const full = admission.reserve(address);
    if (full !== 0) {
      this.refuse(socket, pathname, full, full === 429 ? 'too many connections from this address' : 'too many connections');
      return;
    }
    let opened = false;
    try {
      opened = await this.runPipeline(mounted, request, validation.key, socket, rest, address);
    } finally {
      if (!opened) admission.release(address);
    }
  }

  /** The route's hooks, then the 101 and the connection. Resolves true once the connection is open. */
  private async runPipeline(
    mounted: MountedRoute,
    request: IncomingUpgrade,
    /** Sec-WebSocket-Key; null over HTTP/2, which has none (RFC 8441 §5). */
    key: string | null,
    socket: Duplex,
    rest: Uint8Array,
    address: string | undefined,
  ): Promise<boolean> {
    const route = mounted.route;

    let context: unknown = undefined;
    let protocol: string | undefined;
    // Each hook's result is awaited only when it is a promise: a synchronous
    // pipeline costs no extra turn of the event loop.
    let hook: HookName = 'origins';
    try {
      let originRefusal = checkOrigin(route, request);
      if (isThenable(originRefusal)) originRefusal = await originRefusal;
      if (originRefusal !== null) {
        this.refuse(socket, request.path, originRefusal.status, originRefusal.reason, originRefusal.headers);
        return false;
      }
      if (route.authenticate !== undefined) {
        hook = 'authenticate';
        let outcome = route.authenticate(request);
        if (isThenable(outcome)) outcome = await outcome;
        if (outcome instanceof UpgradeRejection) {
          this.refuse(socket, request.path, outcome.status, outcome.reason, outcome.headers);
          return false;
        }
        context = outcome;
      }
      hook = 'protocols';
      let chosen = chooseProtocol(route, request);
      if (isThenable(chosen)) chosen = await chosen;
      if (chosen instanceof UpgradeRejection) {
        this.refuse(socket, request.path, chosen.status, chosen.reason, chosen.headers);
        return false;
      }
      protocol = chosen;
    } catch (error) {
      const failure = asError(error);
      this.stats.hookFailures++;
      this.log({ event: 'error', path: request.path, remoteAddress: request.remoteAddress, error: failure, hook });
      this.reportFailure(failure, { path: mounted.key, hook, request });
      this.refuse(socket, request.path, 500, 'the upgrade could not be completed');
      return false;
    }
    // Refused meanwhile (the deadline passed while a hook ran): that answer is on its way.
    if (!this.handshaking.has(socket)) return false;
    if (socket.destroyed || this.shuttingDown) {
      this.handshaking.delete(socket);
      socket.destroy();
      return false;
    }

    let extensions = '';
    let deflate: ConnectionOptions['deflate'] = null;
    if (this.deflate !== null && request.extensions.length > 0) {
      const agreed = negotiateServer(request.extensions as ExtensionOfferList, this.deflate);
      if (agreed !== null) {
        extensions = formatExtensions([agreed.response]);
        deflate = {
          codec: createZlibCodec(agreed.params, 'server', {
            level: this.deflate.level,
            memLevel: this.deflate.memLevel,
            limiter: this.limiter ?? undefined,
          }),
          threshold: this.deflate.threshold ?? DEFAULT_DEFLATE_THRESHOLD,
        };
      }
    }

    let response = '';
    try {
      if (key !== null) response = buildAcceptResponse({ key, protocol, extensions });
      else if (protocol !== undefined && !isToken(protocol)) {
        throw new UsageError('WS_ERR_INVALID_ARGUMENT', `the selected subprotocol is not a token: ${JSON.stringify(protocol)}`);
      }
    } catch (error) {
      // The one value from a hook that goes into the response: a protocols
      // function that chose something that is not a token (RFC 6455 §4.2.2).
      const failure = asError(error);
      this.stats.hookFailures++;
      this.log({ event: 'error', path: request.path, remoteAddress: request.remoteAddress, error: failure, hook: 'protocols' });
      this.reportFailure(failure, { path: mounted.key, hook: 'protocols', request });
      this.refuse(socket, request.path, 500, 'the upgrade could not be completed');
      return false;
    }
    this.handshaking.delete(socket);
    // From here the connection answers the peer's FIN (after what is queued).
    socket.off('end', destroyOnEnd);
    if (key !== null) socket.write(response, 'latin1');
    else if (!acceptStream(socket as ServerHttp2Stream, protocol, extensions)) {
      socket.destroy();
      return false;
    }
    const connection = Connection.adopt<unknown>(
      socket as Socket,
      {
        role: Role.Server,
        maxMessageSize: route.maxMessageSize ?? this.options.maxMessageSize,
        deflate,
        highWaterMark: this.options.highWaterMark,
        maxBufferedAmount: this.options.maxBufferedAmount,
        backpressurePolicy: this.options.backpressurePolicy,
        closeTimeout: this.options.closeTimeout,
        protocol,
        extensions,
        decodeText: route.decodeText,
      },
      context,
    );
    // The connection handles socket errors from here on.
    socket.off('error', noop);
    this.adopt(connection, mounted, request, socket as Socket, address);
    if (rest.length > 0) connection.receiveInitial(rest);
    // Reads unless the open hook paused the connection.
    connection.start();
    return true;
  }

  private adopt(connection: Connection<unknown>, mounted: MountedRoute, request: UpgradeRequest, socket: Socket, address: string | undefined): void {
    const path = request.path;
    const route = mounted.route;
    const tally = mounted.tally;
    this.connectionSet.add(connection);
    this.stats.opened++;
    tally.open.add(connection);
    tally.opened++;
    // One small record per connection and listeners shared by all of them:
    // closures per connection would cost more than the connection itself.
    const mount: Mount = {
      server: this,
      route,
      rate: mounted.rate === null ? null : new ConnectionRate(mounted.rate, this.clock()),
      admitted: address,
      tally,
      path,
      key: mounted.key,
      params: request.params,
      remoteAddress: this.options.log === undefined ? undefined : request.remoteAddress,
    };
    connection.serverData = mount;
    const idle = this.options.idleTimeout ?? 0;
    if (idle > 0) socket.setTimeout(idle, () => connection.drop('WS_ERR_IDLE_TIMEOUT', `no traffic for ${idle} ms`, CloseCode.GoingAway));
    if (route.message !== undefined || mount.rate !== null) connection.on('message', WebSocketServer.onMessage);
    if (route.drain !== undefined) connection.on('drain', WebSocketServer.onDrain);
    if (route.error !== undefined) connection.on('error', WebSocketServer.onError);
    // `on`, not `once`: close comes once anyway, and `once` wraps the listener per connection.
    connection.on('close', WebSocketServer.onClose);
    this.log({ event: 'open', path, remoteAddress: mount.remoteAddress, protocol: connection.protocol, extensions: connection.extensions });
    if (this.options.logFrames === true && this.options.log !== undefined) {
      connection.on('wire', (frame) => this.log({ event: 'frame', path, remoteAddress: mount.remoteAddress, frame }));
    }
    if (route.open !== undefined) {
      let result: unknown;
      try {
        result = route.open(connection);
      } catch (error) {
        this.hookFailed(connection, mount, 'open', error);
        return;
      }
      if (result !== undefined) this.watch(connection, mount, 'open', result);
    }
  }

  // The dispatchers below run for every message, drain, error and close:
  // a synchronous hook returns undefined and costs one comparison more; a
  // rejection handler is attached only to what a hook returned (an async
  // hook's promise).

  private static onMessage(this: Connection<unknown>, data: string | Buffer, isBinary: boolean): void {
    const mount = this.serverData as Mount;
    if (mount.rate !== null && !mount.server.withinRate(this, mount, data, isBinary)) return;
    if (mount.route.message === undefined) return;
    let result: unknown;
    try {
      result = mount.route.message(this, data, isBinary);
    } catch (error) {
      mount.server.hookFailed(this, mount, 'message', error);
      return;
    }
    if (result !== undefined) mount.server.watch(this, mount, 'message', result);
  }

  private static onDrain(this: Connection<unknown>): void {
    const mount = this.serverData as Mount;
    let result: unknown;
    try {
      result = mount.route.drain!(this);
    } catch (error) {
      mount.server.hookFailed(this, mount, 'drain', error);
      return;
    }
    if (result !== undefined) mount.server.watch(this, mount, 'drain', result);
  }

  private static onError(this: Connection<unknown>, failure: Error): void {
    const mount = this.serverData as Mount;
    mount.server.callErrorHook(this, mount, failure);
  }

  private static onClose(this: Connection<unknown>, info: CloseInfo): void {
    const mount = this.serverData as Mount;
    const server = mount.server;
    server.connectionSet.delete(this);
    // With caps, every connection holds a slot (reserved before its hooks ran).
    server.admission?.release(mount.admitted);
    countClose(server.stats, info, this.droppedMessages);
    if (mount.tally.open.delete(this)) addTraffic(mount.tally.closed, this);
    server.log({
      event: 'close',
      path: mount.path,
      remoteAddress: mount.remoteAddress,
      code: info.code,
      reason: info.reason,
      wasClean: info.wasClean,
    });
    if (mount.route.close !== undefined) {
      let result: unknown;
      try {
        result = mount.route.close(this, info);
      } catch (error) {
        server.hookFailed(this, mount, 'close', error);
        return;
      }
      if (result !== undefined) server.watch(this, mount, 'close', result);
    }
  }

  /**
   * Check a received message against its connection's allowances. Over
   * them, it is not delivered: the `limited` hook hears of it, and the
   * connection is closed with 1008 (RFC 6455 §7.4.1: a message that
   * violates the endpoint's policy) at once under `onExceeded: 'close'`,
   * or on sustained abuse. A normal close, not a failure: the peer gets
   * the closing handshake, and whatever `limited` sent goes out first.
   */
  private withinRate(connection: Connection<unknown>, mount: Mount, data: string | Buffer, isBinary: boolean): boolean {
    // The connection counted this message's bytes (after decompression) before emitting it.
    const size = mount.rate!.sizeOf(connection.bytesReceived);
    // Messages that arrive after the close frame went out are not worth checking or delivering.
    if (connection.state !== ConnectionState.Open) return false;
    const now = this.clock();
    const over = mount.rate!.admit(size, now);
    if (over === null) return true;
    this.stats.rateLimited++;
    const closing = mount.rate!.closeAtOnce || mount.rate!.refused(now);
    const hook = mount.route.limited;
    if (hook !== undefined) {
      let result: unknown;
      try {
        result = hook(connection, { limit: over, data, isBinary, closing });
      } catch (error) {
        this.hookFailed(connection, mount, 'limited', error);
        return false;
      }
      if (result !== undefined) this.watch(connection, mount, 'limited', result);
    }
    if (closing && connection.state === ConnectionState.Open) {
      this.stats.rateLimitCloses++;
      connection.close(CloseCode.PolicyViolation, 'rate limit exceeded');
    }
    return false;
  }

  /** Attach a rejection handler to what a hook returned, if it is a promise (or any thenable). */
  private watch(connection: Connection<unknown>, mount: Mount, hook: HookName, result: unknown): void {
    if (!isThenable(result)) return;
    // Promise.resolve adopts a foreign thenable (and returns a native promise
    // as it is), so a `then` that throws is a rejection here too.
    Promise.resolve(result).then(undefined, (error: unknown) => this.hookFailed(connection, mount, hook, error));
  }

  private callErrorHook(connection: Connection<unknown>, mount: Mount, failure: Error): void {
    let result: unknown;
    try {
      result = mount.route.error!(connection, failure);
    } catch (error) {
      this.hookFailed(connection, mount, 'error', error);
      return;
    }
    if (result !== undefined) this.watch(connection, mount, 'error', result);
  }

  /**
   * A hook threw or rejected: that connection fails with 1011, never the
   * server or the process. What was thrown stays on this side: it goes to
   * the log, to `onError`, and to the route's error hook (once: through the
   * connection's error event while it lives, directly after it closed, as
   * for a failing close hook). The close frame carries only a generic
   * reason (RFC 6455 §7.4.1: 1011 says the server met an unexpected
   * condition; the peer has no use for our stack's details). A failing
   * error hook changes nothing else: the connection is already failing for
   * the reason that called it, and that reason stays.
   */
  private hookFailed(connection: Connection<unknown>, mount: Mount, hook: HookName, thrown: unknown): void {
    const failure = asError(thrown);
    this.stats.hookFailures++;
    this.log({ event: 'error', path: mount.path, remoteAddress: mount.remoteAddress, error: failure, hook });
    this.reportFailure(failure, { path: mount.key, hook, connection });
    if (hook === 'error') return;
    if (connection.state !== ConnectionState.Closed) {
      connection.drop('WS_ERR_HANDLER_FAILED', INTERNAL_ERROR_REASON, CloseCode.InternalError, failure);
    } else if (mount.route.error !== undefined) {
      this.callErrorHook(connection, mount, new ConnectionError('WS_ERR_HANDLER_FAILED', INTERNAL_ERROR_REASON, failure));
    }
  }

  private reportFailure(error: Error, failure: HookFailure): void {
    const onError = this.options.onError;
    if (onError === undefined) return;
    try {
      onError(error, failure);
    } catch {
      // The application's error channel failing must not fail the server.
    }
  }

  private refuse(socket: Duplex, path: string, status: number, reason: string, headers?: ReadonlyArray<readonly [string, string]>): void {
    this.handshaking.delete(socket);
    countRefusal(this.stats, status);
    if (this.options.log !== undefined) this.log({ event: 'refused', path, remoteAddress: remoteAddressOf(socket), status, reason });
    if (socket.destroyed) return;
    const stream = asHttp2Stream(socket);
    if (stream !== null) {
      refuseStream(stream, status, reason, headers);
      return;
    }
    socket.end(buildRejection(status, reason, headers), 'utf8');
    // Do not wait on a peer that never closes its side.
    const timer = setTimeout(() => socket.destroy(), 1000);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  private startHeartbeat(): void {
    const interval = this.options.heartbeat ?? DEFAULT_HEARTBEAT_MS;
    if (interval === false || interval <= 0 || this.heartbeatTimer !== null) return;
    this.heartbeatTimer = this.timers.setInterval(() => {
      for (const connection of this.connectionSet) connection.heartbeat(interval);
    }, interval);
    this.heartbeatTimer.unref();
  }

  private log(entry: ServerLogEntry): void {
    const log = this.options.log;
    if (log === undefined) return;
    try {
      log(entry);
    } catch {
      // A broken logger must not break the server.
    }
  }
}

type ExtensionOfferList = Parameters<typeof negotiateServer>[0];

/** An extended CONNECT's offer, checked by `validateExtendedConnect`: as an HTTP/1.1 validation, without a key. */
interface Http2Offer {
  ok: true;
  key: null;
  protocols: string[];
  extensions: ExtensionOffer[];
}

/**
 * The values a route pattern (`/room/:id`, `/files/*`) matched for this
 * connection's request path, as `request.params` had them; empty for an
 * exact route or a connection no WebSocketServer accepted.
 */
export function routeParams(connection: Connection<unknown>): RouteParams {
  const mount = connection.serverData as Partial<Mount> | undefined;
  return mount?.params ?? NO_PARAMS;
}

function capOption(value: number | undefined, name: string): number {
  if (value === undefined) return Infinity;
  if (!Number.isInteger(value) || value < 1) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function addTraffic(into: TrafficCounts, from: TrafficCounts): void {
  into.messagesReceived += from.messagesReceived;
  into.bytesReceived += from.bytesReceived;
  into.messagesSent += from.messagesSent;
  into.bytesSent += from.bytesSent;
}

function noop(): void {}

/** A TCP connection's name while it lives, the same on the TLS socket over it: remote address and port. */
function pendingKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

function destroyOnEnd(this: Duplex): void {
  this.destroy();
}

export { ConnectionError };
