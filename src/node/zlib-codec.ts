import zlib from 'node:zlib';
import type { CompressionCodec } from '../protocol/codec.js';
import { UsageError } from '../protocol/errors.js';
import type { DeflateParams } from '../protocol/permessage-deflate.js';
import { sharedZlibLimiter, type ZlibLimiter } from './zlib-limiter.js';

/**
 * The permessage-deflate codec (RFC 7692 §7.2) on node:zlib: one raw
 * deflate stream for what this side sends and one raw inflate stream for
 * what it receives, each created on first use, every write sync-flushed.
 *
 * Memory per connection, with the defaults (zlib's own figures, zconf.h):
 * the compressor needs 2^(windowBits+2) + 2^(memLevel+9) bytes, 256 KiB at
 * windowBits 15 and memLevel 8; the decompressor 2^windowBits plus about
 * 7 KiB, so 39 KiB at 15; node adds a 16 KiB output buffer to each. Streams
 * are created only when a message is actually compressed or decompressed,
 * so connections that only exchange messages below the threshold never
 * allocate any. Smaller negotiated windows (serverMaxWindowBits /
 * clientMaxWindowBits) or a smaller memLevel shrink this; every call's
 * output is bounded by the `limit` the core passes.
 *
 * memLevel 8 is zlib's default (a 2^15-entry hash table); lowering it saves
 * memory at some cost in ratio, which applications can choose through the
 * option. Level 1 (zlib's fastest deflate) is the default rather than
 * zlib's 6: in a quick measurement on synthetic JSON chat messages of about
 * 5 KB (node 20, one zlib stream per message) level 1 output was about 7%
 * larger than level 6 and throughput about 40% higher, and a server spends
 * this CPU on every message it sends. Measure with bench/ before changing it.
 */

export interface ZlibCodecOptions {
  /** zlib compression level, 0 (store) to 9 (smallest), or -1 for zlib's default (6). Default 1. */
  level?: number;
  /** zlib memLevel, 1 (least memory) to 9. Default 8. */
  memLevel?: number;
  /** Bounds concurrent zlib work; default: one limiter shared by the process (10 jobs). */
  limiter?: ZlibLimiter;
}

export const DEFAULT_DEFLATE_LEVEL = 1;
export const DEFAULT_DEFLATE_MEM_LEVEL = 8;

export type ZlibCodecErrorCode =
  /** close() was called. */
  | 'ZLIB_CODEC_CLOSED'
  /** An earlier call failed or was too big; the codec keeps no usable state. */
  | 'ZLIB_CODEC_FAILED'
  /** A second call in one direction while the first is outstanding (codec.ts forbids it). */
  | 'ZLIB_CODEC_BUSY'
  /** zlib rejected the data, or the output was not what DEFLATE guarantees. */
  | 'ZLIB_ERROR';

