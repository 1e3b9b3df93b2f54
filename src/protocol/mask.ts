/**
 * Masking (RFC 6455 §5.3): byte i of the payload is XORed with byte i % 4 of
 * the key. The same operation masks and unmasks.
 */
import { createSimdMask, type MaskFunction } from './mask-simd.js';

/**
 * Payloads of at least this many bytes go through WebAssembly SIMD where the
 * runtime has it (mask-simd.ts); shorter ones stay on the plain loop, where
 * the two copies and the call into WebAssembly cost more than they save.
 * The measured crossover is near 128 bytes (figures in mask-simd.ts); 256 is
 * the smallest size at which SIMD won in every run.
 */
export const SIMD_MASK_THRESHOLD = 256;

/** undefined until the first large payload: no WebAssembly is compiled for programs that never need it. */
let simdMask: MaskFunction | null | undefined;

/**
 * XOR `source` with `key` into `target` (which may be `source` itself, to
 * unmask in place a buffer we own). Large payloads take the WebAssembly SIMD
 * path where the runtime offers it, everything else the plain loop below.
 */
export function applyMask(source: Uint8Array, key: Uint8Array, target: Uint8Array = source): void {
  if (source.length >= SIMD_MASK_THRESHOLD) {
    if (simdMask === undefined) simdMask = createSimdMask();
    if (simdMask !== null) {
      simdMask(source, key, target);
      return;
    }
  }
  applyMaskPlain(source, key, target);
}

/**
 * `applyMask` in plain JavaScript, for every runtime. Works a 32-bit word at
 * a time over the part of `target` that is 4-byte aligned, which makes
 * megabyte payloads cheap even without SIMD.
 */
export function applyMaskPlain(source: Uint8Array, key: Uint8Array, target: Uint8Array = source): void {
  const length = source.length;
  if (length < WORD_MASK_THRESHOLD) {
    maskBytes(source, key, target, length);
    return;
  }
  let i = 0;
  // Bytes before target's first 4-byte boundary, one at a time.
  const lead = (4 - (target.byteOffset & 3)) & 3;
  for (; i < lead; i++) target[i] = source[i]! ^ key[i & 3]!;
  // The aligned middle: build the key word as it falls at offset `lead`.
  const words = (length - lead) >>> 2;
  if (words > 0) {
    const k0 = key[lead & 3]!;
    const k1 = key[(lead + 1) & 3]!;
    const k2 = key[(lead + 2) & 3]!;
    const k3 = key[(lead + 3) & 3]!;
    const keyWord = LITTLE_ENDIAN ? (k0 | (k1 << 8) | (k2 << 16) | (k3 << 24)) >>> 0 : ((k0 << 24) | (k1 << 16) | (k2 << 8) | k3) >>> 0;
    const out = new Uint32Array(target.buffer, target.byteOffset + lead, words);
    if (source === target) {
      xorWords(out, out, words, keyWord);
    } else if (((source.byteOffset + lead) & 3) === 0) {
      xorWords(new Uint32Array(source.buffer, source.byteOffset + lead, words), out, words, keyWord);
    } else {
      // Source misaligned relative to target: fall back to bytes for the middle.
      for (let j = lead, end = lead + words * 4; j < end; j++) target[j] = source[j]! ^ key[j & 3]!;
    }
    i = lead + words * 4;
  }
  for (; i < length; i++) target[i] = source[i]! ^ key[i & 3]!;
}

/**
 * Under this many bytes the byte loop below wins: the word path must build a
 * `Uint32Array` view per call, which costs more than it saves. Measured with
 * Node 20 on the benchmark VM, ns per call, byte loop against word path:
 * 16 B 14 / 33, 64 B 41 / 69, 125 B 72 / 78, 200 B 114 / 86.
 */
const WORD_MASK_THRESHOLD = 128;

/** The plain XOR four bytes per step, with the key's bytes held in locals. */
function maskBytes(source: Uint8Array, key: Uint8Array, target: Uint8Array, length: number): void {
  const k0 = key[0]!;
  const k1 = key[1]!;
  const k2 = key[2]!;
  const k3 = key[3]!;
  let i = 0;
  for (const end = length - 3; i < end; i += 4) {
    target[i] = source[i]! ^ k0;
    target[i + 1] = source[i + 1]! ^ k1;
    target[i + 2] = source[i + 2]! ^ k2;
    target[i + 3] = source[i + 3]! ^ k3;
  }
  for (; i < length; i++) target[i] = source[i]! ^ key[i & 3]!;
}

/** XOR `words` 32-bit words; unrolled by eight, which V8 runs about half again as fast. */
function xorWords(input: Uint32Array, out: Uint32Array, words: number, key: number): void {
  let w = 0;
  for (const end = words - 7; w < end; w += 8) {
    out[w] = input[w]! ^ key;
    out[w + 1] = input[w + 1]! ^ key;
    out[w + 2] = input[w + 2]! ^ key;
    out[w + 3] = input[w + 3]! ^ key;
    out[w + 4] = input[w + 4]! ^ key;
    out[w + 5] = input[w + 5]! ^ key;
    out[w + 6] = input[w + 6]! ^ key;
    out[w + 7] = input[w + 7]! ^ key;
  }
  for (; w < words; w++) out[w] = input[w]! ^ key;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Mask keys must be unpredictable (§5.3 and §10.3: they defend proxies against
 * cache poisoning), so they come from the platform's CSPRNG. Drawing 4 bytes
 * at a time from `getRandomValues` is slow; a pool refilled 8 KiB at a time
 * keeps the per-frame cost to a subarray.
 */
const POOL_SIZE = 8192;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;

export function randomMaskKey(): Uint8Array {
  if (poolOffset === POOL_SIZE) {
    globalThis.crypto.getRandomValues(pool);
    poolOffset = 0;
  }
  // A copy, so that a later refill of the pool cannot change a key in use.
  const key = pool.slice(poolOffset, poolOffset + 4);
  poolOffset += 4;
  return key;
}
