import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/protocol/errors.js';
import {
  extraHeaderLines,
  headerLine,
  isSafeFieldValue,
  isToken,
  listHasToken,
  splitList,
  trimOWS,
} from '../../../src/protocol/handshake/http-syntax.js';

describe('isToken', () => {
  it('accepts exactly the tchar set of RFC 7230 §3.2.6', () => {
    const tchars = new Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    for (let c = 0; c < 0x180; c++) {
      const ch = String.fromCharCode(c);
      expect(isToken(ch), `char ${c}`).toBe(tchars.has(ch));
    }
  });

  it('refuses the empty string', () => {
    expect(isToken('')).toBe(false);
  });
});

describe('isSafeFieldValue', () => {
  it('accepts visible ASCII, space and tab, and nothing else', () => {
    expect(isSafeFieldValue('')).toBe(true);
    expect(isSafeFieldValue('a b\tc ~!')).toBe(true);
    for (const bad of ['\r', '\n', '\u0000', '\u007f', '\u0080', '\u00e9', '\u2028']) {
      expect(isSafeFieldValue(`a${bad}b`)).toBe(false);
    }
  });
});

describe('lists', () => {
  it('trims SP and HTAB only', () => {
    expect(trimOWS(' \t a b \t')).toBe('a b');
    expect(trimOWS('\u00a0a')).toBe('\u00a0a');
  });

  it('splits at commas, trims elements and drops empty ones', () => {
    expect(splitList(' a ,b,, \t,c d ')).toEqual(['a', 'b', 'c d']);
    expect(splitList('')).toEqual([]);
  });

  it('finds a token case-insensitively as a whole element only', () => {
    expect(listHasToken('keep-alive, Upgrade', 'upgrade')).toBe(true);
    expect(listHasToken('upgraded', 'upgrade')).toBe(false);
    expect(listHasToken('up grade', 'upgrade')).toBe(false);
  });
});

describe('headerLine', () => {
  it('renders a header line', () => {
    expect(headerLine('X-A', 'b c')).toBe('X-A: b c\r\n');
  });

  it('refuses CR/LF in values and non-tokens as names', () => {
    expect(() => headerLine('X', 'a\r\nB: c')).toThrow(UsageError);
    expect(() => headerLine('X: y\r\nZ', 'a')).toThrow(UsageError);
    expect(() => headerLine('', 'a')).toThrow(UsageError);
  });

  it('refuses reserved names in extra headers, in any case', () => {
    expect(
      extraHeaderLines(
        [
          ['A', '1'],
          ['B', '2'],
        ],
        new Set(['c']),
      ),
    ).toBe('A: 1\r\nB: 2\r\n');
    expect(() => extraHeaderLines([['C', '1']], new Set(['c']))).toThrow(UsageError);
    expect(extraHeaderLines(undefined, new Set())).toBe('');
  });
});
