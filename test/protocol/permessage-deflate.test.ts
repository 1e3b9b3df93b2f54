import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/protocol/errors.js';
import { formatExtensions, parseExtensions, type ExtensionOffer } from '../../src/protocol/handshake/extensions-header.js';
import {
  acceptServerResponse,
  buildClientOffer,
  checkDeflateOptions,
  negotiateServer,
  type DeflateOptions,
  type DeflateParams,
} from '../../src/protocol/permessage-deflate.js';

/** Parses a Sec-WebSocket-Extensions value the way the handshake will. */
function header(value: string): ExtensionOffer[] {
  const parsed = parseExtensions(value);
  if (!parsed.ok) throw new Error(`bad test header: ${parsed.reason}`);
  return parsed.offers;
}

/** The server's answer as header text, or null when it declines every offer. */
function serverAnswer(offers: string, options: DeflateOptions = {}): { params: DeflateParams; response: string } | null {
  const result = negotiateServer(header(offers), options);
  return result === null ? null : { params: result.params, response: formatExtensions([result.response]) };
}

function params(overrides: Partial<DeflateParams> = {}): DeflateParams {
  return {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
    ...overrides,
  };
}

describe('negotiateServer: accepting an offer (RFC 7692 §7.1)', () => {
  const cases: Array<{ name: string; offer: string; options?: DeflateOptions; response: string; params: DeflateParams }> = [
    {
      name: 'a bare offer is accepted with a bare response and unlimited windows',
      offer: 'permessage-deflate',
      response: 'permessage-deflate',
      params: params(),
    },
    {
      name: 'server_no_context_takeover requested by the client is echoed (§7.1.1.1)',
      offer: 'permessage-deflate; server_no_context_takeover',
      response: 'permessage-deflate; server_no_context_takeover',
      params: params({ serverNoContextTakeover: true }),
    },
    {
      name: 'the server may add server_no_context_takeover on its own (§7.1.1.1)',
      offer: 'permessage-deflate',
      options: { serverNoContextTakeover: true },
      response: 'permessage-deflate; server_no_context_takeover',
      params: params({ serverNoContextTakeover: true }),
    },
    {
      name: 'client_no_context_takeover offered by the client binds the client and is echoed (§7.1.1.2)',
      offer: 'permessage-deflate; client_no_context_takeover',
      response: 'permessage-deflate; client_no_context_takeover',
      params: params({ clientNoContextTakeover: true }),
    },
    {
      name: 'the server may impose client_no_context_takeover without an offer of it (§7.1.1.2)',
      offer: 'permessage-deflate',
      options: { clientNoContextTakeover: true },
      response: 'permessage-deflate; client_no_context_takeover',
      params: params({ clientNoContextTakeover: true }),
    },
    {
      name: 'server_max_window_bits offered is answered with the same value (§7.1.2.1)',
      offer: 'permessage-deflate; server_max_window_bits=10',
      response: 'permessage-deflate; server_max_window_bits=10',
      params: params({ serverMaxWindowBits: 10 }),
    },
    {
      name: 'server_max_window_bits=15 offered must still be answered (§7.1.2.1)',
      offer: 'permessage-deflate; server_max_window_bits=15',
      response: 'permessage-deflate; server_max_window_bits=15',
      params: params(),
    },
    {
      name: 'server_max_window_bits is answered with a smaller value when the server is limited further',
      offer: 'permessage-deflate; server_max_window_bits=12',
      options: { serverMaxWindowBits: 10 },
      response: 'permessage-deflate; server_max_window_bits=10',
      params: params({ serverMaxWindowBits: 10 }),
    },
    {
      name: 'a client asking for a smaller window than the server allows gets it rather than a decline',
      offer: 'permessage-deflate; server_max_window_bits=9',
      options: { serverMaxWindowBits: 12 },
      response: 'permessage-deflate; server_max_window_bits=9',
      params: params({ serverMaxWindowBits: 9 }),
    },
    {
      name: 'server_max_window_bits=8 is honoured (zlib compresses with 9, which stays within 256 bytes)',
      offer: 'permessage-deflate; server_max_window_bits=8',
      response: 'permessage-deflate; server_max_window_bits=8',
      params: params({ serverMaxWindowBits: 8 }),
    },
    {
      name: 'a limited server announces its window even when the client did not ask',
      offer: 'permessage-deflate',
      options: { serverMaxWindowBits: 11 },
      response: 'permessage-deflate; server_max_window_bits=11',
      params: params({ serverMaxWindowBits: 11 }),
    },
    {
      name: 'client_max_window_bits without a value only says the client supports it (§7.1.2.2)',
      offer: 'permessage-deflate; client_max_window_bits',
      response: 'permessage-deflate',
      params: params(),
    },
    {
      name: 'the server limits the client window when the client said it supports that (§7.1.2.2)',
      offer: 'permessage-deflate; client_max_window_bits',
      options: { clientMaxWindowBits: 10 },
      response: 'permessage-deflate; client_max_window_bits=10',
      params: params({ clientMaxWindowBits: 10 }),
    },
    {
      name: "the client's own client_max_window_bits value is kept and confirmed",
      offer: 'permessage-deflate; client_max_window_bits=12',
      response: 'permessage-deflate; client_max_window_bits=12',
      params: params({ clientMaxWindowBits: 12 }),
    },
    {
      name: "the response's client_max_window_bits is never larger than the offered value (§7.1.2.2)",
      offer: 'permessage-deflate; client_max_window_bits=12',
      options: { clientMaxWindowBits: 14 },
      response: 'permessage-deflate; client_max_window_bits=12',
      params: params({ clientMaxWindowBits: 12 }),
    },
    {
      name: 'the server may lower the offered client_max_window_bits value',
      offer: 'permessage-deflate; client_max_window_bits=12',
      options: { clientMaxWindowBits: 9 },
      response: 'permessage-deflate; client_max_window_bits=9',
      params: params({ clientMaxWindowBits: 9 }),
    },
    {
      name: 'every parameter at once',
      offer: 'permessage-deflate; client_max_window_bits=11; server_max_window_bits=13; client_no_context_takeover; server_no_context_takeover',
      response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=13; client_max_window_bits=11',
      params: params({
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        serverMaxWindowBits: 13,
        clientMaxWindowBits: 11,
      }),
    },
    {
      name: 'a quoted value is the same as a token (RFC 6455 §9.1)',
      offer: 'permessage-deflate; server_max_window_bits="10"',
      response: 'permessage-deflate; server_max_window_bits=10',
      params: params({ serverMaxWindowBits: 10 }),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(serverAnswer(c.offer, c.options)).toEqual({ response: c.response, params: c.params });
    });
  }
});

