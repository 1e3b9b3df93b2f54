import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/protocol/errors.js';
import {
  DEFAULT_HEAD_LIMITS,
  type HeadResult,
  type RequestHead,
  RequestHeadParser,
  ResponseHeadParser,
  headersFromRaw,
} from '../../../src/protocol/handshake/http-head.js';

/** One byte per char, as the wire carries header text. */
function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Pushes `data` cut at `cuts` until the parser finishes. A complete result's
 * rest is extended with the chunks not pushed yet, as a caller would hand
 * them on to the frame reader.
 */
function pushSplit<H>(parser: { push(chunk: Uint8Array): HeadResult<H> }, data: Uint8Array, cuts: number[]): HeadResult<H> {
  const points = [...new Set(cuts)].filter((c) => c > 0 && c < data.length).sort((a, b) => a - b);
  let from = 0;
  let result: HeadResult<H> = { kind: 'incomplete' };
  for (const to of [...points, data.length]) {
    result = parser.push(data.subarray(from, to));
    from = to;
    if (result.kind === 'complete') return { ...result, rest: concat(result.rest, data.subarray(from)) };
    if (result.kind === 'error') return result;
  }
  return result;
}

// RFC 6455 §1.2, the client's handshake.
const RFC_REQUEST =
  'GET /chat HTTP/1.1\r\n' +
  'Host: server.example.com\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Origin: http://example.com\r\n' +
  'Sec-WebSocket-Protocol: chat, superchat\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  '\r\n';

// RFC 6455 §1.3 / §4.2.2, the server's handshake.
const RFC_RESPONSE =
  'HTTP/1.1 101 Switching Protocols\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n' +
  'Sec-WebSocket-Protocol: chat\r\n' +
  '\r\n';

// An unmasked "Hello" text frame (RFC 6455 §5.7) arriving right behind the head.
const FRAME = Uint8Array.of(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f);

function expectComplete<H>(result: HeadResult<H>): { head: H; rest: Uint8Array } {
  if (result.kind !== 'complete') throw new Error(`expected complete, got ${JSON.stringify(result)}`);
  return result;
}

function expectError<H>(result: HeadResult<H>, status: number, code: string): void {
  expect(result.kind).toBe('error');
  if (result.kind === 'error') {
    expect(result.status).toBe(status);
    expect(result.code).toBe(code);
    expect(result.reason.length).toBeGreaterThan(0);
  }
}

function parseRequest(text: string, limits?: ConstructorParameters<typeof RequestHeadParser>[0]): HeadResult<RequestHead> {
  return new RequestHeadParser(limits).push(bytes(text));
}

