import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SIMD_MASK_THRESHOLD, applyMask, applyMaskPlain } from '../../src/protocol/mask.js';
import { createSimdMask, type MaskFunction, type WebAssemblyApi } from '../../src/protocol/mask-simd.js';

/** RFC 6455 §5.3 read literally: octet i of the result is octet i of the input XOR octet (i MOD 4) of the key. */
function naiveMask(source: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(source.length);
  for (let i = 0; i < source.length; i++) out[i] = source[i]! ^ key[i % 4]!;
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), so a failure can be replayed. */
function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `bytes` copied into a fresh buffer at `offset`, with 0xee guard bytes on both sides. */
function placed(bytes: Uint8Array, offset: number): Uint8Array {
  const backing = new Uint8Array(offset + bytes.length + 17).fill(0xee);
  const view = backing.subarray(offset, offset + bytes.length);
  view.set(bytes);
  return view;
}

function guardsIntact(view: Uint8Array): boolean {
  const backing = new Uint8Array(view.buffer);
  for (let i = 0; i < view.byteOffset; i++) if (backing[i] !== 0xee) return false;
  for (let i = view.byteOffset + view.length; i < backing.length; i++) if (backing[i] !== 0xee) return false;
  return true;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The runtime's own WebAssembly, through the interface the module declares (the core's lib has no WebAssembly types). */
const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
const simd = createSimdMask();

