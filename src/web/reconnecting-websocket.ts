/**
 * A WebSocket that stays connected: it reconnects with exponential back-off
 * and jitter, keeps what is sent while offline in a bounded queue and sends
 * it in order once connected again, notices a dead peer with an
 * application-level heartbeat, and stops for good after a deliberate
 * `close()`, after close codes the application marks final, or after too
 * many failed attempts.
 *
 * Runtime-agnostic: it is written against the WHATWG WebSocket interface
 * (the browser's, undici's, Sockeye's own) and uses nothing but ECMAScript
 * and what it looks up on `globalThis` (WebSocket, setTimeout, clearTimeout),
 * so the same compiled file runs in browsers and in Node. It imports
 * nothing.
 */

// ---- the WebSocket it drives ------------------------------------------------

/** What a Blob offers that this module uses. */
export interface BlobLike {
  readonly size: number;
  readonly type: string;
}

/** What `send()` accepts: what a WHATWG WebSocket's `send()` accepts. */
export type OutgoingData = string | ArrayBufferLike | ArrayBufferView | BlobLike;

/** What a message carries: text, or bytes as an ArrayBuffer or a Blob depending on `binaryType`. */
export type MessageData = string | ArrayBuffer | BlobLike;

/** The fields of open/message/error/close events that this module reads. */
export interface SocketEvent {
  readonly type: string;
  readonly data?: unknown;
  readonly code?: number;
  readonly reason?: string;
  readonly wasClean?: boolean;
}

/** The part of the WHATWG WebSocket interface this module needs. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly extensions: string;
  readonly bufferedAmount: number;
  binaryType: 'blob' | 'arraybuffer';
  send(data: OutgoingData): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'error' | 'close', listener: (event: SocketEvent) => void): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** WHATWG readyState OPEN. */
const OPEN = 1;

// ---- options ------------------------------------------------------------------

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BackoffOptions {
  /** Delay before the first reconnect attempt, ms. Default 1000. */
  initialDelay?: number;
  /** Each further attempt waits this many times longer. Default 2. */
  factor?: number;
  /** No delay exceeds this, ms. Default 30 000. */
  maxDelay?: number;
  /**
   * Fraction of each delay taken off at random, 0 to 1. Default 0.5: a delay
   * falls between half and all of its nominal value, so clients dropped
   * together by a restarting server do not all return in the same instant.
   */
  jitter?: number;
}

/**
 * An application-level heartbeat. A browser WebSocket cannot send pings
 * (RFC 6455 §5.5.2 pings are the browser's own business), so liveness is
 * judged from messages: anything received proves the connection alive.
 *
 * - With `message`: after `interval` ms without receiving anything, send
 *   `message` (the server must answer it, with `reply` or with anything);
 *   if nothing at all arrives within `timeout` ms after that, the
 *   connection is dead.
 * - Without `message`: the server is expected to send something on its own
 *   (a clock tick, its own heartbeat); if nothing arrives for `timeout` ms,
 *   the connection is dead.
 *
 * A dead connection is abandoned at once (its close frame is sent, but not
 * waited for) and a reconnect follows, as after any other drop.
 */
export interface HeartbeatOptions {
  /** Silence (ms) after which `message` is sent. Default 30 000. Unused without `message`. */
  interval?: number;
  /** How long (ms) to wait for any message: after the probe, or in all, without one. */
  timeout: number;
  /** The probe, sent as is. */
  message?: string;
  /**
   * The peer's answer to the probe: a string matched exactly, or a test.
   * Matching messages count as signs of life and are not delivered as
   * `message` events.
   */
  reply?: string | ((data: MessageData) => boolean);
}

export interface ReconnectingWebSocketOptions {
  protocols?: string | string[];
  /** The WebSocket class to use. Default: `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Set on every socket; default: the WebSocket's own default (`blob` in the standard). */
  binaryType?: 'blob' | 'arraybuffer';
  backoff?: BackoffOptions;
  /** Most connection attempts in a row without success before giving up (the first one counts). Default: unlimited. */
  maxAttempts?: number;
  /** An attempt that has not opened after this many ms is abandoned (and counts as failed). Default 10 000; 0: no limit. */
  connectTimeout?: number;
  /** Most messages kept while offline. Default 100. */
  maxQueuedMessages?: number;
  /** Most bytes (UTF-8 for text) kept while offline. Default 1 MiB. */
  maxQueuedBytes?: number;
  heartbeat?: HeartbeatOptions;
  /**
   * Close codes after which no reconnect is tried: the server means it.
   * Default `[1008]` (policy violation, RFC 6455 §7.4.1). A list given here
   * replaces the default; include 1008 to keep it.
   */
  finalCloseCodes?: readonly number[];
  /** Timer functions. Default: the global ones, looked up at each call (so test clocks that replace them work). */
  timers?: Timers;
  /** Milliseconds clock for the heartbeat. Default `Date.now`. */
  now?: () => number;
  /** Source of jitter, [0, 1). Default `Math.random`. */
  random?: () => number;
}

