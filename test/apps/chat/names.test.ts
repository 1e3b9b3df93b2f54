import { describe, expect, it } from 'vitest';
import { checkNick, checkRoom, nickKey } from '../../../src/apps/chat/names.js';

describe('checkNick', () => {
  it('accepts letters and digits of any script with _ - . after the first character', () => {
    for (const nick of ['ann', 'Ann_Lee', 'r2-d2', 'j.doe', 'Zoë', 'Дмитрий', '花子', 'a', 'x'.repeat(24)]) {
      expect(checkNick(nick)).toEqual({ ok: true, value: nick });
    }
  });

  it('normalizes to NFC so that the same name typed two ways is the same name', () => {
    const decomposed = 'Zoe\u0308';
    const result = checkNick(decomposed);
    expect(result).toEqual({ ok: true, value: 'Zo\u00eb' });
  });

  it('counts characters, not UTF-16 units: 24 astral letters pass, 25 do not', () => {
    const letter = '\u{1D49C}'; // MATHEMATICAL SCRIPT CAPITAL A, a letter outside the BMP
    expect(checkNick(letter.repeat(24)).ok).toBe(true);
    expect(checkNick(letter.repeat(25)).ok).toBe(false);
  });

  it('refuses empty, too long, spaces, markup, symbols and a leading punctuation mark', () => {
    for (const nick of ['', 'x'.repeat(25), 'ann lee', ' ann', '<script>', 'ann!', '_ann', '.ann', '-ann', 'ann\u0000', '😀']) {
      const result = checkNick(nick);
      expect(result.ok, JSON.stringify(nick)).toBe(false);
      if (!result.ok) expect(result.error.code).toBe('invalid_nick');
    }
  });

  it('keys nicknames regardless of case', () => {
    expect(nickKey('Ann')).toBe(nickKey('aNN'));
  });
});

describe('checkRoom', () => {
  it('defaults to general and lower-cases', () => {
    expect(checkRoom(undefined)).toEqual({ ok: true, value: 'general' });
    expect(checkRoom('Kitchen_2-B')).toEqual({ ok: true, value: 'kitchen_2-b' });
    expect(checkRoom('r'.repeat(32)).ok).toBe(true);
  });

  it('refuses empty, too long, non-ASCII (even what lower-cases to ASCII), spaces and a leading - or _', () => {
    for (const room of ['', 'r'.repeat(33), 'café', '\u212Aitchen', 'two words', '-x', '_x', 'a/b', 'a.b']) {
      const result = checkRoom(room);
      expect(result.ok, JSON.stringify(room)).toBe(false);
      if (!result.ok) expect(result.error.code).toBe('invalid_room');
    }
  });
});
