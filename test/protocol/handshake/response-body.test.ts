import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ResponseHead } from '../../../src/protocol/handshake/http-head.js';
import { readResponseBody } from '../../../src/protocol/handshake/response-body.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function head(status: number, headers: Record<string, string> = {}): ResponseHead {
  return { httpVersion: '1.1', status, reason: '', headers: new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])) };
}

function read(h: ResponseHead, raw: string, limit = 4096): { complete: boolean; text: string } {
  const { complete, body } = readResponseBody(h, encoder.encode(raw), limit);
  return { complete, text: decoder.decode(body) };
}

const CHUNKED = head(403, { 'Transfer-Encoding': 'chunked' });

describe('readResponseBody: chunked (RFC 9112 §7.1)', () => {
  it('decodes "12 CRLF forbidden: go away CRLF 0 CRLF CRLF" to the text alone', () => {
    expect(read(CHUNKED, '12\r\nforbidden: go away\r\n0\r\n\r\n')).toEqual({ complete: true, text: 'forbidden: go away' });
  });

  it('joins several chunks, ignores chunk extensions and trailers, accepts upper-case hex', () => {
    const raw = '5;note="x"\r\nhello\r\n1\r\n,\r\nA\r\n wide worl\r\n1 \r\nd\r\n0\r\nExpires: never\r\n\r\n';
    expect(read(CHUNKED, raw)).toEqual({ complete: true, text: 'hello, wide world' });
  });

  it('is incomplete while a chunk, its CRLF or the last chunk is still to come, complete with it', () => {
    const raw = '12\r\nforbidden: go away\r\n0\r\n\r\n';
    for (let cut = 0; cut < raw.indexOf('0\r\n\r\n') + 3; cut++) {
      const { complete, text } = read(CHUNKED, raw.slice(0, cut));
      expect(complete).toBe(false);
      expect('forbidden: go away'.startsWith(text)).toBe(true);
    }
  });

  it('stops at the limit, complete, however large the declared chunk', () => {
    expect(read(CHUNKED, `ffffffff\r\n${'x'.repeat(100)}`, 10)).toEqual({ complete: true, text: 'x'.repeat(10) });
    expect(read(CHUNKED, '3\r\nabc\r\n3\r\ndef\r\n', 4)).toEqual({ complete: true, text: 'abcd' });
  });

  it('ends the body where the framing is malformed, keeping what was decoded', () => {
    expect(read(CHUNKED, '3\r\nabc\r\nzz\r\nmore')).toEqual({ complete: true, text: 'abc' });
    expect(read(CHUNKED, '3\r\nabcXY3\r\ndef\r\n')).toEqual({ complete: true, text: 'abc' });
    expect(read(CHUNKED, '3\nabc\r\n')).toEqual({ complete: true, text: '' });
    expect(read(CHUNKED, `1${'0'.repeat(20)}\r\n`)).toEqual({ complete: true, text: '' });
    expect(read(CHUNKED, `5;${'e'.repeat(2000)}`)).toEqual({ complete: true, text: '' });
  });

  it('de-chunks when chunked is the last of several codings, not otherwise', () => {
    expect(read(head(500, { 'transfer-encoding': 'identity, Chunked' }), '2\r\nok\r\n0\r\n\r\n').text).toBe('ok');
    expect(read(head(500, { 'transfer-encoding': 'chunked, gzip' }), '2\r\nok')).toEqual({ complete: false, text: '2\r\nok' });
  });

  it('decodes any body cut into any chunks (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 }), (text, cuts) => {
        const bytes = encoder.encode(text);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        // Chunks may end inside a character: the framing is bytes, so build it from bytes.
        const rawBytes: number[] = [];
        let previous = 0;
        for (const p of [...points, bytes.length]) {
          if (p > previous) rawBytes.push(...encoder.encode(`${(p - previous).toString(16)}\r\n`), ...bytes.subarray(previous, p), 13, 10);
          previous = p;
        }
        rawBytes.push(...encoder.encode('0\r\n\r\n'));
        const { complete, body } = readResponseBody(CHUNKED, Uint8Array.from(rawBytes), 4096);
        expect(complete).toBe(true);
        expect(decoder.decode(body)).toBe(text);
      }),
      { numRuns: 200 },
    );
  });
});

describe('readResponseBody: other framings (RFC 9112 §6.3)', () => {
  it('takes Content-Length bytes, complete once they are in', () => {
    const h = head(403, { 'content-length': '9' });
    expect(read(h, 'forbid')).toEqual({ complete: false, text: 'forbid' });
    expect(read(h, 'forbidden and more')).toEqual({ complete: true, text: 'forbidden' });
  });

  it('caps a Content-Length body at the limit', () => {
    expect(read(head(403, { 'content-length': '100000' }), 'x'.repeat(50), 20)).toEqual({ complete: true, text: 'x'.repeat(20) });
  });

  it('reads a body without framing up to the limit (it ends with the connection)', () => {
    expect(read(head(403), 'no length')).toEqual({ complete: false, text: 'no length' });
    expect(read(head(403), 'x'.repeat(30), 20)).toEqual({ complete: true, text: 'x'.repeat(20) });
  });

  it('has no body for 204 and 304', () => {
    expect(read(head(204, { 'content-length': '5' }), 'hello')).toEqual({ complete: true, text: '' });
    expect(read(head(304), 'hello')).toEqual({ complete: true, text: '' });
  });
});
