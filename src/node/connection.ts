import { isUtf8 } from 'node:buffer';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { CloseCode } from '../protocol/close-code.js';
import type { CompressionCodec } from '../protocol/codec.js';
import { ProtocolError, UsageError } from '../protocol/errors.js';
import { Protocol, ProtocolState, type PreparedFrame, type ProtocolEvent } from '../protocol/protocol.js';
import { Role } from '../protocol/role.js';
import { ConnectionError, type ConnectionErrorCode } from './errors.js';
import { iterateMessages, type ReceivedMessage, type MessageIteratorOptions } from './message-iterator.js';
import { PingTracker } from './ping-tracker.js';
import { toBytes, type SendData } from './send-data.js';
import { describeReceivedHeader, describeSentHeader, type FrameInfo, type WireFrame } from './wire-trace.js';
import { WriteBatch } from './write-batch.js';

/**
 * One WebSocket connection over a TCP (or TLS) socket, for both roles. It
 * binds the sans-I/O `Protocol` to the socket: bytes read go to the core,
 * frames the core produces go out through the write batch (once per
 * event-loop turn), and it keeps the connection's state, backpressure,
 * closing handshake and close timer. Pings are tracked in `PingTracker`,
 * trace records built in `wire-trace`.
 */

export enum ConnectionState {
  Open = 'open',
  Closing = 'closing',
  Closed = 'closed',
}

/** Why and how a connection ended. */
export interface CloseInfo {
  /**
   * The status code of the peer's close frame; 1005 if it had none; 1006 if
   * no close frame arrived (RFC 6455 §7.1.5), whatever the reason.
   */
  code: number;
  reason: string;
  /** Both close frames were exchanged before the TCP connection ended (§7.1.4). */
  wasClean: boolean;
  /** Who sent the first close frame, or `transport` if the connection ended without one. */
  initiator: 'local' | 'remote' | 'transport';
  /** What made the connection fail, if anything did. */
  error?: Error;
}

export type { FrameInfo, WireFrame };

export interface ConnectionEvents {
  /** A whole message: text arrives as a string, binary as a Buffer. */
  message: [data: string | Buffer, isBinary: boolean];
  /** Every received data frame, with `fin` marking the last frame of its message. */
  frame: [frame: FrameInfo];
  /**
   * Every frame header in both directions, control frames included: received
   * ones as parsed (before their payload), sent ones as the core produces them.
   */
  wire: [frame: WireFrame];
  ping: [payload: Buffer];
  /** `rtt` is the round trip in milliseconds when the pong answers one of our pings. */
  pong: [payload: Buffer, rtt: number | undefined];
  /** Buffered outgoing data fell back under the high-water mark. */
  drain: [];
  /**
   * Bytes (frame headers included) the operating system accepted, once per
   * batched write. Only measured while someone listens.
   */
  written: [bytes: number];
  /** Only emitted when someone listens; the same error is also in the close event's `error`. */
  error: [error: Error];
  /**
   * The peer's close frame arrived (after every message before it): the
   * closing handshake is under way or, if we started it, complete. `close`
   * follows once the TCP connection is gone.
   */
  closing: [code: number, reason: string];
  /**
   * `state` moved on: Open to Closing when either side's close frame is sent
   * or received (or the connection fails), Closing or Open to Closed when the
   * TCP connection is gone, just before `close`. Emitted on transitions only.
   */
  stateChanged: [state: ConnectionState, previous: ConnectionState];
  close: [info: CloseInfo];
}

/**
 * What `send()` did with the message:
 * - `written`: handed on; buffered data stays under the high-water mark.
 * - `queued`: accepted, but buffered data is now over the high-water mark;
 *   wait for `drain` (or `await conn.drained()`) before sending more.
 * - `dropped`: refused because the buffer limit would be exceeded and the
 *   policy is `drop`; counted in `droppedMessages`.
 * - `closed`: nothing sent, the connection is closing or closed (or was just
 *   closed under the `close` policy).
 */
export type SendStatus = 'written' | 'queued' | 'dropped' | 'closed';

export type { SendData };

