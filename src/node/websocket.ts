import { toUSVString } from 'node:util';
import { isArrayBuffer, isSharedArrayBuffer } from 'node:util/types';
import { CloseCode, MAX_CLOSE_REASON_BYTES } from '../protocol/close-code.js';
import { isToken } from '../protocol/handshake/http-syntax.js';
import { connect, type ConnectOptions } from './client.js';
import type { CloseInfo, Connection, SendStatus } from './connection.js';
import { CloseEvent } from './events.js';

/**
 * The WHATWG `WebSocket` interface (WebSockets Standard, "The WebSocket
 * interface" and "Feedback from the protocol") on top of `connect()`, so
 * code written for browsers runs unchanged on Node 20, which has no global
 * `WebSocket`.
 *
 * Every piece of feedback from the connection (established, message,
 * closed) is delivered the way the standard says, as a queued task: one
 * `setImmediate` per event, in arrival order, so microtasks run between two
 * events and a handler that calls `close()` stops the messages queued after
 * it ("If readyState is not OPEN, then return").
 */

export type BinaryType = 'blob' | 'arraybuffer';

/**
 * Node-only third constructor argument, handed to `connect()`: headers,
 * origin, tls, perMessageDeflate, timeouts, limits. The subprotocols come
 * from the second argument; the send buffer's watermark and policy are the
 * class's own (a message is never silently dropped: a full buffer fails the
 * connection, as the standard's "flag the WebSocket as full" says).
 */
export type WebSocketOptions = Omit<ConnectOptions, 'protocols' | 'highWaterMark' | 'backpressurePolicy' | 'signal'>;

export interface WebSocketEventMap {
  open: Event;
  message: MessageEvent;
  error: Event;
  close: CloseEvent;
}

export type WebSocketEventHandler<E extends Event> = ((this: WebSocket, event: E) => unknown) | null;

type WebSocketListener<E extends Event> = ((this: WebSocket, event: E) => unknown) | { handleEvent(event: E): unknown };
type AnyListener = Parameters<EventTarget['addEventListener']>[1];
type ListenerOptions = Parameters<EventTarget['addEventListener']>[2];
type RemoveListenerOptions = Parameters<EventTarget['removeEventListener']>[2];
type EventName = keyof WebSocketEventMap;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
type ReadyState = typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof CLOSED;

interface OutgoingData {
  kind: 'data';
  /** Null while a Blob is being read. */
  bytes: Uint8Array | null;
  binary: boolean;
  /** What `send()` added to `bufferedAmount`. */
  size: number;
  failure: Error | null;
}

interface OutgoingClose {
  kind: 'close';
  code: number | undefined;
  reason: string;
}

type Outgoing = OutgoingData | OutgoingClose;

