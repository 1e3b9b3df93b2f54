import { ProtocolError } from './errors.js';
import { applyMask } from './mask.js';
import { isControl, isKnownOpcode, type Opcode } from './opcode.js';
import { allocateZeroed } from './allocate.js';

/**
 * Incremental frame parser (RFC 6455 §5.2): an explicit state machine over
 * header, extended length, mask key and payload. Bytes may arrive split at
 * any boundary; a payload that lies inside one received chunk is handed on
 * as a view of that chunk, unmasked in place, without a copy.
 *
 * It checks what can be checked from one frame alone. Rules that need the
 * message context (continuations, size limits, UTF-8) belong to the sink.
 */
export interface FrameSink {
  /**
   * Called once the payload length is known and before any payload byte is
   * buffered, so limits are enforced before memory is spent. A returned
   * error fails the connection.
   */
  frameHeader(fin: boolean, rsv1: boolean, opcode: Opcode, length: number): ProtocolError | null;
  /** The complete, unmasked payload of the frame whose header came last. */
  framePayload(payload: Uint8Array): void;
  /**
   * Optional: the next unmasked bytes of a payload that is still arriving
   * (only for payloads spread over several reads; `framePayload` follows
   * with the whole payload, these bytes included). Lets the sink fail fast
   * on what it can judge from a prefix (RFC 6455 §8.1, invalid UTF-8) or
   * start work on it; it may pause the reader meanwhile. A returned error
   * fails the connection.
   */
  framePayloadPart?(part: Uint8Array): ProtocolError | null;
  /** A framing violation; the reader has stopped. */
  frameError(error: ProtocolError): void;
}

export interface FrameReaderOptions {
  /** Servers require masked frames, clients forbid them (§5.1). */
  expectMasked: boolean;
  /** RSV1 is legal only when an extension using it was negotiated (§5.2, RFC 7692 §6). */
  allowRsv1: boolean;
  /**
   * Allocates the buffers the reader copies into: a payload spread over
   * several reads, gathered once it is complete, and the blocks small reads
   * are staged in. Every byte used gets written first, so a runtime that can
   * skip zero-filling (Node's `Buffer.allocUnsafe`) may pass its allocator.
   * Default: `new Uint8Array`.
   */
  allocate?: (size: number) => Uint8Array;
}

/**
 * What waits to be parsed (a frame still arriving, input held while paused)
 * is kept as the reads it came in, by reference, and copied once when the
 * frame is complete; nothing is allocated for what a header merely claims.
 * A buffer object costs a few hundred bytes whatever its size, so a peer
 * writing one byte per TCP segment must not get one kept per byte: once
 * MAX_HELD_READS reads wait, a read under SMALL_READ bytes is copied into a
 * shared block of STAGE_SIZE. Memory then follows the bytes: at most the
 * bytes themselves, about 5% for reads kept whole, and one block.
 */
const MAX_HELD_READS = 8;
const SMALL_READ = 4096;
const STAGE_SIZE = 16 * 1024;

/**
 * A payload of at least GATHER_MIN bytes spread over many reads is gathered
 * into its final buffer as it arrives, each read unmasked straight into it:
 * one pass over the bytes instead of unmasking in place and copying at the
 * end. The buffer is allocated only once a quarter of the payload is here
 * (GATHER_RATIO), so what a header merely claims still costs nothing and a
 * partial frame never holds more than four times the bytes it brought.
 */
const GATHER_MIN = 64 * 1024;
const GATHER_RATIO = 4;

const enum ReadState {
  Header,
  Length16,
  Length64,
  MaskKey,
  Payload,
  Stopped,
}

export class FrameReader {
  private readonly chunks: Uint8Array[] = [];
  /** Read position inside chunks[0]. */
  private offset = 0;
  private buffered = 0;
  /** Block that small reads are copied into (see SMALL_READ); reads before `stageEnd` may be in use, new ones go after. */
  private stage: Uint8Array | null = null;
  private stageEnd = 0;
  /**
   * Payload bytes of the frame still arriving that were already unmasked in
   * place and shown to the sink; they end at chunks[doneChunk][doneOffset].
   */
  private done = 0;
  private doneChunk = 0;
  private doneOffset = 0;
  /** The payload's final buffer while it is gathered (see GATHER_MIN); its first `gathered` bytes are in, unmasked. */
  private gather: Uint8Array | null = null;
  private gathered = 0;
  private state = ReadState.Header;
  private paused = false;
  private running = false;