describe('createSimdMask', () => {
  it('is available on Node 20, so the comparisons below exercise the SIMD path', () => {
    expect(simd).toBeTypeOf('function');
  });

  it('returns null where the runtime has no WebAssembly', () => {
    expect(createSimdMask(null)).toBeNull();
  });

  it('returns null where the runtime rejects the module (WebAssembly without SIMD)', () => {
    const noSimd: WebAssemblyApi = {
      validate: () => false,
      Module: wasm.Module,
      Instance: wasm.Instance,
    };
    expect(createSimdMask(noSimd)).toBeNull();
  });

  it('returns null where compiling is refused (a Content-Security-Policy, say)', () => {
    const refused: WebAssemblyApi = {
      validate: () => true,
      Module: class {
        constructor() {
          throw new Error('compiling refused');
        }
      },
      Instance: wasm.Instance,
    };
    expect(createSimdMask(refused)).toBeNull();
  });

  it('validates as WebAssembly with SIMD: the real validate accepts the module', () => {
    let seen: Uint8Array | undefined;
    const spy: WebAssemblyApi = {
      validate: (bytes) => {
        seen = bytes;
        return wasm.validate(bytes);
      },
      Module: wasm.Module,
      Instance: wasm.Instance,
    };
    expect(createSimdMask(spy)).toBeTypeOf('function');
    expect(seen).toBeDefined();
    // The "\0asm" magic and version 1 (WebAssembly core spec §5.5.16).
    expect([...seen!.subarray(0, 8)]).toEqual([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  });
});

describe('SIMD masking gives the same bytes as the plain loop', () => {
  const mask = simd as MaskFunction;

  it('for every length 0..300, every source and target offset 0..15, out of place', () => {
    let cases = 0;
    for (let length = 0; length <= 300; length++) {
      const bytes = randomBytes(length, 0x9e3779b9 + length);
      const key = randomBytes(4, length * 7919 + 1);
      const expected = naiveMask(bytes, key);
      for (let so = 0; so < 16; so++) {
        const source = placed(bytes, so);
        for (let to = 0; to < 16; to++) {
          const viaSimd = placed(new Uint8Array(length), to);
          const viaPlain = placed(new Uint8Array(length), to);
          mask(source, key, viaSimd);
          applyMaskPlain(source, key, viaPlain);
          if (!equalBytes(viaSimd, expected) || !equalBytes(viaPlain, expected) || !guardsIntact(viaSimd)) {
            expect.fail(`length ${length}, source offset ${so}, target offset ${to}`);
          }
          cases++;
        }
        // The source is only read.
        if (!equalBytes(source, bytes) || !guardsIntact(source)) expect.fail(`source changed: length ${length}, offset ${so}`);
      }
    }
    expect(cases).toBe(301 * 16 * 16);
  });

  it('for every length 0..300 and every offset 0..15, in place', () => {
    for (let length = 0; length <= 300; length++) {
      const bytes = randomBytes(length, 0x85ebca6b + length);
      const key = randomBytes(4, length * 104729 + 3);
      const expected = naiveMask(bytes, key);
      for (let offset = 0; offset < 16; offset++) {
        const viaSimd = placed(bytes, offset);
        const viaPlain = placed(bytes, offset);
        mask(viaSimd, key, viaSimd);
        applyMaskPlain(viaPlain, key);
        if (!equalBytes(viaSimd, expected) || !equalBytes(viaPlain, expected) || !guardsIntact(viaSimd)) {
          expect.fail(`length ${length}, offset ${offset}`);
        }
      }
    }
  });

  it('for every rotation of a key (the frame reader turns the key to the offset a chunk starts at)', () => {
    const bytes = randomBytes(1000, 42);
    const base = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
    for (let r = 0; r < 4; r++) {
      const key = Uint8Array.from({ length: 4 }, (_, i) => base[(i + r) & 3]!);
      const out = new Uint8Array(bytes.length);
      mask(bytes, key, out);
      expect(equalBytes(out, naiveMask(bytes, key))).toBe(true);
    }
  });

  it('for large payloads around the 16 KiB chunk size, at odd offsets, in and out of place', () => {
    const lengths = [16383, 16384, 16385, 16384 * 3 + 5, 65536, 65536 + 7, 1048576, 1048576 + 3];
    for (const [n, length] of lengths.entries()) {
      const bytes = randomBytes(length, 0xc2b2ae35 + n);
      const key = randomBytes(4, n + 11);
      const expected = naiveMask(bytes, key);
      for (const offset of [0, 1, 3, 8, 13]) {
        const inPlace = placed(bytes, offset);
        mask(inPlace, key, inPlace);
        expect(equalBytes(inPlace, expected), `in place, length ${length}, offset ${offset}`).toBe(true);
        expect(guardsIntact(inPlace)).toBe(true);
        const source = placed(bytes, offset);
        const target = placed(new Uint8Array(length), (offset * 5) & 15);
        mask(source, key, target);
        expect(equalBytes(target, expected), `out of place, length ${length}, offset ${offset}`).toBe(true);
        expect(guardsIntact(target)).toBe(true);
        const plain = placed(bytes, offset);
        applyMaskPlain(plain, key);
        expect(equalBytes(plain, expected)).toBe(true);
      }
    }
  });

  it('for random payloads, keys and offsets (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 40000 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 15 }),
        (bytes, key, so, to) => {
          const source = placed(bytes, so);
          const viaSimd = placed(new Uint8Array(bytes.length), to);
          const viaPlain = placed(new Uint8Array(bytes.length), to);
          mask(source, key, viaSimd);
          applyMaskPlain(source, key, viaPlain);
          expect(equalBytes(viaSimd, viaPlain)).toBe(true);
          expect(equalBytes(viaPlain, naiveMask(bytes, key))).toBe(true);
          expect(guardsIntact(viaSimd)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('unmasks what it masked', () => {
    const bytes = randomBytes(70000, 7);
    const key = Uint8Array.of(1, 2, 3, 4);
    const data = bytes.slice();
    mask(data, key, data);
    expect(equalBytes(data, bytes)).toBe(false);
    mask(data, key, data);
    expect(equalBytes(data, bytes)).toBe(true);
  });
});

describe('applyMask picks a path by size', () => {
  it('gives the reference bytes just below, at and above the threshold, and for a megabyte', () => {
    for (const length of [SIMD_MASK_THRESHOLD - 1, SIMD_MASK_THRESHOLD, SIMD_MASK_THRESHOLD + 1, 1 << 20]) {
      const bytes = randomBytes(length, length);
      const key = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
      const data = placed(bytes, 3);
      applyMask(data, key);
      expect(equalBytes(data, naiveMask(bytes, key)), `length ${length}`).toBe(true);
      expect(guardsIntact(data)).toBe(true);
    }
  });
});