describe('negotiateServer: declining offers (RFC 7692 §7.1)', () => {
  const invalid: Array<[string, string]> = [
    ['an unknown parameter', 'permessage-deflate; mux'],
    ['a response-only parameter name misspelled', 'permessage-deflate; server_max_window_bit=10'],
    ['a duplicate parameter', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover'],
    ['a duplicate window parameter with different values', 'permessage-deflate; client_max_window_bits=9; client_max_window_bits=10'],
    ['server_no_context_takeover with a value', 'permessage-deflate; server_no_context_takeover=1'],
    ['client_no_context_takeover with a value', 'permessage-deflate; client_no_context_takeover="x"'],
    ['server_max_window_bits without a value', 'permessage-deflate; server_max_window_bits'],
    ['server_max_window_bits=7', 'permessage-deflate; server_max_window_bits=7'],
    ['server_max_window_bits=16', 'permessage-deflate; server_max_window_bits=16'],
    ['server_max_window_bits with a leading zero', 'permessage-deflate; server_max_window_bits=09'],
    ['server_max_window_bits=010', 'permessage-deflate; server_max_window_bits=010'],
    ['server_max_window_bits not a number', 'permessage-deflate; server_max_window_bits=ten'],
    ['server_max_window_bits with a sign', 'permessage-deflate; server_max_window_bits=+9'],
    ['server_max_window_bits=1e1', 'permessage-deflate; server_max_window_bits=1e1'],
    ['client_max_window_bits=0', 'permessage-deflate; client_max_window_bits=0'],
    ['client_max_window_bits=16', 'permessage-deflate; client_max_window_bits=16'],
    ['client_max_window_bits with a leading zero', 'permessage-deflate; client_max_window_bits=08'],
  ];
  for (const [what, offer] of invalid) {
    it(`declines an offer with ${what}`, () => {
      expect(serverAnswer(offer)).toBeNull();
    });
    it(`falls back to the next offer after one with ${what}`, () => {
      expect(serverAnswer(`${offer}, permessage-deflate; client_no_context_takeover`)).toEqual({
        response: 'permessage-deflate; client_no_context_takeover',
        params: params({ clientNoContextTakeover: true }),
      });
    });
  }

  it('declines values the header syntax cannot carry but an ExtensionOffer can', () => {
    for (const value of ['', ' 9', '9 ', '\u0039\u0000']) {
      expect(negotiateServer([{ name: 'permessage-deflate', params: [['server_max_window_bits', value]] }], {})).toBeNull();
      expect(negotiateServer([{ name: 'permessage-deflate', params: [['client_max_window_bits', value]] }], {})).toBeNull();
    }
  });

  it('declines an offer without client_max_window_bits when the server must limit the client window (§7.1.2.2)', () => {
    expect(serverAnswer('permessage-deflate', { clientMaxWindowBits: 12 })).toBeNull();
  });

  it('declines nothing when no permessage-deflate is offered, and ignores other extensions', () => {
    expect(serverAnswer('x-webkit-deflate-frame; no_context_takeover, foo')).toBeNull();
    expect(serverAnswer('foo; bar=1, permessage-deflate; server_max_window_bits=10')?.response).toBe('permessage-deflate; server_max_window_bits=10');
  });

  it('does not treat the extension name case-insensitively', () => {
    expect(serverAnswer('Permessage-Deflate')).toBeNull();
  });

  it('accepts the first offer it can honour, in the client order (RFC 7692 §5.1 preference)', () => {
    // The first offer asks for nothing the server cannot do: it wins over the second.
    expect(serverAnswer('permessage-deflate; server_max_window_bits=10, permessage-deflate')?.response).toBe(
      'permessage-deflate; server_max_window_bits=10',
    );
    // A server that must limit the client skips the offer that does not allow it.
    expect(serverAnswer('permessage-deflate, permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 })).toEqual({
      response: 'permessage-deflate; client_max_window_bits=10',
      params: params({ clientMaxWindowBits: 10 }),
    });
  });

  it('rejects invalid server options as a usage error', () => {
    for (const options of [
      { serverMaxWindowBits: 7 },
      { serverMaxWindowBits: 16 },
      { clientMaxWindowBits: 9.5 },
      { threshold: -1 },
      { threshold: Number.NaN },
    ]) {
      expect(() => negotiateServer(header('permessage-deflate'), options)).toThrow(UsageError);
      expect(() => checkDeflateOptions(options)).toThrow(UsageError);
    }
    expect(() => checkDeflateOptions({ serverMaxWindowBits: 8, clientMaxWindowBits: 15, threshold: 0 })).not.toThrow();
  });
});

describe('buildClientOffer', () => {
  const cases: Array<[DeflateOptions, string]> = [
    [{}, 'permessage-deflate; client_max_window_bits'],
    [{ clientMaxWindowBits: 10 }, 'permessage-deflate; client_max_window_bits=10'],
    [{ serverMaxWindowBits: 8 }, 'permessage-deflate; server_max_window_bits=8; client_max_window_bits'],
    [
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 9 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9',
    ],
    [{ serverNoContextTakeover: false, clientNoContextTakeover: false, threshold: 0 }, 'permessage-deflate; client_max_window_bits'],
  ];
  for (const [options, expected] of cases) {
    it(`offers ${expected} for ${JSON.stringify(options)}`, () => {
      expect(formatExtensions([buildClientOffer(options)])).toBe(expected);
    });
  }

  it('rejects invalid options as a usage error', () => {
    expect(() => buildClientOffer({ clientMaxWindowBits: 20 })).toThrow(UsageError);
  });
});

describe('acceptServerResponse', () => {
  function accept(response: string, options: DeflateOptions = {}) {
    return acceptServerResponse(response === '' ? [] : header(response), options);
  }

  const accepted: Array<{ name: string; response: string; options?: DeflateOptions; params: DeflateParams }> = [
    { name: 'a bare response', response: 'permessage-deflate', params: params() },
    {
      name: 'server_no_context_takeover the client did not ask for (§7.1.1.1 lets the server add it)',
      response: 'permessage-deflate; server_no_context_takeover',
      params: params({ serverNoContextTakeover: true }),
    },
    {
      name: 'server_no_context_takeover the client asked for',
      response: 'permessage-deflate; server_no_context_takeover',
      options: { serverNoContextTakeover: true },
      params: params({ serverNoContextTakeover: true }),
    },
    {
      name: 'client_no_context_takeover imposed by the server (§7.1.1.2)',
      response: 'permessage-deflate; client_no_context_takeover',
      params: params({ clientNoContextTakeover: true }),
    },
    {
      name: 'client_no_context_takeover offered but not echoed: the client keeps its promise (§7.1.1.2)',
      response: 'permessage-deflate',
      options: { clientNoContextTakeover: true },
      params: params({ clientNoContextTakeover: true }),
    },
    {
      name: 'server_max_window_bits equal to the request',
      response: 'permessage-deflate; server_max_window_bits=10',
      options: { serverMaxWindowBits: 10 },
      params: params({ serverMaxWindowBits: 10 }),
    },
    {
      name: 'server_max_window_bits smaller than the request (§7.1.2.1)',
      response: 'permessage-deflate; server_max_window_bits=8',
      options: { serverMaxWindowBits: 10 },
      params: params({ serverMaxWindowBits: 8 }),
    },
    {
      name: 'server_max_window_bits the client did not request',
      response: 'permessage-deflate; server_max_window_bits=11',
      params: params({ serverMaxWindowBits: 11 }),
    },
    {
      name: 'client_max_window_bits (always offered by this client)',
      response: 'permessage-deflate; client_max_window_bits=9',
      params: params({ clientMaxWindowBits: 9 }),
    },
    {
      name: 'client_max_window_bits smaller than the offered value',
      response: 'permessage-deflate; client_max_window_bits=9',
      options: { clientMaxWindowBits: 12 },
      params: params({ clientMaxWindowBits: 9 }),
    },
    {
      name: 'client_max_window_bits larger than the offered value: the client keeps its own smaller window (§7.1.2.2)',
      response: 'permessage-deflate; client_max_window_bits=14',
      options: { clientMaxWindowBits: 10 },
      params: params({ clientMaxWindowBits: 10 }),
    },
    {
      name: 'client_max_window_bits absent: the offered value still binds the client',
      response: 'permessage-deflate',
      options: { clientMaxWindowBits: 10 },
      params: params({ clientMaxWindowBits: 10 }),
    },
  ];
  for (const c of accepted) {
    it(`accepts ${c.name}`, () => {
      expect(accept(c.response, c.options)).toEqual({ ok: true, params: c.params });
    });
  }

  it('accepts a response without permessage-deflate as "no compression"', () => {
    expect(accept('')).toEqual({ ok: true, params: null });
  });

  const failures: Array<{ name: string; response: string; options?: DeflateOptions; code: string }> = [
    { name: 'an extension that was not offered', response: 'x-custom', code: 'PMD_UNEXPECTED_EXTENSION' },
    {
      name: 'an extension that was not offered next to permessage-deflate',
      response: 'permessage-deflate, x-custom',
      code: 'PMD_UNEXPECTED_EXTENSION',
    },
    {
      name: 'permessage-deflate accepted twice',
      response: 'permessage-deflate, permessage-deflate; server_no_context_takeover',
      code: 'PMD_DUPLICATE_EXTENSION',
    },
    { name: 'an unknown parameter', response: 'permessage-deflate; max_window_bits=10', code: 'PMD_UNKNOWN_PARAM' },
    {
      name: 'a duplicate parameter',
      response: 'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
      options: { serverMaxWindowBits: 10 },
      code: 'PMD_DUPLICATE_PARAM',
    },
    {
      name: 'client_max_window_bits without a value (needs one in a response, §7.1.2.2)',
      response: 'permessage-deflate; client_max_window_bits',
      code: 'PMD_INVALID_VALUE',
    },
    {
      name: 'server_max_window_bits without a value',
      response: 'permessage-deflate; server_max_window_bits',
      code: 'PMD_INVALID_VALUE',
    },
    { name: 'server_max_window_bits=16', response: 'permessage-deflate; server_max_window_bits=16', code: 'PMD_INVALID_VALUE' },
    { name: 'client_max_window_bits=7', response: 'permessage-deflate; client_max_window_bits=7', code: 'PMD_INVALID_VALUE' },
    {
      name: 'a window value with a leading zero',
      response: 'permessage-deflate; client_max_window_bits=010',
      code: 'PMD_INVALID_VALUE',
    },
    {
      name: 'server_no_context_takeover with a value',
      response: 'permessage-deflate; server_no_context_takeover=true',
      code: 'PMD_INVALID_VALUE',
    },
    {
      name: 'server_max_window_bits larger than requested (§7.1.2.1)',
      response: 'permessage-deflate; server_max_window_bits=11',
      options: { serverMaxWindowBits: 10 },
      code: 'PMD_UNSUPPORTED_PARAMS',
    },
    {
      name: 'a missing server_max_window_bits the client requested (§7.1.2.1)',
      response: 'permessage-deflate',
      options: { serverMaxWindowBits: 10 },
      code: 'PMD_UNSUPPORTED_PARAMS',
    },
    {
      name: 'a missing server_no_context_takeover the client requested (§7.1.1.1)',
      response: 'permessage-deflate; server_max_window_bits=10',
      options: { serverNoContextTakeover: true },
      code: 'PMD_UNSUPPORTED_PARAMS',
    },
  ];
  for (const c of failures) {
    it(`fails the connection on ${c.name}`, () => {
      const result = accept(c.response, c.options);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.code).toBe(c.code);
        expect(result.reason).not.toBe('');
      }
    });
  }
});