export class ZlibCodecError extends Error {
  override readonly name = 'ZlibCodecError';
  constructor(
    readonly code: ZlibCodecErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** §7.2.1/§7.2.2: the end of the empty stored block a sync flush writes, removed by the sender and restored by the receiver. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/**
 * §7.2.1 lets a sender end DEFLATE data sets with BFINAL=1 and start new
 * ones. zlib stops at such a block, so what follows goes to a fresh stream,
 * which starts with an empty window: a later reference back across the
 * final block fails as corrupt data (senders that end data sets start
 * afresh anyway). Each fresh stream costs an allocation, so one frame may
 * contain only a few; more is treated as an attack on CPU rather than data.
 */
const MAX_STREAM_ENDS_PER_FRAME = 8;

export function createZlibCodec(params: DeflateParams, role: 'server' | 'client', options: ZlibCodecOptions = {}): CompressionCodec {
  return new ZlibCodec(params, role, options);
}

/** The two independent zlib streams of a codec. */
type Direction = 'compress' | 'decompress';

interface CompressCall {
  chunks: Buffer[];
  settle(error: Error | null, output: Uint8Array | null): void;
}

interface DecompressCall {
  chunks: Buffer[];
  total: number;
  limit: number;
  streamEnds: number;
  settle(error: Error | null, output: Uint8Array[] | null, tooBig: boolean): void;
}

class ZlibCodec implements CompressionCodec {
  readonly #level: number;
  readonly #memLevel: number;
  readonly #limiter: ZlibLimiter;
  /** The window and context rule of what this side sends... */
  readonly #sendWindowBits: number;
  readonly #sendNoContextTakeover: boolean;
  /** ...and of what the peer sends. */
  readonly #receiveWindowBits: number;
  readonly #receiveNoContextTakeover: boolean;

  #closed = false;
  /**
   * A direction whose zlib stream failed (or was stopped past a limit)
   * refuses later work. The two directions are separate zlib streams, so a
   * peer's corrupt or oversized input never takes down what we are still
   * compressing for it (the close frame that reports it queues behind).
   */
  readonly #failed = { compress: false, decompress: false };
  #deflate: zlib.DeflateRaw | null = null;
  #inflate: zlib.InflateRaw | null = null;
  #compressing = false;
  #decompressing = false;
  /** The call whose job is running, so stream events and close() can end it. */
  #compressCall: CompressCall | null = null;
  #decompressCall: DecompressCall | null = null;

  constructor(params: DeflateParams, role: 'server' | 'client', options: ZlibCodecOptions) {
    this.#level = checkInteger('level', options.level ?? DEFAULT_DEFLATE_LEVEL, -1, 9);
    this.#memLevel = checkInteger('memLevel', options.memLevel ?? DEFAULT_DEFLATE_MEM_LEVEL, 1, 9);
    this.#limiter = options.limiter ?? sharedZlibLimiter;
    const serverBits = checkInteger('serverMaxWindowBits', params.serverMaxWindowBits, 8, 15);
    const clientBits = checkInteger('clientMaxWindowBits', params.clientMaxWindowBits, 8, 15);
    // §7.1.1, §7.1.2: server_* parameters govern what the server sends, client_* what the client sends.
    const server = role === 'server';
    this.#sendWindowBits = server ? serverBits : clientBits;
    this.#sendNoContextTakeover = server ? params.serverNoContextTakeover : params.clientNoContextTakeover;
    this.#receiveWindowBits = server ? clientBits : serverBits;
    this.#receiveNoContextTakeover = server ? params.clientNoContextTakeover : params.serverNoContextTakeover;
  }

  compress(data: Uint8Array, fin: boolean, done: (error: Error | null, output: Uint8Array | null) => void): void {
    const refused = this.#refusal('compress', this.#compressing);
    if (refused !== null) {
      process.nextTick(done, refused, null);
      return;
    }
    this.#compressing = true;
    this.#limiter.run((release) => {
      let settled = false;
      const call: CompressCall = {
        chunks: [],
        settle: (error, output) => {
          if (settled) return;
          settled = true;
          if (this.#compressCall === call) this.#compressCall = null;
          this.#compressing = false;
          release();
          done(error, output);
        },
      };
      // The codec may have been closed or failed while this job waited.
      const refusedLate = this.#refusal('compress', false);
      if (refusedLate !== null) {
        call.settle(refusedLate, null);
        return;
      }
      this.#compressCall = call;
      const deflate = this.#deflate ?? this.#createDeflate();
      // Every write is sync-flushed (the stream's `flush` option), so when
      // its callback runs all of this data has come out, ending in 00 00 ff ff.
      deflate.write(data, (error) => {
        if (this.#compressCall !== call) return; // failed or closed meanwhile
        if (error) {
          this.#fail('compress');
          // After a zlib error the write fails as "destroyed"; the stream keeps the real cause.
          call.settle(zlibError(deflate.errored ?? error), null);
          return;
        }
        const output = compressedOutput(call.chunks, fin);
        if (output === null) {
          this.#fail('compress');
          call.settle(new ZlibCodecError('ZLIB_ERROR', 'sync flush output does not end in 00 00 ff ff'), null);
          return;
        }
        // §7.2.1 with *_no_context_takeover: the next message starts from an empty window.
        if (fin && this.#sendNoContextTakeover) deflate.reset();
        call.settle(null, output);
      });
    });
  }

  decompress(data: Uint8Array, fin: boolean, limit: number, done: (error: Error | null, output: Uint8Array[] | null, tooBig: boolean) => void): void {
    const refused = this.#refusal('decompress', this.#decompressing);
    if (refused !== null) {
      process.nextTick(done, refused, null, false);
      return;
    }
    this.#decompressing = true;
    this.#limiter.run((release) => {
      let settled = false;
      const call: DecompressCall = {
        chunks: [],
        total: 0,
        limit,
        streamEnds: 0,
        settle: (error, output, tooBig) => {
          if (settled) return;
          settled = true;
          if (this.#decompressCall === call) this.#decompressCall = null;
          this.#decompressing = false;
          release();
          done(error, output, tooBig);
        },
      };
      const refusedLate = this.#refusal('decompress', false);
      if (refusedLate !== null) {
        call.settle(refusedLate, null, false);
        return;
      }
      this.#decompressCall = call;
      this.#inflateInto(call, data, fin);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new ZlibCodecError('ZLIB_CODEC_CLOSED', 'the codec was closed');
    this.#abandon('compress', error);
    this.#abandon('decompress', error);
  }

  /**
   * Feeds one frame's payload (and on `fin` the §7.2.2 tail) to the
   * inflater. The output arrives through the stream's 'data' listener, which
   * stops everything once the call's output passes its limit.
   */
  #inflateInto(call: DecompressCall, input: Uint8Array, fin: boolean): void {
    const fresh = this.#inflate === null;
    const inflate = this.#inflate ?? this.#createInflate();
    const consumedBefore = inflate.bytesWritten;
    const afterLastWrite = (error: Error | null | undefined): void => {
      if (this.#decompressCall !== call) return; // too big, failed or closed meanwhile
      if (error) {
        this.#fail('decompress');
        call.settle(zlibError(inflate.errored ?? error), null, false);
        return;
      }
      // zlib consumes all input unless a block with BFINAL=1 ended its data
      // set (§7.2.1 allows such blocks), in this input or, when it ended
      // exactly at the end of an earlier one, before it; zlib then ignores
      // the rest. What follows starts a new data set in a new stream.
      const consumed = inflate.bytesWritten - consumedBefore;
      if (consumed < input.length + (fin ? TAIL.length : 0)) {
        this.#discardInflate();
        if (consumed < input.length) {
          call.streamEnds++;
          // A fresh stream reads at least a block header; one that reads nothing would loop.
          const stuck = fresh && consumed === 0;
          if (stuck || call.streamEnds > MAX_STREAM_ENDS_PER_FRAME) {
            this.#fail('decompress');
            const reason = stuck ? 'zlib stopped reading the data' : 'too many final DEFLATE blocks in one frame';
            call.settle(new ZlibCodecError('ZLIB_ERROR', reason), null, false);
            return;
          }
          this.#inflateInto(call, input.subarray(consumed), fin);
          return;
        }
        // The data set ended at the end of the payload, inside the appended
        // tail: nothing more belongs to this message.
      } else if (fin && this.#receiveNoContextTakeover) {
        // The peer starts its next message from an empty window, so nothing needs keeping.
        inflate.reset();
      }
      call.settle(null, call.chunks, false);
    };
    if (fin) {
      inflate.write(input);
      inflate.write(TAIL, afterLastWrite);
    } else {
      inflate.write(input, afterLastWrite);
    }
  }

  #createDeflate(): zlib.DeflateRaw {
    const deflate = zlib.createDeflateRaw({
      level: this.#level,
      memLevel: this.#memLevel,
      // zlib has no 256-byte window for raw deflate and node turns 8 into 9
      // anyway; 9 keeps every distance within 250 bytes, so it honours a
      // limit of 8 (see permessage-deflate.ts).
      windowBits: this.#sendWindowBits === 8 ? 9 : this.#sendWindowBits,
      flush: zlib.constants.Z_SYNC_FLUSH,
    });
    deflate.on('data', (chunk: Buffer) => {
      if (this.#deflate === deflate) this.#compressCall?.chunks.push(chunk);
    });
    deflate.on('error', (error: Error) => {
      if (this.#deflate !== deflate) return;
      const call = this.#compressCall;
      this.#fail('compress');
      call?.settle(zlibError(error), null);
    });
    this.#deflate = deflate;
    return deflate;
  }

  #createInflate(): zlib.InflateRaw {
    const inflate = zlib.createInflateRaw({
      windowBits: this.#receiveWindowBits,
      flush: zlib.constants.Z_SYNC_FLUSH,
    });
    inflate.on('data', (chunk: Buffer) => {
      const call = this.#decompressCall;
      if (call === null || this.#inflate !== inflate) return;
      call.total += chunk.length;
      if (call.total > call.limit) {
        // Destroying the stream stops zlib after the chunk it is working on,
        // so a bomb is never inflated further than one chunk past the limit.
        this.#fail('decompress');
        call.settle(null, null, true);
        return;
      }
      call.chunks.push(chunk);
    });
    inflate.on('error', (error: Error) => {
      if (this.#inflate !== inflate) return;
      const call = this.#decompressCall;
      this.#fail('decompress');
      call?.settle(zlibError(error), null, false);
    });
    this.#inflate = inflate;
    return inflate;
  }

  #discardInflate(): void {
    this.#inflate?.destroy();
    this.#inflate = null;
  }

  /**
   * A failed call leaves its zlib stream in an unknown state, so that
   * direction refuses all later work. The caller settles the failing call
   * itself, right after.
   */
  #fail(direction: Direction): void {
    if (this.#closed || this.#failed[direction]) return;
    this.#failed[direction] = true;
    this.#abandon(direction, new ZlibCodecError('ZLIB_CODEC_FAILED', `the codec's ${direction} direction failed`));
  }

  /**
   * Stops all zlib work. Calls still outstanding end with `error`, after the
   * current caller has returned, so nobody is re-entered while tearing down;
   * a call that settles first (the one that failed) ignores it.
   */
  #abandon(direction: Direction, error: ZlibCodecError): void {
    if (direction === 'compress') {
      this.#deflate?.destroy();
      this.#deflate = null;
      const call = this.#compressCall;
      if (call !== null) process.nextTick(() => call.settle(error, null));
    } else {
      this.#discardInflate();
      const call = this.#decompressCall;
      if (call !== null) process.nextTick(() => call.settle(error, null, false));
    }
  }

  #refusal(direction: Direction, busy: boolean): ZlibCodecError | null {
    if (this.#closed) return new ZlibCodecError('ZLIB_CODEC_CLOSED', 'the codec was closed');
    if (this.#failed[direction]) {
      return new ZlibCodecError('ZLIB_CODEC_FAILED', `an earlier ${direction} call failed; that direction cannot be used`);
    }
    if (busy) {
      return new ZlibCodecError('ZLIB_CODEC_BUSY', 'a call in the same direction is still outstanding');
    }
    return null;
  }
}

/**
 * The bytes to send for one compress call. §7.2.1: at the end of a message
 * the 00 00 ff ff of the final sync flush is removed. The flush starts on a
 * byte boundary (the previous one ended there), so its output is at least
 * the empty stored block's header byte plus those four. A flush with no new
 * input writes nothing at all (zlib reports Z_BUF_ERROR, node ignores it);
 * the message then still needs a byte that, with the tail the receiver
 * appends, forms an empty stored block (§7.2.3.6). Returns null for output
 * zlib never produces, rather than send something the peer would misread.
 */
function compressedOutput(chunks: Buffer[], fin: boolean): Uint8Array | null {
  const output = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  // A fresh buffer each time: the caller may mask its output in place.
  if (output.length === 0) return fin ? Buffer.from([0x00]) : output;
  const n = output.length;
  if (n < 5 || output[n - 4] !== 0x00 || output[n - 3] !== 0x00 || output[n - 2] !== 0xff || output[n - 1] !== 0xff) {
    return null;
  }
  return fin ? output.subarray(0, n - 4) : output;
}

function zlibError(error: Error): ZlibCodecError {
  return new ZlibCodecError('ZLIB_ERROR', `zlib: ${error.message}`, { cause: error });
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
