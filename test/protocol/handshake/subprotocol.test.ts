import { describe, expect, it } from 'vitest';
import { parseSubprotocols, selectSubprotocol } from '../../../src/protocol/handshake/subprotocol.js';

describe('parseSubprotocols', () => {
  it('parses the RFC 6455 §1.2 list in order', () => {
    expect(parseSubprotocols('chat, superchat')).toEqual({ ok: true, protocols: ['chat', 'superchat'] });
  });

  it('takes optional whitespace and ignores empty elements (RFC 7230 §7)', () => {
    expect(parseSubprotocols(' a ,\tb,, ,c ')).toEqual({ ok: true, protocols: ['a', 'b', 'c'] });
  });

  it('accepts tokens with the full tchar set', () => {
    expect(parseSubprotocols("v1.json+gzip!#$%&'*^_`|~")).toEqual({ ok: true, protocols: ["v1.json+gzip!#$%&'*^_`|~"] });
  });

  it.each([
    ['an empty value', ''],
    ['only commas', ', ,'],
    ['a space inside an element', 'chat room'],
    ['a quoted element', '"chat"'],
    ['a separator', 'chat/1'],
    ['a non-ASCII element', 'ch\u00e4t'],
  ])('refuses %s', (_what, value) => {
    const result = parseSubprotocols(value);
    expect(result.ok).toBe(false);
  });

  it('refuses a subprotocol offered twice, also across joined header lines', () => {
    const result = parseSubprotocols('chat, superchat, chat');
    expect(result).toEqual({ ok: false, reason: 'subprotocol chat offered twice' });
  });

  it('treats differently cased names as different subprotocols', () => {
    expect(parseSubprotocols('chat, Chat')).toEqual({ ok: true, protocols: ['chat', 'Chat'] });
  });
});

describe('selectSubprotocol', () => {
  it("picks the first of the client's list that the server supports", () => {
    expect(selectSubprotocol(['superchat', 'chat'], ['chat', 'superchat'])).toBe('superchat');
    expect(selectSubprotocol(['x', 'chat', 'superchat'], ['superchat', 'chat'])).toBe('chat');
  });

  it('returns undefined when nothing matches or nothing was offered', () => {
    expect(selectSubprotocol(['x'], ['chat'])).toBeUndefined();
    expect(selectSubprotocol([], ['chat'])).toBeUndefined();
    expect(selectSubprotocol(['chat'], [])).toBeUndefined();
  });

  it('compares case-sensitively', () => {
    expect(selectSubprotocol(['Chat'], ['chat'])).toBeUndefined();
  });
});
