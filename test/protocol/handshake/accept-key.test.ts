import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  WEBSOCKET_GUID,
  base64Decode,
  base64Encode,
  computeAcceptKey,
  generateClientKey,
  isValidClientKey,
  sha1,
} from '../../../src/protocol/handshake/accept-key.js';
import { UsageError } from '../../../src/protocol/errors.js';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

describe('sha1', () => {
  // FIPS 180-2 appendix A and the usual empty-message vector.
  it('matches the published test vectors', () => {
    expect(hex(sha1(new Uint8Array(0)))).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
    expect(hex(sha1(ascii('abc')))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(hex(sha1(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe('84983e441c3bd26ebaae4aa1f95129e5e54670f1');
    expect(hex(sha1(new Uint8Array(1_000_000).fill(0x61)))).toBe('34aa973cd4c4daa4f61eeb2bdbad27316534016f');
  });

  it('agrees with node:crypto around the padding boundaries (55, 56, 63, 64, 65 bytes...)', () => {
    for (let n = 0; n <= 200; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      expect(hex(sha1(data))).toBe(createHash('sha1').update(data).digest('hex'));
    }
  });

  it('agrees with node:crypto on random inputs (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1000 }), (data) => {
        expect(hex(sha1(data))).toBe(createHash('sha1').update(data).digest('hex'));
      }),
      { numRuns: 300 },
    );
  });

  it('does not modify its input', () => {
    const data = ascii('abc');
    sha1(data);
    expect([...data]).toEqual([0x61, 0x62, 0x63]);
  });
});

describe('base64', () => {
  it('encodes like Buffer for every length remainder (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (data) => {
        const text = base64Encode(data);
        expect(text).toBe(Buffer.from(data).toString('base64'));
        expect([...base64Decode(text)!]).toEqual([...data]);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes the empty string to no bytes', () => {
    expect(base64Decode('')!.length).toBe(0);
  });

  it.each([
    ['a length that is not a multiple of 4', 'QUJD='],
    ['missing padding', 'QQ'],
    ['a character outside the alphabet', 'QU*D'],
    ['URL-safe characters', 'ab-_'],
    ['whitespace', 'QU JD'],
    ['padding in the middle', 'QQ==QUJD'],
    ['three padding characters', 'Q==='],
    ['only padding', '===='],
    ['non-zero unused bits before "=="', 'QR=='],
    ['non-zero unused bits before "="', 'QUF='],
    ['a non-ASCII character', 'QUJ\u00e9'],
  ])('refuses %s', (_what, text) => {
    expect(base64Decode(text)).toBeUndefined();
  });
});

describe('computeAcceptKey', () => {
  it('gives the RFC 6455 §1.3 example answer', () => {
    expect(computeAcceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('is base64(SHA-1(key + GUID)) as computed by node:crypto (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (nonce) => {
        const key = Buffer.from(nonce).toString('base64');
        const expected = createHash('sha1')
          .update(key + WEBSOCKET_GUID, 'latin1')
          .digest('base64');
        expect(computeAcceptKey(key)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('hashes latin1 text byte for byte', () => {
    const key = 'caf\u00e9\u00ff';
    expect(computeAcceptKey(key)).toBe(
      createHash('sha1')
        .update(key + WEBSOCKET_GUID, 'latin1')
        .digest('base64'),
    );
  });

  it('refuses characters that cannot come from a header', () => {
    expect(() => computeAcceptKey('\u20ac')).toThrow(UsageError);
  });
});

describe('client keys', () => {
  it('generates valid, distinct 16-byte keys', () => {
    const a = generateClientKey();
    const b = generateClientKey();
    expect(a).toHaveLength(24);
    expect(isValidClientKey(a)).toBe(true);
    expect(base64Decode(a)!.length).toBe(16);
    expect(a).not.toBe(b);
  });

  it('accepts the RFC key and any base64 of 16 bytes', () => {
    expect(isValidClientKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe(true);
    expect(isValidClientKey('x3JJHMbDL1EzLkh9GBhXDw==')).toBe(true);
  });

  it.each([
    ['no padding', 'dGhlIHNhbXBsZSBub25jZQ'],
    ['15 bytes', Buffer.alloc(15, 1).toString('base64')],
    ['17 bytes', Buffer.alloc(17, 1).toString('base64')],
    ['20 bytes', Buffer.alloc(20, 1).toString('base64')],
    ['non-zero unused bits', 'dGhlIHNhbXBsZSBub25jZR=='],
    ['surrounding spaces', ' dGhlIHNhbXBsZSBub25jZQ=='],
    ['two keys joined', 'dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ=='],
    ['an empty string', ''],
  ])('refuses %s', (_what, key) => {
    expect(isValidClientKey(key)).toBe(false);
  });
});