describe('client and server agree', () => {
  const windowBits = fc.option(fc.integer({ min: 8, max: 15 }), { nil: undefined });
  const flag = fc.option(fc.boolean(), { nil: undefined });
  const options = fc.record({
    serverNoContextTakeover: flag,
    clientNoContextTakeover: flag,
    serverMaxWindowBits: windowBits,
    clientMaxWindowBits: windowBits,
  });

  it('a server accepts what buildClientOffer sends, and the client accepts the answer with the same parameters', () => {
    fc.assert(
      fc.property(options, options, (clientOptions, serverOptions) => {
        // Through the header text both ways, as on the wire.
        const offerText = formatExtensions([buildClientOffer(clientOptions)]);
        const server = negotiateServer(header(offerText), serverOptions);
        expect(server).not.toBeNull();
        const client = acceptServerResponse(header(formatExtensions([server!.response])), clientOptions);
        expect(client).toEqual({ ok: true, params: server!.params });
        // Nobody gets a larger window than they asked for.
        const p = server!.params;
        expect(p.serverMaxWindowBits).toBeLessThanOrEqual(Math.min(clientOptions.serverMaxWindowBits ?? 15, serverOptions.serverMaxWindowBits ?? 15));
        expect(p.clientMaxWindowBits).toBeLessThanOrEqual(Math.min(clientOptions.clientMaxWindowBits ?? 15, serverOptions.clientMaxWindowBits ?? 15));
        if (clientOptions.serverNoContextTakeover || serverOptions.serverNoContextTakeover) {
          expect(p.serverNoContextTakeover).toBe(true);
        }
        if (clientOptions.clientNoContextTakeover || serverOptions.clientNoContextTakeover) {
          expect(p.clientNoContextTakeover).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});
