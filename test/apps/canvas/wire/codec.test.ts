import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CANVAS_ERROR_CODES,
  ClientType,
  decodeClientMessage,
  decodeServerMessage,
  encodeClientMessage,
  encodeServerMessage,
  MAX_NAME_BYTES,
  MAX_POINTS_PER_MESSAGE,
  MAX_WIDTH,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  ServerType,
  versionOf,
  type CanvasErrorCode,
  type ClientMessage,
  type ServerMessage,
} from '../../../../src/apps/canvas/wire/codec.js';

/** The canvas's binary format (PROTOCOL.md): exact bytes, round trips, and the refusal of malformed input. */

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const utf8 = (text: string): number[] => [...new TextEncoder().encode(text)];

// ---- arbitraries ----------------------------------------------------------------

const coordinate = fc.integer({ min: 0, max: 0xffff });
const colour = fc.integer({ min: 0, max: 0xffffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u8 = fc.integer({ min: 0, max: 0xff });
const width = fc.integer({ min: 1, max: MAX_WIDTH });
/** Any text of whole code points (no lone surrogates, which UTF-8 cannot carry) that fits the name field. */
const name = fc.string({ unit: 'binary', maxLength: 40 }).filter((text) => new TextEncoder().encode(text).length <= MAX_NAME_BYTES);
const points = (maxPoints: number): fc.Arbitrary<number[]> =>
  fc.array(fc.tuple(coordinate, coordinate), { minLength: 1, maxLength: maxPoints }).map((pairs) => pairs.flat());

const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({ type: fc.constant('hello' as const), version: fc.integer({ min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION }), name }),
  fc.record({ type: fc.constant('rename' as const), name }),
  fc.record({ type: fc.constant('move' as const), x: coordinate, y: coordinate }),
  fc.record({ type: fc.constant('stroke-begin' as const), colour, width, x: coordinate, y: coordinate }),
  fc.record({ type: fc.constant('stroke-points' as const), points: points(MAX_POINTS_PER_MESSAGE) }),
  fc.constant({ type: 'stroke-end' as const }),
  fc.constant({ type: 'undo' as const }),
  fc.constant({ type: 'clear' as const }),
);

const visitor = fc.record({
  id: u32,
  colour,
  name,
  pointer: fc.option(fc.record({ x: coordinate, y: coordinate }), { nil: null }),
});
const stroke = fc.record({ id: u32, visitor: u32, colour, width: u8, open: fc.boolean(), points: points(50) });

const serverMessage: fc.Arbitrary<ServerMessage> = fc.oneof(
  fc.record({
    type: fc.constant('welcome' as const),
    version: fc.integer({ min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION }),
    id: u32,
    colour,
    name,
  }),
  fc.record({ type: fc.constant('snapshot' as const), visitors: fc.array(visitor, { maxLength: 8 }), strokes: fc.array(stroke, { maxLength: 8 }) }),
  fc.record({ type: fc.constant('join' as const), id: u32, colour, name }),
  fc.record({ type: fc.constant('leave' as const), id: u32 }),
  fc.record({ type: fc.constant('renamed' as const), id: u32, name }),
  fc.record({
    type: fc.constant('pointers' as const),
    pointers: fc.array(fc.record({ id: u32, x: coordinate, y: coordinate }), { minLength: 1, maxLength: 20 }),
  }),
  fc.record({ type: fc.constant('stroke-begin' as const), id: u32, visitor: u32, colour, width: u8, x: coordinate, y: coordinate }),
  fc.record({ type: fc.constant('stroke-points' as const), id: u32, points: points(300) }),
  fc.record({ type: fc.constant('stroke-end' as const), id: u32 }),
  fc.record({ type: fc.constant('trim' as const), before: u32 }),
  fc.record({ type: fc.constant('stroke-undone' as const), id: u32 }),
  fc.record({ type: fc.constant('cleared' as const), by: u32 }),
  fc.record({
    type: fc.constant('error' as const),
    code: fc.constantFrom(...CANVAS_ERROR_CODES),
    about: u8,
    message: fc.string({ unit: 'binary', maxLength: 60 }),
  }),
);

// ---- tests ------------------------------------------------------------------------

describe('canvas codec: exact bytes', () => {
  it('encodes a move as type 0x03 and two little-endian u16 coordinates', () => {
    expect(encodeClientMessage({ type: 'move', x: 0x1234, y: 0xabcd })).toEqual(bytes(0x03, 0x34, 0x12, 0xcd, 0xab));
  });

  it('encodes a hello as type, version, name length and the UTF-8 name; an empty name is one zero byte', () => {
    expect(encodeClientMessage({ type: 'hello', version: 1, name: 'Zoë' })).toEqual(bytes(0x01, 0x01, 0x04, ...utf8('Zoë')));
    expect(encodeClientMessage({ type: 'hello', version: 1, name: '' })).toEqual(bytes(0x01, 0x01, 0x00));
  });

  it('encodes stroke-begin as type, RGB (red first), width, x, y', () => {
    expect(encodeClientMessage({ type: 'stroke-begin', colour: 0x112233, width: 5, x: 1, y: 0xffff })).toEqual(
      bytes(0x10, 0x11, 0x22, 0x33, 0x05, 0x01, 0x00, 0xff, 0xff),
    );
  });

  it('encodes stroke-points as the type and 4 bytes per point, and stroke-end as the type alone', () => {
    expect(encodeClientMessage({ type: 'stroke-points', points: [1, 2, 0x0300, 4] })).toEqual(bytes(0x11, 1, 0, 2, 0, 0, 3, 4, 0));
    expect(encodeClientMessage({ type: 'stroke-end' })).toEqual(bytes(0x12));
  });

  it('encodes undo and clear (version 2) as their type byte alone', () => {
    expect(encodeClientMessage({ type: 'undo' })).toEqual(bytes(0x13));
    expect(encodeClientMessage({ type: 'clear' })).toEqual(bytes(0x14));
  });

  it('encodes stroke-undone and cleared (version 2) as the type and a u32: the stroke, the visitor who cleared', () => {
    expect(encodeServerMessage({ type: 'stroke-undone', id: 0x01020304 })).toEqual(bytes(0x94, 4, 3, 2, 1));
    expect(encodeServerMessage({ type: 'cleared', by: 7 })).toEqual(bytes(0x95, 7, 0, 0, 0));
  });

  it('numbers the error codes added in version 2 after the old ones: 12 nothing_to_undo, 13 rate_limited', () => {
    expect(encodeServerMessage({ type: 'error', code: 'full', about: 0, message: '' })).toEqual(bytes(0xff, 11, 0));
    expect(encodeServerMessage({ type: 'error', code: 'nothing_to_undo', about: 0x13, message: '' })).toEqual(bytes(0xff, 12, 0x13));
    expect(encodeServerMessage({ type: 'error', code: 'rate_limited', about: 0x14, message: '' })).toEqual(bytes(0xff, 13, 0x14));
  });

  it('says which version introduced each server message: 2 for stroke-undone and cleared, 1 for the rest', () => {
    expect(PROTOCOL_VERSION).toBe(2);
    expect(versionOf({ type: 'stroke-undone', id: 1 })).toBe(2);
    expect(versionOf({ type: 'cleared', by: 1 })).toBe(2);
    expect(versionOf({ type: 'trim', before: 1 })).toBe(1);
    expect(versionOf({ type: 'stroke-end', id: 1 })).toBe(1);
  });

  it('encodes a pointers batch as 8 bytes per pointer: u32 id, u16 x, u16 y', () => {
    expect(
      encodeServerMessage({
        type: 'pointers',
        pointers: [
          { id: 0x01020304, x: 5, y: 6 },
          { id: 7, x: 0xffff, y: 0 },
        ],
      }),
    ).toEqual(bytes(0x86, 4, 3, 2, 1, 5, 0, 6, 0, 7, 0, 0, 0, 0xff, 0xff, 0, 0));
  });

  it('encodes welcome, leave, trim and error as documented', () => {
    expect(encodeServerMessage({ type: 'welcome', version: 1, id: 258, colour: 0xa0b0c0, name: 'Al' })).toEqual(
      bytes(0x81, 0x01, 2, 1, 0, 0, 0xa0, 0xb0, 0xc0, 2, ...utf8('Al')),
    );
    expect(encodeServerMessage({ type: 'leave', id: 9 })).toEqual(bytes(0x84, 9, 0, 0, 0));
    expect(encodeServerMessage({ type: 'trim', before: 0x100 })).toEqual(bytes(0x93, 0, 1, 0, 0));
    expect(encodeServerMessage({ type: 'error', code: 'unknown_type', about: 0x7f, message: 'no' })).toEqual(bytes(0xff, 2, 0x7f, ...utf8('no')));
  });

  it('encodes a snapshot: visitor count, visitors (with a flag for a pointer), stroke count, strokes (with an open flag)', () => {
    const encoded = encodeServerMessage({
      type: 'snapshot',
      visitors: [
        { id: 1, colour: 0x010203, name: 'a', pointer: { x: 10, y: 20 } },
        { id: 2, colour: 0x040506, name: '', pointer: null },
      ],
      strokes: [{ id: 3, visitor: 1, colour: 0xff0000, width: 4, open: true, points: [1, 2, 3, 4] }],
    });
    // One row per field group.
    // prettier-ignore
    expect(encoded).toEqual(
      bytes(
        0x82,
        2, 0,
        1, 0, 0, 0, 1, 2, 3, 1, 10, 0, 20, 0, 1, ...utf8('a'),
        2, 0, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0,
        1, 0,
        3, 0, 0, 0, 1, 0, 0, 0, 0xff, 0, 0, 4, 1, 2, 0, 1, 0, 2, 0, 3, 0, 4, 0,
      ),
    );
  });

  it('keeps the client and server type spaces apart: the high bit marks what the server sends', () => {
    for (const type of Object.values(ClientType)) expect(type & 0x80).toBe(0);
    for (const type of Object.values(ServerType)) expect(type & 0x80).toBe(0x80);
  });
});

describe('canvas codec: round trips (fast-check)', () => {
  it('decodes every encoded client message back to itself', () => {
    fc.assert(
      fc.property(clientMessage, (message) => {
        expect(decodeClientMessage(encodeClientMessage(message))).toEqual({ ok: true, message });
      }),
      { numRuns: 500 },
    );
  });

  it('decodes every encoded server message back to itself', () => {
    fc.assert(
      fc.property(serverMessage, (message) => {
        expect(decodeServerMessage(encodeServerMessage(message))).toEqual({ ok: true, message });
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary bytes, and whatever it accepts re-encodes to the same bytes (one encoding per message)', () => {
    const anyBytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      // Start with a real type byte more often, so the decoders get past the first switch.
      fc
        .tuple(fc.constantFrom(...Object.values(ClientType), ...Object.values(ServerType)), fc.uint8Array({ maxLength: 64 }))
        .map(([type, rest]) => Uint8Array.of(type, ...rest)),
    );
    fc.assert(
      fc.property(anyBytes, (input) => {
        const client = decodeClientMessage(input);
        if (client.ok) expect(encodeClientMessage(client.message)).toEqual(input);
        else expect(client.about).toBe(input[0] ?? 0);
        const server = decodeServerMessage(input);
        if (server.ok) expect(encodeServerMessage(server.message)).toEqual(input);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('canvas codec: malformed input', () => {
  const cases: Array<[string, Uint8Array, CanvasErrorCode]> = [
    ['an empty message', bytes(), 'malformed'],
    ['a move one byte short', bytes(0x03, 1, 2, 3), 'malformed'],
    ['a move one byte long', bytes(0x03, 1, 2, 3, 4, 5), 'malformed'],
    ['stroke-end with a payload', bytes(0x12, 0), 'malformed'],
    ['undo with a payload', bytes(0x13, 0), 'malformed'],
    ['clear with a payload', bytes(0x14, 1, 2), 'malformed'],
    ['stroke-begin one byte short', bytes(0x10, 1, 2, 3, 4, 0, 0, 0), 'malformed'],
    ['stroke-points without points', bytes(0x11), 'malformed'],
    ['stroke-points with half a point', bytes(0x11, 1, 0, 2, 0, 3, 0), 'malformed'],
    ['a hello whose name is shorter than its length byte', bytes(0x01, 0x01, 5, ...utf8('abc')), 'malformed'],
    ['a hello with bytes after the name', bytes(0x01, 0x01, 1, ...utf8('ab')), 'malformed'],
    ['a hello without its name length', bytes(0x01, 0x01), 'malformed'],
    ['an unknown type', bytes(0x7f, 0, 0), 'unknown_type'],
    ['a server type sent by a client', bytes(ServerType.pointers, 1, 0, 0, 0, 0, 0, 0, 0), 'unknown_type'],
    ['stroke-begin with width 0', bytes(0x10, 0, 0, 0, 0, 0, 0, 0, 0), 'out_of_range'],
    ['stroke-begin with width 65', bytes(0x10, 0, 0, 0, MAX_WIDTH + 1, 0, 0, 0, 0), 'out_of_range'],
    ['stroke-points with 257 points', Uint8Array.of(0x11, ...new Array<number>((MAX_POINTS_PER_MESSAGE + 1) * 4).fill(0)), 'out_of_range'],
    ['a name over 96 bytes', Uint8Array.of(0x02, MAX_NAME_BYTES + 1, ...new Array<number>(MAX_NAME_BYTES + 1).fill(0x61)), 'out_of_range'],
    ['a name that is not UTF-8', bytes(0x02, 2, 0xc3, 0x28), 'invalid_utf8'],
    ['a hello of a protocol version after this one', bytes(0x01, PROTOCOL_VERSION + 1, 0), 'unsupported_version'],
    ['a hello of protocol version 0', bytes(0x01, 0x00, 0), 'unsupported_version'],
  ];

  it.each(cases)('refuses %s with a sentence and the offending type', (_what, input, code) => {
    const decoded = decodeClientMessage(input);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.code).toBe(code);
    expect(decoded.error.message.length).toBeGreaterThan(5);
    expect(decoded.about).toBe(input[0] ?? 0);
  });

  it('says which message ended too early, and how long it was', () => {
    expect(decodeClientMessage(bytes(0x01, 0x01, 5, ...utf8('abc')))).toEqual({
      ok: false,
      error: { code: 'malformed', message: 'hello: the message ends too early (6 bytes).' },
      about: 0x01,
    });
    expect(decodeServerMessage(bytes(ServerType.leave, 1, 0))).toEqual({
      ok: false,
      error: { code: 'malformed', message: 'server message 0x84: the message ends too early (3 bytes).' },
      about: ServerType.leave,
    });
  });

  it('refuses a snapshot that gives a position to a visitor without a pointer (one encoding per message)', () => {
    const decoded = decodeServerMessage(bytes(0x82, 1, 0, 1, 0, 0, 0, 1, 2, 3, 0, 10, 0, 0, 0, 0, 0, 0));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.error.code).toBe('malformed');
    const fine = decodeServerMessage(bytes(0x82, 1, 0, 1, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0));
    expect(fine).toEqual({ ok: true, message: { type: 'snapshot', visitors: [{ id: 1, colour: 0x010203, name: '', pointer: null }], strokes: [] } });
  });

  it('refuses to encode values the format cannot carry', () => {
    expect(() => encodeClientMessage({ type: 'move', x: 65536, y: 0 })).toThrow(RangeError);
    expect(() => encodeClientMessage({ type: 'move', x: 1.5, y: 0 })).toThrow(RangeError);
    expect(() => encodeClientMessage({ type: 'stroke-begin', colour: 0x1000000, width: 1, x: 0, y: 0 })).toThrow(RangeError);
    expect(() => encodeClientMessage({ type: 'rename', name: 'x'.repeat(MAX_NAME_BYTES + 1) })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: 'stroke-points', id: 1, points: [1] })).toThrow(RangeError);
    expect(() => encodeServerMessage({ type: 'leave', id: -1 })).toThrow(RangeError);
  });
});
