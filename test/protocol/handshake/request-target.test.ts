import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPlainPath, pathOf } from '../../../src/protocol/handshake/request-target.js';

// The server skips URL parsing for plain paths; that is only right if the
// URL parser would have returned exactly the same path.
describe('isPlainPath', () => {
  it('accepts only paths the URL parser leaves unchanged', () => {
    const visibleAscii = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40, size: 'max' });
    fc.assert(
      fc.property(visibleAscii, (tail) => {
        const path = `/${tail}`.split('?')[0]!;
        if (isPlainPath(path)) expect(new URL(path, 'http://example.test').pathname).toBe(path);
      }),
      { numRuns: 5000 },
    );
  });

  it('sends escapes, dot-segments, network paths and encoded characters to the URL parser', () => {
    for (const path of ['/a%20b', '/a/../b', '/./x', '//host/x', '/a\\b', '/a"b', '/a<b', '/a{b', '/a#b', 'x/y']) {
      expect(isPlainPath(path), path).toBe(false);
    }
    for (const path of ['/', '/chat/ws', '/a-b_c~d', "/x:y@z!$&'()*+,;="]) expect(isPlainPath(path), path).toBe(true);
  });
});

describe('pathOf', () => {
  it('cuts the target at the first "?" and keeps a target without a query whole', () => {
    expect(pathOf('/chat/ws?room=a?b')).toBe('/chat/ws');
    expect(pathOf('/chat/ws')).toBe('/chat/ws');
    expect(pathOf('/?')).toBe('/');
  });
});