export interface SendOptions {
  /** Send as binary. Default: true for bytes, false for strings. */
  binary?: boolean;
  /** Compress with permessage-deflate when negotiated (and over the threshold). Default true. */
  compress?: boolean;
  /** Split the message into fragments of at most this many bytes. */
  fragmentSize?: number;
}

export interface ConnectionOptions {
  role: Role;
  maxMessageSize?: number;
  deflate?: { codec: CompressionCodec; threshold: number } | null;
  /**
   * Bytes of buffered outgoing data above which `send()` answers `queued`.
   * Also the point where reading from the peer stops when what it sent made
   * us write more (see `bufferedAmount`). Default 64 KiB.
   */
  highWaterMark?: number;
  /**
   * Most bytes that may wait to be sent before the backpressure policy
   * applies. Frames the connection writes on its own (pongs) count too: a
   * ping answered while more than this waits fails the connection whatever
   * the policy. Default 64 MiB.
   */
  maxBufferedAmount?: number;
  /** `close`: drop a peer that reads too slowly; `drop`: refuse the message and count it. Default `close`. */
  backpressurePolicy?: 'close' | 'drop';
  /** Milliseconds to wait for the closing handshake and the TCP close before destroying the socket. Default 5000. */
  closeTimeout?: number;
  /** Negotiated subprotocol and extensions, for information. */
  protocol?: string;
  extensions?: string;
  /**
   * Emit text messages as strings (the default) or, with `false`, as Buffers
   * holding their UTF-8 bytes, already validated (RFC 6455 §8.1), with
   * `isBinary` false. For code that only passes text on (echo, relays,
   * pub/sub), this saves decoding it and encoding it again to send.
   */
  decodeText?: boolean;
}

/** Stop reading from the socket while this much input waits for decompression. */
const INPUT_BACKLOG_LIMIT = 1024 * 1024;

// No `implements ProtocolHost, WriteBatchOwner` here: the host and owner
// methods are marked internal and left out of the published types, where the
// clause would then not hold. `new Protocol(this, ...)` and
// `new WriteBatch(..., this)` in the constructor still check the class is both.
export class Connection<Context = unknown> extends EventEmitter<ConnectionEvents> {
  /** Whatever the route's authentication returned (server side). */
  context: Context;
  /** @internal Whatever the server that adopted this connection keeps for it. */
  serverData: unknown = undefined;
  readonly protocol: string;
  readonly extensions: string;
  /**
   * Traffic counters for metrics, read through the getters below: data
   * messages and their payload bytes (received: after decompression; sent:
   * before compression; frame headers and control frames not counted). Sent
   * counts what `send()` and friends accepted. Plain increments, nothing
   * else, on the hot path.
   */
  private dropped = 0;
  private receivedMessages = 0;
  private receivedBytes = 0;
  private sentMessages = 0;
  private sentBytes = 0;

  private readonly core: Protocol;
  private readonly batch: WriteBatch;
  private readonly pings: PingTracker;
  private readonly codec: CompressionCodec | null;
  private readonly socket: Socket;
  private readonly role: Role;
  private readonly highWaterMark: number;
  private readonly maxBufferedAmount: number;
  private readonly dropSlow: boolean;
  private readonly closeTimeout: number;
  private readonly decodeText: boolean;

  /** Someone waits for `drain`: buffered data went over the high-water mark since it last fell under. */
  private needDrain = false;
  private closeTimer: NodeJS.Timeout | null = null;
  /**
   * Three independent reasons to stop reading from the socket; it reads
   * again only when none holds. The application's `pause()` (or a message
   * iterator that fell behind), input piling up behind a decompression, and
   * output over the high-water mark that the peer's own input produced.
   */
  private pausedByApp = false;
  private pausedForBacklog = false;
  private pausedForOutput = false;
  /** Someone listens to `wire`: report frames written. */
  private wireEvents = false;
  /** Someone listens to `written`: have the socket report when each write left. */
  private writtenEvents = false;

  private peerClose: { code: number; reason: string; initiator: 'local' | 'remote' } | null = null;
  private failure: Error | null = null;
  private closed = false;
  /** The state the last `stateChanged` reported (Open before any). */
  private reportedState = ConnectionState.Open;
  /** How the connection ended, once it has (see `closeInfo`). */
  private ending: CloseInfo | null = null;
  /** The peer sent its TCP FIN while input was still being decompressed: end our side once it is read. */
  private endWhenRead = false;

