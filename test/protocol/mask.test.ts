import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyMask, randomMaskKey } from '../../src/protocol/mask.js';
import { hex, toHex } from './helpers.js';

/** RFC 6455 §5.3 read literally: octet i of the result is octet i of the input XOR octet (i MOD 4) of the key. */
function naiveMask(source: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(source.length);
  for (let i = 0; i < source.length; i++) out[i] = source[i]! ^ key[i % 4]!;
  return out;
}

/** A view of `length` bytes starting `offset` bytes into a fresh buffer, filled from `bytes`. */
function placed(bytes: Uint8Array, offset: number, slack = 0): Uint8Array {
  const backing = new Uint8Array(offset + bytes.length + slack).fill(0xee);
  const view = backing.subarray(offset, offset + bytes.length);
  view.set(bytes);
  return view;
}

describe('applyMask', () => {
  it('masks the RFC 6455 §5.7 "Hello" example with key 37 fa 21 3d', () => {
    const out = new Uint8Array(5);
    applyMask(hex('48 65 6c 6c 6f'), hex('37 fa 21 3d'), out);
    expect(toHex(out)).toBe('7f 9f 4d 51 58');
  });

  it('unmasks in place when no target is given', () => {
    const data = hex('7f 9f 4d 51 58');
    applyMask(data, hex('37 fa 21 3d'));
    expect(toHex(data)).toBe('48 65 6c 6c 6f');
  });

  it('is its own inverse', () => {
    const key = hex('01 02 03 04');
    const original = Uint8Array.from({ length: 100 }, (_, i) => i * 7);
    const data = original.slice();
    applyMask(data, key);
    expect(data).not.toEqual(original);
    applyMask(data, key);
    expect(data).toEqual(original);
  });

  it('handles an empty payload', () => {
    const data = new Uint8Array(0);
    expect(() => applyMask(data, hex('ff ff ff ff'))).not.toThrow();
  });

  it('touches no byte outside the target view', () => {
    const backing = new Uint8Array(80).fill(0xaa);
    const target = backing.subarray(3, 3 + 64);
    applyMask(new Uint8Array(64), hex('11 22 33 44'), target);
    expect(backing[2]).toBe(0xaa);
    expect(backing[3 + 64]).toBe(0xaa);
    expect(toHex(target.subarray(0, 8))).toBe('11 22 33 44 11 22 33 44');
  });

  it('equals the naive reference for any length, key and alignment, out of place (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300, size: 'max' }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 7 }),
        (bytes, key, sourceOffset, targetOffset) => {
          const source = placed(bytes, sourceOffset, 3);
          const target = placed(new Uint8Array(bytes.length), targetOffset, 3);
          const targetBacking = new Uint8Array(target.buffer);
          applyMask(source, key, target);
          expect(toHex(target)).toBe(toHex(naiveMask(bytes, key)));
          // The source is read only.
          expect(toHex(source)).toBe(toHex(bytes));
          // Nothing written past the view.
          expect(targetBacking[targetOffset + bytes.length]).toBe(0xee);
          if (targetOffset > 0) expect(targetBacking[targetOffset - 1]).toBe(0xee);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('equals the naive reference in place at any alignment (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300, size: 'max' }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 7 }),
        (bytes, key, offset) => {
          const data = placed(bytes, offset, 3);
          applyMask(data, key);
          expect(toHex(data)).toBe(toHex(naiveMask(bytes, key)));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('equals the naive reference when source and target are distinct views of the same memory', () => {
    const bytes = Uint8Array.from({ length: 97 }, (_, i) => (i * 31) & 0xff);
    const key = hex('de ad be ef');
    for (let offset = 0; offset < 4; offset++) {
      const data = placed(bytes, offset);
      const alias = new Uint8Array(data.buffer, data.byteOffset, data.length);
      applyMask(data, key, alias);
      expect(toHex(alias)).toBe(toHex(naiveMask(bytes, key)));
    }
  });
});

describe('randomMaskKey', () => {
  it('returns 4-byte keys that differ between calls', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const key = randomMaskKey();
      expect(key.length).toBe(4);
      keys.add(toHex(key));
    }
    // 64 draws of 32 random bits: a collision has probability ~5e-7.
    expect(keys.size).toBeGreaterThan(60);
  });

  it('returns independent copies that a pool refill does not change', () => {
    const first = randomMaskKey();
    const saved = first.slice();
    // 8 KiB pool / 4 bytes per key: 3000 draws force at least one refill.
    const later: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) later.push(randomMaskKey());
    expect(toHex(first)).toBe(toHex(saved));
    first.fill(0);
    expect(later.some((k) => toHex(k) !== '00 00 00 00')).toBe(true);
    expect(new Set(later.map(toHex)).size).toBeGreaterThan(2990);
  });
});
