import { describe, expect, it, vi } from 'vitest';
import { encodeFrame, frameHeaderSize, writeFrameHeader } from '../../src/protocol/frame-writer.js';
import { Opcode } from '../../src/protocol/opcode.js';
import { Role } from '../../src/protocol/role.js';
import { concat, hex, makeProtocol, patternBytes, toHex, utf8 } from './helpers.js';

/**
 * Keys queued here are returned by randomMaskKey() before it falls back to
 * the real one, so a client frame can be compared byte for byte with RFC 6455 §5.7.
 */
const forcedKeys = vi.hoisted(() => ({ queue: [] as Uint8Array[] }));
vi.mock('../../src/protocol/mask.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/protocol/mask.js')>();
  return { ...actual, randomMaskKey: () => forcedKeys.queue.shift() ?? actual.randomMaskKey() };
});

const RFC_KEY = hex('37 fa 21 3d');
const TEXT_FIN = { fin: true, rsv1: false, opcode: Opcode.Text };
const BINARY_FIN = { fin: true, rsv1: false, opcode: Opcode.Binary };

function header(length: number, masked: boolean, bits = BINARY_FIN): string {
  const target = new Uint8Array(frameHeaderSize(length, masked));
  const end = writeFrameHeader(target, 0, bits, length, masked ? hex('a1 b2 c3 d4') : null);
  expect(end).toBe(target.length);
  return toHex(target);
}

describe('frame header encoding (RFC 6455 §5.2)', () => {
  it.each([
    [0, 2, 6],
    [125, 2, 6],
    [126, 4, 8],
    [65535, 4, 8],
    [65536, 10, 14],
    [2 ** 32 + 1, 10, 14],
  ])('uses the shortest length encoding: %i bytes -> %i-byte header (%i masked)', (length, plain, masked) => {
    expect(frameHeaderSize(length, false)).toBe(plain);
    expect(frameHeaderSize(length, true)).toBe(masked);
  });

  it.each([
    [0, '82 00'],
    [125, '82 7d'],
    [126, '82 7e 00 7e'],
    [256, '82 7e 01 00'],
    [65535, '82 7e ff ff'],
    [65536, '82 7f 00 00 00 00 00 01 00 00'],
    [2 ** 32 + 1, '82 7f 00 00 00 01 00 00 00 01'],
    [2 ** 40 + 0x01020304, '82 7f 00 00 01 00 01 02 03 04'],
  ])('writes the header of a %i-byte unmasked frame as %s', (length, bytes) => {
    expect(header(length, false)).toBe(bytes);
  });

  it.each([
    [0, '82 80 a1 b2 c3 d4'],
    [125, '82 fd a1 b2 c3 d4'],
    [126, '82 fe 00 7e a1 b2 c3 d4'],
    [65535, '82 fe ff ff a1 b2 c3 d4'],
    [65536, '82 ff 00 00 00 00 00 01 00 00 a1 b2 c3 d4'],
    [2 ** 32 + 1, '82 ff 00 00 00 01 00 00 00 01 a1 b2 c3 d4'],
  ])('writes the header of a %i-byte masked frame as %s', (length, bytes) => {
    expect(header(length, true)).toBe(bytes);
  });

  it('encodes FIN, RSV1 and the opcode in the first byte', () => {
    expect(header(0, false, { fin: false, rsv1: false, opcode: Opcode.Text })).toBe('01 00');
    expect(header(0, false, { fin: false, rsv1: false, opcode: Opcode.Continuation })).toBe('00 00');
    expect(header(0, false, { fin: true, rsv1: true, opcode: Opcode.Text })).toBe('c1 00');
    expect(header(0, false, { fin: true, rsv1: false, opcode: Opcode.Close })).toBe('88 00');
    expect(header(0, false, { fin: true, rsv1: false, opcode: Opcode.Ping })).toBe('89 00');
    expect(header(0, false, { fin: true, rsv1: false, opcode: Opcode.Pong })).toBe('8a 00');
  });

  it('writes at an offset and returns the offset after the header', () => {
    const target = new Uint8Array(20).fill(0xee);
    const end = writeFrameHeader(target, 3, TEXT_FIN, 300, RFC_KEY);
    expect(end).toBe(3 + 8);
    expect(toHex(target)).toBe('ee ee ee 81 fe 01 2c 37 fa 21 3d ee ee ee ee ee ee ee ee ee');
  });
});

