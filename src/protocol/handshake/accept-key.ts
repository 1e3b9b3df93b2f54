import { UsageError } from '../errors.js';

/**
 * The Sec-WebSocket-Key / Sec-WebSocket-Accept pair (RFC 6455 §1.3, §4.1,
 * §4.2.2): the client sends a random 16-byte nonce in base64, the server
 * proves it read the handshake by answering base64(SHA-1(key + GUID)).
 * SHA-1 and base64 are written out here because the core may not import
 * node:crypto, and WebCrypto's digest is asynchronous.
 */

/** The GUID of RFC 6455 §1.3, appended to the key before hashing. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const GUID_BYTES = Uint8Array.from(WEBSOCKET_GUID, (ch) => ch.charCodeAt(0));

// Working memory reused by every digest: the core runs on one thread and a
// digest never yields, so sharing it is safe and spares thousands of
// handshakes per second their allocations.
const W = new Int32Array(80);
const STATE = new Int32Array(5);
/** Holds the padded final block(s). */
const TAIL = new Uint8Array(128);
/** Holds key + GUID for keys of ordinary length. */
const KEY_BUFFER = new Uint8Array(256);
const DIGEST = new Uint8Array(20);

/** Runs the SHA-1 compression function (FIPS 180-4 §6.1.2) over the 64 bytes at `block[offset]`. */
function compress(block: Uint8Array, offset: number): void {
  const w = W;
  const state = STATE;
  for (let t = 0, o = offset; t < 16; t++, o += 4) {
    w[t] = (block[o]! << 24) | (block[o + 1]! << 16) | (block[o + 2]! << 8) | block[o + 3]!;
  }
  for (let t = 16; t < 80; t++) {
    const x = w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!;
    w[t] = (x << 1) | (x >>> 31);
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let t = 0;
  for (; t < 20; t++) {
    const temp = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + w[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }
  for (; t < 40; t++) {
    const temp = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + w[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }
  for (; t < 60; t++) {
    const temp = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + 0x8f1bbcdc + w[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }
  for (; t < 80; t++) {
    const temp = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0xca62c1d6 + w[t]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = temp;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
}

/** Hashes `data[0..n)` and leaves the digest in DIGEST. */
function digest(data: Uint8Array, n: number): Uint8Array {
  const state = STATE;
  state[0] = 0x67452301;
  state[1] = 0xefcdab89 | 0;
  state[2] = 0x98badcfe | 0;
  state[3] = 0x10325476;
  state[4] = 0xc3d2e1f0 | 0;
  const whole = n - (n % 64);
  for (let offset = 0; offset < whole; offset += 64) compress(data, offset);
  // Padding (FIPS 180-4 §5.1.1): 0x80, zeros, then the bit length as a
  // 64-bit big-endian number; one or two final blocks.
  const left = n - whole;
  const end = left < 56 ? 64 : 128;
  const tail = TAIL;
  tail.fill(0, 0, end);
  tail.set(data.subarray(whole, n));
  tail[left] = 0x80;
  const bitsHigh = Math.floor(n / 0x20000000);
  const bitsLow = (n << 3) >>> 0;
  tail[end - 8] = bitsHigh >>> 24;
  tail[end - 7] = bitsHigh >>> 16;
  tail[end - 6] = bitsHigh >>> 8;
  tail[end - 5] = bitsHigh;
  tail[end - 4] = bitsLow >>> 24;
  tail[end - 3] = bitsLow >>> 16;
  tail[end - 2] = bitsLow >>> 8;
  tail[end - 1] = bitsLow;
  for (let offset = 0; offset < end; offset += 64) compress(tail, offset);
  const out = DIGEST;
  for (let i = 0; i < 5; i++) {
    const word = state[i]!;
    out[i * 4] = word >>> 24;
    out[i * 4 + 1] = word >>> 16;
    out[i * 4 + 2] = word >>> 8;
    out[i * 4 + 3] = word;
  }
  return out;
}

/** SHA-1 digest (FIPS 180-4) of `data`: 20 new bytes. */
export function sha1(data: Uint8Array): Uint8Array {
  return digest(data, data.length).slice();
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ENCODE = new Uint8Array(64);
/** Char code -> 6-bit value, 255 for chars outside the alphabet. */
const DECODE = new Uint8Array(128).fill(255);
for (let i = 0; i < 64; i++) {
  ENCODE[i] = ALPHABET.charCodeAt(i);
  DECODE[ALPHABET.charCodeAt(i)] = i;
}
const PAD = 0x3d; // '='

/** Base64 with the standard alphabet and "=" padding (RFC 4648 §4). */
export function base64Encode(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(Math.ceil(n / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = ENCODE[v >>> 18]!;
    out[o++] = ENCODE[(v >>> 12) & 63]!;
    out[o++] = ENCODE[(v >>> 6) & 63]!;
    out[o++] = ENCODE[v & 63]!;
  }
  if (i < n) {
    const two = i + 1 < n;
    const v = (bytes[i]! << 16) | (two ? bytes[i + 1]! << 8 : 0);
    out[o++] = ENCODE[v >>> 18]!;
    out[o++] = ENCODE[(v >>> 12) & 63]!;
    out[o++] = two ? ENCODE[(v >>> 6) & 63]! : PAD;
    out[o++] = PAD;
  }
  return String.fromCharCode.apply(null, out as unknown as number[]);
}

/**
 * Strict base64 decoding (RFC 4648 §4): length a multiple of 4, only
 * alphabet characters, "=" only as the final padding, and the unused bits
 * before the padding zero (§3.5 allows decoders to insist on that, and it
 * makes the encoding of a value unique). Returns undefined for anything else.
 */
export function base64Decode(text: string): Uint8Array | undefined {
  const n = text.length;
  if (n % 4 !== 0) return undefined;
  let pad = 0;
  if (n > 0 && text.charCodeAt(n - 1) === PAD) pad = text.charCodeAt(n - 2) === PAD ? 2 : 1;
  const out = new Uint8Array((n / 4) * 3 - pad);
  const dataChars = n - pad;
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < dataChars; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : 255;
    if (v === 255) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = acc >>> bits;
    }
  }
  // Leftover bits are the unused bits of the last character: must be zero.
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2 step 5.4). */
export function computeAcceptKey(key: string): string {
  const keyLength = key.length;
  const total = keyLength + WEBSOCKET_GUID.length;
  const bytes = total <= KEY_BUFFER.length ? KEY_BUFFER : new Uint8Array(total);
  // Header text is latin1 (one byte per char), so this gives back the bytes the peer sent.
  for (let i = 0; i < keyLength; i++) {
    const c = key.charCodeAt(i);
    if (c > 0xff) throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'a Sec-WebSocket-Key is header text: latin1 only');
    bytes[i] = c;
  }
  bytes.set(GUID_BYTES, keyLength);
  return base64Encode(digest(bytes, total));
}

/** A fresh Sec-WebSocket-Key: 16 random bytes in base64 (RFC 6455 §4.1, item 7). */
export function generateClientKey(): string {
  const nonce = new Uint8Array(16);
  globalThis.crypto.getRandomValues(nonce);
  return base64Encode(nonce);
}

/**
 * Whether a Sec-WebSocket-Key is what RFC 6455 §4.2.1 item 5 demands: base64
 * that decodes to exactly 16 bytes, i.e. 22 characters and "==".
 */
export function isValidClientKey(key: string): boolean {
  if (key.length !== 24) return false;
  const decoded = base64Decode(key);
  return decoded !== undefined && decoded.length === 16;
}
