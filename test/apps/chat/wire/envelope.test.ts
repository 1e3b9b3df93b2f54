import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unwrap, wrap } from '../../../../src/apps/chat/wire/envelope.js';
import { envelope, readEnvelope } from '../samples.js';

describe('the binary envelope', () => {
  it('is a 4-byte big-endian header length, the JSON header in UTF-8, then the payload', () => {
    const header = { type: 'image', name: 'caf\u00e9' };
    const wrapped = Buffer.from(wrap(header, Uint8Array.of(1, 2, 3)));
    const head = Buffer.from('{"type":"image","name":"caf\u00e9"}', 'utf8');
    expect(wrapped).toEqual(Buffer.concat([Buffer.from([0, 0, 0, head.length]), head, Buffer.from([1, 2, 3])]));
    expect(readEnvelope(wrapped)).toEqual({ header: { type: 'image', name: 'caf\u00e9' }, bytes: Buffer.from([1, 2, 3]) });
  });

  it('unwraps what a client wraps, the payload a view into the message (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.uint8Array({ maxLength: 300 }), (name, payload) => {
        const message = envelope({ type: 'image', name }, payload);
        const result = unwrap(message, 1 << 20);
        expect(result.ok && result.header).toEqual({ type: 'image', name });
        if (!result.ok) return;
        expect(Buffer.from(result.payload).equals(payload)).toBe(true);
        expect(result.payload.buffer).toBe(message.buffer);
      }),
    );
  });

  it('reads a message that is a view into a larger buffer from its own start', () => {
    const message = envelope({ type: 'image' }, Uint8Array.of(9));
    const padded = Buffer.concat([Buffer.from([0xff, 0xff, 0xff]), message]).subarray(3);
    expect(unwrap(padded, 100)).toMatchObject({ ok: true, header: { type: 'image' } });
  });

  it('refuses short messages, overlong or overrunning headers, bad UTF-8, non-JSON and headers without a string type', () => {
    const raw = (length: number, header: Buffer | string): Buffer => {
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(length);
      return Buffer.concat([prefix, Buffer.from(header)]);
    };
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from([0, 0, 1]), /4-byte header length/],
      [raw(101, 'x'.repeat(101)), /at most 100 bytes/],
      [raw(20, '{"type":"image"}'), /past the end/],
      [raw(0xffffffff, ''), /at most 100 bytes/],
      [raw(3, Buffer.from([0x22, 0xc3, 0x22])), /JSON in UTF-8/],
      [raw(3, '{no'), /JSON in UTF-8/],
      [raw(0, ''), /JSON in UTF-8/],
      [raw(2, '[]'), /object with a "type"/],
      [raw(4, 'null'), /object with a "type"/],
      [raw(10, '{"type":1}'), /object with a "type"/],
    ];
    for (const [message, reason] of cases) {
      const result = unwrap(message, 100);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(reason);
    }
  });
});
