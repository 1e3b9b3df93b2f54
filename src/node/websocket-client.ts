import { EventEmitter } from 'node:events';
import { CloseCode } from '../protocol/close-code.js';
import { ProtocolError, UsageError } from '../protocol/errors.js';
import type { Opcode } from '../protocol/opcode.js';
import { connect, type ConnectOptions } from './client.js';
import type { CloseInfo, Connection, FrameInfo, SendData, SendOptions, SendStatus } from './connection.js';
import { ConnectionError, HandshakeError } from './errors.js';
import type { ReceivedMessage, MessageIteratorOptions } from './message-iterator.js';

/**
 * A client with the richer vocabulary of Qt's QWebSocket: state changes,
 * text and binary messages told apart, each frame as it arrives, pong
 * round-trip times, bytes written, readable errors; plus async iteration
 * over messages with backpressure. It wraps `connect()` and a `Connection`;
 * one client object can be opened again after it closed.
 */

export enum ClientState {
  Connecting = 'connecting',
  Open = 'open',
  Closing = 'closing',
  Closed = 'closed',
}

/** What can go wrong: the handshake, the transport, or the peer breaking the protocol. */
export type ClientError = HandshakeError | ConnectionError | ProtocolError;

export interface WebSocketClientEvents {
  stateChanged: [state: ClientState, previous: ClientState];
  connected: [];
  /**
   * Once per `open()`, whatever happened: after a close, a failure, an abort,
   * and also when the connection never opened (code 1006, `error` set).
   */
  disconnected: [info: CloseInfo];
  textMessage: [message: string];
  binaryMessage: [message: Buffer];
  /**
   * Every received data frame. `opcode` is as on the wire: Text or Binary for
   * a message's first frame, Continuation for the ones after it. The payload
   * is as received: a text frame may end inside a UTF-8 sequence, and a
   * compressed message's frames are still compressed.
   */
  frame: [payload: Buffer, isLastFrame: boolean, opcode: Opcode];
  /** `rtt` in milliseconds when the pong answers one of our pings; undefined for an unsolicited pong. */
  pong: [rtt: number | undefined, payload: Buffer];
  /** Bytes (frame headers included) handed to the operating system, per batched write. */
  bytesWritten: [count: number];
  /** Only emitted when someone listens; the same error is in `lastError` and in `disconnected`'s info. */
  error: [error: ClientError];
}

export type WebSocketClientOptions = ConnectOptions;

export class WebSocketClient extends EventEmitter<WebSocketClientEvents> {
  private currentState = ClientState.Closed;
  private connection: Connection<undefined> | null = null;
  /** Bumped by every `open()` and by aborting a pending one: a late handshake result of an old attempt is discarded. */
  private attempt = 0;
  private pendingOpen: { reject: (error: ClientError) => void } | null = null;
  /** Iterators asked for while connecting: they start, with no gap, when the connection opens. */
  private awaitingConnection: Array<(connection: Connection<undefined> | null) => void> = [];
  private urlValue = '';
  private closeInfo: CloseInfo | null = null;
  private lastErrorValue: ClientError | null = null;
  /** `abort()` was called: the termination it causes is not an error to report. */
  private aborting = false;
  /** The connections whose frames / writes are already forwarded (each is forwarded once). */
  private framesFrom: Connection<undefined> | null = null;
  private writesFrom: Connection<undefined> | null = null;

