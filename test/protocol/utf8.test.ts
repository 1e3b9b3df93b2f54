import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidUtf8, Utf8Validator } from '../../src/protocol/utf8.js';
import { hex } from './helpers.js';

/**
 * Reference: the WHATWG UTF-8 decoder in fatal streaming mode reports an
 * error at the first byte that cannot continue a valid sequence, which is the
 * point where RFC 6455 §8.1 says to fail. Returns that index, `bytes.length`
 * when the input is a valid prefix, or -1 when it is complete and valid.
 */
function referenceFirstError(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < bytes.length; i++) {
    try {
      decoder.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  try {
    decoder.decode();
  } catch {
    return bytes.length;
  }
  return -1;
}

const valid: [string, string][] = [
  ['empty', ''],
  ['ASCII', '48 65 6c 6c 6f'],
  ['NUL', '00'],
  ['U+0080, smallest 2-byte', 'c2 80'],
  ['U+07FF, largest 2-byte', 'df bf'],
  ['U+0800, smallest 3-byte', 'e0 a0 80'],
  ['U+D7FF, just below the surrogates', 'ed 9f bf'],
  ['U+E000, just above the surrogates', 'ee 80 80'],
  ['U+FFFD', 'ef bf bd'],
  ['U+FFFF (a noncharacter, still valid UTF-8)', 'ef bf bf'],
  ['U+10000, smallest 4-byte', 'f0 90 80 80'],
  ['U+10FFFF, largest code point', 'f4 8f bf bf'],
  ['"κόσμε"', 'ce ba e1 bd b9 cf 83 ce bc ce b5'],
  ['BOM', 'ef bb bf'],
];

/** [name, bytes, index of the first byte that must be rejected] */
const invalid: [string, string, number][] = [
  ['lone continuation byte 80', '80', 0],
  ['lone continuation byte bf', '41 bf', 1],
  ['overlong 2-byte C0 80 (NUL)', 'c0 80', 0],
  ['overlong 2-byte C1 BF', 'c1 bf', 0],
  ['overlong 3-byte E0 80 80', 'e0 80 80', 1],
  ['overlong 3-byte E0 9F BF', 'e0 9f bf', 1],
  ['overlong 4-byte F0 80 80 80', 'f0 80 80 80', 1],
  ['overlong 4-byte F0 8F BF BF', 'f0 8f bf bf', 1],
  ['surrogate U+D800 (ED A0 80)', 'ed a0 80', 1],
  ['surrogate U+DFFF (ED BF BF)', 'ed bf bf', 1],
  ['surrogate pair encoded as two 3-byte sequences', 'ed a0 80 ed b0 80', 1],
  ['above U+10FFFF (F4 90 80 80)', 'f4 90 80 80', 1],
  ['lead F5', 'f5 80 80 80', 0],
  ['lead F7', 'f7 bf bf bf', 0],
  ['5-byte lead F8', 'f8 88 80 80 80', 0],
  ['6-byte lead FC', 'fc 84 80 80 80 80', 0],
  ['FE', 'fe', 0],
  ['FF', 'ff', 0],
  ['2-byte lead followed by ASCII', 'c2 41', 1],
  ['3-byte lead cut by another lead', 'e1 80 e1 80 80', 2],
  ['4-byte lead with ASCII third byte', 'f0 90 41 80', 2],
  ['valid text then an invalid byte', 'ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64', 12],
];

const truncated: [string, string][] = [
  ['2-byte lead only', 'c2'],
  ['3-byte sequence missing its last byte', 'e2 82'],
  ['4-byte sequence missing its last byte', 'f0 9f 98'],
  ['valid text then a dangling lead', '48 69 f0'],
];

describe('isValidUtf8', () => {
  it.each(valid)('accepts %s', (_, bytes) => {
    expect(isValidUtf8(hex(bytes))).toBe(true);
  });

  it.each(invalid)('rejects %s', (_, bytes) => {
    expect(isValidUtf8(hex(bytes))).toBe(false);
  });

  it.each(truncated)('rejects a truncated sequence at the end: %s', (_, bytes) => {
    expect(isValidUtf8(hex(bytes))).toBe(false);
  });

  it('checks only the range [start, end)', () => {
    const bytes = hex('ff 41 42 ff');
    expect(isValidUtf8(bytes, 1, 3)).toBe(true);
    expect(isValidUtf8(bytes, 0, 3)).toBe(false);
    expect(isValidUtf8(bytes, 1, 4)).toBe(false);
    // A close payload's reason starts at offset 2.
    expect(isValidUtf8(hex('03 e8 ce ba'), 2)).toBe(true);
  });

  it('agrees with a fatal TextDecoder on arbitrary bytes (property)', () => {
    const byteArb = fc.oneof(
      fc.integer({ min: 0, max: 255 }),
      // Bias toward the interesting region: leads and continuation bytes.
      fc.integer({ min: 0x80, max: 0xff }),
      fc.constantFrom(0xe0, 0xed, 0xf0, 0xf4, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf),
    );
    fc.assert(
      fc.property(fc.array(byteArb, { maxLength: 40, size: 'max' }), (array) => {
        const bytes = Uint8Array.from(array);
        expect(isValidUtf8(bytes)).toBe(referenceFirstError(bytes) === -1);
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts the encoding of any string of Unicode scalar values (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200, size: 'max' }), (text) => {
        expect(isValidUtf8(new TextEncoder().encode(text))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('Utf8Validator (incremental, RFC 6455 §8.1)', () => {
  it.each(invalid)('rejects %s at exactly the offending byte when fed byte by byte', (_, text, at) => {
    const bytes = hex(text);
    const validator = new Utf8Validator();
    for (let i = 0; i < at; i++) expect(validator.update(bytes, i, i + 1)).toBe(true);
    expect(validator.update(bytes, at, at + 1)).toBe(false);
  });

  it('accepts a character split across two calls, and reports completeness only at its end', () => {
    const euro = hex('e2 82 ac');
    const validator = new Utf8Validator();
    expect(validator.update(euro.subarray(0, 1))).toBe(true);
    expect(validator.complete).toBe(false);
    expect(validator.update(euro.subarray(1, 2))).toBe(true);
    expect(validator.complete).toBe(false);
    expect(validator.update(euro.subarray(2))).toBe(true);
    expect(validator.complete).toBe(true);
  });

  it('keeps the narrowed range of E0/ED/F0/F4 across a split', () => {
    for (const [lead, bad] of [
      [0xe0, 0x9f],
      [0xed, 0xa0],
      [0xf0, 0x8f],
      [0xf4, 0x90],
    ] as const) {
      const validator = new Utf8Validator();
      expect(validator.update(Uint8Array.of(lead))).toBe(true);
      expect(validator.update(Uint8Array.of(bad))).toBe(false);
    }
  });

  it('is reusable after reset', () => {
    const validator = new Utf8Validator();
    expect(validator.update(hex('e2 82'))).toBe(true);
    validator.reset();
    expect(validator.complete).toBe(true);
    expect(validator.update(hex('41'))).toBe(true);
    expect(validator.complete).toBe(true);
  });

  it('rejects at the same byte as a streaming fatal TextDecoder, for any split (property)', () => {
    const byteArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0x80, max: 0xff }));
    fc.assert(
      fc.property(fc.array(byteArb, { maxLength: 40, size: 'max' }), fc.array(fc.nat(), { maxLength: 6, size: 'max' }), (array, cutsRaw) => {
        const bytes = Uint8Array.from(array);
        const expected = referenceFirstError(bytes);
        const cuts = [...new Set(cutsRaw.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const validator = new Utf8Validator();
        let start = 0;
        let failedInPiece: [number, number] | null = null;
        for (const end of [...cuts, bytes.length]) {
          if (end < start) continue;
          if (!validator.update(bytes, start, end)) {
            failedInPiece = [start, end];
            break;
          }
          start = end;
        }
        if (expected === -1) {
          expect(failedInPiece).toBeNull();
          expect(validator.complete).toBe(true);
        } else if (expected === bytes.length) {
          // Valid so far but ends inside a character.
          expect(failedInPiece).toBeNull();
          expect(validator.complete).toBe(false);
        } else {
          // Rejected in the piece that holds the offending byte, not later.
          expect(failedInPiece).not.toBeNull();
          expect(expected).toBeGreaterThanOrEqual(failedInPiece![0]);
          expect(expected).toBeLessThan(failedInPiece![1]);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