// ---- events -------------------------------------------------------------------

/**
 * - `connecting`: the first attempt is under way.
 * - `open`: connected; `send()` goes straight out.
 * - `reconnecting`: the connection dropped or an attempt failed: waiting for
 *   the back-off delay, or a further attempt is under way.
 * - `closing`: `close()` was called; waiting for the socket's close.
 * - `closed`: for good: after `close()`, a final close code, giving up, or
 *   an unusable URL. `open()` starts again.
 */
export type ReconnectState = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

export type ReconnectingErrorCode =
  /** The socket reported an error (a browser says no more than that). */
  | 'WS_ERR_SOCKET'
  /** An attempt did not open within `connectTimeout`. */
  | 'WS_ERR_CONNECT_TIMEOUT'
  /** The heartbeat found the connection silent. */
  | 'WS_ERR_HEARTBEAT_TIMEOUT'
  /** `maxAttempts` attempts in a row failed; no more are made. */
  | 'WS_ERR_GAVE_UP'
  /** The WebSocket constructor refused the URL or protocols. */
  | 'WS_ERR_INVALID_URL';

export class ReconnectingWebSocketError extends Error {
  override readonly name = 'ReconnectingWebSocketError';
  constructor(
    readonly code: ReconnectingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ReconnectingWebSocketEventMap {
  statechange: { state: ReconnectState; previous: ReconnectState };
  /** `reconnected` is false for the first connection since construction or `open()`. */
  open: { reconnected: boolean; protocol: string; extensions: string };
  message: { data: MessageData };
  /**
   * A socket closed, or an attempt failed. `willReconnect` says whether
   * another attempt follows, `delay` in how many ms (null when not).
   */
  close: { code: number; reason: string; wasClean: boolean; willReconnect: boolean; delay: number | null };
  error: { error: ReconnectingWebSocketError };
  /**
   * A message that will not be sent: the offline queue was full
   * (`overflow`), or the client is closed or closing (`closed`, which also
   * reports what was still queued when it closed).
   */
  dropped: { data: OutgoingData; reason: 'overflow' | 'closed' };
}

type Listener<K extends keyof ReconnectingWebSocketEventMap> = (event: ReconnectingWebSocketEventMap[K]) => void;
type ListenerTable = { [K in keyof ReconnectingWebSocketEventMap]?: Array<Listener<K>> };

// ---- back-off -------------------------------------------------------------------

/**
 * The wait before reconnect attempt number `attempt` (1 for the first):
 * `initialDelay * factor^(attempt-1)`, capped at `maxDelay`, less a random
 * share of up to `jitter` of it.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialDelay ?? 1000;
  const factor = options.factor ?? 2;
  const max = options.maxDelay ?? 30_000;
  const jitter = Math.min(Math.max(options.jitter ?? 0.5, 0), 1);
  const nominal = Math.min(max, initial * Math.pow(factor, Math.max(attempt, 1) - 1));
  return Math.round(nominal * (1 - jitter * random()));
}

// ---- the client -----------------------------------------------------------------

interface QueuedMessage {
  data: OutgoingData;
  size: number;
}

interface GlobalScope {
  WebSocket?: WebSocketConstructor;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const scope = globalThis as unknown as GlobalScope;

const globalTimers: Timers = {
  setTimeout: (callback, ms) => scope.setTimeout(callback, ms),
  clearTimeout: (handle) => scope.clearTimeout(handle),
};

export class ReconnectingWebSocket {
  private readonly url: string | (() => string);
  private readonly protocols: string | string[] | undefined;
  private readonly Socket: WebSocketConstructor;
  private readonly binaryType: 'blob' | 'arraybuffer' | undefined;
  private readonly backoff: BackoffOptions;
  private readonly maxAttempts: number;
  private readonly connectTimeout: number;
  private readonly maxQueuedMessages: number;
  private readonly maxQueuedBytes: number;
  private readonly heartbeat: HeartbeatOptions | null;
  private readonly finalCloseCodes: readonly number[];
  private readonly timers: Timers;
  private readonly now: () => number;
  private readonly random: () => number;

  private stateValue: ReconnectState = 'connecting';
  private socket: WebSocketLike | null = null;
  /** Attempts made since the last successful open (or since `open()`): what `maxAttempts` limits. */
  private attempts = 0;
  /** Reconnects scheduled since then: what the back-off grows with. */
  private retries = 0;
  private openedBefore = false;
  private queue: QueuedMessage[] = [];
  private queuedBytes = 0;
  private retryTimer: unknown = null;
  private connectTimer: unknown = null;
  private heartbeatTimer: unknown = null;
  private lastHeard = 0;
  private probing = false;
  private heardSinceProbe = false;
  private readonly listeners: ListenerTable = {};

  /**
   * Starts connecting at once. Throws if no WebSocket class is available, or
   * if the WebSocket constructor refuses the URL or protocols (a
   * `SyntaxError` for a WHATWG one).
   */
  constructor(url: string | (() => string), options: ReconnectingWebSocketOptions = {}) {
    const Socket = options.WebSocket ?? scope.WebSocket;
    if (Socket === undefined) {
      throw new TypeError('no WebSocket class: this runtime has no global WebSocket, pass options.WebSocket');
    }
    const heartbeat = options.heartbeat ?? null;
    if (heartbeat !== null && !(heartbeat.timeout > 0 && (heartbeat.interval ?? 1) > 0)) {
      throw new RangeError('heartbeat timeout and interval must be positive numbers of milliseconds');
    }
    this.url = url;
    this.protocols = options.protocols;
    this.Socket = Socket;
    this.binaryType = options.binaryType;
    this.backoff = options.backoff ?? {};
    this.maxAttempts = options.maxAttempts ?? Infinity;
    this.connectTimeout = options.connectTimeout ?? 10_000;
    this.maxQueuedMessages = options.maxQueuedMessages ?? 100;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
    this.heartbeat = heartbeat;
    this.finalCloseCodes = options.finalCloseCodes ?? [1008];
    this.timers = options.timers ?? globalTimers;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const socket = this.createSocket();
    this.attach(socket);
  }

  get state(): ReconnectState {
    return this.stateValue;
  }

  /** The subprotocol of the current connection ('' when none or not connected). */
  get protocol(): string {
    return this.stateValue === 'open' ? (this.socket?.protocol ?? '') : '';
  }

  get extensions(): string {
    return this.stateValue === 'open' ? (this.socket?.extensions ?? '') : '';
  }

  /** The current socket's bufferedAmount (0 without one). */
  get bufferedAmount(): number {
    return this.socket?.bufferedAmount ?? 0;
  }

  /** Messages waiting for a connection. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  /**
   * Send now when connected; otherwise keep the message to send, in order,
   * once connected again. Returns false, and reports the message through a
   * `dropped` event, when it will not be sent: the queue is full or the
   * client is closing or closed. A message handed to a socket that then
   * drops may be lost with it: delivery is at most once.
   */
  send(data: OutgoingData): boolean {
    const state = this.stateValue;
    if (state === 'closing' || state === 'closed') {
      this.emit('dropped', { data, reason: 'closed' });
      return false;
    }
    const socket = this.socket;
    if (state === 'open' && socket !== null && socket.readyState === OPEN) {
      socket.send(data);
      return true;
    }
    const size = sizeOf(data);
    if (this.queue.length >= this.maxQueuedMessages || this.queuedBytes + size > this.maxQueuedBytes) {
      this.emit('dropped', { data, reason: 'overflow' });
      return false;
    }
    this.queue.push({ data, size });
    this.queuedBytes += size;
    return true;
  }

  /**
   * Close for good: no reconnect follows. The socket, if one is open or
   * opening, is closed with `code` and `reason` (a WHATWG WebSocket throws
   * for a code other than 1000 or 3000-4999, or a reason over 123 bytes,
   * and nothing changes then); messages still queued are reported as
   * `dropped`.
   */
  close(code = 1000, reason = ''): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    this.clearTimers();
    const socket = this.socket;
    if (socket !== null) {
      socket.close(code, reason);
      this.setState('closing');
    } else {
      this.setState('closed');
    }
    this.dropQueue();
  }