  private fin = false;
  private rsv1 = false;
  private opcode: Opcode = 0;
  private masked = false;
  private length = 0;
  /** The frame's mask key, big-endian in one number: a typed array per connection costs ~400 bytes. */
  private maskWord = 0;

  private readonly expectMasked: boolean;
  private readonly allowRsv1: boolean;
  private readonly allocate: (size: number) => Uint8Array;

  constructor(
    private readonly sink: FrameSink,
    options: FrameReaderOptions,
  ) {
    this.expectMasked = options.expectMasked;
    this.allowRsv1 = options.allowRsv1;
    this.allocate = options.allocate ?? allocateZeroed;
  }

  /** Bytes received and not yet parsed (the backlog while paused). */
  get bufferedBytes(): number {
    return this.buffered + this.gathered;
  }

  push(chunk: Uint8Array): void {
    if (this.state === ReadState.Stopped || chunk.length === 0) return;
    // Common path: nothing waiting, so the chunk is parsed where it lies.
    if (this.chunks.length < MAX_HELD_READS || chunk.length >= SMALL_READ) this.chunks.push(chunk);
    else this.stageSmall(chunk);
    this.buffered += chunk.length;
    if (!this.paused && !this.running) this.run();
  }

  /** Append a small read to the staging block, extending the last chunk when it is the block's tail. */
  private stageSmall(chunk: Uint8Array): void {
    let stage = this.stage;
    const last = this.chunks.length - 1;
    const tail = this.chunks[last]!;
    if (stage !== null && this.stageEnd + chunk.length <= stage.length) {
      stage.set(chunk, this.stageEnd);
      // The last chunk ends where the block's free space starts: widen that view.
      if (tail.buffer === stage.buffer && tail.byteOffset >= stage.byteOffset && tail.byteOffset + tail.length === stage.byteOffset + this.stageEnd) {
        const start = tail.byteOffset - stage.byteOffset;
        this.chunks[last] = stage.subarray(start, this.stageEnd + chunk.length);
      } else {
        this.chunks.push(stage.subarray(this.stageEnd, this.stageEnd + chunk.length));
      }
      this.stageEnd += chunk.length;
      return;
    }
    stage = this.stage = this.allocate(STAGE_SIZE);
    stage.set(chunk, 0);
    this.stageEnd = chunk.length;
    this.chunks.push(stage.subarray(0, chunk.length));
  }

  /** Stop handing out frames (while the sink waits for asynchronous work). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused || this.state === ReadState.Stopped) return;
    this.paused = false;
    if (!this.running) this.run();
  }

  /** Drop everything; nothing more is parsed. */
  stop(): void {
    this.state = ReadState.Stopped;
    this.paused = true;
    this.chunks.length = 0;
    this.buffered = 0;
    this.done = 0;
    this.stage = null;
    this.gather = null;
    this.gathered = 0;
  }