export class WebSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  /** Also on the prototype, as Web IDL puts constants on both. */
  declare readonly CONNECTING: typeof CONNECTING;
  declare readonly OPEN: typeof OPEN;
  declare readonly CLOSING: typeof CLOSING;
  declare readonly CLOSED: typeof CLOSED;

  readonly #url: URL;
  readonly #protocols: readonly string[];
  #readyState: ReadyState = CONNECTING;
  #protocol = '';
  #extensions = '';
  #binaryType: BinaryType = 'blob';
  #bufferedAmount = 0;
  #connection: Connection<undefined> | null = null;
  /** Aborts the opening handshake when close() is called while CONNECTING. */
  readonly #abort = new AbortController();
  /** A close event is queued: nothing may queue another. */
  #closeQueued = false;

  /** Sends (and a close) waiting behind a Blob that is still being read. */
  readonly #outbox: Outgoing[] = [];
  /** Bytes handed to the connection and not yet seen leave it. */
  #unflushed = 0;

  readonly #handlers: Record<EventName, WebSocketEventHandler<Event> | null> = {
    open: null,
    message: null,
    error: null,
    close: null,
  };
  readonly #handlerListeners: Partial<Record<EventName, (event: Event) => void>> = {};

  /**
   * `new WebSocket(url, protocols?)` of the standard; `options` is Node-only.
   * Throws a "SyntaxError" DOMException for an unparsable or relative URL, a
   * scheme other than ws/wss/http/https, a fragment, or subprotocols that
   * repeat or are not tokens. The connection is attempted afterwards; its
   * outcome arrives as events.
   */
  constructor(url: string | URL, protocols: string | readonly string[] = [], options: WebSocketOptions = {}) {
    super();
    if (arguments.length === 0) {
      throw new TypeError("Failed to construct 'WebSocket': 1 argument required, but only 0 present.");
    }
    this.#url = parseWebSocketUrl(url);
    this.#protocols = parseProtocols(protocols);
    // "Run this step in parallel": the script that constructed the object
    // finishes first (and may still call close(), which then opens nothing).
    queueMicrotask(() => this.#establish(options));
  }

  // ---- attributes --------------------------------------------------------

  /** The URL, serialized: `http(s):` already turned into `ws(s):`. */
  get url(): string {
    return this.#url.href;
  }

  get readyState(): ReadyState {
    return this.#readyState;
  }

  /**
   * Bytes of application data (UTF-8 text, binary data) passed to `send()`
   * and not yet handed to the network, without framing. It does not drop
   * back once the connection closes: sends after that are counted and
   * discarded.
   */
  get bufferedAmount(): number {
    return this.#bufferedAmount;
  }

  /** The server's Sec-WebSocket-Extensions, once open. */
  get extensions(): string {
    return this.#extensions;
  }

  /** The subprotocol the server selected, once open; "" for none. */
  get protocol(): string {
    return this.#protocol;
  }

  get binaryType(): BinaryType {
    return this.#binaryType;
  }

  /** Web IDL enum attribute: a value outside the enum is ignored, without an exception. */
  set binaryType(value: BinaryType) {
    const type = `${value as unknown as string}`;
    if (type === 'blob' || type === 'arraybuffer') this.#binaryType = type;
  }

  get onopen(): WebSocketEventHandler<Event> {
    return this.#handlers.open;
  }
  set onopen(handler: WebSocketEventHandler<Event>) {
    this.#setHandler('open', handler);
  }

  get onmessage(): WebSocketEventHandler<MessageEvent> {
    return this.#handlers.message as WebSocketEventHandler<MessageEvent>;
  }
  set onmessage(handler: WebSocketEventHandler<MessageEvent>) {
    this.#setHandler('message', handler as WebSocketEventHandler<Event>);
  }

  get onerror(): WebSocketEventHandler<Event> {
    return this.#handlers.error;
  }
  set onerror(handler: WebSocketEventHandler<Event>) {
    this.#setHandler('error', handler);
  }

  get onclose(): WebSocketEventHandler<CloseEvent> {
    return this.#handlers.close as WebSocketEventHandler<CloseEvent>;
  }
  set onclose(handler: WebSocketEventHandler<CloseEvent>) {
    this.#setHandler('close', handler as WebSocketEventHandler<Event>);
  }

  override addEventListener<K extends EventName>(type: K, listener: WebSocketListener<WebSocketEventMap[K]> | null, options?: ListenerOptions): void;
  override addEventListener(type: string, listener: AnyListener | null, options?: ListenerOptions): void;
  override addEventListener(type: string, listener: unknown, options?: ListenerOptions): void {
    super.addEventListener(type, listener as AnyListener, options);
  }

  override removeEventListener<K extends EventName>(
    type: K,
    listener: WebSocketListener<WebSocketEventMap[K]> | null,
    options?: RemoveListenerOptions,
  ): void;
  override removeEventListener(type: string, listener: AnyListener | null, options?: RemoveListenerOptions): void;
  override removeEventListener(type: string, listener: unknown, options?: RemoveListenerOptions): void {
    super.removeEventListener(type, listener as AnyListener, options);
  }

  // ---- methods -----------------------------------------------------------

  /**
   * Send a string (as a text message, UTF-8), or an ArrayBuffer, any
   * ArrayBufferView or a Blob (as a binary message). Throws an
   * "InvalidStateError" DOMException while CONNECTING. Once the closing
   * handshake started, the data is counted in `bufferedAmount` and dropped.
   * A Blob is read asynchronously; messages sent after it still leave after
   * it.
   */
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void {
    if (arguments.length === 0) {
      throw new TypeError("Failed to execute 'send' on 'WebSocket': 1 argument required, but only 0 present.");
    }
    const item = toOutgoing(data);
    if (this.#readyState === CONNECTING) {
      throw new DOMException("Failed to execute 'send' on 'WebSocket': still in CONNECTING state.", 'InvalidStateError');
    }
    // "Any invocation of this method ... that does not throw an exception
    // must increase the bufferedAmount attribute", sent or not.
    this.#bufferedAmount += item.size;
    if (this.#readyState !== OPEN) return;
    // Framing copies the bytes at once (the client masks into a new buffer);
    // behind a Blob they wait, so keep them as they are now.
    if (this.#outbox.length > 0 && item.binary && item.bytes !== null) item.bytes = item.bytes.slice();
    if (data instanceof Blob) {
      data
        .arrayBuffer()
        .then(
          (buffer) => {
            item.bytes = new Uint8Array(buffer);
          },
          (error: unknown) => {
            item.failure = error instanceof Error ? error : new Error(String(error));
          },
        )
        .finally(() => this.#pump());
    }
    this.#outbox.push(item);
    this.#pump();
  }

  /**
   * Start the closing handshake, with `code` (1000 or 3000-4999, else an
   * "InvalidAccessError" DOMException) and `reason` (at most 123 UTF-8
   * bytes, else a "SyntaxError" DOMException). While CONNECTING this fails
   * the connection: an error event, then a close event with code 1006.
   */
  // Defaults instead of `?`: both are optional in the IDL, so close.length is 0.
  close(code: number | undefined = undefined, reason: string | undefined = undefined): void {
    let closeCode: number | undefined;
    if (code !== undefined) {
      closeCode = clampUnsignedShort(code);
      if (closeCode !== CloseCode.Normal && (closeCode < 3000 || closeCode > 4999)) {
        throw new DOMException(
          `Failed to execute 'close' on 'WebSocket': the code must be either 1000, or between 3000 and 4999. ${closeCode} is neither.`,
          'InvalidAccessError',
        );
      }
    }
    let closeReason = '';
    if (reason !== undefined) {
      closeReason = toUSVString(`${reason}`);
      if (Buffer.byteLength(closeReason, 'utf8') > MAX_CLOSE_REASON_BYTES) {
        throw new DOMException(
          `Failed to execute 'close' on 'WebSocket': the reason must not be longer than ${MAX_CLOSE_REASON_BYTES} bytes.`,
          'SyntaxError',
        );
      }
    }
    if (this.#readyState === CLOSING || this.#readyState === CLOSED) return;
    if (this.#readyState === CONNECTING) {
      this.#readyState = CLOSING;
      // Stop the handshake where it is (TCP, TLS or upgrade).
      this.#abort.abort();
      this.#connection?.terminate('closed before the connection was established');
      this.#queueFailure();
      return;
    }
    this.#readyState = CLOSING;
    // Messages sent before close() leave before the close frame, even those
    // still waiting for a Blob to be read.
    this.#outbox.push({ kind: 'close', code: closeCode, reason: closeReason });
    this.#pump();
  }

  get [Symbol.toStringTag](): string {
    return 'WebSocket';
  }

  // ---- establishing ------------------------------------------------------

  #establish(options: WebSocketOptions): void {
    if (this.#readyState !== CONNECTING) return;
    let pending: Promise<Connection<undefined>>;
    try {
      pending = connect(this.#url, {
        ...options,
        signal: this.#abort.signal,
        protocols: this.#protocols,
        backpressurePolicy: 'close',
      });
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (connection) => this.#onEstablished(connection),
      () => {
        // The standard forbids telling scripts why (refused, no route, TLS,
        // not a WebSocket server...): every case is the same error + 1006.
        if (this.#readyState === CONNECTING) this.#queueFailure();
      },
    );
  }

  #onEstablished(connection: Connection<undefined>): void {
    if (this.#readyState !== CONNECTING) {
      // close() already failed the connection; the handshake finished anyway.
      connection.terminate('closed before the connection was established');
      return;
    }
    // WebSockets Standard, "establish a WebSocket connection": subprotocols
    // were offered and the server selected none. (One it did not offer was
    // already refused by connect(), RFC 6455 §4.1.)
    if (this.#protocols.length > 0 && connection.protocol === '') {
      connection.terminate('the server selected none of the offered subprotocols');
      this.#queueFailure();
      return;
    }
    this.#connection = connection;
    connection.on('message', (data, isBinary) => this.#queueTask(() => this.#onMessage(data, isBinary)));
    // "When the WebSocket closing handshake is started": the server's close
    // frame arrived, after every message that came before it.
    connection.on('closing', () =>
      this.#queueTask(() => {
        if (this.#readyState === OPEN) this.#readyState = CLOSING;
      }),
    );
    connection.on('close', (info) => this.#queueClose(info));
    // Each batch the operating system took: once nothing is left, what was
    // handed to the connection no longer counts in bufferedAmount.
    connection.on('written', () => this.#settleFlushed());
    this.#queueTask(() => {
      // close() during CONNECTING took the other branch and failed it.
      if (this.#readyState !== CONNECTING) return;
      this.#readyState = OPEN;
      this.#extensions = connection.extensions;
      this.#protocol = connection.protocol;
      this.dispatchEvent(new Event('open'));
    });
  }

  // ---- feedback from the protocol ---------------------------------------

  #onMessage(data: string | Buffer, isBinary: boolean): void {
    if (this.#readyState !== OPEN) return;
    let payload: string | Blob | ArrayBuffer;
    if (!isBinary) payload = data as string;
    else {
      const bytes = data as Buffer;
      // Read binaryType when the task runs, not when the bytes arrived (the
      // standard's note on switching it "at the last minute").
      payload =
        this.#binaryType === 'blob' ? new Blob([bytes]) : (bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
    this.dispatchEvent(new MessageEvent('message', { data: payload, origin: this.#url.origin }));
  }

  #queueClose(info: CloseInfo): void {
    if (this.#closeQueued) return;
    this.#closeQueued = true;
    // RFC 6455 §7.1.5: 1006 means no close frame arrived: the connection
    // failed (or was lost), which the standard announces with an error event.
    // Its reason is empty (§7.1.6) and says nothing of the cause.
    // RFC 6455 §7.1.5: 1006, no close frame arrived: the code the standard reports for every failure.
    const failed = info.code === CloseCode.Abnormal;
    const code = info.code;
    const reason = failed ? '' : info.reason;
    const wasClean = failed ? false : info.wasClean;
    this.#queueTask(() => this.#fireClose(failed, code, reason, wasClean));
  }

  /** Fail the WebSocket connection before it was established (or while close() aborts it). */
  #queueFailure(): void {
    if (this.#closeQueued) return;
    this.#closeQueued = true;
    this.#queueTask(() => this.#fireClose(true, CloseCode.Abnormal, '', false));
  }

  #fireClose(failed: boolean, code: number, reason: string, wasClean: boolean): void {
    this.#readyState = CLOSED;
    if (failed) this.dispatchEvent(new Event('error'));
    this.dispatchEvent(new CloseEvent('close', { wasClean, code, reason }));
  }

  #queueTask(task: () => void): void {
    setImmediate(task);
  }

  // ---- sending -----------------------------------------------------------

  /** Hand over every outgoing item whose bytes are ready, in order. */
  #pump(): void {
    const outbox = this.#outbox;
    while (outbox.length > 0) {
      const head = outbox[0]!;
      if (head.kind === 'data' && head.bytes === null && head.failure === null) return;
      outbox.shift();
      if (head.kind === 'close') this.#sendClose(head);
      else this.#sendData(head);
    }
  }

  #sendData(item: OutgoingData): void {
    const connection = this.#connection!;
    if (item.failure !== null) {
      // The bytes of the Blob could not be read: the message cannot be sent,
      // and leaving it out would corrupt the application's stream.
      connection.terminate(`a Blob passed to send() could not be read: ${item.failure.message}`);
      return;
    }
    let status: SendStatus;
    try {
      // Uncompressed: bufferedAmount counts application bytes, and only a
      // frame written at once can be followed to the network by `drain`.
      status = connection.send(item.bytes!, { binary: item.binary, compress: false });
    } catch {
      status = 'closed';
    }
    // 'closed': the closing handshake started or the connection is gone (a
    // full buffer fails it); the data stays counted, as the standard says.
    if (status === 'closed' || status === 'dropped') return;
    this.#unflushed += item.size;
  }

  #sendClose(item: OutgoingClose): void {
    try {
      this.#connection!.close(item.code, item.reason);
    } catch {
      // The code and reason were checked by close(); a connection that is
      // already gone has nothing to close.
    }
  }

  /**
   * Everything the connection held has left: what was handed to it no longer
   * counts. The drop is applied as a task, so bufferedAmount does not change
   * under a running script (the standard samples it once per task).
   */
  #settleFlushed(): void {
    const connection = this.#connection;
    // Something is still batched or in the socket: its own `written` follows.
    if (this.#unflushed === 0 || connection === null || connection.bufferedAmount > 0) return;
    const sent = this.#unflushed;
    this.#unflushed = 0;
    this.#queueTask(() => {
      this.#bufferedAmount -= sent;
    });
  }

  // ---- event handler attributes -----------------------------------------

  /**
   * HTML's event handler IDL attributes: the first non-null value registers
   * one listener, in order with addEventListener() calls; later values
   * replace the callback but keep that place; null removes the listener.
   */
  #setHandler(type: EventName, handler: WebSocketEventHandler<Event>): void {
    // EventHandler is [LegacyTreatNonObjectAsNull]: anything not callable is null here.
    const callback = typeof handler === 'function' ? handler : null;
    this.#handlers[type] = callback;
    const listener = this.#handlerListeners[type];
    if (callback === null) {
      if (listener !== undefined) {
        super.removeEventListener(type, listener);
        delete this.#handlerListeners[type];
      }
      return;
    }
    if (listener === undefined) {
      const registered = (event: Event): void => {
        const current = this.#handlers[type];
        if (current !== null && current.call(this, event) === false) event.preventDefault();
      };
      this.#handlerListeners[type] = registered;
      super.addEventListener(type, registered);
    }
  }
}