  /** Start again after the client closed (deliberately, or by giving up): attempts count from zero. */
  open(): void {
    if (this.stateValue !== 'closed') return;
    this.attempts = 0;
    this.retries = 0;
    this.openedBefore = false;
    this.setState('connecting');
    this.connect();
  }

  /** Listen to an event; returns a function that stops listening. */
  on<K extends keyof ReconnectingWebSocketEventMap>(type: K, listener: Listener<K>): () => void {
    const list = (this.listeners[type] ??= []) as Array<Listener<K>>;
    list.push(listener);
    return () => this.off(type, listener);
  }

  off<K extends keyof ReconnectingWebSocketEventMap>(type: K, listener: Listener<K>): void {
    const list = this.listeners[type] as Array<Listener<K>> | undefined;
    if (list === undefined) return;
    const index = list.indexOf(listener);
    if (index >= 0) list.splice(index, 1);
  }

  // ---- connecting --------------------------------------------------------

  private createSocket(): WebSocketLike {
    const url = typeof this.url === 'function' ? this.url() : this.url;
    const socket = this.protocols === undefined ? new this.Socket(url) : new this.Socket(url, this.protocols);
    if (this.binaryType !== undefined) socket.binaryType = this.binaryType;
    return socket;
  }

  /** Make an attempt; a URL or protocols the constructor refuses end the client (retrying cannot help). */
  private connect(): void {
    let socket: WebSocketLike;
    try {
      socket = this.createSocket();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.emit('error', { error: new ReconnectingWebSocketError('WS_ERR_INVALID_URL', `cannot connect: ${message}`, { cause: error }) });
      this.setState('closed');
      this.dropQueue();
      return;
    }
    this.attach(socket);
  }