  private run(): void {
    this.running = true;
    try {
      while (!this.paused) {
        switch (this.state) {
          case ReadState.Header:
            if (this.buffered < 2 || !this.readHeader()) return;
            break;
          case ReadState.Length16:
            if (this.buffered < 2 || !this.readLength16()) return;
            break;
          case ReadState.Length64:
            if (this.buffered < 8 || !this.readLength64()) return;
            break;
          case ReadState.MaskKey:
            if (this.buffered < 4) return;
            this.maskWord = this.readUint32();
            this.state = ReadState.Payload;
            break;
          case ReadState.Payload: {
            if (this.gather !== null || (this.length >= GATHER_MIN && this.buffered * GATHER_RATIO >= this.length)) {
              if (!this.gatherPayload()) return;
              break;
            }
            if (this.buffered < this.length) {
              this.advancePartial();
              return;
            }
            const payload = this.takePayload();
            this.state = ReadState.Header;
            this.sink.framePayload(payload);
            break;
          }
          case ReadState.Stopped:
            return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** XOR `bytes`, which start at payload offset `position`, with the frame's key turned to that offset, into `target`. */
  private unmask(bytes: Uint8Array, position: number, target: Uint8Array = bytes): void {
    const key = MASK_SCRATCH;
    const shift = (position & 3) * 8;
    // Rotating the big-endian key word left by a byte per position turns byte p to the front.
    const word = shift === 0 ? this.maskWord : ((this.maskWord << shift) | (this.maskWord >>> (32 - shift))) >>> 0;
    key[0] = word >>> 24;
    key[1] = (word >>> 16) & 0xff;
    key[2] = (word >>> 8) & 0xff;
    key[3] = word & 0xff;
    applyMask(bytes, key, target);
  }

  /**
   * Move what has arrived of the payload into its final buffer, unmasking
   * on the way, and show the sink each part until the last (as
   * `advancePartial` does); deliver the payload once complete. Returns
   * false while the frame is still incomplete, or the sink paused or
   * failed it.
   */
  private gatherPayload(): boolean {
    let gather = this.gather;
    if (gather === null) {
      gather = this.gather = this.allocate(this.length);
      // Bytes advancePartial already unmasked in place and showed are copied as they are.
      let shown = this.done;
      this.done = 0;
      while (shown > 0) {
        const piece = this.takeFromFirst(shown);
        gather.set(piece, this.gathered);
        this.gathered += piece.length;
        shown -= piece.length;
      }
    }
    const length = this.length;
    while (this.buffered > 0) {
      const position = this.gathered;
      const piece = this.takeFromFirst(length - position);
      const target = gather.subarray(position, position + piece.length);
      if (this.masked) this.unmask(piece, position, target);
      else target.set(piece);
      this.gathered += piece.length;
      if (this.gathered === length) break;
      const error = this.sink.framePayloadPart?.(target) ?? null;
      if (error !== null) {
        this.stop();
        this.sink.frameError(error);
        return false;
      }
      if ((this.state as ReadState) === ReadState.Stopped || this.paused) return false;
    }
    if (this.gathered < length) return false;
    this.gather = null;
    this.gathered = 0;
    this.state = ReadState.Header;
    this.sink.framePayload(gather);
    return true;
  }

  /** Up to `n` bytes from the front of the first chunk, as a view, consumed. */
  private takeFromFirst(n: number): Uint8Array {
    const chunk = this.chunks[0]!;
    const end = Math.min(chunk.length, this.offset + n);
    const piece = chunk.subarray(this.offset, end);
    this.buffered -= piece.length;
    if (end === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    } else {
      this.offset = end;
    }
    return piece;
  }

  /**
   * Unmask in place the payload bytes that arrived since the last call and
   * show them to the sink, which may fail the frame on them (§8.1: invalid
   * UTF-8 is failed when it arrives, not when the frame is complete). Every
   * byte waiting is payload here: nothing is taken from the chunks until the
   * frame is complete, and reads only ever join at the end.
   */
  private advancePartial(): void {
    const chunks = this.chunks;
    if (chunks.length === 0) return;
    let index = this.done === 0 ? 0 : this.doneChunk;
    let at = this.done === 0 ? this.offset : this.doneOffset;
    for (; index < chunks.length; index++, at = 0) {
      const chunk = chunks[index]!;
      if (at === chunk.length) continue;
      const part = at === 0 ? chunk : chunk.subarray(at);
      const position = this.done;
      this.done += part.length;
      if (this.masked) this.unmask(part, position);
      const error = this.sink.framePayloadPart?.(part) ?? null;
      if (error !== null) {
        this.stop();
        this.sink.frameError(error);
        return;
      }
      if ((this.state as ReadState) === ReadState.Stopped) return;
      if (this.paused) {
        // The sink waits for asynchronous work on this part: the next parts after resume().
        this.doneChunk = index;
        this.doneOffset = chunk.length;
        return;
      }
    }
    this.doneChunk = chunks.length - 1;
    this.doneOffset = chunks[chunks.length - 1]!.length;
  }

  private readHeader(): boolean {
    const b0 = this.readByte();
    const b1 = this.readByte();
    // §5.2: RSV2 and RSV3 belong to extensions; none we negotiate uses them.
    if ((b0 & 0x30) !== 0 || ((b0 & 0x40) !== 0 && !this.allowRsv1)) {
      return this.fail('WS_ERR_UNEXPECTED_RSV', 'reserved bits set without a negotiated extension');
    }
    const opcode = b0 & 0x0f;
    if (!isKnownOpcode(opcode)) return this.fail('WS_ERR_INVALID_OPCODE', `unknown opcode 0x${opcode.toString(16)}`);
    this.fin = (b0 & 0x80) !== 0;
    this.rsv1 = (b0 & 0x40) !== 0;
    this.opcode = opcode;
    this.masked = (b1 & 0x80) !== 0;
    // §5.1: a server MUST close on an unmasked frame, a client on a masked one.
    if (this.masked !== this.expectMasked) {
      return this.expectMasked ?
          this.fail('WS_ERR_EXPECTED_MASK', 'client frames must be masked')
        : this.fail('WS_ERR_UNEXPECTED_MASK', 'server frames must not be masked');
    }
    const length = b1 & 0x7f;
    if (isControl(opcode)) {
      // §5.5: control frames carry at most 125 bytes and are never fragmented.
      if (!this.fin) return this.fail('WS_ERR_FRAGMENTED_CONTROL', 'control frames must not be fragmented');
      if (length > 125) return this.fail('WS_ERR_CONTROL_TOO_LONG', 'control frame payload over 125 bytes');
    }
    if (length === 126) {
      this.state = ReadState.Length16;
      return true;
    }
    if (length === 127) {
      this.state = ReadState.Length64;
      return true;
    }
    return this.haveLength(length);
  }

  private readLength16(): boolean {
    const length = (this.readByte() << 8) | this.readByte();
    // §5.2: "the minimal number of bytes MUST be used to encode the length".
    if (length < 126) return this.fail('WS_ERR_NON_MINIMAL_LENGTH', '16-bit length used for a length under 126');
    return this.haveLength(length);
  }

  private readLength64(): boolean {
    const high = this.readUint32();
    const low = this.readUint32();
    // §5.2: the most significant bit of the 64-bit length MUST be 0.
    if (high >= 0x80000000) return this.fail('WS_ERR_INVALID_LENGTH', '64-bit length with the top bit set');
    if (high === 0 && low < 0x10000) {
      return this.fail('WS_ERR_NON_MINIMAL_LENGTH', '64-bit length used for a length under 65536');
    }
    // Above 2^53 the value is inexact, but any size limit rejects it anyway.
    return this.haveLength(high * 0x100000000 + low);
  }

  private haveLength(length: number): boolean {
    this.length = length;
    this.state = this.masked ? ReadState.MaskKey : ReadState.Payload;
    const error = this.sink.frameHeader(this.fin, this.rsv1, this.opcode, length);
    if (error !== null) {
      this.stop();
      this.sink.frameError(error);
      return false;
    }
    return (this.state as ReadState) !== ReadState.Stopped;
  }

  private fail(code: ProtocolError['code'], message: string): false {
    this.stop();
    this.sink.frameError(new ProtocolError(code, message));
    return false;
  }

  private readByte(): number {
    const chunk = this.chunks[0]!;
    const byte = chunk[this.offset++]!;
    this.buffered--;
    if (this.offset === chunk.length) {
      this.chunks.shift();
      this.offset = 0;
    }
    return byte;
  }

  private readUint32(): number {
    return ((this.readByte() << 24) | (this.readByte() << 16) | (this.readByte() << 8) | this.readByte()) >>> 0;
  }

  /**
   * The whole payload of the current frame, all of which has arrived,
   * unmasked (§5.3). One that lies inside the first chunk is unmasked where
   * it lies and handed on as a view. One spread over several chunks is
   * copied into a new buffer, each piece unmasked on its way in: one pass
   * over the bytes, not a copy and then a second pass to unmask the copy.
   * Either way the first `done` bytes were already unmasked in place and
   * shown to the sink (`advancePartial`): they are taken as they are, since
   * XORing them again would mask them anew.
   */
  private takePayload(): Uint8Array {
    const length = this.length;
    const done = this.done;
    this.done = 0;
    const first = this.chunks[0];
    if (first === undefined) return EMPTY;
    if (length <= first.length - this.offset) {
      const payload = this.takeFromFirst(length);
      if (this.masked && length > done) this.unmask(done === 0 ? payload : payload.subarray(done), done);
      return payload;
    }
    const payload = this.allocate(length);
    for (let filled = 0; filled < length;) {
      // A piece never straddles `done`: shown bytes are copied, the rest unmasked into place.
      const shown = filled < done;
      const piece = this.takeFromFirst((shown ? done : length) - filled);
      if (this.masked && !shown) this.unmask(piece, filled, payload.subarray(filled, filled + piece.length));
      else payload.set(piece, filled);
      filled += piece.length;
    }
    return payload;
  }
}

const EMPTY = new Uint8Array(0);
/** Shared by every reader: it is filled and used within one synchronous call. */
const MASK_SCRATCH = new Uint8Array(4);
