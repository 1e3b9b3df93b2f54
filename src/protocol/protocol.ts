import { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from './close-code.js';
import type { CompressionCodec } from './codec.js';
import { ProtocolError, UsageError } from './errors.js';
import { allocateZeroed } from './allocate.js';
import { FrameReader } from './frame-reader.js';
import { frameHeaderSize, writeFrameHeader } from './frame-writer.js';
import { applyMask, randomMaskKey } from './mask.js';
import { MessageBuffer } from './message-buffer.js';
import { isControl, Opcode } from './opcode.js';
import { Role } from './role.js';
import { Utf8Validator, isValidUtf8 } from './utf8.js';

/**
 * The WebSocket connection as a state machine over bytes (RFC 6455 §5-§7),
 * shared by both roles: received bytes go in through `receive()`, events come
 * out through `host.event()`, and every frame to send comes out through
 * `host.writeFrame()`. No sockets, no timers: the I/O layer owns those.
 */

export enum ProtocolState {
  /** Data may flow both ways. */
  Open = 'open',
  /** We sent a close frame and wait for the peer's (§7.1.2). */
  Closing = 'closing',
  /** Both close frames exchanged, or the connection failed: nothing more is sent or read. */
  Closed = 'closed',
}

export type ProtocolEvent =
  | { type: 'message'; data: Uint8Array; binary: boolean }
  /**
   * Only with `frameEvents`: each data frame as received, its payload
   * unmasked and, in a compressed message, decompressed: the bytes this
   * frame adds to its message. `rsv1` is the bit as it was on the wire (set
   * on the first frame of a compressed message, RFC 7692 §6).
   */
  | { type: 'frame'; opcode: Opcode; fin: boolean; rsv1: boolean; payload: Uint8Array }
  /**
   * Only with `headerEvents`: every frame header as parsed, control frames
   * included, before its payload is read (for wire traces). `length` is the
   * payload length on the wire. Headers the reader rejects are not reported.
   */
  | { type: 'frameHeader'; opcode: Opcode; fin: boolean; rsv1: boolean; length: number }
  | { type: 'ping'; data: Uint8Array }
  | { type: 'pong'; data: Uint8Array }
  /**
   * The peer's close frame arrived: `code` is its status (1005 when it sent
   * none). `initiator` says whose close frame came first.
   */
  | { type: 'close'; code: number; reason: string; initiator: 'local' | 'remote' }
  /** The connection failed (§7.1.7); a close frame with `error.closeCode` was sent if still possible. */
  | { type: 'error'; error: ProtocolError };

export interface ProtocolHost {
  /**
   * Bytes to send, in order. `header` is a fresh buffer the host may keep;
   * `payload` may be the application's own buffer (never modified by the
   * core), so the host must write it before the application can reuse it.
   */
  writeFrame(header: Uint8Array, payload: Uint8Array): void;
  event(event: ProtocolEvent): void;
  /**
   * Called when a decompression ended and the input parked behind it has
   * been parsed (as far as it goes: another decompression may have begun).
   */
  backlogDrained?(): void;
}

export interface PerMessageDeflateSetup {
  codec: CompressionCodec;
  /** Messages smaller than this many bytes are sent uncompressed. */
  threshold: number;
}

export interface ProtocolOptions {
  role: Role;
  /** Largest message accepted, summed over fragments and measured after decompression. */
  maxMessageSize?: number;
  /** Present when permessage-deflate was negotiated. */
  deflate?: PerMessageDeflateSetup | null;
  /** Report every data frame as a `frame` event. */
  frameEvents?: boolean;
  /** Allocator for gathered payloads and fragments; see `FrameReaderOptions.allocate`. */
  allocate?: (size: number) => Uint8Array;
  /**
   * A whole-buffer UTF-8 check (RFC 3629), used for a text message that
   * arrives in one piece; pieces of fragmented or still-arriving messages
   * keep the core's incremental validator. Node passes `buffer.isUtf8`
   * (native, SIMD). Default: the core's own validator.
   */
  isValidUtf8?: (bytes: Uint8Array) => boolean;
  /** Report every frame header as a `frameHeader` event. */
  headerEvents?: boolean;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

/**
 * An unmasked, uncompressed single-frame message whose bytes can be written
 * to any number of server-side connections: framed once, shared by all.
 * (Uncompressed is always legal, with or without permessage-deflate, since
 * RSV1 marks compression per message: RFC 7692 §6.)
 */
export interface PreparedFrame {
  readonly header: Uint8Array;
  readonly payload: Uint8Array;
  readonly binary: boolean;
  /** Header plus payload bytes. */
  readonly size: number;
}

/**
 * Payloads under this many bytes are copied behind their header into one
 * buffer, so the two lie side by side and an I/O layer can write them as
 * one piece (a fan-out writes them once per subscriber); larger ones are
 * kept by reference.
 */
const JOIN_LIMIT = 1024;

export function prepareFrame(payload: Uint8Array, binary: boolean): PreparedFrame {
  const headerSize = frameHeaderSize(payload.length, false);
  const head = { fin: true, rsv1: false, opcode: binary ? Opcode.Binary : Opcode.Text };
  if (payload.length >= JOIN_LIMIT) {
    const header = new Uint8Array(headerSize);
    writeFrameHeader(header, 0, head, payload.length, null);
    return { header, payload, binary, size: headerSize + payload.length };
  }
  const joined = new Uint8Array(headerSize + payload.length);
  writeFrameHeader(joined, 0, head, payload.length, null);
  joined.set(payload, headerSize);
  return { header: joined.subarray(0, headerSize), payload: joined.subarray(headerSize), binary, size: joined.length };
}

interface OutgoingFrame {
  opcode: Opcode;
  fin: boolean;
  /** Run through the compressor; RSV1 is set when this is the message's first frame. */
  compress: boolean;
  first: boolean;
  data: Uint8Array;
  /** A header built once for many connections (see `PreparedFrame`). */
  header?: Uint8Array;
}

/** What the reader is swapped for after a close or a failure: §7.1.1 and §7.1.7 say ignore the rest. */
interface Input {
  push(chunk: Uint8Array): void;
  readonly bufferedBytes: number;
}
const DISCARD: Input = { push() {}, bufferedBytes: 0 };

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
// Close reasons are decoded as UTF-8 without stripping a leading BOM (WHATWG "UTF-8 decode without BOM").
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

// The frame reader's callbacks below are marked internal (they are not for
// hosts to call) and left out of the published types, so the class does not
// declare `implements FrameSink`; `new FrameReader(this, ...)` checks it is one.
export class Protocol {
  private stateValue = ProtocolState.Open;
  private readonly reader: FrameReader;
  private input: Input;
  private readonly maxMessageSize: number;
  private readonly masking: boolean;
  private readonly deflate: PerMessageDeflateSetup | null;
  /** Report every data frame as a `frame` event; may be switched on at any time. */
  frameEvents: boolean;
  /** Report every frame header as a `frameHeader` event; may be switched on at any time. */
  headerEvents: boolean;

  // Receiving: the current frame and the message it belongs to.
  private frameOpcode: Opcode = Opcode.Continuation;
  private frameFin = false;
  private frameRsv1 = false;
  /** Text or Binary while a message is in progress, Continuation when none is. */
  private messageOpcode: Opcode = Opcode.Continuation;
  private messageCompressed = false;
  /** Bytes of the current message as they came off the wire (compressed, if it was). */
  private messageWireBytes = 0;
  /** Leading bytes of the current frame's payload already run through the UTF-8 check while it arrived. */
  private frameChecked = 0;
  /** Leading bytes of the current (compressed) frame's payload already handed to the decompressor while it arrived. */
  private frameInflated = 0;
  /** With `frameEvents`: what those bytes inflated to, for the frame's event. */
  private frameOutput: Uint8Array[] | null = null;
  private readonly allocate: (size: number) => Uint8Array;
  private readonly isValidUtf8: ((bytes: Uint8Array) => boolean) | null;
  /** Fragments of the message in progress; created for the first fragmented message. */
  private message: MessageBuffer | null = null;
  /** Created with the first text message: idle connections never need one. */
  private utf8: Utf8Validator | null = null;
  /** A decompression is under way; the reader is paused until it ends. */
  private inflating = false;

  // Sending.
  private sendingOpcode: Opcode = Opcode.Continuation;
  private sendingCompressed = false;
  private compressing = false;
  /** Frames waiting behind a compression in progress (created the first time one waits). */
  private backlog: OutgoingFrame[] | null = null;
  /** What the message being compressed and the backlog weigh (see `queuedBytes`): a running sum. */
  private pendingSend = 0;

  constructor(
    private readonly host: ProtocolHost,
    options: ProtocolOptions,
  ) {
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.masking = options.role === Role.Client;
    this.deflate = options.deflate ?? null;
    this.frameEvents = options.frameEvents ?? false;
    this.headerEvents = options.headerEvents ?? false;
    this.allocate = options.allocate ?? allocateZeroed;
    this.isValidUtf8 = options.isValidUtf8 ?? null;
    this.reader = new FrameReader(this, {
      allocate: this.allocate,
      expectMasked: options.role === Role.Server,
      allowRsv1: this.deflate !== null,
    });
    this.input = this.reader;
  }

  get state(): ProtocolState {
    return this.stateValue;
  }

  /**
   * A received message is being decompressed: input that already arrived
   * is not parsed yet. An I/O layer whose peer has ended waits for this to
   * turn false before it ends its side, so nothing that arrived is lost.
   */
  get decompressing(): boolean {
    return this.inflating;
  }

  /**
   * Received bytes parked behind a decompression in progress. (Bytes of a
   * frame still arriving are not counted: only more input completes them,
   * so an I/O layer must not stop reading for those. Nor are the bytes of
   * a compressed frame still arriving that were already inflated.)
   */
  get bufferedInput(): number {
    return this.inflating ? Math.max(0, this.input.bufferedBytes - this.frameInflated) : 0;
  }

  /**
   * Bytes accepted for sending but not yet handed to `host.writeFrame()`:
   * the message being compressed and every frame queued behind it, each
   * counted as its payload (before compression) plus the header it will be
   * written with, so that empty frames weigh something too. An I/O layer
   * counts these as buffered output (backpressure must see data that waits
   * for the compressor, and pongs queued behind it). Kept as a running sum,
   * so reading it costs nothing.
   */
  get pendingSendBytes(): number {
    return this.pendingSend;
  }

  /**
   * A compression is under way: more frames (and perhaps a close frame
   * queued behind it) will still come out of `host.writeFrame()`. An I/O
   * layer must not end the transport before this turns false.
   */
  get sendInProgress(): boolean {
    return this.compressing;
  }

  /**
   * Feed received bytes. The core takes the chunk over: masked payloads are
   * unmasked in place, and a message or control payload that lies inside one
   * chunk is delivered as a view of it, so the caller must not reuse it.
   */
  receive(chunk: Uint8Array): void {
    this.input.push(chunk);
  }

  // ---- Sending -----------------------------------------------------------

  /** Send a whole message. Returns false, sending nothing, once a close frame was sent. */
  send(data: Uint8Array, binary: boolean, compress = true): boolean {
    if (this.stateValue !== ProtocolState.Open) return false;
    if (this.sendingOpcode !== Opcode.Continuation) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    const useDeflate = compress && this.deflate !== null && data.length >= this.deflate.threshold;
    this.enqueue({ opcode: binary ? Opcode.Binary : Opcode.Text, fin: true, compress: useDeflate, first: true, data });
    return true;
  }

  /**
   * Send a message framed once for many connections (a broadcast). Servers
   * write the shared header and payload as they are; a client must mask
   * every frame with its own key (§5.3), so it frames the payload afresh.
   */
  sendPrepared(frame: PreparedFrame): boolean {
    if (this.masking) return this.send(frame.payload, frame.binary, false);
    if (this.stateValue !== ProtocolState.Open) return false;
    if (this.sendingOpcode !== Opcode.Continuation) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'a fragmented message is being sent; finish it first');
    }
    const opcode = frame.binary ? Opcode.Binary : Opcode.Text;
    this.enqueue({ opcode, fin: true, compress: false, first: true, data: frame.payload, header: frame.header });
    return true;
  }

  /**
   * Send one fragment of a message (§5.4); `fin` ends the message. The first
   * call fixes text or binary and whether the message is compressed; control
   * frames may still be sent between fragments.
   */
  sendFragment(data: Uint8Array, binary: boolean, fin: boolean, compress = true): boolean {
    if (this.stateValue !== ProtocolState.Open) return false;
    const first = this.sendingOpcode === Opcode.Continuation;
    if (first) this.sendingCompressed = compress && this.deflate !== null;
    const opcode =
      first ?
        binary ? Opcode.Binary
        : Opcode.Text
      : Opcode.Continuation;
    this.sendingOpcode =
      fin ? Opcode.Continuation
      : binary ? Opcode.Binary
      : Opcode.Text;
    this.enqueue({ opcode, fin, compress: this.sendingCompressed, first, data });
    return true;
  }

  ping(data: Uint8Array = EMPTY): boolean {
    return this.control(Opcode.Ping, data);
  }

  pong(data: Uint8Array = EMPTY): boolean {
    return this.control(Opcode.Pong, data);
  }

  /**
   * Start the closing handshake (§7.1.2). Without a code the close frame is
   * empty; a reason alone is sent with 1000. A reason over 123 bytes throws,
   * or with `truncate` is cut at a character boundary. Returns false if a
   * close frame was already sent.
   */
  close(code?: number, reason = '', truncate = false): boolean {
    const payload = encodeClosePayload(code, reason, truncate);
    if (this.stateValue !== ProtocolState.Open) return false;
    this.stateValue = ProtocolState.Closing;
    this.enqueueClose(payload);
    return true;
  }

  /** A close frame (§5.5.1) goes behind whatever is queued, compressed or not: never compressed itself. */
  private enqueueClose(payload: Uint8Array): void {
    this.enqueue({ opcode: Opcode.Close, fin: true, compress: false, first: true, data: payload });
  }

  private control(opcode: Opcode, data: Uint8Array): boolean {
    if (data.length > 125) {
      throw new UsageError('WS_ERR_CONTROL_PAYLOAD_TOO_LONG', 'ping and pong payloads are limited to 125 bytes');
    }
    if (this.stateValue !== ProtocolState.Open) return false;
    this.enqueue({ opcode, fin: true, compress: false, first: true, data });
    return true;
  }

  /** Frames leave in the order they were asked for, even behind a message still being compressed. */
  private enqueue(frame: OutgoingFrame): void {
    if (this.compressing) {
      (this.backlog ??= []).push(frame);
      this.pendingSend += queuedBytes(frame.data, this.masking);
    } else {
      this.emit(frame);
    }
  }

  private emit(frame: OutgoingFrame): void {
    if (frame.header !== undefined) {
      this.host.writeFrame(frame.header, frame.data);
      return;
    }
    if (!frame.compress) {
      this.writeFrame(frame.opcode, frame.fin, false, frame.data);
      return;
    }
    this.compressing = true;
    const weight = queuedBytes(frame.data, this.masking);
    this.pendingSend += weight;
    this.deflate!.codec.compress(frame.data, frame.fin, (error, output) => {
      this.compressing = false;
      this.pendingSend -= weight;
      if (error !== null || output === null) {
        this.compressionFailed(error);
        return;
      }
      this.writeFrame(frame.opcode, frame.fin, frame.first, output);
      const backlog = this.backlog;
      while (!this.compressing && backlog !== null && backlog.length > 0) {
        const next = backlog.shift()!;
        this.pendingSend -= queuedBytes(next.data, this.masking);
        this.emit(next);
      }
    });
  }

  /**
   * A local compressor fault, not the peer's doing: fail with 1011 (§7.4.1,
   * §7.1.7). Every frame queued behind the failed one is dropped, and no close
   * frame can have left yet (it would be queued behind it), so one is written
   * here whatever the state, and reading stops like after any failure.
   */
  private compressionFailed(error: Error | null): void {
    if (this.backlog !== null) this.backlog.length = 0;
    this.pendingSend = 0;
    this.stopReading();
    const alreadyEnded = this.stateValue === ProtocolState.Closed;
    this.stateValue = ProtocolState.Closed;
    this.writeFrame(Opcode.Close, true, false, encodeClosePayload(CloseCode.InternalError, 'compression failed'));
    // After a close or error event the application has had its one ending event.
    if (!alreadyEnded) {
      this.host.event({
        type: 'error',
        error: new ProtocolError('WS_ERR_COMPRESSION_FAILED', `compression failed: ${error?.message ?? 'no output'}`),
      });
    }
  }

  private writeFrame(opcode: Opcode, fin: boolean, rsv1: boolean, data: Uint8Array): void {
    const maskKey = this.masking ? randomMaskKey() : null;
    // At most 14 bytes: a plain typed array (kept on the JavaScript heap) costs
    // half what a Buffer from the allocator does, and hosts copy small frames anyway.
    const header = new Uint8Array(frameHeaderSize(data.length, maskKey !== null));
    writeFrameHeader(header, 0, { fin, rsv1, opcode }, data.length, maskKey);
    let payload = data;
    if (maskKey !== null && data.length > 0) {
      payload = this.allocate(data.length);
      applyMask(data, maskKey, payload);
    }
    this.host.writeFrame(header, payload);
  }

  // ---- Receiving (FrameSink) ---------------------------------------------

  /** @internal */
  frameHeader(fin: boolean, rsv1: boolean, opcode: Opcode, length: number): ProtocolError | null {
    if (this.headerEvents) this.host.event({ type: 'frameHeader', opcode, fin, rsv1, length });
    this.frameOpcode = opcode;
    this.frameFin = fin;
    this.frameRsv1 = rsv1;
    this.frameChecked = 0;
    this.frameInflated = 0;
    this.frameOutput = null;
    if (isControl(opcode)) {
      // RFC 7692 §6.1: control frames are never compressed.
      return rsv1 ? new ProtocolError('WS_ERR_UNEXPECTED_RSV', 'RSV1 set on a control frame') : null;
    }
    if (opcode === Opcode.Continuation) {
      if (this.messageOpcode === Opcode.Continuation) {
        return new ProtocolError('WS_ERR_UNEXPECTED_CONTINUATION', 'continuation frame outside a fragmented message');
      }
      // RFC 7692 §6.1: RSV1 marks only the first frame of a compressed message.
      if (rsv1) return new ProtocolError('WS_ERR_UNEXPECTED_RSV', 'RSV1 set on a continuation frame');
    } else {
      if (this.messageOpcode !== Opcode.Continuation) {
        return new ProtocolError('WS_ERR_EXPECTED_CONTINUATION', 'new message started before the previous one ended');
      }
      this.messageOpcode = opcode;
      this.messageCompressed = rsv1;
      this.messageWireBytes = 0;
      if (opcode === Opcode.Text) {
        if (this.utf8 === null) this.utf8 = new Utf8Validator();
        else this.utf8.reset();
      }
    }
    this.messageWireBytes += length;
    if (this.messageWireBytes > this.maxMessageSize) {
      return new ProtocolError('WS_ERR_MESSAGE_TOO_BIG', `message exceeds ${this.maxMessageSize} bytes`);
    }
    return null;
  }

  /** @internal */
  framePayload(payload: Uint8Array): void {
    const opcode = this.frameOpcode;
    if (isControl(opcode)) {
      this.controlFrame(opcode, payload);
      return;
    }
    if (this.messageCompressed) {
      const done = this.frameInflated;
      this.frameInflated = 0; // the reader no longer holds those bytes
      this.inflate(done === 0 ? payload : payload.subarray(done), this.frameFin, true);
      return;
    }
    if (this.frameEvents) {
      this.host.event({ type: 'frame', opcode, fin: this.frameFin, rsv1: this.frameRsv1, payload });
      if (this.input !== this.reader) return; // the application closed from inside the event
    }
    this.messagePart(payload, this.frameFin, this.frameChecked);
  }

  /**
   * @internal
   * §8.1: invalid UTF-8 fails the connection when its bytes arrive, not when
   * the rest of a long frame has. A compressed payload is inflated as it
   * arrives (DEFLATE is a stream: frame and read boundaries mean nothing to
   * it) and its text judged when inflated (RFC 7692 §6: the text is the
   * decompressed message); reading waits meanwhile, so input arriving during
   * one decompression goes to the next in one piece.
   */
  framePayloadPart(part: Uint8Array): ProtocolError | null {
    if (isControl(this.frameOpcode)) return null;
    if (this.messageCompressed) {
      this.inflate(part, false, false);
      return null;
    }
    if (this.messageOpcode !== Opcode.Text) return null;
    this.frameChecked += part.length;
    return this.utf8!.update(part) ? null : new ProtocolError('WS_ERR_INVALID_UTF8', 'text message is not valid UTF-8');
  }

  /** @internal */
  frameError(error: ProtocolError): void {
    this.fail(error);
  }

  /** `checked`: leading bytes of `data` whose UTF-8 was already checked as they arrived. */
  private messagePart(data: Uint8Array, fin: boolean, checked = 0): void {
    const text = this.messageOpcode === Opcode.Text;
    if (text) {
      // A message whole in `data` (nothing before it, nothing checked yet) goes to the whole-buffer check.
      const whole = fin && checked === 0 && this.isValidUtf8 !== null && (this.message === null || this.message.length === 0);
      // §8.1: fail as soon as invalid UTF-8 is seen, in whichever fragment it lies.
      const valid = whole ? this.isValidUtf8!(data) : this.utf8!.update(data, checked) && (!fin || this.utf8!.complete);
      if (!valid) {
        this.fail(new ProtocolError('WS_ERR_INVALID_UTF8', 'text message is not valid UTF-8'));
        return;
      }
    }
    if (!fin) {
      (this.message ??= new MessageBuffer(this.maxMessageSize, this.allocate)).append(data);
      return;
    }
    let whole = data;
    if (this.message !== null && this.message.length > 0) {
      this.message.append(data);
      whole = this.message.take();
    }
    this.messageOpcode = Opcode.Continuation;
    this.host.event({ type: 'message', data: whole, binary: !text });
  }

  /**
   * Decompress `payload`: the rest of a frame (`frameEnd`; `fin` when it
   * ends the message) or a part of one still arriving.
   */
  private inflate(payload: Uint8Array, fin: boolean, frameEnd: boolean): void {
    this.reader.pause();
    this.inflating = true;
    if (!frameEnd) this.frameInflated += payload.length;
    const limit = this.maxMessageSize - (this.message?.length ?? 0);
    this.deflate!.codec.decompress(payload, fin, limit, (error, output, tooBig) => {
      this.inflating = false;
      if (this.input !== this.reader) return; // closed or failed meanwhile
      if (tooBig) {
        this.fail(new ProtocolError('WS_ERR_MESSAGE_TOO_BIG', `decompressed message exceeds ${this.maxMessageSize} bytes`));
        return;
      }
      if (error !== null || output === null) {
        this.fail(new ProtocolError('WS_ERR_DECOMPRESSION_FAILED', `invalid compressed data: ${error?.message ?? 'no output'}`));
        return;
      }
      if (this.frameEvents) {
        if (!frameEnd) {
          (this.frameOutput ??= []).push(...output);
        } else {
          const all = this.frameOutput === null ? output : [...this.frameOutput, ...output];
          this.frameOutput = null;
          const opcode = this.frameOpcode;
          this.host.event({ type: 'frame', opcode, fin, rsv1: this.frameRsv1, payload: joinChunks(all, this.allocate) });
          if (this.input !== this.reader) return; // the application closed from inside the event
        }
      }
      const last = output.length - 1;
      if (last < 0) {
        if (frameEnd) this.messagePart(EMPTY, fin);
      } else {
        for (let i = 0; i <= last && this.input === this.reader; i++) this.messagePart(output[i]!, fin && i === last);
      }
      if (this.input !== this.reader) return;
      const backlog = this.reader.bufferedBytes;
      this.reader.resume();
      if (backlog > 0 || !this.inflating) this.host.backlogDrained?.();
    });
  }

  private controlFrame(opcode: Opcode, payload: Uint8Array): void {
    switch (opcode) {
      case Opcode.Ping:
        // §5.5.2: answer with a pong carrying the same data, unless we already sent a close.
        if (this.stateValue === ProtocolState.Open) {
          this.enqueue({ opcode: Opcode.Pong, fin: true, compress: false, first: true, data: payload });
        }
        this.host.event({ type: 'ping', data: payload });
        return;
      case Opcode.Pong:
        this.host.event({ type: 'pong', data: payload });
        return;
      case Opcode.Close:
        this.closeFrame(payload);
        return;
      default:
        // Only control opcodes come here: the reader sends data frames down the message path.
        return;
    }
  }

  private closeFrame(payload: Uint8Array): void {
    let code: number = CloseCode.NoStatus;
    let reason = '';
    if (payload.length === 1) {
      this.fail(new ProtocolError('WS_ERR_INVALID_CLOSE_PAYLOAD', 'close frame with a 1-byte payload'));
      return;
    }
    if (payload.length >= 2) {
      code = (payload[0]! << 8) | payload[1]!;
      if (!isValidWireCloseCode(code)) {
        this.fail(new ProtocolError('WS_ERR_INVALID_CLOSE_CODE', `invalid close code ${code}`));
        return;
      }
      if (!isValidUtf8(payload, 2)) {
        this.fail(new ProtocolError('WS_ERR_INVALID_UTF8', 'close reason is not valid UTF-8'));
        return;
      }
      reason = decoder.decode(payload.subarray(2));
    }
    // §7.1.1/§1.4: after the peer's close frame nothing more is read.
    this.stopReading();
    const initiator = this.stateValue === ProtocolState.Open ? 'remote' : 'local';
    if (this.stateValue === ProtocolState.Open) {
      // §5.5.1: answer once, echoing the status code received.
      this.enqueueClose(payload.length >= 2 ? payload.subarray(0, 2) : EMPTY);
    }
    this.stateValue = ProtocolState.Closed;
    this.host.event({ type: 'close', code, reason, initiator });
  }

  /** Fail the WebSocket connection (§7.1.7): one place maps every error to its close frame. */
  private fail(error: ProtocolError): void {
    this.stopReading();
    if (this.stateValue === ProtocolState.Open) this.enqueueClose(encodeClosePayload(error.closeCode, error.message, true));
    this.stateValue = ProtocolState.Closed;
    this.host.event({ type: 'error', error });
  }

  private stopReading(): void {
    this.reader.stop();
    this.input = DISCARD;
    this.message?.take();
    this.messageOpcode = Opcode.Continuation;
  }
}