describe('RequestHeadParser', () => {
  it('parses the RFC 6455 §1.2 request with lower-cased names and trimmed values', () => {
    const { head, rest } = expectComplete(parseRequest(RFC_REQUEST));
    expect(head.method).toBe('GET');
    expect(head.target).toBe('/chat');
    expect(head.httpVersion).toBe('1.1');
    expect([...head.headers]).toEqual([
      ['host', 'server.example.com'],
      ['upgrade', 'websocket'],
      ['connection', 'Upgrade'],
      ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=='],
      ['origin', 'http://example.com'],
      ['sec-websocket-protocol', 'chat, superchat'],
      ['sec-websocket-version', '13'],
    ]);
    expect(rest.length).toBe(0);
  });

  it('returns the bytes after the blank line as a view of the pushed chunk, not a copy', () => {
    const chunk = concat(bytes(RFC_REQUEST), FRAME);
    const { rest } = expectComplete(new RequestHeadParser().push(chunk));
    expect([...rest]).toEqual([...FRAME]);
    expect(rest.buffer).toBe(chunk.buffer);
    expect(rest.byteOffset).toBe(chunk.byteOffset + RFC_REQUEST.length);
  });

  it('returns rest as a view of the last chunk when the head was split', () => {
    const data = concat(bytes(RFC_REQUEST), FRAME);
    const parser = new RequestHeadParser();
    expect(parser.push(data.slice(0, 10)).kind).toBe('incomplete');
    const last = data.slice(10);
    const { rest } = expectComplete(parser.push(last));
    expect([...rest]).toEqual([...FRAME]);
    expect(rest.buffer).toBe(last.buffer);
  });

  it('gives the same head and rest for the request split at every byte boundary', () => {
    const data = concat(bytes(RFC_REQUEST), FRAME);
    const whole = expectComplete(new RequestHeadParser().push(data));
    for (let cut = 1; cut < data.length; cut++) {
      const split = expectComplete(pushSplit(new RequestHeadParser(), data, [cut]));
      expect(split.head).toEqual(whole.head);
      expect([...split.rest]).toEqual([...FRAME]);
    }
  });

  it('parses a head fed one byte at a time', () => {
    const data = bytes(RFC_REQUEST);
    const parser = new RequestHeadParser();
    let result: HeadResult<RequestHead> = { kind: 'incomplete' };
    for (let i = 0; i < data.length; i++) {
      result = parser.push(data.subarray(i, i + 1));
      if (i < data.length - 1) expect(result.kind).toBe('incomplete');
    }
    expect(expectComplete(result).head).toEqual(expectComplete(parseRequest(RFC_REQUEST)).head);
  });

  it('parses any generated head identically however it is split (property)', () => {
    const tokenChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~");
    const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 });
    // field-content without leading/trailing whitespace: VCHAR and obs-text, inner SP/HTAB.
    const valueChar = fc
      .integer({ min: 0x20, max: 0xff })
      .filter((c) => c !== 0x7f)
      .map((c) => String.fromCharCode(c));
    const value = fc.string({ unit: fc.oneof(valueChar, fc.constant('\t')), maxLength: 20 }).map((v) => v.replace(/^[ \t]+|[ \t]+$/g, ''));
    const head = fc.record({
      target: fc.string({ unit: fc.constantFrom(...'/abc?=&%0123'), minLength: 1, maxLength: 20 }).map((t) => `/${t}`),
      headers: fc.array(fc.tuple(token, value, fc.constantFrom('', ' ', '\t ')), { maxLength: 12 }),
      rest: fc.uint8Array({ maxLength: 16 }),
    });
    fc.assert(
      fc.property(head, fc.array(fc.nat(), { maxLength: 8 }), (h, cutSeeds) => {
        const text = `GET ${h.target} HTTP/1.1\r\n` + h.headers.map(([n, v, ows]) => `${n}:${ows}${v}${ows}\r\n`).join('') + '\r\n';
        const data = concat(bytes(text), h.rest);
        const cuts = cutSeeds.map((s) => s % (data.length + 1));
        const { head: parsed, rest } = expectComplete(pushSplit(new RequestHeadParser(), data, cuts));
        const expected = new Map<string, string>();
        for (const [n, v] of h.headers) {
          const name = n.toLowerCase();
          const previous = expected.get(name);
          expected.set(name, previous === undefined ? v : `${previous}, ${v}`);
        }
        expect(parsed.target).toBe(h.target);
        expect(parsed.headers).toEqual(expected);
        expect([...rest]).toEqual([...h.rest]);
      }),
      { numRuns: 300 },
    );
  });

  it('combines repeated headers with ", " in order (RFC 7230 §3.2.2)', () => {
    const { head } = expectComplete(parseRequest('GET / HTTP/1.1\r\nA: 1\r\nB: x\r\na: 2\r\nA:3\r\nempty:\r\nEmpty: \r\n\r\n'));
    expect(head.headers.get('a')).toBe('1, 2, 3');
    expect(head.headers.get('b')).toBe('x');
    expect(head.headers.get('empty')).toBe(', ');
  });

  it('trims leading and trailing SP/HTAB of values but keeps inner whitespace', () => {
    const { head } = expectComplete(parseRequest('GET / HTTP/1.1\r\nX: \t a \t b \t\r\n\r\n'));
    expect(head.headers.get('x')).toBe('a \t b');
  });

  it('decodes header bytes as latin1, one char per byte (0x80 stays U+0080)', () => {
    const data = concat(bytes('GET / HTTP/1.1\r\nX: '), Uint8Array.of(0x80, 0xe9, 0xff), bytes('\r\n\r\n'));
    const { head } = expectComplete(new RequestHeadParser().push(data));
    expect(head.headers.get('x')).toBe('\u0080\u00e9\u00ff');
  });

  it('ignores empty lines before the request line (RFC 7230 §3.5)', () => {
    const { head } = expectComplete(parseRequest('\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    expect(head.method).toBe('GET');
    expect(head.headers.get('host')).toBe('a');
  });

  it('keeps the version digits and accepts any method token and absolute targets', () => {
    const { head } = expectComplete(parseRequest('M-SEARCH http://a.example/x?y HTTP/1.0\r\n\r\n'));
    expect(head).toEqual({ method: 'M-SEARCH', target: 'http://a.example/x?y', httpVersion: '1.0', headers: new Map() });
  });

  it('repeats an error on later pushes', () => {
    const parser = new RequestHeadParser();
    const first = parser.push(bytes('GET / HTTP/1.1\r\nBad Name: x\r\n'));
    expectError(first, 400, 'WHITESPACE_BEFORE_COLON');
    expect(parser.push(bytes('\r\n'))).toBe(first);
  });

  it('refuses pushes after the head was complete', () => {
    const parser = new RequestHeadParser();
    expectComplete(parser.push(bytes('GET / HTTP/1.1\r\n\r\n')));
    expect(() => parser.push(FRAME)).toThrow(UsageError);
  });

  describe('rejects malformed heads with 400', () => {
    const cases: Array<[string, string, string]> = [
      ['obs-fold', 'GET / HTTP/1.1\r\nX: a\r\n continued\r\n\r\n', 'OBS_FOLD'],
      ['obs-fold with a tab', 'GET / HTTP/1.1\r\nX: a\r\n\tcontinued\r\n\r\n', 'OBS_FOLD'],
      ['whitespace before the first header', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n', 'OBS_FOLD'],
      ['space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 'WHITESPACE_BEFORE_COLON'],
      ['tab before the colon', 'GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', 'WHITESPACE_BEFORE_COLON'],
      ['a bare CR in a value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', 'BARE_CR'],
      ['a bare CR in the request line', 'GET /\r HTTP/1.1\r\n\r\n', 'BARE_CR'],
      ['a bare LF line end', 'GET / HTTP/1.1\nHost: a\n\n', 'BARE_LF'],
      ['a bare LF in a value', 'GET / HTTP/1.1\r\nX: a\nb\r\n\r\n', 'BARE_LF'],
      ['NUL in a value', 'GET / HTTP/1.1\r\nX: a\u0000b\r\n\r\n', 'CONTROL_CHARACTER'],
      ['DEL in a value', 'GET / HTTP/1.1\r\nX: a\u007fb\r\n\r\n', 'CONTROL_CHARACTER'],
      ['ESC in a value', 'GET / HTTP/1.1\r\nX: \u001b[31m\r\n\r\n', 'CONTROL_CHARACTER'],
      ['a control character in the request line', 'GET /\u0001 HTTP/1.1\r\n\r\n', 'CONTROL_CHARACTER'],
      ['a separator in a name', 'GET / HTTP/1.1\r\nX(y): a\r\n\r\n', 'INVALID_HEADER_NAME'],
      ['a non-ASCII byte in a name', 'GET / HTTP/1.1\r\nX\u00e9: a\r\n\r\n', 'INVALID_HEADER_NAME'],
      ['an empty name', 'GET / HTTP/1.1\r\n: a\r\n\r\n', 'INVALID_HEADER_NAME'],
      ['a header line without colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n', 'MISSING_COLON'],
      ['two spaces in the request line', 'GET  / HTTP/1.1\r\n\r\n', 'INVALID_START_LINE'],
      ['a missing target', 'GET HTTP/1.1\r\n\r\n', 'INVALID_START_LINE'],
      ['a method that is not a token', 'G(T / HTTP/1.1\r\n\r\n', 'INVALID_START_LINE'],
      ['a non-ASCII byte in the target', 'GET /\u00e9 HTTP/1.1\r\n\r\n', 'INVALID_START_LINE'],
      ['a missing version', 'GET /\r\n\r\n', 'INVALID_START_LINE'],
      ['a lower-case version', 'GET / http/1.1\r\n\r\n', 'INVALID_HTTP_VERSION'],
      ['a version without minor', 'GET / HTTP/1\r\n\r\n', 'INVALID_HTTP_VERSION'],
      ['trailing text after the version', 'GET / HTTP/1.1 x\r\n\r\n', 'INVALID_HTTP_VERSION'],
    ];
    for (const [what, text, code] of cases) {
      it(`refuses ${what} (${code})`, () => {
        expectError(parseRequest(text), 400, code);
        // The verdict does not depend on how the bytes arrive.
        const parser = new RequestHeadParser();
        const data = bytes(text);
        let result: HeadResult<RequestHead> = { kind: 'incomplete' };
        for (let i = 0; i < data.length && result.kind === 'incomplete'; i++) result = parser.push(data.subarray(i, i + 1));
        expectError(result, 400, code);
      });
    }
  });

  describe('limits', () => {
    it('has the documented defaults', () => {
      expect(DEFAULT_HEAD_LIMITS).toEqual({ maxHeadBytes: 16384, maxHeaders: 100, maxLineBytes: 8192 });
    });

    it('refuses limits that are not positive integers', () => {
      expect(() => new RequestHeadParser({ maxHeadBytes: 0 })).toThrow(UsageError);
      expect(() => new ResponseHeadParser({ maxHeaders: Number.NaN })).toThrow(UsageError);
      expect(() => new RequestHeadParser({ maxLineBytes: 1.5 })).toThrow(UsageError);
      expect(() => new RequestHeadParser({ maxLineBytes: undefined })).not.toThrow();
    });

    it('accepts a head of exactly maxHeadBytes and refuses one byte more with 431', () => {
      const base = 'GET / HTTP/1.1\r\nX: \r\n\r\n';
      const limit = 200;
      const exact = base.replace('X: ', `X: ${'a'.repeat(limit - base.length)}`);
      expect(exact.length).toBe(limit);
      // Frames behind the head do not count toward its size.
      const { rest } = expectComplete(new RequestHeadParser({ maxHeadBytes: limit }).push(concat(bytes(exact), FRAME)));
      expect([...rest]).toEqual([...FRAME]);
      const over = exact.replace('X: ', 'X: a');
      expectError(parseRequest(over, { maxHeadBytes: limit }), 431, 'HEAD_TOO_LARGE');
    });

    it('refuses a too-large head as soon as the limit is passed, without waiting for its end', () => {
      const parser = new RequestHeadParser({ maxHeadBytes: 64 });
      expect(parser.push(bytes('GET / HTTP/1.1\r\nX: ')).kind).toBe('incomplete');
      expectError(parser.push(bytes('a'.repeat(100))), 431, 'HEAD_TOO_LARGE');
    });

    it('refuses an unfinished head that has filled the limit exactly', () => {
      const parser = new RequestHeadParser({ maxHeadBytes: 32 });
      expect(parser.push(bytes('GET / HTTP/1.1\r\nX: ')).kind).toBe('incomplete');
      expectError(parser.push(bytes('a'.repeat(32 - 19))), 431, 'HEAD_TOO_LARGE');
    });

    it('refuses the default 16 KiB limit exceeded with many lines', () => {
      const line = `X: ${'a'.repeat(1000)}\r\n`;
      const text = `GET / HTTP/1.1\r\n${line.repeat(17)}\r\n`;
      expectError(parseRequest(text), 431, 'HEAD_TOO_LARGE');
    });

    it('accepts maxHeaders header lines and refuses one more with 431', () => {
      const lines = (n: number) => `GET / HTTP/1.1\r\n${'X: a\r\n'.repeat(n)}\r\n`;
      expectComplete(parseRequest(lines(5), { maxHeaders: 5 }));
      expectError(parseRequest(lines(6), { maxHeaders: 5 }), 431, 'TOO_MANY_HEADERS');
      expectComplete(parseRequest(lines(100)));
      expectError(parseRequest(lines(101)), 431, 'TOO_MANY_HEADERS');
    });

    it('accepts a header line of maxLineBytes and refuses one byte more with 431', () => {
      const header = (n: number) => `GET / HTTP/1.1\r\nX: ${'a'.repeat(n - 3)}\r\n\r\n`;
      expectComplete(parseRequest(header(50), { maxLineBytes: 50 }));
      expectError(parseRequest(header(51), { maxLineBytes: 50 }), 431, 'LINE_TOO_LONG');
      expectError(parseRequest(header(8193)), 431, 'LINE_TOO_LONG');
    });

    it('applies the line limit to the request line', () => {
      const request = (n: number) => `GET /${'a'.repeat(n - 'GET / HTTP/1.1'.length)} HTTP/1.1\r\n\r\n`;
      expectComplete(parseRequest(request(40), { maxLineBytes: 40 }));
      expectError(parseRequest(request(41), { maxLineBytes: 40 }), 431, 'LINE_TOO_LONG');
    });
  });
});

describe('ResponseHeadParser', () => {
  it('parses the RFC 6455 §1.3 response and returns the frames behind it', () => {
    const data = concat(bytes(RFC_RESPONSE), FRAME);
    const { head, rest } = expectComplete(new ResponseHeadParser().push(data));
    expect(head.httpVersion).toBe('1.1');
    expect(head.status).toBe(101);
    expect(head.reason).toBe('Switching Protocols');
    expect(head.headers.get('sec-websocket-accept')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(head.headers.get('sec-websocket-protocol')).toBe('chat');
    expect([...rest]).toEqual([...FRAME]);
  });

  it('gives the same response head for every split point', () => {
    const data = concat(bytes(RFC_RESPONSE), FRAME);
    const whole = expectComplete(new ResponseHeadParser().push(data));
    for (let cut = 1; cut < data.length; cut++) {
      const split = expectComplete(pushSplit(new ResponseHeadParser(), data, [cut]));
      expect(split.head).toEqual(whole.head);
      expect([...split.rest]).toEqual([...FRAME]);
    }
  });

  it('accepts an empty reason phrase, with or without the space before it', () => {
    expect(expectComplete(new ResponseHeadParser().push(bytes('HTTP/1.1 101 \r\n\r\n'))).head.reason).toBe('');
    const { head } = expectComplete(new ResponseHeadParser().push(bytes('HTTP/1.1 403\r\n\r\n')));
    expect(head.status).toBe(403);
    expect(head.reason).toBe('');
  });

  it('keeps spaces and tabs inside the reason phrase', () => {
    const { head } = expectComplete(new ResponseHeadParser().push(bytes('HTTP/1.1 400 Bad\tRequest here\r\n\r\n')));
    expect(head.reason).toBe('Bad\tRequest here');
  });

  const bad: Array<[string, string, string]> = [
    ['a two-digit status', 'HTTP/1.1 99 X\r\n\r\n', 'INVALID_START_LINE'],
    ['a four-digit status', 'HTTP/1.1 1010 X\r\n\r\n', 'INVALID_START_LINE'],
    ['a letter in the status', 'HTTP/1.1 1O1 X\r\n\r\n', 'INVALID_START_LINE'],
    ['no space after the version', 'HTTP/1.1101 X\r\n\r\n', 'INVALID_START_LINE'],
    ['a wrong protocol name', 'HTTX/1.1 101 X\r\n\r\n', 'INVALID_HTTP_VERSION'],
    ['a truncated status line', 'HTTP/1.\r\n\r\n', 'INVALID_HTTP_VERSION'],
    ['obs-fold', 'HTTP/1.1 101 X\r\nUpgrade: a\r\n b\r\n\r\n', 'OBS_FOLD'],
  ];
  for (const [what, text, code] of bad) {
    it(`refuses ${what} (${code})`, () => {
      expectError(new ResponseHeadParser().push(bytes(text)), 400, code);
    });
  }

  it('applies the same limits', () => {
    const text = `HTTP/1.1 101 X\r\n${'A: b\r\n'.repeat(3)}\r\n`;
    expectError(new ResponseHeadParser({ maxHeaders: 2 }).push(bytes(text)), 431, 'TOO_MANY_HEADERS');
  });
});

describe('headersFromRaw', () => {
  it('builds the same map as the parser from Node rawHeaders', () => {
    const raw = ['Host', 'a', 'Sec-WebSocket-Protocol', 'chat', 'sec-websocket-protocol', ' superchat\t', 'X', ''];
    const parsed = expectComplete(
      parseRequest('GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Protocol: chat\r\nsec-websocket-protocol: superchat\r\nX:\r\n\r\n'),
    );
    expect(headersFromRaw(raw)).toEqual(parsed.head.headers);
    expect(headersFromRaw(raw).get('sec-websocket-protocol')).toBe('chat, superchat');
  });

  it('ignores a trailing name without value', () => {
    expect([...headersFromRaw(['A', '1', 'B'])]).toEqual([['a', '1']]);
  });
});