  private attach(socket: WebSocketLike): void {
    this.socket = socket;
    this.attempts++;
    // Events of a socket this client has let go of (heartbeat, timeout) are ignored.
    socket.addEventListener('open', () => {
      if (this.socket === socket) this.onOpen(socket);
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket) this.onMessage(event.data as MessageData);
    });
    socket.addEventListener('error', () => {
      if (this.socket === socket) this.onSocketError();
    });
    socket.addEventListener('close', (event) => {
      if (this.socket === socket) {
        this.socketEnded(event.code ?? 1005, event.reason ?? '', event.wasClean ?? false);
      }
    });
    if (this.connectTimeout > 0) {
      this.connectTimer = this.timers.setTimeout(() => {
        this.connectTimer = null;
        this.abandon('WS_ERR_CONNECT_TIMEOUT', `not connected within ${this.connectTimeout} ms`);
      }, this.connectTimeout);
    }
  }

  private onOpen(socket: WebSocketLike): void {
    this.cancel('connectTimer');
    this.attempts = 0;
    this.retries = 0;
    const reconnected = this.openedBefore;
    this.openedBefore = true;
    this.setState('open');
    this.startHeartbeat();
    // Listeners go first: what they send (a login, subscriptions) leaves before the queue.
    this.emit('open', { reconnected, protocol: socket.protocol, extensions: socket.extensions });
    this.flushQueue();
  }

  private flushQueue(): void {
    const socket = this.socket;
    while (this.queue.length > 0 && this.stateValue === 'open' && socket !== null && this.socket === socket && socket.readyState === OPEN) {
      const next = this.queue.shift()!;
      this.queuedBytes -= next.size;
      socket.send(next.data);
    }
  }

  private onMessage(data: MessageData): void {
    if (this.heartbeat !== null) {
      this.lastHeard = this.now();
      this.heardSinceProbe = true;
      if (isReply(this.heartbeat.reply, data)) return;
    }
    this.emit('message', { data });
  }

  private onSocketError(): void {
    // Closing a socket that is still connecting makes it report an error: not news after close().
    if (this.stateValue === 'closing') return;
    const message = this.stateValue === 'open' ? 'the connection failed' : 'the connection could not be established';
    this.emit('error', { error: new ReconnectingWebSocketError('WS_ERR_SOCKET', message) });
  }

  /** Let go of the current socket without waiting for its close event, and carry on as if it had closed. */
  private abandon(code: ReconnectingErrorCode, message: string): void {
    const socket = this.socket;
    if (socket === null) return;
    this.socket = null;
    try {
      socket.close(1000, message);
    } catch {
      // Already closing or closed: nothing to undo.
    }
    this.emit('error', { error: new ReconnectingWebSocketError(code, message) });
    this.socketEnded(1006, message, false);
  }

  /** A socket is gone: close for good, or schedule the next attempt. */
  private socketEnded(code: number, reason: string, wasClean: boolean): void {
    this.socket = null;
    this.clearTimers();
    if (this.stateValue === 'closing' || this.stateValue === 'closed') {
      this.setState('closed');
      this.emit('close', { code, reason, wasClean, willReconnect: false, delay: null });
      return;
    }
    if (this.finalCloseCodes.includes(code)) {
      this.setState('closed');
      this.emit('close', { code, reason, wasClean, willReconnect: false, delay: null });
      this.dropQueue();
      return;
    }
    if (this.attempts >= this.maxAttempts) {
      this.emit('error', {
        error: new ReconnectingWebSocketError('WS_ERR_GAVE_UP', `gave up after ${this.attempts} failed attempts in a row`),
      });
      this.setState('closed');
      this.emit('close', { code, reason, wasClean, willReconnect: false, delay: null });
      this.dropQueue();
      return;
    }
    this.retries++;
    const delay = backoffDelay(this.retries, this.backoff, this.random);
    this.setState('reconnecting');
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
    this.emit('close', { code, reason, wasClean, willReconnect: true, delay });
  }

  // ---- heartbeat ---------------------------------------------------------------

  private startHeartbeat(): void {
    const heartbeat = this.heartbeat;
    if (heartbeat === null) return;
    this.lastHeard = this.now();
    this.probing = false;
    this.armHeartbeat(heartbeat.message === undefined ? heartbeat.timeout : (heartbeat.interval ?? 30_000));
  }

  private armHeartbeat(delay: number): void {
    this.heartbeatTimer = this.timers.setTimeout(
      () => {
        this.heartbeatTimer = null;
        this.heartbeatTick();
      },
      Math.max(delay, 0),
    );
  }

  /**
   * The heartbeat timer only runs at deadlines; messages just note the time
   * they arrived, so a busy connection costs one clock read per message.
   */
  private heartbeatTick(): void {
    const heartbeat = this.heartbeat;
    const socket = this.socket;
    if (heartbeat === null || socket === null || this.stateValue !== 'open') return;
    const interval = heartbeat.interval ?? 30_000;
    const now = this.now();
    if (this.probing) {
      this.probing = false;
      if (this.heardSinceProbe) this.armHeartbeat(this.lastHeard + interval - now);
      else this.abandon('WS_ERR_HEARTBEAT_TIMEOUT', `no answer to the heartbeat within ${heartbeat.timeout} ms`);
      return;
    }
    const silence = now - this.lastHeard;
    if (heartbeat.message === undefined) {
      if (silence < heartbeat.timeout) this.armHeartbeat(heartbeat.timeout - silence);
      else this.abandon('WS_ERR_HEARTBEAT_TIMEOUT', `nothing received for ${silence} ms`);
      return;
    }
    if (silence < interval) {
      this.armHeartbeat(interval - silence);
      return;
    }
    this.probing = true;
    this.heardSinceProbe = false;
    socket.send(heartbeat.message);
    this.armHeartbeat(heartbeat.timeout);
  }

  // ---- bookkeeping -------------------------------------------------------------

  private clearTimers(): void {
    this.cancel('retryTimer');
    this.cancel('connectTimer');
    this.cancel('heartbeatTimer');
  }

  private cancel(name: 'retryTimer' | 'connectTimer' | 'heartbeatTimer'): void {
    const handle = this[name];
    if (handle === null) return;
    this[name] = null;
    this.timers.clearTimeout(handle);
  }

  private dropQueue(): void {
    const queue = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const message of queue) this.emit('dropped', { data: message.data, reason: 'closed' });
  }

  private setState(state: ReconnectState): void {
    const previous = this.stateValue;
    if (previous === state) return;
    this.stateValue = state;
    this.emit('statechange', { state, previous });
  }

  /**
   * Call the listeners of `type`. One that throws does not stop the others
   * or this client: its exception is rethrown from a fresh task, where the
   * runtime reports it as it would from an EventTarget listener.
   */
  private emit<K extends keyof ReconnectingWebSocketEventMap>(type: K, event: ReconnectingWebSocketEventMap[K]): void {
    const list = this.listeners[type] as Array<Listener<K>> | undefined;
    if (list === undefined || list.length === 0) return;
    for (const listener of list.slice()) {
      try {
        listener(event);
      } catch (error) {
        this.timers.setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
}

function isReply(reply: HeartbeatOptions['reply'], data: MessageData): boolean {
  if (reply === undefined) return false;
  return typeof reply === 'string' ? data === reply : reply(data);
}

/** Bytes a message occupies: UTF-8 length for text, counted without an encoder (any runtime has one, but not ES2022's types). */
function sizeOf(data: OutgoingData): number {
  if (typeof data === 'string') {
    let bytes = 0;
    for (let i = 0; i < data.length; i++) {
      const unit = data.charCodeAt(i);
      if (unit < 0x80) bytes += 1;
      else if (unit < 0x800) bytes += 2;
      else if (isHighSurrogate(unit) && isLowSurrogate(data.charCodeAt(i + 1))) {
        // A surrogate pair is one code point: 4 bytes. A lone surrogate is sent as U+FFFD: 3.
        bytes += 4;
        i++;
      } else bytes += 3;
    }
    return bytes;
  }
  if ('byteLength' in data) return data.byteLength;
  return data.size;
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