describe('encodeFrame', () => {
  it('encodes the RFC 6455 §5.7 unmasked "Hello" as 81 05 48 65 6c 6c 6f', () => {
    const [h, p] = encodeFrame(TEXT_FIN, utf8('Hello'), null);
    expect(toHex(concat(h, p))).toBe('81 05 48 65 6c 6c 6f');
  });

  it('encodes the RFC 6455 §5.7 masked "Hello" as 81 85 37 fa 21 3d 7f 9f 4d 51 58', () => {
    const [h, p] = encodeFrame(TEXT_FIN, utf8('Hello'), RFC_KEY);
    expect(toHex(concat(h, p))).toBe('81 85 37 fa 21 3d 7f 9f 4d 51 58');
  });

  it('returns the caller payload itself when unmasked (no copy)', () => {
    const payload = patternBytes(1000);
    const [, p] = encodeFrame(BINARY_FIN, payload, null);
    expect(p).toBe(payload);
  });

  it('masks into a new buffer and leaves the caller payload unchanged', () => {
    const payload = patternBytes(1000);
    const before = payload.slice();
    const [h, p] = encodeFrame(BINARY_FIN, payload, RFC_KEY);
    expect(p).not.toBe(payload);
    expect(toHex(payload)).toBe(toHex(before));
    expect(toHex(h)).toBe('82 fe 03 e8 37 fa 21 3d');
    for (let i = 0; i < payload.length; i++) expect(p[i]).toBe(payload[i]! ^ RFC_KEY[i % 4]!);
  });

  it('encodes the 256-byte and 64 KiB binary examples with 82 7E 0100 and 82 7F 0000000000010000', () => {
    expect(toHex(encodeFrame(BINARY_FIN, new Uint8Array(256), null)[0])).toBe('82 7e 01 00');
    expect(toHex(encodeFrame(BINARY_FIN, new Uint8Array(65536), null)[0])).toBe('82 7f 00 00 00 00 00 01 00 00');
  });
});

describe('Protocol output: RFC 6455 §5.7 examples', () => {
  it('a server writes "Hello", ping "Hello" and pong "Hello" exactly as the RFC shows', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    protocol.send(utf8('Hello'), false);
    protocol.ping(utf8('Hello'));
    protocol.pong(utf8('Hello'));
    expect(host.writes.map((w) => toHex(concat(w.header, w.payload)))).toEqual([
      '81 05 48 65 6c 6c 6f',
      '89 05 48 65 6c 6c 6f',
      '8a 05 48 65 6c 6c 6f',
    ]);
  });

  it('a client writes the masked "Hello" and masked pong exactly as the RFC shows, given the key 37 fa 21 3d', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    forcedKeys.queue.push(RFC_KEY, RFC_KEY);
    protocol.send(utf8('Hello'), false);
    protocol.pong(utf8('Hello'));
    expect(host.writes.map((w) => toHex(concat(w.header, w.payload)))).toEqual([
      '81 85 37 fa 21 3d 7f 9f 4d 51 58',
      '8a 85 37 fa 21 3d 7f 9f 4d 51 58',
    ]);
  });

  it('a server writes 256 and 65,536-byte binary messages with 16-bit and 64-bit lengths, payload as given', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    const small = patternBytes(256, 1);
    const large = patternBytes(65536, 2);
    protocol.send(small, true);
    protocol.send(large, true);
    expect(toHex(host.writes[0]!.header)).toBe('82 7e 01 00');
    expect(host.writes[0]!.payload).toEqual(small);
    expect(toHex(host.writes[1]!.header)).toBe('82 7f 00 00 00 00 00 01 00 00');
    expect(Buffer.from(host.writes[1]!.payload).equals(Buffer.from(large))).toBe(true);
  });

  it('a client masks 256 and 65,536-byte binary messages: mask bit, key, masked payload', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    const k1 = hex('01 02 03 04');
    const k2 = hex('a0 b0 c0 d0');
    forcedKeys.queue.push(k1, k2);
    const small = patternBytes(256, 1);
    const large = patternBytes(65536, 2);
    protocol.send(small, true);
    protocol.send(large, true);
    expect(toHex(host.writes[0]!.header)).toBe('82 fe 01 00 01 02 03 04');
    expect(toHex(host.writes[1]!.header)).toBe('82 ff 00 00 00 00 00 01 00 00 a0 b0 c0 d0');
    const frames = host.frames();
    expect(frames[0]!.payload).toEqual(small);
    expect(Buffer.from(frames[1]!.payload).equals(Buffer.from(large))).toBe(true);
  });
});