  /** @internal Sockets are adopted by the server and by `connect()`; applications do not construct connections. */
  static adopt<Context>(socket: Socket, options: ConnectionOptions, context: Context): Connection<Context> {
    return new Connection(socket, options, context);
  }

  private constructor(socket: Socket, options: ConnectionOptions, context: Context) {
    super();
    this.socket = socket;
    this.role = options.role;
    this.context = context;
    this.protocol = options.protocol ?? '';
    this.extensions = options.extensions ?? '';
    this.highWaterMark = options.highWaterMark ?? 64 * 1024;
    this.maxBufferedAmount = options.maxBufferedAmount ?? 64 * 1024 * 1024;
    this.dropSlow = options.backpressurePolicy === 'drop';
    this.closeTimeout = options.closeTimeout ?? 5000;
    this.decodeText = options.decodeText ?? true;
    this.codec = options.deflate?.codec ?? null;
    this.core = new Protocol(this, {
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      deflate: options.deflate ?? null,
      // Gathered payloads are overwritten whole: no need to zero them first.
      allocate: Buffer.allocUnsafe,
      isValidUtf8: isUtf8,
    });
    this.batch = new WriteBatch(socket, this.core, this);
    this.pings = new PingTracker(this.core);
    // Frame events cost an object per frame: only produce them once someone listens.
    (this as EventEmitter).on('newListener', Connection.onNewListener);

    // Listeners shared by every connection, finding theirs through the
    // socket: five closures per connection would weigh more than the rest
    // of its state (idle connections are counted in the ten thousands).
    (socket as OwnedSocket)[kConnection] = this as Connection<unknown>;
    // An HTTP/2 stream (RFC 8441) stands in for the socket and has no
    // setNoDelay: Nagle is its session's socket's business.
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    socket.on('data', Connection.onSocketData);
    socket.on('error', Connection.onSocketError);
    socket.on('end', Connection.onSocketEnd);
    socket.on('close', Connection.onSocketClose);
    socket.on('drain', Connection.onSocketDrain);
  }

  private static onNewListener(this: Connection<unknown>, name: string): void {
    if (name === 'frame') this.core.frameEvents = true;
    if (name === 'wire') this.core.headerEvents = this.wireEvents = true;
    if (name === 'written') this.writtenEvents = true;
  }

  private static onSocketData(this: Socket, chunk: Buffer): void {
    (this as OwnedSocket)[kConnection]!.onData(chunk);
  }

  private static onSocketError(this: Socket, error: Error): void {
    (this as OwnedSocket)[kConnection]!.recordFailure(new ConnectionError('WS_ERR_SOCKET', error.message, error));
  }

  private static onSocketEnd(this: Socket): void {
    (this as OwnedSocket)[kConnection]!.onPeerEnd();
  }

  private static onSocketClose(this: Socket): void {
    (this as OwnedSocket)[kConnection]!.finish();
  }

  private static onSocketDrain(this: Socket): void {
    (this as OwnedSocket)[kConnection]!.onSocketDrain();
  }

  /**
   * @internal Frames that arrived in the same packet as the handshake. If
   * the open hook paused the connection they go back to the socket, read
   * with the rest on `resume()` (unless the peer's FIN was already seen:
   * a stream takes nothing back after its end).
   */
  receiveInitial(bytes: Uint8Array): void {
    if (this.pausedByApp && !this.socket.readableEnded) this.socket.unshift(asBuffer(bytes));
    else this.onData(bytes);
  }

  get state(): ConnectionState {
    if (this.closed) return ConnectionState.Closed;
    return this.core.state === ProtocolState.Open ? ConnectionState.Open : ConnectionState.Closing;
  }

  /**
   * How the connection ended, as the `close` event reported it; null while
   * it is open or closing. For code that learns of the end late, such as a
   * message loop that simply ran out.
   */
  get closeInfo(): CloseInfo | null {
    return this.ending;
  }

