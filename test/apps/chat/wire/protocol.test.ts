import { describe, expect, it } from 'vitest';
import { MAX_IMAGE_BYTES, parseClientMessage, parseImageUpload } from '../../../../src/apps/chat/wire/protocol.js';
import { envelope, GIF, png } from '../samples.js';

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

  it('reads protocol 2’s fields: join since and session, a message’s client id, typing; refuses malformed ones', () => {
    expect(parseClientMessage('{"type":"join","nick":"ann","since":{"epoch":"e1","offset":4},"session":"s-1"}')).toEqual({
      ok: true,
      message: { type: 'join', nick: 'ann', since: { epoch: 'e1', offset: 4 }, session: 's-1' },
    });
    expect(parseClientMessage('{"type":"message","text":"hi","id":"p-1"}')).toEqual({
      ok: true,
      message: { type: 'message', text: 'hi', id: 'p-1' },
    });
    expect(parseClientMessage('{"type":"typing","x":1}')).toEqual({ ok: true, message: { type: 'typing' } });
    for (const since of ['"e1"', '{"epoch":"e1"}', '{"epoch":"e1","offset":-1}', '{"epoch":"e1","offset":1.5}', '{"epoch":"","offset":1}']) {
      expect(parseClientMessage(`{"type":"join","nick":"ann","since":${since}}`)).toMatchObject({
        ok: false,
        error: { code: 'invalid_message' },
        request: 'join',
      });
    }
    expect(parseClientMessage('{"type":"join","nick":"ann","session":"a b"}')).toMatchObject({ ok: false, request: 'join' });
    expect(parseClientMessage('{"type":"message","text":"x","id":7}')).toMatchObject({ ok: false, request: 'message' });
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

describe('parseImageUpload', () => {
  it('keeps the id and the cleaned name, takes the type from the bytes, and hands back the image as a view', () => {
    const message = envelope({ type: 'image', id: 'c-1', name: 'Cafe\u0301.png', extra: true }, GIF);
    const parsed = parseImageUpload(message);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const { bytes, ...rest } = parsed.upload;
    expect(rest).toEqual({ clientId: 'c-1', name: 'Caf\u00e9.png', mime: 'image/gif' });
    expect(Buffer.from(bytes).equals(GIF)).toBe(true);
    expect(bytes.buffer).toBe(message.buffer);
  });

  it('checks the size before the type, and reports both with the upload id', () => {
    const tooBig = Buffer.alloc(MAX_IMAGE_BYTES + 1);
    expect(parseImageUpload(envelope({ type: 'image', id: 'x' }, tooBig))).toMatchObject({
      ok: false,
      error: { code: 'too_large' },
      request: 'image',
      id: 'x',
    });
    const exact = Buffer.alloc(MAX_IMAGE_BYTES);
    png(1, 1).copy(exact);
    expect(parseImageUpload(envelope({ type: 'image' }, exact))).toMatchObject({ ok: true, upload: { mime: 'image/png', name: 'image.png' } });
    expect(parseImageUpload(envelope({ type: 'image', id: 'y', name: 'a.png' }, Buffer.from('text')))).toMatchObject({
      ok: false,
      error: { code: 'unsupported_image' },
      id: 'y',
    });
  });

  it('leaves out an id that is not a valid one rather than echoing it', () => {
    const parsed = parseImageUpload(envelope({ type: 'image', id: '<b>'.repeat(30) }, GIF));
    expect(parsed).toMatchObject({ ok: false, error: { code: 'invalid_message' }, request: 'image' });
    expect(parsed).not.toHaveProperty('id');
  });
});
