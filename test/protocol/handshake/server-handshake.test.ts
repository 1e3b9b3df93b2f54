import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/protocol/errors.js';
import { type RequestHead, RequestHeadParser, ResponseHeadParser, headersFromRaw } from '../../../src/protocol/handshake/http-head.js';
import { buildAcceptResponse, buildRejection, validateUpgradeRequest } from '../../../src/protocol/handshake/server-handshake.js';

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

// RFC 6455 §1.2, the client's handshake.
const RFC_REQUEST =
  'GET /chat HTTP/1.1\r\n' +
  'Host: server.example.com\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  `Sec-WebSocket-Key: ${RFC_KEY}\r\n` +
  'Origin: http://example.com\r\n' +
  'Sec-WebSocket-Protocol: chat, superchat\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  '\r\n';

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function parse(text: string): RequestHead {
  const result = new RequestHeadParser().push(bytes(text));
  if (result.kind !== 'complete') throw new Error(`head did not parse: ${JSON.stringify(result)}`);
  return result.head;
}

/** A valid request head with some headers replaced (undefined removes one). */
function request(changes: Record<string, string | undefined> = {}, line = 'GET /chat HTTP/1.1'): RequestHead {
  const headers: Record<string, string | undefined> = {
    Host: 'server.example.com',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': RFC_KEY,
    'Sec-WebSocket-Version': '13',
    ...changes,
  };
  const lines = Object.entries(headers)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}: ${value}\r\n`);
  return parse(`${line}\r\n${lines.join('')}\r\n`);
}

describe('validateUpgradeRequest', () => {
  it('accepts the RFC 6455 §1.2 request and reports key and subprotocols', () => {
    expect(validateUpgradeRequest(parse(RFC_REQUEST))).toEqual({
      ok: true,
      key: RFC_KEY,
      protocols: ['chat', 'superchat'],
      extensions: [],
    });
  });

  it('reports the offered extensions', () => {
    const result = validateUpgradeRequest(request({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits, permessage-deflate' }));
    expect(result).toMatchObject({
      ok: true,
      extensions: [
        { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
        { name: 'permessage-deflate', params: [] },
      ],
    });
  });

  it('gives the same verdict for heads built from Node rawHeaders', () => {
    const parsed = parse(RFC_REQUEST);
    const raw = [...parsed.headers].flat();
    const fromNode: RequestHead = { method: 'GET', target: '/chat', httpVersion: '1.1', headers: headersFromRaw(raw) };
    expect(validateUpgradeRequest(fromNode)).toEqual(validateUpgradeRequest(parsed));
  });

  it.each([
    ['Upgrade in any case', { Upgrade: 'WebSocket' }],
    ['Upgrade as a list', { Upgrade: 'h2c, websocket' }],
    ['Connection in any case', { Connection: 'upgrade' }],
    ['Connection as a list (Firefox sends "keep-alive, Upgrade")', { Connection: 'keep-alive, Upgrade' }],
    ['a host with a port', { Host: '127.0.0.1:8080' }],
  ])('accepts %s', (_what, changes) => {
    expect(validateUpgradeRequest(request(changes)).ok).toBe(true);
  });

  it('accepts later HTTP/1.x versions and absolute-form targets', () => {
    expect(validateUpgradeRequest(request({}, 'GET /chat HTTP/1.2')).ok).toBe(true);
    expect(validateUpgradeRequest(request({}, 'GET http://server.example.com/chat HTTP/1.1')).ok).toBe(true);
  });

  it('refuses other methods with 405 and Allow: GET', () => {
    expect(validateUpgradeRequest(request({}, 'POST /chat HTTP/1.1'))).toEqual({
      ok: false,
      code: 'METHOD_NOT_ALLOWED',
      status: 405,
      reason: expect.any(String),
      headers: [['Allow', 'GET']],
    });
  });

  it('refuses HTTP/1.0 with 400', () => {
    expect(validateUpgradeRequest(request({}, 'GET /chat HTTP/1.0'))).toMatchObject({
      ok: false,
      code: 'UNSUPPORTED_HTTP_VERSION',
      status: 400,
    });
  });

  it('refuses a target that is not a resource path with 400', () => {
    expect(validateUpgradeRequest(request({}, 'GET * HTTP/1.1'))).toMatchObject({ code: 'INVALID_TARGET', status: 400 });
    expect(validateUpgradeRequest(request({}, 'GET example.com:80 HTTP/1.1'))).toMatchObject({
      code: 'INVALID_TARGET',
      status: 400,
    });
  });

  it('refuses a missing or empty Host with 400', () => {
    expect(validateUpgradeRequest(request({ Host: undefined }))).toMatchObject({ code: 'MISSING_HOST', status: 400 });
    expect(validateUpgradeRequest(request({ Host: '' }))).toMatchObject({ code: 'MISSING_HOST', status: 400 });
  });

  it('refuses two Host lines with 400 (RFC 7230 §5.4)', () => {
    const head = parse(RFC_REQUEST.replace('Host: server.example.com\r\n', 'Host: a.example\r\nHost: b.example\r\n'));
    expect(validateUpgradeRequest(head)).toMatchObject({ ok: false, code: 'INVALID_HOST', status: 400 });
  });

  const upgradeRequired = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
  ];

  it.each([
    ['a missing Upgrade', { Upgrade: undefined }],
    ['another protocol in Upgrade', { Upgrade: 'h2c' }],
    ['a versioned websocket token', { Upgrade: 'websocket/13' }],
  ])('refuses %s with 426 naming websocket', (_what, changes) => {
    expect(validateUpgradeRequest(request(changes))).toEqual({
      ok: false,
      code: 'NOT_WEBSOCKET_UPGRADE',
      status: 426,
      reason: expect.any(String),
      headers: upgradeRequired,
    });
  });

  it.each([
    ['a missing Connection', { Connection: undefined }],
    ['Connection without upgrade', { Connection: 'keep-alive' }],
    ['upgrade only as part of a token', { Connection: 'upgraded' }],
  ])('refuses %s with 426 naming websocket', (_what, changes) => {
    expect(validateUpgradeRequest(request(changes))).toEqual({
      ok: false,
      code: 'CONNECTION_NOT_UPGRADE',
      status: 426,
      reason: expect.any(String),
      headers: upgradeRequired,
    });
  });

  it.each([
    ['a missing version', { 'Sec-WebSocket-Version': undefined }],
    ['version 8', { 'Sec-WebSocket-Version': '8' }],
    ['version 14', { 'Sec-WebSocket-Version': '14' }],
  ])('refuses %s with 426 and Sec-WebSocket-Version: 13', (_what, changes) => {
    expect(validateUpgradeRequest(request(changes))).toEqual({
      ok: false,
      code: 'UNSUPPORTED_WEBSOCKET_VERSION',
      status: 426,
      reason: expect.any(String),
      headers: [...upgradeRequired, ['Sec-WebSocket-Version', '13']],
    });
  });

  it.each([
    ['two versions', { 'Sec-WebSocket-Version': '13, 8' }],
    ['a non-numeric version', { 'Sec-WebSocket-Version': 'thirteen' }],
  ])('refuses %s with 400', (_what, changes) => {
    expect(validateUpgradeRequest(request(changes))).toMatchObject({ code: 'INVALID_WEBSOCKET_VERSION', status: 400 });
  });

  it.each([
    ['a missing key', { 'Sec-WebSocket-Key': undefined }],
    ['a key of 15 bytes', { 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAA' }],
    ['a key that is not base64', { 'Sec-WebSocket-Key': 'not a key at all!!!!!!==' }],
    ['two keys', { 'Sec-WebSocket-Key': `${RFC_KEY}, ${RFC_KEY}` }],
  ])('refuses %s with 400', (_what, changes) => {
    const result = validateUpgradeRequest(request(changes));
    expect(result).toMatchObject({ ok: false, code: 'INVALID_KEY', status: 400 });
    expect(result.ok === false && result.headers).toBe(undefined);
  });

  it('refuses malformed subprotocol lists with 400', () => {
    for (const value of ['chat room', 'chat, chat', '']) {
      expect(validateUpgradeRequest(request({ 'Sec-WebSocket-Protocol': value }))).toMatchObject({
        code: 'INVALID_SUBPROTOCOLS',
        status: 400,
      });
    }
  });

  it('refuses malformed extension offers with 400', () => {
    for (const value of ['a;', 'a; b="c d"', '']) {
      expect(validateUpgradeRequest(request({ 'Sec-WebSocket-Extensions': value }))).toMatchObject({
        code: 'INVALID_EXTENSIONS',
        status: 400,
      });
    }
  });

  it('checks in the documented order (method before everything else)', () => {
    const head = request({ Host: undefined, Upgrade: undefined }, 'PUT /chat HTTP/1.0');
    expect(validateUpgradeRequest(head)).toMatchObject({ status: 405 });
  });
});

describe('buildAcceptResponse', () => {
  it('writes the RFC 6455 §1.3 response byte for byte', () => {
    expect(buildAcceptResponse({ key: RFC_KEY, protocol: 'chat' })).toBe(
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n' +
        'Sec-WebSocket-Protocol: chat\r\n' +
        '\r\n',
    );
  });

  it('writes the extensions and extra headers after the handshake headers', () => {
    expect(
      buildAcceptResponse({
        key: RFC_KEY,
        extensions: 'permessage-deflate; server_no_context_takeover',
        headers: [['Set-Cookie', 'id=1; Path=/']],
      }),
    ).toBe(
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n' +
        'Set-Cookie: id=1; Path=/\r\n' +
        '\r\n',
    );
  });

  it('omits an empty extensions value', () => {
    expect(buildAcceptResponse({ key: RFC_KEY, extensions: '' })).not.toContain('Extensions');
  });

  it.each([
    ['a subprotocol with CR LF', { protocol: 'chat\r\nX-Evil: 1' }],
    ['a subprotocol that is not a token', { protocol: 'chat room' }],
    ['an empty subprotocol', { protocol: '' }],
    ['extensions with CR LF', { extensions: 'permessage-deflate\r\nX-Evil: 1' }],
    ['malformed extensions', { extensions: 'permessage-deflate;' }],
    ['a header value with LF', { headers: [['X-Test', 'a\nX-Evil: 1']] }],
    ['a header value with CR', { headers: [['X-Test', 'a\rb']] }],
    ['a header value with NUL', { headers: [['X-Test', 'a\u0000b']] }],
    ['a header value with non-ASCII text', { headers: [['X-Test', 'caf\u00e9']] }],
    ['a header name with CR LF', { headers: [['X-Test\r\nX-Evil', '1']] }],
    ['a header name with a space', { headers: [['X Test', '1']] }],
    ['a header the handshake writes itself', { headers: [['Sec-WebSocket-Accept', 'x']] }],
    ['a second Connection header', { headers: [['connection', 'close']] }],
  ] as const)('refuses %s with UsageError', (_what, options) => {
    let error: unknown;
    try {
      buildAcceptResponse({ key: RFC_KEY, ...(options as object) });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).code).toBe('WS_ERR_INVALID_ARGUMENT');
  });
});

describe('buildRejection', () => {
  it('writes a complete response with Connection: close, a text body and its length', () => {
    expect(buildRejection(400, 'Sec-WebSocket-Key is not base64 of 16 bytes')).toBe(
      'HTTP/1.1 400 Bad Request\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 43\r\n' +
        '\r\n' +
        'Sec-WebSocket-Key is not base64 of 16 bytes',
    );
  });

  it('counts Content-Length in UTF-8 bytes, not characters', () => {
    const reason = 'caf\u00e9 \u2603 \u{1f600}'; // 2-, 3- and 4-byte characters
    expect(Buffer.byteLength(reason, 'utf8')).toBe(14);
    expect(buildRejection(403, reason)).toContain('Content-Length: 14\r\n');
  });

  it('counts a lone surrogate as the 3 bytes it is encoded as', () => {
    const reason = 'a\ud800b';
    expect(buildRejection(400, reason)).toContain(`Content-Length: ${Buffer.from(reason, 'utf8').length}\r\n`);
  });

  it('writes the headers of a 426 rejection and merges its Connection option', () => {
    const result = validateUpgradeRequest(request({ Upgrade: undefined }));
    if (result.ok) throw new Error('expected a rejection');
    expect(buildRejection(result.status, 'x', result.headers)).toBe(
      'HTTP/1.1 426 Upgrade Required\r\n' +
        'Connection: Upgrade, close\r\n' +
        'Upgrade: websocket\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 1\r\n' +
        '\r\n' +
        'x',
    );
  });

  it('parses back as a response whose body is exactly Content-Length bytes', () => {
    const reason = 'nope \u00e9';
    const wire = new Uint8Array(Buffer.from(buildRejection(405, reason, [['Allow', 'GET']]), 'utf8'));
    const result = new ResponseHeadParser().push(wire);
    if (result.kind !== 'complete') throw new Error('rejection did not parse');
    expect(result.head.status).toBe(405);
    expect(result.head.reason).toBe('Method Not Allowed');
    expect(result.head.headers.get('allow')).toBe('GET');
    expect(Number(result.head.headers.get('content-length'))).toBe(result.rest.length);
    expect(Buffer.from(result.rest).toString('utf8')).toBe(reason);
  });

  it('writes an empty reason phrase for a status it has no phrase for', () => {
    expect(buildRejection(499, '')).toMatch(/^HTTP\/1\.1 499 \r\n/);
  });

  it.each([
    ['status 101', 101, undefined],
    ['status 200', 200, undefined],
    ['status 600', 600, undefined],
    ['a fractional status', 400.5, undefined],
    ['a header value with CR LF', 400, [['X-Test', '1\r\n\r\nHTTP/1.1 200 OK']]],
    ['a Connection option with LF', 426, [['Connection', 'Upgrade\nX: 1']]],
    ['a second Content-Length', 400, [['Content-Length', '0']]],
  ] as Array<[string, number, Array<[string, string]> | undefined]>)('refuses %s with UsageError', (_what, status, headers) => {
    expect(() => buildRejection(status, 'x', headers)).toThrow(UsageError);
  });
});