  /**
   * Bytes accepted by `send()` and friends (and frames the connection writes
   * on its own, such as pongs) but not yet handed to the operating system:
   * this connection's batch and what the socket still holds, framed, plus
   * messages waiting for the permessage-deflate compressor, counted before
   * compression. Statuses of `send()`, the buffer limit and `drain` all go
   * by this figure.
   */
  get bufferedAmount(): number {
    return this.batch.bytes + this.socket.writableLength + this.core.pendingSendBytes;
  }

  /** Messages refused under the `drop` backpressure policy. */
  get droppedMessages(): number {
    return this.dropped;
  }

  /** Data messages received, counted once whole (after decompression). */
  get messagesReceived(): number {
    return this.receivedMessages;
  }

  /** Payload bytes of the data messages received (after decompression). */
  get bytesReceived(): number {
    return this.receivedBytes;
  }

  /** Data messages `send()` and friends accepted. */
  get messagesSent(): number {
    return this.sentMessages;
  }

  /** Payload bytes of the data messages accepted (before compression). */
  get bytesSent(): number {
    return this.sentBytes;
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  /** Send one message. See `SendStatus` for what the answer means; it never throws for a closed connection. */
  send(data: SendData, options?: SendOptions): SendStatus {
    if (!this.sendable) return 'closed';
    const isString = typeof data === 'string';
    const bytes = isString ? Buffer.from(data, 'utf8') : toBytes(data);
    const binary = options?.binary ?? !isString;
    const compress = options?.compress ?? true;
    const refused = this.admit(bytes.length);
    if (refused !== null) return refused;
    const fragmentSize = options?.fragmentSize;
    if (fragmentSize !== undefined && fragmentSize > 0 && bytes.length > fragmentSize) {
      for (let offset = 0; offset < bytes.length; offset += fragmentSize) {
        const end = Math.min(offset + fragmentSize, bytes.length);
        this.core.sendFragment(bytes.subarray(offset, end), binary, end === bytes.length, compress);
      }
    } else {
      this.core.send(bytes, binary, compress);
    }
    this.sentMessages++;
    this.sentBytes += bytes.length;
    return this.afterSend();
  }

  /**
   * Send a message framed once for many connections (`prepareFrame`, used by
   * publish/subscribe): the same header and payload bytes go to every peer.
   */
  sendPrepared(frame: PreparedFrame): SendStatus {
    if (!this.sendable) return 'closed';
    const refused = this.admit(frame.size);
    if (refused !== null) return refused;
    this.core.sendPrepared(frame);
    this.sentMessages++;
    this.sentBytes += frame.payload.length;
    return this.afterSend();
  }

  /**
   * Send one fragment of a message (RFC 6455 §5.4); `fin` ends it. The first
   * fragment decides text or binary.
   */
  sendFragment(data: SendData, fin: boolean, options?: Omit<SendOptions, 'fragmentSize'>): SendStatus {
    if (!this.sendable) return 'closed';
    const isString = typeof data === 'string';
    const bytes = isString ? Buffer.from(data, 'utf8') : toBytes(data);
    const refused = this.admit(bytes.length);
    if (refused !== null) return refused;
    this.core.sendFragment(bytes, options?.binary ?? !isString, fin, options?.compress ?? true);
    if (fin) this.sentMessages++;
    this.sentBytes += bytes.length;
    return this.afterSend();
  }

  /**
   * Send a ping; resolves with the round-trip time in milliseconds when the
   * matching pong arrives, rejects if the connection closes first.
   */
  ping(payload: SendData = EMPTY): Promise<number> {
    const bytes = Buffer.from(typeof payload === 'string' ? Buffer.from(payload, 'utf8') : toBytes(payload));
    if (bytes.length > 125) {
      return Promise.reject(new UsageError('WS_ERR_CONTROL_PAYLOAD_TOO_LONG', 'ping payloads are limited to 125 bytes'));
    }
    if (!this.sendable) {
      return Promise.reject(new UsageError('WS_ERR_NOT_OPEN', 'the connection is not open'));
    }
    return this.pings.ping(bytes);
  }

  /** Send an unsolicited pong (a unidirectional heartbeat, §5.5.3). */
  pong(payload: SendData = EMPTY): boolean {
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : toBytes(payload);
    return this.core.pong(bytes);
  }

  /**
   * Start the closing handshake. The TCP connection is destroyed if it is
   * not closed within `closeTimeout` ms. Throws a `UsageError` for a code
   * that may not be sent or a reason over 123 bytes.
   */
  close(code?: number, reason = ''): void {
    if (this.core.close(code, reason)) {
      this.armCloseTimer();
      this.reportState();
    }
  }

  /** Destroy the TCP connection at once, without a closing handshake. */
  terminate(reason = 'terminated'): void {
    if (this.closed) return;
    this.recordFailure(new ConnectionError('WS_ERR_TERMINATED', reason));
    this.socket.destroy();
  }

  /**
   * Stop reading from the peer (TCP backpressure reaches it); `resume()`
   * undoes it. Pongs are not read while paused either, so the heartbeat
   * neither pings nor drops a connection the application holds paused; it
   * starts afresh on `resume()`.
   */
  pause(): void {
    this.pausedByApp = true;
    this.socket.pause();
  }

  resume(): void {
    if (this.pausedByApp) {
      this.pausedByApp = false;
      // Nothing could be heard from the peer while paused: give it a whole interval.
      // (Only then: resume() on a connection that was not paused leaves the heartbeat alone.)
      this.pings.restartHeartbeat();
    }
    if (!this.pausedForBacklog && !this.pausedForOutput) this.socket.resume();
  }

  /**
   * @internal The adopter (the server) calls this once the connection is
   * set up, in place of resuming the socket itself: reading starts unless
   * something (the application's \`pause()\` in its open hook) said not yet.
   */
  start(): void {
    if (!this.pausedByApp && !this.pausedForBacklog && !this.pausedForOutput) this.socket.resume();
  }

  /** Resolves once buffered outgoing data is under the high-water mark (or the connection closed). */
  drained(): Promise<void> {
    if (this.closed || this.bufferedAmount <= this.highWaterMark) return Promise.resolve();
    this.needDrain = true;
    return new Promise((resolve) => {
      const done = (): void => {
        this.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.on('drain', done);
      this.on('close', done);
    });
  }

  /**
   * Incoming messages as an async iterator that ends when the connection
   * closes (after handing out what was queued). Reading from the socket
   * pauses while `highWaterMark` messages wait for the consumer, so a slow
   * consumer slows the peer down instead of filling memory. One iterator at
   * a time; `break` stops it and leaves the connection open.
   */
  messages(options?: MessageIteratorOptions): AsyncIterableIterator<ReceivedMessage> {
    return iterateMessages(this, options);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedMessage> {
    return iterateMessages(this);
  }

  /**
   * @internal One heartbeat tick: ping, or drop the peer if nothing at all
   * (pong or otherwise) arrived since the previous tick's ping (see
   * `PingTracker.heartbeat()` for a peer still reading our backed-up output).
   * While the application holds reading paused, a pong could not be read
   * anyway: the tick does nothing, and `resume()` starts a fresh interval.
   */
  heartbeat(interval: number): void {
    if (this.closed || this.core.state !== ProtocolState.Open) return;
    if (this.pausedByApp) {
      this.pings.restartHeartbeat();
      return;
    }
    if (!this.pings.heartbeat(this.batch.acceptedBytes, this.pausedForOutput)) {
      this.drop('WS_ERR_HEARTBEAT_TIMEOUT', `no pong within ${interval} ms`, CloseCode.GoingAway);
    }
  }

  /**
   * @internal Fail the connection for a local reason: the close frame says
   * why, the TCP connection ends after it, and is destroyed if the peer
   * lingers. `cause` is the error behind it, if any (a throwing handler).
   */
  drop(code: ConnectionErrorCode, message: string, closeCode: number, cause?: Error): void {
    if (this.closed) return;
    this.recordFailure(new ConnectionError(code, message, cause));
    // A reason over §5.5's 123 bytes is cut at a character boundary.
    this.core.close(closeCode, message, true);
    this.batch.end();
    this.armCloseTimer();
    this.reportState();
  }

  // ---- ProtocolHost ------------------------------------------------------

  /** @internal */
  writeFrame(header: Uint8Array, payload: Uint8Array): void {
    if (this.wireEvents) this.emit('wire', describeSentHeader(header, payload.length));
    this.batch.add(header, payload);
  }

  /** @internal */
  event(event: ProtocolEvent): void {
    switch (event.type) {
      case 'message': {
        const data = event.data;
        this.receivedMessages++;
        this.receivedBytes += data.length;
        if (event.binary) this.emit('message', asBuffer(data), true);
        else this.emit('message', this.decodeText ? asBuffer(data).toString('utf8') : asBuffer(data), false);
        return;
      }
      case 'frameHeader':
        this.emit('wire', describeReceivedHeader(event, this.role));
        return;
      case 'frame':
        this.emit('frame', { opcode: event.opcode, fin: event.fin, rsv1: event.rsv1, payload: asBuffer(event.payload) });
        return;
      case 'ping':
        // The core has queued the pong. A peer that pings without reading
        // makes us write without end: past the hard limit it is cut off,
        // whatever the policy for the application's own messages.
        if (this.bufferedAmount > this.maxBufferedAmount) {
          this.failBufferLimit();
          return;
        }
        this.emit('ping', asBuffer(event.data));
        return;
      case 'pong': {
        const payload = asBuffer(event.data);
        this.emit('pong', payload, this.pings.answer(payload));
        return;
      }
      case 'close':
        this.peerClose = { code: event.code, reason: event.reason, initiator: event.initiator };
        this.closeTransport(false);
        this.reportState();
        this.emit('closing', event.code, event.reason);
        return;
      case 'error':
        this.recordFailure(event.error);
        this.closeTransport(true);
        this.reportState();
        return;
    }
  }

  /** @internal */
  backlogDrained(): void {
    if (this.pausedForBacklog && this.core.bufferedInput < INPUT_BACKLOG_LIMIT) {
      this.pausedForBacklog = false;
      if (!this.pausedByApp && !this.pausedForOutput) this.socket.resume();
    }
    if (this.endWhenRead && !this.core.decompressing) {
      this.endWhenRead = false;
      this.batch.end();
    }
  }

  // ---- WriteBatchOwner ---------------------------------------------------

  /**
   * @internal While reading waits for output to drain, or the application
   * for `drain`, the batch reports when each write left: the socket emits
   * 'drain' only past its own high-water mark, which may be above ours.
   */
  get watchingWrites(): boolean {
    return this.writtenEvents || this.pausedForOutput || this.needDrain;
  }

  /** @internal */
  batchWritten(bytes: number): void {
    if (this.writtenEvents) this.emit('written', bytes);
    this.onSocketDrain();
  }

  /** @internal */
  batchFlushed(): void {
    if (this.needDrain && this.bufferedAmount <= this.highWaterMark && !this.socket.writableNeedDrain) {
      this.needDrain = false;
      process.nextTick(() => this.emit('drain'));
    }
    this.outputDrained();
  }

  // ---- internals ---------------------------------------------------------

  /**
   * The core still says Open after the socket died without a close frame
   * (peer gone, buffer limit, terminate()): nothing may be sent then, and a
   * ping would wait for a pong forever.
   */
  private get sendable(): boolean {
    return !this.closed && !this.socket.destroyed && this.core.state === ProtocolState.Open;
  }

  private admit(size: number): SendStatus | null {
    const buffered = this.bufferedAmount;
    if (buffered === 0 || buffered + size <= this.maxBufferedAmount) return null;
    if (this.dropSlow) {
      this.dropped++;
      return 'dropped';
    }
    this.failBufferLimit();
    return 'closed';
  }

  private failBufferLimit(): void {
    this.recordFailure(new ConnectionError('WS_ERR_BUFFER_LIMIT', `peer too slow: over ${this.maxBufferedAmount} bytes waiting to be sent`));
    this.socket.destroy();
  }

  private afterSend(): SendStatus {
    if (this.bufferedAmount <= this.highWaterMark) return 'written';
    this.needDrain = true;
    return 'queued';
  }

  private onData(chunk: Uint8Array): void {
    this.pings.restartHeartbeat();
    const core = this.core;
    const batch = this.batch;
    const before = batch.bytes + core.pendingSendBytes;
    core.receive(chunk);
    if (!this.pausedForBacklog && core.bufferedInput >= INPUT_BACKLOG_LIMIT) {
      this.pausedForBacklog = true;
      this.socket.pause();
    }
    // What the peer sent made us write (pongs, replies of the application's
    // message handler) while output is backed up (the kernel refused more
    // than the high-water mark, or the compressor is behind): read no more
    // until it drains, so TCP backpressure stops a peer that sends but never
    // reads. This turn's batch is left out, the kernel may well take it.
    // Output the application writes on its own initiative does not stop
    // reading: two peers that both send a lot and both stopped reading would
    // wait on each other for ever.
    if (
      !this.pausedForOutput &&
      batch.bytes + core.pendingSendBytes > before &&
      this.socket.writableLength + core.pendingSendBytes > this.highWaterMark
    ) {
      this.pausedForOutput = true;
      this.socket.pause();
    }
  }

  /** Output fell back to the high-water mark: read again if nothing else holds reading. */
  private outputDrained(): void {
    if (this.pausedForOutput && this.bufferedAmount <= this.highWaterMark) {
      this.pausedForOutput = false;
      if (!this.pausedByApp && !this.pausedForBacklog) this.socket.resume();
    }
  }

  /**
   * The peer sent its TCP FIN: nothing more will arrive. Sockets handed over
   * by node:http allow half-open connections, where this socket would then
   * never close: end our side too, and destroy it if that does not finish
   * within the close timeout.
   */
  private onPeerEnd(): void {
    // What arrived before the FIN still counts: messages waiting for
    // decompression are read (and answered) before our side ends.
    if (this.core.decompressing) this.endWhenRead = true;
    else this.batch.end();
    this.armCloseTimer();
  }

  private onSocketDrain(): void {
    if (this.needDrain && this.bufferedAmount <= this.highWaterMark) {
      this.needDrain = false;
      this.emit('drain');
    }
    this.outputDrained();
  }

  private recordFailure(error: Error): void {
    if (this.failure === null && !this.closed) {
      this.failure = error;
      if (this.listenerCount('error') > 0) this.emit('error', error);
    }
  }

  /**
   * After the close handshake or a failure: the server closes TCP first
   * (§7.1.1), once the close frame is written; the client waits for the
   * server to do so, within the close timeout.
   */
  private closeTransport(failed: boolean): void {
    // After a failure nothing more is expected from the peer (§7.1.7), so
    // either end closes its side as soon as the close frame is out.
    if (this.role === Role.Server || failed) {
      this.batch.end();
    }
    this.armCloseTimer();
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== null || this.closed) return;
    this.closeTimer = setTimeout(() => {
      this.recordFailure(new ConnectionError('WS_ERR_CLOSE_TIMEOUT', `closing took longer than ${this.closeTimeout} ms`));
      this.socket.destroy();
    }, this.closeTimeout);
    this.closeTimer.unref();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    // Release zlib memory now rather than when the collector gets to it.
    this.codec?.close();
    const peer = this.peerClose;
    const failure = this.failure;
    this.pings.abandon();
    const info: CloseInfo =
      peer !== null ?
        { code: peer.code, reason: peer.reason, wasClean: failure === null, initiator: peer.initiator }
      : {
          code: CloseCode.Abnormal,
          reason: failure?.message ?? '',
          wasClean: false,
          initiator: this.core.state === ProtocolState.Open ? 'transport' : 'local',
        };
    if (failure !== null) info.error = failure;
    if (peer === null && failure === null) {
      info.error = new ConnectionError('WS_ERR_CONNECTION_LOST', 'the connection ended without a close frame');
    }
    this.ending = info;
    this.reportState();
    this.emit('close', info);
  }

  /**
   * Emit `stateChanged` if `state` moved since it was last reported. Called
   * only where the state can change (a close frame sent or received, a
   * failure, the end of TCP), never per message or frame.
   */
  private reportState(): void {
    const state = this.state;
    const previous = this.reportedState;
    if (state === previous) return;
    this.reportedState = state;
    this.emit('stateChanged', state, previous);
  }
}

const EMPTY = Buffer.alloc(0);

const kConnection = Symbol('sockeye.connection');
type OwnedSocket = Socket & { [kConnection]?: Connection<unknown> };

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export { ProtocolError };