describe('Protocol output: masking (RFC 6455 §5.3)', () => {
  it('client frames carry the mask bit and a key, the payload is masked, and the caller buffer is untouched', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    const data = patternBytes(100, 9);
    const before = data.slice();
    protocol.send(data, true);
    protocol.ping(data.subarray(0, 10));
    protocol.close(1000, 'bye');
    expect(toHex(data)).toBe(toHex(before));
    const frames = host.frames();
    expect(frames.map((f) => f.masked)).toEqual([true, true, true]);
    expect(frames[0]!.payload).toEqual(data);
    expect(toHex(frames[2]!.payload)).toBe(toHex(concat(hex('03 e8'), utf8('bye'))));
    // The bytes on the wire are the masked ones, not the plain payload.
    expect(toHex(host.writes[0]!.payload)).not.toBe(toHex(data));
  });

  it('draws a different mask key for every frame', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    for (let i = 0; i < 50; i++) protocol.send(utf8('x'), false);
    const keys = new Set(host.frames().map((f) => toHex(f.maskKey!)));
    // 50 random 32-bit keys: a collision has probability ~3e-7.
    expect(keys.size).toBe(50);
  });

  it('an empty client frame still carries a mask key', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    forcedKeys.queue.push(RFC_KEY);
    protocol.send(new Uint8Array(0), true);
    expect(toHex(host.written)).toBe('82 80 37 fa 21 3d');
  });

  it('server frames are never masked and pass the caller payload through', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    const data = patternBytes(10);
    protocol.send(data, true);
    expect(host.frames()[0]!.masked).toBe(false);
    expect(host.writes[0]!.payload).toEqual(data);
  });
});

describe('Protocol output: fragmentation (RFC 6455 §5.4)', () => {
  it('sendFragment writes the opcode first, then continuations, with FIN only on the last', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    expect(protocol.sendFragment(utf8('Hel'), false, false)).toBe(true);
    expect(protocol.sendFragment(utf8('l'), false, false)).toBe(true);
    expect(protocol.sendFragment(utf8('o'), false, true)).toBe(true);
    expect(toHex(host.written)).toBe('01 03 48 65 6c 00 01 6c 80 01 6f');
  });

  it('allows control frames between fragments', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    protocol.sendFragment(Uint8Array.of(1), true, false);
    protocol.ping(utf8('p'));
    protocol.sendFragment(Uint8Array.of(2), true, false);
    protocol.pong(utf8('q'));
    protocol.sendFragment(Uint8Array.of(3), true, true);
    expect(toHex(host.written)).toBe('02 01 01 89 01 70 00 01 02 8a 01 71 80 01 03');
  });

  it('a client masks every fragment with its own key', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    protocol.sendFragment(utf8('ab'), false, false);
    protocol.sendFragment(utf8('cd'), false, true);
    const frames = host.frames();
    expect(frames.map((f) => [f.opcode, f.fin, f.masked])).toEqual([
      [1, false, true],
      [0, true, true],
    ]);
    expect(frames.map((f) => new TextDecoder().decode(f.payload))).toEqual(['ab', 'cd']);
  });

  it('a single sendFragment with fin is an ordinary one-frame message, and a new message may follow', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    protocol.sendFragment(utf8('a'), false, true);
    protocol.sendFragment(utf8('b'), true, false);
    protocol.sendFragment(utf8('c'), true, true);
    expect(toHex(host.written)).toBe('81 01 61 02 01 62 80 01 63');
  });

  it('send() during a fragmented message is a usage error and writes nothing', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    protocol.sendFragment(utf8('a'), false, false);
    expect(() => protocol.send(utf8('b'), false)).toThrow(expect.objectContaining({ code: 'WS_ERR_INVALID_ARGUMENT' }));
    expect(toHex(host.written)).toBe('01 01 61');
    protocol.sendFragment(utf8('c'), false, true);
    protocol.send(utf8('d'), false);
    expect(toHex(host.written)).toBe('01 01 61 80 01 63 81 01 64');
  });
});