const constant = (value: number): PropertyDescriptor => ({ value, writable: false, enumerable: true, configurable: false });
const constants: PropertyDescriptorMap = {
  CONNECTING: constant(CONNECTING),
  OPEN: constant(OPEN),
  CLOSING: constant(CLOSING),
  CLOSED: constant(CLOSED),
};
Object.defineProperties(WebSocket, constants);
Object.defineProperties(WebSocket.prototype, constants);
// Web IDL attributes and operations are enumerable (class members are not by default).
for (const name of [
  'url',
  'readyState',
  'bufferedAmount',
  'onopen',
  'onerror',
  'onclose',
  'extensions',
  'protocol',
  'close',
  'onmessage',
  'binaryType',
  'send',
]) {
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true });
}

// ---- argument conversion and checks ---------------------------------------

/**
 * The constructor's URL steps: parse (no base URL exists in Node, so a
 * relative URL fails), map http/https to ws/wss as the current standard
 * does, then only ws/wss without a fragment pass.
 */
function parseWebSocketUrl(url: string | URL): URL {
  const text = toUSVString(`${url as unknown as string}`);
  let record: URL;
  try {
    record = new URL(text);
  } catch {
    throw new DOMException(`Failed to construct 'WebSocket': the URL '${text}' is invalid.`, 'SyntaxError');
  }
  if (record.protocol === 'http:') record.protocol = 'ws:';
  else if (record.protocol === 'https:') record.protocol = 'wss:';
  if (record.protocol !== 'ws:' && record.protocol !== 'wss:') {
    throw new DOMException(
      `Failed to construct 'WebSocket': the URL's scheme must be 'ws', 'wss', 'http' or 'https'; '${record.protocol.slice(0, -1)}' is not allowed.`,
      'SyntaxError',
    );
  }
  // `hash` is "" for both no fragment and an empty one; '#' can only be the
  // fragment delimiter in a serialized URL.
  if (record.href.includes('#')) {
    throw new DOMException("Failed to construct 'WebSocket': the URL contains a fragment identifier.", 'SyntaxError');
  }
  return record;
}