  constructor() {
    super();
    // Frame and bytes-written reporting cost something per frame or write: only
    // ask the connection for them once someone listens.
    (this as EventEmitter).on('newListener', (name: string) => {
      if (this.connection === null) return;
      if (name === 'frame') this.forwardFrames(this.connection);
      if (name === 'bytesWritten') this.forwardWrites(this.connection);
    });
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** The URL of the latest `open()`. */
  get url(): string {
    return this.urlValue;
  }

  /** The subprotocol the server selected, '' if none (or not connected). */
  get protocol(): string {
    return this.connection?.protocol ?? '';
  }

  /** The negotiated `Sec-WebSocket-Extensions`, '' if none. */
  get extensions(): string {
    return this.connection?.extensions ?? '';
  }

  /** Whether permessage-deflate (RFC 7692) was agreed for this connection. */
  get perMessageDeflate(): boolean {
    return /(^|,)\s*permessage-deflate\b/.test(this.extensions);
  }

  /** Framed bytes accepted by `send()` and not yet handed to the operating system. */
  get bufferedAmount(): number {
    return this.connection?.bufferedAmount ?? 0;
  }

  /** How the last connection ended (null before the first one ended). */
  get closeCode(): number | null {
    return this.closeInfo?.code ?? null;
  }

  get closeReason(): string {
    return this.closeInfo?.reason ?? '';
  }

  /** The most recent error, with a message fit to show a person. */
  get lastError(): ClientError | null {
    return this.lastErrorValue;
  }

  /**
   * Connect. Resolves once the server accepted the upgrade; rejects with the
   * error that prevented it. The outcome is also reported through events
   * (`connected`, or `error` then `disconnected`), so the promise may be
   * ignored: a rejection nobody awaits is not reported as unhandled.
   * Throws a `UsageError` at once unless the client is closed.
   */
  open(url: string | URL, options: WebSocketClientOptions = {}): Promise<void> {
    if (this.currentState !== ClientState.Closed) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', `open() needs a closed client; this one is ${this.currentState}`);
    }
    const attempt = ++this.attempt;
    this.urlValue = String(url);
    this.closeInfo = null;
    this.aborting = false;
    this.setState(ClientState.Connecting);
    const opened = new Promise<void>((resolve, reject) => {
      this.pendingOpen = { reject };
      connect(url, options).then(
        (connection) => {
          if (attempt !== this.attempt) {
            // Aborted while the handshake was under way.
            connection.terminate('aborted before the connection opened');
            return;
          }
          this.pendingOpen = null;
          this.adopt(connection);
          resolve();
        },
        (error: unknown) => {
          if (attempt !== this.attempt) return;
          this.pendingOpen = null;
          const failure = asClientError(error);
          reject(failure);
          this.ended({ code: CloseCode.Abnormal, reason: failure.message, wasClean: false, initiator: 'transport', error: failure });
        },
      );
    });
    opened.catch(noop);
    return opened;
  }

  /**
   * Send one message: a string as text, bytes as binary (override with
   * `binary`); `compress: false` skips permessage-deflate for this message.
   * Answers `closed` when not open (see `SendStatus`).
   */
  send(data: SendData, options?: SendOptions): SendStatus {
    if (this.currentState !== ClientState.Open || this.connection === null) return 'closed';
    return this.connection.send(data, options);
  }

  /** Ping the server; resolves with the round-trip time in milliseconds (the `pong` event reports it too). */
  ping(payload?: SendData): Promise<number> {
    if (this.currentState !== ClientState.Open || this.connection === null) {
      return Promise.reject(new UsageError('WS_ERR_NOT_OPEN', 'ping() needs an open connection'));
    }
    return this.connection.ping(payload);
  }