/** One buffer holding `chunks` in order (the chunk itself when there is one). */
function joinChunks(chunks: readonly Uint8Array[], allocate: (size: number) => Uint8Array): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const out = total === 0 ? EMPTY : allocate(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * What a frame waiting to be sent counts in `pendingSendBytes`: its payload
 * and the header it will carry (§5.2; a compressed payload's header is
 * estimated from the uncompressed length, the same on the way in and out).
 */
function queuedBytes(data: Uint8Array, masked: boolean): number {
  return data.length + frameHeaderSize(data.length, masked);
}

/**
 * Build a close frame payload (§5.5.1). Codes are those an endpoint may put
 * on the wire; reasons are cut at 123 bytes on a character boundary when they
 * come from our own error messages, refused when they come from the caller.
 */
export function encodeClosePayload(code: number | undefined, reason: string, truncate = false): Uint8Array {
  if (code === undefined) {
    if (reason === '') return EMPTY;
    code = CloseCode.Normal;
  }
  if (!Number.isInteger(code) || !isValidWireCloseCode(code)) {
    throw new UsageError('WS_ERR_INVALID_CLOSE_CODE', `close code ${code} may not be sent`);
  }
  let reasonBytes = encoder.encode(reason);
  if (reasonBytes.length > MAX_CLOSE_REASON_BYTES) {
    if (!truncate) {
      throw new UsageError('WS_ERR_CLOSE_REASON_TOO_LONG', `close reason is ${reasonBytes.length} bytes; the limit is 123`);
    }
    let end = MAX_CLOSE_REASON_BYTES;
    while (end > 0 && (reasonBytes[end]! & 0xc0) === 0x80) end--;
    reasonBytes = reasonBytes.subarray(0, end);
  }
  const payload = new Uint8Array(2 + reasonBytes.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(reasonBytes, 2);
  return payload;
}
