import { applyMask } from './mask.js';
import type { Opcode } from './opcode.js';

/**
 * Frame serialisation (RFC 6455 §5.2). A frame leaves as two chunks, header
 * and payload, so a large payload is never copied just to sit behind a
 * few header bytes; the I/O layer hands both to one vectored write.
 */

export interface FrameBits {
  fin: boolean;
  /** RSV1: set on the first frame of a compressed message (RFC 7692 §6). */
  rsv1: boolean;
  opcode: Opcode;
}

/** Size of the header for a payload of `length` bytes, with the 4-byte mask key when masked. */
export function frameHeaderSize(length: number, masked: boolean): number {
  const base =
    length < 126 ? 2
    : length < 0x10000 ? 4
    : 10;
  return masked ? base + 4 : base;
}

/**
 * Write a frame header into `target` at `offset` and return the offset after
 * it. Lengths use the shortest of the three encodings, as §5.2 requires.
 */
export function writeFrameHeader(target: Uint8Array, offset: number, bits: FrameBits, length: number, maskKey: Uint8Array | null): number {
  target[offset] = (bits.fin ? 0x80 : 0) | (bits.rsv1 ? 0x40 : 0) | bits.opcode;
  const maskBit = maskKey === null ? 0 : 0x80;
  let o = offset + 2;
  if (length < 126) {
    target[offset + 1] = maskBit | length;
  } else if (length < 0x10000) {
    target[offset + 1] = maskBit | 126;
    target[o++] = length >>> 8;
    target[o++] = length & 0xff;
  } else {
    target[offset + 1] = maskBit | 127;
    // 64-bit length; JavaScript lengths stay far below 2^53, so the top bit is never set.
    const high = Math.floor(length / 0x100000000);
    target[o++] = 0;
    target[o++] = 0;
    target[o++] = (high >>> 8) & 0xff;
    target[o++] = high & 0xff;
    target[o++] = (length >>> 24) & 0xff;
    target[o++] = (length >>> 16) & 0xff;
    target[o++] = (length >>> 8) & 0xff;
    target[o++] = length & 0xff;
  }
  if (maskKey !== null) {
    target[o++] = maskKey[0]!;
    target[o++] = maskKey[1]!;
    target[o++] = maskKey[2]!;
    target[o++] = maskKey[3]!;
  }
  return o;
}

/**
 * Encode one frame as `[header, payload]`. With a mask key the payload is
 * masked into a new buffer: the caller's data is never modified.
 */
export function encodeFrame(bits: FrameBits, payload: Uint8Array, maskKey: Uint8Array | null): [Uint8Array, Uint8Array] {
  const header = new Uint8Array(frameHeaderSize(payload.length, maskKey !== null));
  writeFrameHeader(header, 0, bits, payload.length, maskKey);
  if (maskKey === null || payload.length === 0) return [header, payload];
  const masked = new Uint8Array(payload.length);
  applyMask(payload, maskKey, masked);
  return [header, masked];
}