  /**
   * Start the closing handshake (RFC 6455 §7.1.2); `disconnected` follows
   * when the server answered and closed TCP. While connecting there is no
   * handshake to run: the attempt is abandoned, as `abort()` does. Throws a
   * `UsageError` for a code that may not be sent or a reason over 123 bytes.
   */
  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.currentState === ClientState.Connecting) {
      this.abandon(`closed (${code}) before the connection opened`);
      return;
    }
    if (this.currentState !== ClientState.Open || this.connection === null) return;
    this.connection.close(code, reason);
    this.setState(ClientState.Closing);
  }

  /** Drop the connection at once, without a closing handshake (`disconnected` reports 1006). */
  abort(): void {
    if (this.currentState === ClientState.Connecting) {
      this.abandon('aborted before the connection opened');
      return;
    }
    if (this.connection === null) return;
    this.aborting = true;
    this.connection.terminate('aborted');
  }

  /**
   * Incoming messages (text as strings, binary as Buffers) as an async
   * iterator that ends when the connection closes. Reading pauses while
   * `highWaterMark` messages wait for the consumer. Asked for while
   * connecting, it starts when the connection opens (and ends at once if it
   * does not); asked for while closed, it is empty.
   */
  messages(options?: MessageIteratorOptions): AsyncIterableIterator<ReceivedMessage> {
    if (this.currentState === ClientState.Connecting) {
      return this.afterOpen(options);
    }
    if (this.connection !== null) return this.connection.messages(options);
    return (async function* empty() {})();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedMessage> {
    return this.messages();
  }

  // ---- internals ---------------------------------------------------------

  private adopt(connection: Connection<undefined>): void {
    this.connection = connection;
    connection.on('message', (data, isBinary) => {
      if (isBinary) this.emit('binaryMessage', data as Buffer);
      else this.emit('textMessage', data as string);
    });
    connection.on('pong', (payload, rtt) => this.emit('pong', rtt, payload));
    connection.on('error', (error) => this.reportError(asClientError(error)));
    connection.once('close', (info) => {
      if (this.connection === connection) this.connection = null;
      this.ended(info);
    });
    if (this.listenerCount('frame') > 0) this.forwardFrames(connection);
    if (this.listenerCount('bytesWritten') > 0) this.forwardWrites(connection);
    const waiting = this.awaitingConnection;
    this.awaitingConnection = [];
    for (const start of waiting) start(connection);
    this.setState(ClientState.Open);
    this.emit('connected');
  }

  /** Give up a pending handshake: its result, whenever it comes, is thrown away. */
  private abandon(reason: string): void {
    this.attempt++;
    this.aborting = true;
    const error = new ConnectionError('WS_ERR_TERMINATED', reason);
    const pending = this.pendingOpen;
    this.pendingOpen = null;
    pending?.reject(error);
    this.ended({ code: CloseCode.Abnormal, reason, wasClean: false, initiator: 'local', error });
  }

  private ended(info: CloseInfo): void {
    this.closeInfo = info;
    const waiting = this.awaitingConnection;
    this.awaitingConnection = [];
    for (const start of waiting) start(null);
    // Failures the connection's error event did not carry: the handshake's,
    // and a connection lost without a close frame. Giving up a handshake
    // ourselves is not one (see `reportError`).
    if (info.error !== undefined && info.error !== this.lastErrorValue) {
      this.reportError(asClientError(info.error));
    }
    this.setState(ClientState.Closed);
    this.emit('disconnected', info);
  }

  private reportError(error: ClientError): void {
    if (this.aborting && error instanceof ConnectionError && error.code === 'WS_ERR_TERMINATED') return;
    this.lastErrorValue = error;
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  private setState(state: ClientState): void {
    const previous = this.currentState;
    if (previous === state) return;
    this.currentState = state;
    this.emit('stateChanged', state, previous);
  }

  private forwardFrames(connection: Connection<undefined>): void {
    if (this.framesFrom === connection) return;
    this.framesFrom = connection;
    connection.on('frame', (frame: FrameInfo) => this.emit('frame', frame.payload, frame.fin, frame.opcode));
  }

  private forwardWrites(connection: Connection<undefined>): void {
    if (this.writesFrom === connection) return;
    this.writesFrom = connection;
    connection.on('written', (bytes) => this.emit('bytesWritten', bytes));
  }

  /**
   * An iterator that attaches to the connection in the same turn it opens,
   * so no message slips past; stopped before that, it never attaches.
   */
  private afterOpen(options: MessageIteratorOptions | undefined): AsyncIterableIterator<ReceivedMessage> {
    if (this.awaitingConnection.length > 0) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'this client already has an active message iterator');
    }
    let inner: AsyncIterableIterator<ReceivedMessage> | null = null;
    let settle: () => void = noop;
    const ready = new Promise<void>((resolve) => (settle = resolve));
    const start = (connection: Connection<undefined> | null): void => {
      if (connection !== null) inner = connection.messages(options);
      settle();
    };
    this.awaitingConnection.push(start);
    const iterator: AsyncIterableIterator<ReceivedMessage> = {
      next: async () => {
        await ready;
        return inner === null ? DONE : inner.next();
      },
      return: async () => {
        const index = this.awaitingConnection.indexOf(start);
        if (index >= 0) {
          this.awaitingConnection.splice(index, 1);
          start(null);
        }
        return inner === null ? DONE : inner.return!();
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

function asClientError(error: unknown): ClientError {
  if (error instanceof HandshakeError || error instanceof ConnectionError || error instanceof ProtocolError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ConnectionError('WS_ERR_SOCKET', message, error instanceof Error ? error : undefined);
}

function noop(): void {}

const DONE: IteratorResult<ReceivedMessage> = { done: true, value: undefined };
