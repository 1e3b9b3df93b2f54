import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidUtf8 } from '../../src/protocol/utf8.js';

// The Node layer hands the core `buffer.isUtf8` for whole text messages; it
// must judge every byte string exactly as the core's own validator does
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
describe('buffer.isUtf8 as the core’s whole-message UTF-8 check', () => {
  const edges = [
    0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5,
    0xf8, 0xfc, 0xfe, 0xff,
  ];

  it('agrees with the core validator on every sequence of up to three bytes drawn from the boundary values', () => {
    let cases = 0;
    for (const a of edges) {
      for (const b of edges) {
        for (const c of edges) {
          for (const bytes of [Uint8Array.of(a), Uint8Array.of(a, b), Uint8Array.of(a, b, c)]) {
            if (isUtf8(bytes) !== isValidUtf8(bytes)) expect.fail(`disagree on ${Buffer.from(bytes).toString('hex')}`);
            cases++;
          }
        }
      }
    }
    expect(cases).toBe(edges.length ** 3 * 3);
  });

  it('agrees with the core validator on random text with random bytes spliced in (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.uint8Array({ maxLength: 6 }), fc.nat(), (text, noise, at) => {
        const clean = Buffer.from(text, 'utf8');
        const where = clean.length === 0 ? 0 : at % clean.length;
        const bytes = Buffer.concat([clean.subarray(0, where), noise, clean.subarray(where)]);
        expect(isUtf8(bytes)).toBe(isValidUtf8(bytes));
      }),
      { numRuns: 2000 },
    );
  });
});
