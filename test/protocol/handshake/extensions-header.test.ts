import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/protocol/errors.js';
import { type ExtensionOffer, formatExtensions, parseExtensions } from '../../../src/protocol/handshake/extensions-header.js';

function offers(value: string): ExtensionOffer[] {
  const result = parseExtensions(value);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(value)} to parse: ${result.reason}`);
  return result.offers;
}

describe('parseExtensions', () => {
  it('parses a bare extension name', () => {
    expect(offers('permessage-deflate')).toEqual([{ name: 'permessage-deflate', params: [] }]);
  });

  it('parses parameters without values and with token values', () => {
    expect(offers('permessage-deflate; client_max_window_bits; server_max_window_bits=10')).toEqual([
      {
        name: 'permessage-deflate',
        params: [
          ['client_max_window_bits', true],
          ['server_max_window_bits', '10'],
        ],
      },
    ]);
  });

  it('parses several offers in order (RFC 7692 §5.1 style)', () => {
    expect(offers('permessage-deflate; client_max_window_bits=10, permessage-deflate; client_max_window_bits, foo')).toEqual([
      { name: 'permessage-deflate', params: [['client_max_window_bits', '10']] },
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'foo', params: [] },
    ]);
  });

  it('unquotes quoted-string values', () => {
    expect(offers('foo; bar="10"; baz="x-y"')).toEqual([
      {
        name: 'foo',
        params: [
          ['bar', '10'],
          ['baz', 'x-y'],
        ],
      },
    ]);
  });

  it('removes quoted-pair escapes', () => {
    expect(offers('foo; bar="1\\0"; baz="\\a\\b"')[0]!.params).toEqual([
      ['bar', '10'],
      ['baz', 'ab'],
    ]);
  });

  it('takes optional whitespace around every separator', () => {
    expect(offers(' \tfoo ;bar = 1 ; baz\t;q = "x" , qux\t ')).toEqual([
      {
        name: 'foo',
        params: [
          ['bar', '1'],
          ['baz', true],
          ['q', 'x'],
        ],
      },
      { name: 'qux', params: [] },
    ]);
  });

  it('ignores empty list elements (RFC 7230 §7), as joined header lines may produce', () => {
    expect(offers(', a,, b ,')).toEqual([
      { name: 'a', params: [] },
      { name: 'b', params: [] },
    ]);
  });

  it('reads two header lines joined with ", " as one list', () => {
    expect(offers('a; x=1' + ', ' + 'b; y')).toEqual([
      { name: 'a', params: [['x', '1']] },
      { name: 'b', params: [['y', true]] },
    ]);
  });

  it('keeps duplicate parameters visible', () => {
    expect(offers('a; x=1; x=2; x')[0]!.params).toEqual([
      ['x', '1'],
      ['x', '2'],
      ['x', true],
    ]);
  });

  it('keeps names as sent (no case folding)', () => {
    expect(offers('Permessage-Deflate; Client_Max_Window_Bits')[0]).toEqual({
      name: 'Permessage-Deflate',
      params: [['Client_Max_Window_Bits', true]],
    });
  });

  it.each([
    ['an empty value', ''],
    ['only whitespace', '  '],
    ['only commas', ' , ,'],
    ['a parameter without extension', '; a'],
    ['a trailing semicolon', 'a;'],
    ['an empty parameter name', 'a; =1'],
    ['a missing value after "="', 'a; b='],
    ['a double "="', 'a; b==1'],
    ['two names without separator', 'a b'],
    ['a separator as name', 'a, @'],
    ['a non-token value', 'a; b=1/2'],
    ['text after a quoted value', 'a; b="c"d'],
    ['an unterminated quoted value', 'a; b="c'],
    ['a backslash at the end', 'a; b="c\\'],
    ['an empty quoted value', 'a; b=""'],
    ['a quoted value with a space', 'a; b="c d"'],
    ['a quoted value with an escaped separator', 'a; b="c\\,d"'],
    ['a quoted value with an escaped quote', 'a; b="\\""'],
    ['a control character in a quoted value', 'a; b="c\u0001"'],
    ['a quoted extension name', '"a"'],
    ['a quoted parameter name', 'a; "b"=1'],
    ['a non-ASCII name', 'd\u00e9flate'],
    ['a character beyond latin1', 'a; b=\u20ac'],
  ])('refuses %s', (_what, value) => {
    const result = parseExtensions(value);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
  });
});

describe('formatExtensions', () => {
  it('writes offers in the RFC 7692 example style', () => {
    expect(
      formatExtensions([
        {
          name: 'permessage-deflate',
          params: [
            ['client_max_window_bits', true],
            ['server_max_window_bits', '10'],
          ],
        },
        { name: 'permessage-deflate', params: [] },
      ]),
    ).toBe('permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate');
  });

  it('writes an empty list as an empty string', () => {
    expect(formatExtensions([])).toBe('');
  });

  it.each([
    ['a non-token extension name', [{ name: 'a b', params: [] }]],
    ['an empty extension name', [{ name: '', params: [] }]],
    ['a non-token parameter name', [{ name: 'a', params: [['b;c', true]] }]],
    ['a non-token value', [{ name: 'a', params: [['b', 'x y']] }]],
    ['an empty value', [{ name: 'a', params: [['b', '']] }]],
    ['a value with CR LF', [{ name: 'a', params: [['b', '1\r\nX-Evil: 1']] }]],
  ] as Array<[string, ExtensionOffer[]]>)('refuses %s', (_what, list) => {
    expect(() => formatExtensions(list)).toThrow(UsageError);
  });

  it('round-trips through parseExtensions (property)', () => {
    const token = fc.string({
      unit: fc.constantFrom(..."abcxyzABC019!#$%&'*+-.^_`|~"),
      minLength: 1,
      maxLength: 10,
    });
    const offer = fc.record({
      name: token,
      params: fc.array(fc.tuple(token, fc.oneof(token, fc.constant(true as const))), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.array(offer, { minLength: 1, maxLength: 4 }), (list) => {
        expect(offers(formatExtensions(list))).toEqual(list);
      }),
      { numRuns: 300 },
    );
  });
});
