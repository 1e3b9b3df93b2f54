import { describe, expect, it } from 'vitest';
import { parseClientMessage } from '../../../src/apps/chat/protocol.js';

describe('parseClientMessage', () => {
  it('reads join (room optional), message, leave and ping, keeping only their own fields', () => {
    expect(parseClientMessage('{"type":"join","nick":"ann"}')).toEqual({ ok: true, message: { type: 'join', nick: 'ann' } });
    expect(parseClientMessage('{"type":"join","nick":"ann","room":"x","extra":1}')).toEqual({
      ok: true,
      message: { type: 'join', nick: 'ann', room: 'x' },
    });
    expect(parseClientMessage('{"type":"message","text":"hi","nick":"forged"}')).toEqual({ ok: true, message: { type: 'message', text: 'hi' } });
    expect(parseClientMessage('{"type":"leave"}')).toEqual({ ok: true, message: { type: 'leave' } });
    expect(parseClientMessage('{"type":"ping"}')).toEqual({ ok: true, message: { type: 'ping' } });
  });

  it('tells malformed JSON from a JSON value that is not a message', () => {
    expect(parseClientMessage('{')).toMatchObject({ ok: false, error: { code: 'invalid_json' } });
    expect(parseClientMessage('')).toMatchObject({ ok: false, error: { code: 'invalid_json' } });
    for (const text of ['null', '"join"', '[{"type":"join"}]', '{}', '{"type":7}']) {
      expect(parseClientMessage(text)).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
    }
  });

  it('names the request whose fields have the wrong types', () => {
    expect(parseClientMessage('{"type":"join"}')).toMatchObject({ ok: false, error: { code: 'invalid_message' }, request: 'join' });
    expect(parseClientMessage('{"type":"join","nick":"a","room":5}')).toMatchObject({ ok: false, request: 'join' });
    expect(parseClientMessage('{"type":"message","text":["x"]}')).toMatchObject({ ok: false, request: 'message' });
  });

  it('answers an unknown type with unknown_type, quoting at most 40 characters of it', () => {
    const result = parseClientMessage(JSON.stringify({ type: 'x'.repeat(100) }));
    expect(result).toMatchObject({ ok: false, error: { code: 'unknown_type' }, request: 'x'.repeat(40) });
    if (!result.ok) expect(result.error.message.length).toBeLessThan(120);
  });
});