/**
 * `(DOMString or sequence<DOMString>)`: each must be a token (RFC 6455
 * §4.1 item 10, the Sec-WebSocket-Protocol element syntax) and unique.
 * Names compare exactly, as the standard's "occur more than once" reads.
 */
function parseProtocols(protocols: string | readonly string[]): string[] {
  const list =
    typeof protocols === 'object' && protocols !== null && Symbol.iterator in protocols ?
      Array.from(protocols as Iterable<unknown>, (p) => `${p as string}`)
    : [`${protocols as unknown as string}`];
  for (let i = 0; i < list.length; i++) {
    const protocol = list[i]!;
    if (!isToken(protocol)) {
      throw new DOMException(`Failed to construct 'WebSocket': the subprotocol '${protocol}' is invalid.`, 'SyntaxError');
    }
    if (list.indexOf(protocol) !== i) {
      throw new DOMException(`Failed to construct 'WebSocket': the subprotocol '${protocol}' is duplicated.`, 'SyntaxError');
    }
  }
  return list;
}

/** `(BufferSource or Blob or USVString)`: bytes to send and what they add to bufferedAmount. */
function toOutgoing(data: unknown): OutgoingData {
  const item = (bytes: Uint8Array | null, binary: boolean, size: number): OutgoingData => ({
    kind: 'data',
    bytes,
    binary,
    size,
    failure: null,
  });
  if (data instanceof Blob) return item(null, true, data.size);
  if (isArrayBuffer(data)) return item(new Uint8Array(data), true, data.byteLength);
  if (ArrayBuffer.isView(data)) {
    // BufferSource is not [AllowShared].
    if (isSharedArrayBuffer(data.buffer)) {
      throw new TypeError("Failed to execute 'send' on 'WebSocket': the view's buffer must not be a SharedArrayBuffer.");
    }
    return item(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), true, data.byteLength);
  }
  // Everything else is converted to a string (Web IDL: ToString, which
  // throws for a Symbol), then to UTF-8.
  const bytes = Buffer.from(toUSVString(`${data as string}`), 'utf8');
  return item(bytes, false, bytes.length);
}

/** Web IDL `[Clamp] unsigned short`: ToNumber (which throws for Symbol and BigInt), clamp, round half to even. */
function clampUnsignedShort(value: unknown): number {
  const n = +(value as number);
  if (Number.isNaN(n)) return 0;
  const clamped = Math.min(Math.max(n, 0), 0xffff);
  const floor = Math.floor(clamped);
  const fraction = clamped - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

export { CloseEvent };
