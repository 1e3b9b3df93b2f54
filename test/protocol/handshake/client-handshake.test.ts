import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/protocol/errors.js';
import { generateClientKey } from '../../../src/protocol/handshake/accept-key.js';
import { type UpgradeRequestOptions, buildUpgradeRequest, validateUpgradeResponse } from '../../../src/protocol/handshake/client-handshake.js';
import { type HeadResult, type ResponseHead, RequestHeadParser, ResponseHeadParser } from '../../../src/protocol/handshake/http-head.js';
import { buildAcceptResponse, validateUpgradeRequest } from '../../../src/protocol/handshake/server-handshake.js';
import { selectSubprotocol } from '../../../src/protocol/handshake/subprotocol.js';

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function parseResponse(text: string): ResponseHead {
  const result = new ResponseHeadParser().push(bytes(text));
  if (result.kind !== 'complete') throw new Error(`head did not parse: ${JSON.stringify(result)}`);
  return result.head;
}

/** The RFC 6455 §1.3 response with some headers replaced (undefined removes one). */
function response(changes: Record<string, string | undefined> = {}, statusLine = 'HTTP/1.1 101 Switching Protocols') {
  const headers: Record<string, string | undefined> = {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Accept': RFC_ACCEPT,
    ...changes,
  };
  const lines = Object.entries(headers)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}: ${value}\r\n`);
  return parseResponse(`${statusLine}\r\n${lines.join('')}\r\n`);
}

describe('buildUpgradeRequest', () => {
  it('writes the RFC 6455 §1.2 request (handshake headers first, then Origin and subprotocols)', () => {
    expect(
      buildUpgradeRequest({
        host: 'server.example.com',
        path: '/chat',
        key: RFC_KEY,
        origin: 'http://example.com',
        protocols: ['chat', 'superchat'],
      }),
    ).toBe(
      'GET /chat HTTP/1.1\r\n' +
        'Host: server.example.com\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${RFC_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'Origin: http://example.com\r\n' +
        'Sec-WebSocket-Protocol: chat, superchat\r\n' +
        '\r\n',
    );
  });

  it('writes extensions and extra headers, and omits empty options', () => {
    expect(
      buildUpgradeRequest({
        host: '[::1]:8080',
        path: '/a?b=c%20d',
        key: RFC_KEY,
        protocols: [],
        extensions: 'permessage-deflate; client_max_window_bits',
        headers: [['Authorization', 'Bearer abc']],
      }),
    ).toBe(
      'GET /a?b=c%20d HTTP/1.1\r\n' +
        'Host: [::1]:8080\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${RFC_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
        'Authorization: Bearer abc\r\n' +
        '\r\n',
    );
    expect(buildUpgradeRequest({ host: 'a', path: '/', key: RFC_KEY, extensions: '' })).not.toContain('Extensions');
  });

  const base: UpgradeRequestOptions = { host: 'a.example', path: '/', key: RFC_KEY };
  it.each([
    ['a path without leading slash', { path: 'chat' }],
    ['a path with a space', { path: '/a b' }],
    ['a path with CR LF', { path: '/\r\nX-Evil: 1' }],
    ['a path with non-ASCII text', { path: '/caf\u00e9' }],
    ['an empty host', { host: '' }],
    ['a host with CR LF', { host: 'a\r\nX-Evil: 1' }],
    ['an invalid key', { key: 'abc' }],
    ['a subprotocol that is not a token', { protocols: ['chat room'] }],
    ['a subprotocol with CR LF', { protocols: ['chat\r\nX-Evil: 1'] }],
    ['a subprotocol listed twice', { protocols: ['chat', 'chat'] }],
    ['malformed extensions', { extensions: 'a; b=' }],
    ['extensions with CR LF', { extensions: 'a\r\nX-Evil: 1' }],
    ['an origin with LF', { origin: 'http://a\nX-Evil: 1' }],
    ['a header value with CR LF', { headers: [['X-Test', '1\r\n\r\n']] }],
    ['a header name that is not a token', { headers: [['X:Test', '1']] }],
    ['a header the handshake writes itself', { headers: [['Sec-WebSocket-Key', RFC_KEY]] }],
    ['a Host header among the extra headers', { headers: [['host', 'b']] }],
  ] as Array<[string, Partial<UpgradeRequestOptions>]>)('refuses %s with UsageError', (_what, changes) => {
    let error: unknown;
    try {
      buildUpgradeRequest({ ...base, ...changes });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).code).toBe('WS_ERR_INVALID_ARGUMENT');
  });
});

describe('validateUpgradeResponse', () => {
  it('accepts the RFC 6455 §1.3 response and reports the subprotocol', () => {
    expect(
      validateUpgradeResponse(response({ 'Sec-WebSocket-Protocol': 'chat' }), {
        key: RFC_KEY,
        protocols: ['chat', 'superchat'],
      }),
    ).toEqual({ ok: true, protocol: 'chat', extensions: [] });
  });

  it('accepts a response without subprotocol', () => {
    expect(validateUpgradeResponse(response(), { key: RFC_KEY, protocols: ['chat'] })).toEqual({
      ok: true,
      protocol: undefined,
      extensions: [],
    });
  });

  it('reports the extensions the server accepted, parsed', () => {
    const head = response({ 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=10' });
    expect(validateUpgradeResponse(head, { key: RFC_KEY, protocols: [] })).toEqual({
      ok: true,
      protocol: undefined,
      extensions: [{ name: 'permessage-deflate', params: [['server_max_window_bits', '10']] }],
    });
  });

  it.each([
    ['Upgrade in another case', { Upgrade: 'WebSocket' }],
    ['Connection in another case', { Connection: 'upgrade' }],
    ['Connection as a list', { Connection: 'Upgrade, keep-alive' }],
  ])('accepts %s', (_what, changes) => {
    expect(validateUpgradeResponse(response(changes), { key: RFC_KEY, protocols: [] }).ok).toBe(true);
  });

  it("reports a non-101 status with the server's status and reason phrase", () => {
    const head = response({}, 'HTTP/1.1 403 Forbidden');
    expect(validateUpgradeResponse(head, { key: RFC_KEY, protocols: [] })).toEqual({
      ok: false,
      code: 'UNEXPECTED_STATUS',
      status: 403,
      reason: 'server answered 403 Forbidden instead of 101 Switching Protocols',
    });
  });

  it('reports a 200 as a failed upgrade', () => {
    const head = response({}, 'HTTP/1.1 200 OK');
    expect(validateUpgradeResponse(head, { key: RFC_KEY, protocols: [] })).toMatchObject({
      code: 'UNEXPECTED_STATUS',
      status: 200,
    });
  });

  it.each([
    ['a missing Upgrade', { Upgrade: undefined }, 'INVALID_UPGRADE'],
    ['another Upgrade', { Upgrade: 'h2c' }, 'INVALID_UPGRADE'],
    ['Upgrade as a list', { Upgrade: 'websocket, h2c' }, 'INVALID_UPGRADE'],
    ['a missing Connection', { Connection: undefined }, 'INVALID_CONNECTION'],
    ['Connection without upgrade', { Connection: 'keep-alive' }, 'INVALID_CONNECTION'],
    ['a missing accept key', { 'Sec-WebSocket-Accept': undefined }, 'INVALID_ACCEPT'],
    ['a wrong accept key', { 'Sec-WebSocket-Accept': 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' }, 'INVALID_ACCEPT'],
    ['the key itself as accept key', { 'Sec-WebSocket-Accept': RFC_KEY }, 'INVALID_ACCEPT'],
    ['a malformed extensions header', { 'Sec-WebSocket-Extensions': 'permessage-deflate;' }, 'INVALID_EXTENSIONS'],
    ['a subprotocol that was not offered', { 'Sec-WebSocket-Protocol': 'mqtt' }, 'UNEXPECTED_SUBPROTOCOL'],
    ['two subprotocols', { 'Sec-WebSocket-Protocol': 'chat, superchat' }, 'UNEXPECTED_SUBPROTOCOL'],
    ['an offered subprotocol in another case', { 'Sec-WebSocket-Protocol': 'Chat' }, 'UNEXPECTED_SUBPROTOCOL'],
    ['an empty subprotocol', { 'Sec-WebSocket-Protocol': '' }, 'UNEXPECTED_SUBPROTOCOL'],
  ])('fails on %s', (_what, changes, code) => {
    expect(validateUpgradeResponse(response(changes), { key: RFC_KEY, protocols: ['chat', 'superchat'] })).toMatchObject({
      ok: false,
      code,
      status: 101,
      reason: expect.any(String),
    });
  });

  it('fails on any subprotocol when none was offered', () => {
    expect(validateUpgradeResponse(response({ 'Sec-WebSocket-Protocol': 'chat' }), { key: RFC_KEY, protocols: [] })).toMatchObject({
      ok: false,
      code: 'UNEXPECTED_SUBPROTOCOL',
    });
  });

  it('fails on a response accepted for a different key', () => {
    expect(validateUpgradeResponse(response(), { key: generateClientKey(), protocols: [] })).toMatchObject({
      ok: false,
      code: 'INVALID_ACCEPT',
    });
  });
});

describe('a full opening handshake between both roles', () => {
  it('succeeds for any key, subprotocols and split of the response (property)', () => {
    const name = fc.string({ unit: fc.constantFrom(...'abcxyz0123.-_'), minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(
        fc.uniqueArray(name, { maxLength: 4 }),
        fc.uniqueArray(name, { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.uint8Array({ maxLength: 12 }),
        (offered, supported, cutSeeds, frames) => {
          const key = generateClientKey();
          const requestText = buildUpgradeRequest({ host: 'localhost:9000', path: '/ws', key, protocols: offered });

          const parsedRequest = new RequestHeadParser().push(bytes(requestText));
          if (parsedRequest.kind !== 'complete') throw new Error('request did not parse');
          const verdict = validateUpgradeRequest(parsedRequest.head);
          if (!verdict.ok) throw new Error(verdict.reason);
          expect(verdict.protocols).toEqual(offered);
          const selected = selectSubprotocol(verdict.protocols, supported);
          const responseText = buildAcceptResponse({ key: verdict.key, protocol: selected });

          // The response arrives in arbitrary pieces with the first frames right behind it.
          const wire = new Uint8Array([...bytes(responseText), ...frames]);
          const cuts = [...new Set(cutSeeds.map((s) => s % (wire.length + 1)))].sort((a, b) => a - b);
          const parser = new ResponseHeadParser();
          let result: HeadResult<ResponseHead> = { kind: 'incomplete' };
          let from = 0;
          let after = new Uint8Array(0);
          for (const to of [...cuts, wire.length]) {
            if (to < from) continue;
            result = parser.push(wire.subarray(from, to));
            from = to;
            if (result.kind === 'complete') {
              after = new Uint8Array([...result.rest, ...wire.subarray(from)]);
              break;
            }
          }
          if (result.kind !== 'complete') throw new Error('response did not parse');
          expect([...after]).toEqual([...frames]);
          expect(validateUpgradeResponse(result.head, { key, protocols: offered })).toEqual({
            ok: true,
            protocol: selected,
            extensions: [],
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
