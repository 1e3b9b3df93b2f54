import fc from 'fast-check';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { CompressionCodec } from '../../src/protocol/codec.js';
import type { ProtocolErrorCode } from '../../src/protocol/errors.js';
import { isValidUtf8 } from '../../src/protocol/utf8.js';
import { encodeClosePayload, Protocol, ProtocolState, type ProtocolEvent } from '../../src/protocol/protocol.js';
import { Role } from '../../src/protocol/role.js';
import {
  chunksOf,
  closePayload,
  concat,
  decodeUtf8,
  expectFailedWith,
  feed,
  frame,
  hex,
  makeProtocol,
  parseFrames,
  patternBytes,
  peerFrame,
  RecordingHost,
  splitAt,
  toHex,
  utf8,
} from './helpers.js';

const ROLES = [Role.Server, Role.Client] as const;
const HELLO = utf8('Hello');

function messages(host: RecordingHost): { text?: string; binary: boolean; hex: string }[] {
  return host
    .ofType('message')
    .map((m) => (m.binary ? { binary: true, hex: toHex(m.data) } : { binary: false, text: decodeUtf8(m.data), hex: toHex(m.data) }));
}

// ---------------------------------------------------------------------------
describe('RFC 6455 §5.7 examples, received', () => {
  it('a client receives the unmasked "Hello" 81 05 48 65 6c 6c 6f', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('81 05 48 65 6c 6c 6f'));
    expect(messages(host)).toEqual([{ binary: false, text: 'Hello', hex: toHex(HELLO) }]);
    expect(host.writes).toEqual([]);
  });

  it('a server fails on the unmasked "Hello" (§5.1) with 1002 and the exact close frame', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, hex('81 05 48 65 6c 6c 6f'));
    const { message } = expectFailedWith(host, Role.Server, 'WS_ERR_EXPECTED_MASK', 1002);
    expect(message).toBe('client frames must be masked');
    expect(toHex(host.written)).toBe(`88 1e 03 ea ${toHex(utf8('client frames must be masked'))}`);
    expect(host.ofType('message')).toEqual([]);
  });

  it('a server receives the masked "Hello" 81 85 37 fa 21 3d 7f 9f 4d 51 58', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expect(messages(host)).toEqual([{ binary: false, text: 'Hello', hex: toHex(HELLO) }]);
  });

  it('a client fails on the masked "Hello" (§5.1) with 1002', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expectFailedWith(host, Role.Client, 'WS_ERR_UNEXPECTED_MASK', 1002);
  });

  it('a client receives the fragmented "Hel" + "lo" (01 03 48 65 6c, 80 02 6c 6f)', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('01 03 48 65 6c'));
    expect(host.events).toEqual([]);
    feed(protocol, hex('80 02 6c 6f'));
    expect(messages(host)).toEqual([{ binary: false, text: 'Hello', hex: toHex(HELLO) }]);
  });

  it('a server receives the same fragments masked', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(
      protocol,
      frame({ opcode: 1, fin: false, payload: 'Hel', mask: hex('37 fa 21 3d') }),
      frame({ opcode: 0, fin: true, payload: 'lo', mask: hex('01 02 03 04') }),
    );
    expect(messages(host)).toEqual([{ binary: false, text: 'Hello', hex: toHex(HELLO) }]);
  });

  it('a client answers the unmasked ping 89 05 "Hello" with a masked pong carrying "Hello"', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('89 05 48 65 6c 6c 6f'));
    expect(host.events.map((e) => e.type)).toEqual(['ping']);
    expect(toHex(host.ofType('ping')[0]!.data)).toBe(toHex(HELLO));
    const [pong] = host.frames();
    expect(pong).toMatchObject({ opcode: 0xa, fin: true, masked: true });
    expect(toHex(pong!.payload)).toBe(toHex(HELLO));
    expect(toHex(pong!.raw.subarray(0, 2))).toBe('8a 85');
  });

  it('a server answers a masked ping "Hello" with exactly 8a 05 48 65 6c 6c 6f', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, hex('89 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expect(toHex(host.written)).toBe('8a 05 48 65 6c 6c 6f');
    expect(toHex(host.ofType('ping')[0]!.data)).toBe(toHex(HELLO));
  });

  it('a server receives the masked pong 8a 85 37 fa 21 3d 7f 9f 4d 51 58 and writes nothing', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expect(host.events).toEqual([{ type: 'pong', data: HELLO }]);
    expect(host.writes).toEqual([]);
  });

  it('a client receives the unmasked pong 8a 05 "Hello"; a server fails on it', () => {
    const client = makeProtocol(Role.Client);
    feed(client.protocol, hex('8a 05 48 65 6c 6c 6f'));
    expect(client.host.events).toEqual([{ type: 'pong', data: HELLO }]);
    const server = makeProtocol(Role.Server);
    feed(server.protocol, hex('8a 05 48 65 6c 6c 6f'));
    expectFailedWith(server.host, Role.Server, 'WS_ERR_EXPECTED_MASK', 1002);
  });

  it('a client fails on the masked pong', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expectFailedWith(host, Role.Client, 'WS_ERR_UNEXPECTED_MASK', 1002);
  });

  for (const [length, head] of [
    [256, '82 7e 01 00'],
    [65536, '82 7f 00 00 00 00 00 01 00 00'],
  ] as const) {
    it(`a client receives the ${length}-byte binary frame ${head} ...`, () => {
      const payload = patternBytes(length, length);
      const { protocol, host } = makeProtocol(Role.Client);
      feed(protocol, concat(hex(head), payload));
      const [m] = host.ofType('message');
      expect(m!.binary).toBe(true);
      expect(Buffer.from(m!.data).equals(Buffer.from(payload))).toBe(true);
    });

    it(`a server receives the ${length}-byte binary frame masked, and fails on it unmasked`, () => {
      const payload = patternBytes(length, length);
      const key = hex('37 fa 21 3d');
      const masked = frame({ opcode: 2, payload, mask: key });
      // Same header as the RFC's, with the mask bit and key.
      const expectedHead = hex(head);
      expectedHead[1]! |= 0x80;
      expect(toHex(masked.subarray(0, expectedHead.length + 4))).toBe(toHex(concat(expectedHead, key)));
      const ok = makeProtocol(Role.Server);
      feed(ok.protocol, masked);
      expect(Buffer.from(ok.host.ofType('message')[0]!.data).equals(Buffer.from(payload))).toBe(true);
      const bad = makeProtocol(Role.Server);
      feed(bad.protocol, concat(hex(head), payload));
      expectFailedWith(bad.host, Role.Server, 'WS_ERR_EXPECTED_MASK', 1002);
    });
  }
});

// ---------------------------------------------------------------------------
describe('framing violations fail the connection with the right code and close frame', () => {
  type Case = [name: string, build: (role: Role) => Uint8Array, code: ProtocolErrorCode];
  const cases: Case[] = [
    ['RSV1 without permessage-deflate', (r) => peerFrame(r, { opcode: 1, rsv1: true, payload: 'x' }), 'WS_ERR_UNEXPECTED_RSV'],
    ['RSV2', (r) => peerFrame(r, { opcode: 1, rsv2: true, payload: 'x' }), 'WS_ERR_UNEXPECTED_RSV'],
    ['RSV3', (r) => peerFrame(r, { opcode: 1, rsv3: true, payload: 'x' }), 'WS_ERR_UNEXPECTED_RSV'],
    ['RSV1 on a ping without permessage-deflate', (r) => peerFrame(r, { opcode: 9, rsv1: true }), 'WS_ERR_UNEXPECTED_RSV'],
    ['a 16-bit length under 126', (r) => peerFrame(r, { opcode: 2, payload: new Uint8Array(125), lengthEncoding: 16 }), 'WS_ERR_NON_MINIMAL_LENGTH'],
    [
      'a 64-bit length under 65536',
      (r) => peerFrame(r, { opcode: 2, payload: new Uint8Array(200), lengthEncoding: 64 }),
      'WS_ERR_NON_MINIMAL_LENGTH',
    ],
    ['a 64-bit length for 65535 bytes', (r) => peerFrame(r, { opcode: 2, declaredLength: 65535, lengthEncoding: 64 }), 'WS_ERR_NON_MINIMAL_LENGTH'],
    [
      'a 64-bit length with the top bit set',
      (r) => peerFrame(r, { opcode: 2, declaredLength: 1n << 63n, lengthEncoding: 64 }),
      'WS_ERR_INVALID_LENGTH',
    ],
    ['a ping of 126 bytes', (r) => peerFrame(r, { opcode: 9, payload: new Uint8Array(126) }), 'WS_ERR_CONTROL_TOO_LONG'],
    ['a close frame of 126 bytes', (r) => peerFrame(r, { opcode: 8, payload: closePayload(1000, 'x'.repeat(124)) }), 'WS_ERR_CONTROL_TOO_LONG'],
    ['a pong with a 64-bit length', (r) => peerFrame(r, { opcode: 10, declaredLength: 70000 }), 'WS_ERR_CONTROL_TOO_LONG'],
    ['a fragmented ping', (r) => peerFrame(r, { opcode: 9, fin: false, payload: 'p' }), 'WS_ERR_FRAGMENTED_CONTROL'],
    ['a fragmented close', (r) => peerFrame(r, { opcode: 8, fin: false, payload: closePayload(1000) }), 'WS_ERR_FRAGMENTED_CONTROL'],
    ['a continuation with no message in progress', (r) => peerFrame(r, { opcode: 0, payload: 'x' }), 'WS_ERR_UNEXPECTED_CONTINUATION'],
    [
      'a new text frame during a fragmented message',
      (r) => concat(peerFrame(r, { opcode: 1, fin: false, payload: 'a' }), peerFrame(r, { opcode: 1, payload: 'b' })),
      'WS_ERR_EXPECTED_CONTINUATION',
    ],
    [
      'a new binary frame during a fragmented message',
      (r) => concat(peerFrame(r, { opcode: 2, fin: false, payload: 'a' }), peerFrame(r, { opcode: 2, fin: false, payload: 'b' })),
      'WS_ERR_EXPECTED_CONTINUATION',
    ],
    ['a close payload of 1 byte', (r) => peerFrame(r, { opcode: 8, payload: hex('03') }), 'WS_ERR_INVALID_CLOSE_PAYLOAD'],
    ['a close code of 1005', (r) => peerFrame(r, { opcode: 8, payload: closePayload(1005) }), 'WS_ERR_INVALID_CLOSE_CODE'],
  ];
  for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    cases.push([`reserved opcode 0x${op.toString(16)}`, (r) => peerFrame(r, { opcode: op, payload: 'x' }), 'WS_ERR_INVALID_OPCODE']);
  }

  for (const role of ROLES) {
    it.each(cases)(`${role}: %s -> error code, 1002, close frame`, (_, build, code) => {
      const { protocol, host } = makeProtocol(role);
      feed(protocol, build(role));
      expectFailedWith(host, role, code, 1002);
      expect(protocol.state).toBe(ProtocolState.Closed);
      expect(host.ofType('message')).toEqual([]);
    });
  }

  it('reports the reserved opcode in the close reason: 88 14 03 ea "unknown opcode 0x3"', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, peerFrame(Role.Server, { opcode: 3 }));
    expect(toHex(host.written)).toBe(`88 14 03 ea ${toHex(utf8('unknown opcode 0x3'))}`);
  });

  it('fails on a violation found in the header alone, before any payload byte arrives', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, hex('89 fe'));
    expectFailedWith(host, Role.Server, 'WS_ERR_CONTROL_TOO_LONG', 1002);
  });

  for (const role of ROLES) {
    it(`${role}: a continuation after a complete message fails with 1002, after that message was delivered`, () => {
      const { protocol, host } = makeProtocol(role);
      feed(protocol, concat(peerFrame(role, { opcode: 1, payload: 'a' }), peerFrame(role, { opcode: 0, payload: 'b' })));
      expect(host.events.map((e) => e.type)).toEqual(['message', 'error']);
      expectFailedWith(host, role, 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
    });
  }

  it('fails on the first bad frame after good ones, keeping what was delivered before', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, concat(peerFrame(Role.Server, { opcode: 1, payload: 'ok' }), peerFrame(Role.Server, { opcode: 0xb })));
    expect(host.events.map((e) => e.type)).toEqual(['message', 'error']);
    expectFailedWith(host, Role.Server, 'WS_ERR_INVALID_OPCODE', 1002);
  });
});

// ---------------------------------------------------------------------------
describe('fragmentation and control frames between fragments (RFC 6455 §5.4)', () => {
  for (const role of ROLES) {
    it(`${role}: accepts ping, pong and the close frame between fragments`, () => {
      const { protocol, host } = makeProtocol(role);
      feed(
        protocol,
        peerFrame(role, { opcode: 2, fin: false, payload: hex('01') }),
        peerFrame(role, { opcode: 9, payload: 'p1' }),
        peerFrame(role, { opcode: 0, fin: false, payload: hex('02') }),
        peerFrame(role, { opcode: 10, payload: 'q' }),
        peerFrame(role, { opcode: 9, payload: 'p2' }),
        peerFrame(role, { opcode: 0, fin: true, payload: hex('03') }),
      );
      expect(host.events.map((e) => e.type)).toEqual(['ping', 'pong', 'ping', 'message']);
      expect(toHex(host.ofType('message')[0]!.data)).toBe('01 02 03');
      expect(host.frames().map((f) => [f.opcode, decodeUtf8(f.payload)])).toEqual([
        [0xa, 'p1'],
        [0xa, 'p2'],
      ]);
    });

    it(`${role}: a close frame between fragments ends the connection without delivering the partial message`, () => {
      const { protocol, host } = makeProtocol(role);
      feed(
        protocol,
        peerFrame(role, { opcode: 1, fin: false, payload: 'par' }),
        peerFrame(role, { opcode: 8, payload: closePayload(1001) }),
        peerFrame(role, { opcode: 0, fin: true, payload: 'tial' }),
      );
      expect(host.events).toEqual([{ type: 'close', code: 1001, reason: '', initiator: 'remote' }]);
    });
  }

  it('accepts empty fragments, including an empty first and last fragment', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('01 00 00 00 00 02 68 69 00 00 80 00'));
    expect(messages(host)).toEqual([{ binary: false, text: 'hi', hex: '68 69' }]);
  });

  it('accepts an empty message and an all-empty fragmented message', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('81 00 02 00 80 00'));
    expect(messages(host)).toEqual([
      { binary: false, text: '', hex: '' },
      { binary: true, hex: '' },
    ]);
  });

  it('delivers a message reassembled from fragments as its own copy, independent of the chunks', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    const a = hex('01 02 61 62');
    protocol.receive(a);
    const b = hex('80 01 63');
    protocol.receive(b);
    a.fill(0);
    b.fill(0);
    expect(messages(host).map((m) => m.text)).toEqual(['abc']);
  });

  it('delivers a message that lies inside one chunk as a view of that chunk (zero-copy; receive() takes the chunk over)', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    const chunk = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58');
    protocol.receive(chunk);
    const [m] = host.ofType('message');
    expect(m!.data.buffer).toBe(chunk.buffer);
    // Unmasked in place.
    expect(toHex(chunk.subarray(6))).toBe(toHex(HELLO));
  });
});

// ---------------------------------------------------------------------------
describe('maxMessageSize (1009), enforced at header time', () => {
  for (const role of ROLES) {
    it(`${role}: accepts a message of exactly maxMessageSize bytes`, () => {
      const { protocol, host } = makeProtocol(role, { maxMessageSize: 100 });
      feed(protocol, peerFrame(role, { opcode: 2, payload: new Uint8Array(100) }));
      expect(host.ofType('message')[0]!.data.length).toBe(100);
    });

    it(`${role}: rejects a single frame one byte over, after its 2 header bytes alone`, () => {
      const { protocol, host } = makeProtocol(role, { maxMessageSize: 100 });
      const bytes = peerFrame(role, { opcode: 2, payload: new Uint8Array(101) });
      feed(protocol, bytes.subarray(0, 2));
      expectFailedWith(host, role, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
    });

    it(`${role}: rejects a 64-bit length of 2^53 after the 10 header bytes`, () => {
      const { protocol, host } = makeProtocol(role);
      const bytes = peerFrame(role, { opcode: 2, declaredLength: 2n ** 53n, lengthEncoding: 64 });
      feed(protocol, bytes.subarray(0, 10));
      expectFailedWith(host, role, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
    });

    it(`${role}: rejects a fragmented message when the header of the fragment that crosses the limit arrives`, () => {
      const { protocol, host } = makeProtocol(role, { maxMessageSize: 100 });
      feed(protocol, peerFrame(role, { opcode: 1, fin: false, payload: 'a'.repeat(60) }));
      feed(protocol, peerFrame(role, { opcode: 0, fin: false, payload: 'b'.repeat(40) }));
      expect(host.events).toEqual([]);
      const third = peerFrame(role, { opcode: 0, fin: true, payload: 'c' });
      feed(protocol, third.subarray(0, 2));
      expectFailedWith(host, role, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
    });
  }

  it('does not count control frames between fragments towards the message size', () => {
    const { protocol, host } = makeProtocol(Role.Client, { maxMessageSize: 10 });
    feed(
      protocol,
      peerFrame(Role.Client, { opcode: 2, fin: false, payload: new Uint8Array(5) }),
      peerFrame(Role.Client, { opcode: 9, payload: new Uint8Array(125) }),
      peerFrame(Role.Client, { opcode: 0, fin: true, payload: new Uint8Array(5) }),
    );
    expect(host.events.map((e) => e.type)).toEqual(['ping', 'message']);
  });

  it('counts each message separately', () => {
    const { protocol, host } = makeProtocol(Role.Client, { maxMessageSize: 10 });
    for (let i = 0; i < 5; i++) feed(protocol, peerFrame(Role.Client, { opcode: 2, payload: new Uint8Array(10) }));
    expect(host.ofType('message')).toHaveLength(5);
  });
});

// ---------------------------------------------------------------------------
describe('UTF-8 in text messages (RFC 6455 §8.1) -> 1007', () => {
  const tricky: [string, string][] = [
    ['overlong 2-byte NUL C0 80', 'c0 80'],
    ['overlong 2-byte C1 BF', 'c1 bf'],
    ['overlong 3-byte E0 80 AF', 'e0 80 af'],
    ['overlong 4-byte F0 80 80 AF', 'f0 80 80 af'],
    ['surrogate ED A0 80', 'ed a0 80'],
    ['surrogate ED BF BF', 'ed bf bf'],
    ['above U+10FFFF F4 90 80 80', 'f4 90 80 80'],
    ['lead F5', 'f5 80 80 80'],
    ['lone continuation 80', '80'],
    ['lone continuation BF after ASCII', '41 bf'],
    ['5-byte lead F8', 'f8 88 80 80 80'],
    ['6-byte lead FC', 'fc 84 80 80 80 80'],
    ['FE', 'fe'],
    ['FF', 'ff'],
    ['truncated at the end of the message', 'e2 82'],
    ['κόσμε then a surrogate', 'ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64'],
  ];

  for (const role of ROLES) {
    it.each(tricky)(`${role}: rejects %s in a single-frame text message`, (_, bytes) => {
      const { protocol, host } = makeProtocol(role);
      feed(protocol, peerFrame(role, { opcode: 1, payload: hex(bytes) }));
      expectFailedWith(host, role, 'WS_ERR_INVALID_UTF8', 1007);
    });
  }

  it.each(tricky)('rejects %s in a single-frame text message through an injected whole-buffer check', (_, bytes) => {
    const { protocol, host } = makeProtocol(Role.Server, { isValidUtf8: (b) => isValidUtf8(b) });
    feed(protocol, peerFrame(Role.Server, { opcode: 1, payload: hex(bytes) }));
    expectFailedWith(host, Role.Server, 'WS_ERR_INVALID_UTF8', 1007);
  });

  it('uses the whole-buffer check only for a message that is whole in one piece, the incremental one for fragments', () => {
    const checked: string[] = [];
    const { protocol, host } = makeProtocol(Role.Server, {
      isValidUtf8: (b) => {
        checked.push(decodeUtf8(b));
        return isValidUtf8(b);
      },
    });
    feed(protocol, peerFrame(Role.Server, { opcode: 1, payload: utf8('whole') }));
    // "€" (E2 82 AC) split across fragments: only the incremental validator can judge the pieces.
    feed(protocol, peerFrame(Role.Server, { opcode: 1, fin: false, payload: hex('61 e2') }));
    feed(protocol, peerFrame(Role.Server, { opcode: 0, fin: true, payload: hex('82 ac') }));
    // An empty first fragment: the last one holds the whole message.
    feed(protocol, peerFrame(Role.Server, { opcode: 1, fin: false, payload: new Uint8Array(0) }));
    feed(protocol, peerFrame(Role.Server, { opcode: 0, fin: true, payload: utf8('après') }));
    expect(messages(host).map((m) => m.text)).toEqual(['whole', 'a€', 'après']);
    expect(checked).toEqual(['whole', 'après']);
  });

  it.each(tricky)('accepts %s in a binary message', (_, bytes) => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, peerFrame(Role.Client, { opcode: 2, payload: hex(bytes) }));
    expect(host.ofType('message')).toHaveLength(1);
  });

  it('fails in the first fragment that holds invalid UTF-8, before the final fragment is fed', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, peerFrame(Role.Server, { opcode: 1, fin: false, payload: hex('ce ba e1 bd b9 cf 83 ce bc ce b5 f4 90 80 80') }));
    expectFailedWith(host, Role.Server, 'WS_ERR_INVALID_UTF8', 1007);
  });

  for (const role of ROLES) {
    it(`${role}: fails a 1000-byte text frame once its first 10 bytes (invalid) are in, not when the rest arrives`, () => {
      const payload = utf8('x'.repeat(1000));
      payload.set(hex('61 62 63 64 65 c0 af 66 67 68'), 0); // C0 AF: an overlong "/" (RFC 3629 §3)
      const bytes = peerFrame(role, { opcode: 1, payload });
      const headerLength = role === Role.Server ? 8 : 4;
      const { protocol, host } = makeProtocol(role);
      feed(protocol, bytes.subarray(0, headerLength + 5));
      expect(host.events).toEqual([]);
      feed(protocol, bytes.subarray(headerLength + 5, headerLength + 10));
      expectFailedWith(host, role, 'WS_ERR_INVALID_UTF8', 1007);
      feed(protocol, bytes.subarray(headerLength + 10));
      expect(host.events).toHaveLength(1);
    });

    it(`${role}: fails a long text frame arriving a byte at a time at the byte that completes a surrogate (ED | A0)`, () => {
      const payload = utf8('y'.repeat(300));
      payload.set(hex('ed a0 80'), 100);
      const bytes = peerFrame(role, { opcode: 1, payload });
      const headerLength = role === Role.Server ? 8 : 4;
      const { protocol, host } = makeProtocol(role);
      let fed = 0;
      for (; fed < bytes.length && host.events.length === 0; fed++) feed(protocol, bytes.subarray(fed, fed + 1));
      expectFailedWith(host, role, 'WS_ERR_INVALID_UTF8', 1007);
      expect(fed).toBe(headerLength + 102);
    });

    it(`${role}: accepts a long valid text frame split inside its characters, a byte at a time`, () => {
      const text = 'Grüße, 世界 \u{1F600}! '.repeat(40);
      const { protocol, host } = makeProtocol(role);
      feed(protocol, ...chunksOf(peerFrame(role, { opcode: 1, payload: text }), 1));
      expect(messages(host).map((m) => m.text)).toEqual([text]);
    });
  }

  for (const role of ROLES) {
    it(`${role}: fails in the read that brings a byte no UTF-8 can hold, however the frame is cut (property)`, () => {
      fc.assert(
        fc.property(
          fc.string({ unit: 'grapheme', maxLength: 300 }),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }),
          fc.constantFrom(0xc0, 0xc1, 0xf5, 0xff),
          fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 200 }),
          (before, after, bad, sizes) => {
            const head = utf8(before);
            const payload = concat(head, Uint8Array.of(bad), utf8(after));
            const bytes = peerFrame(role, { opcode: 1, payload });
            const badAt = bytes.length - payload.length + head.length;
            const { protocol, host } = makeProtocol(role);
            let at = 0;
            for (let i = 0; at < bytes.length; i++) {
              const end = Math.min(bytes.length, at + sizes[i % sizes.length]!);
              feed(protocol, bytes.subarray(at, end));
              // Nothing before the read holding the bad byte; the failure in exactly that read.
              expect(host.events.length).toBe(end > badAt ? 1 : 0);
              at = end;
              if (end > badAt) break;
            }
            expectFailedWith(host, role, 'WS_ERR_INVALID_UTF8', 1007);
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  it('fails in a middle fragment, not at the end of the message', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, peerFrame(Role.Client, { opcode: 1, fin: false, payload: 'valid ' }));
    expect(host.events).toEqual([]);
    feed(protocol, peerFrame(Role.Client, { opcode: 0, fin: false, payload: hex('c0 af') }));
    expectFailedWith(host, Role.Client, 'WS_ERR_INVALID_UTF8', 1007);
  });

  it('fails in the fragment that completes an invalid sequence begun in the previous one (ED | A0 80)', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, peerFrame(Role.Client, { opcode: 1, fin: false, payload: hex('41 ed') }));
    expect(host.events).toEqual([]);
    feed(protocol, peerFrame(Role.Client, { opcode: 0, fin: false, payload: hex('a0 80') }));
    expectFailedWith(host, Role.Client, 'WS_ERR_INVALID_UTF8', 1007);
  });

  it('accepts a valid character split over three fragments, with a ping between', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(
      protocol,
      peerFrame(Role.Server, { opcode: 1, fin: false, payload: hex('f0 9f') }),
      peerFrame(Role.Server, { opcode: 9, payload: 'x' }),
      peerFrame(Role.Server, { opcode: 0, fin: false, payload: hex('98') }),
      peerFrame(Role.Server, { opcode: 0, fin: true, payload: hex('80 e2 82 ac') }),
    );
    expect(messages(host).map((m) => m.text)).toEqual(['\u{1F600}€']);
  });

  it('fails when the message ends inside a character, in the final (empty) fragment', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, peerFrame(Role.Client, { opcode: 1, fin: false, payload: hex('e2 82') }));
    expect(host.events).toEqual([]);
    feed(protocol, peerFrame(Role.Client, { opcode: 0, fin: true }));
    expectFailedWith(host, Role.Client, 'WS_ERR_INVALID_UTF8', 1007);
  });

  it('starts each text message with a fresh validator', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, peerFrame(Role.Client, { opcode: 2, fin: false, payload: hex('e2') }));
    feed(protocol, peerFrame(Role.Client, { opcode: 0, payload: hex('82') }));
    feed(protocol, peerFrame(Role.Client, { opcode: 1, payload: 'ok' }));
    expect(messages(host).map((m) => m.binary)).toEqual([true, false]);
  });
});

// ---------------------------------------------------------------------------
describe('close handshake (RFC 6455 §5.5.1, §7)', () => {
  for (const role of ROLES) {
    it(`${role}: answers the peer's close exactly once, echoing its code`, () => {
      const { protocol, host } = makeProtocol(role);
      const close = peerFrame(role, { opcode: 8, payload: closePayload(1001, 'going') });
      feed(protocol, concat(close, peerFrame(role, { opcode: 8, payload: closePayload(1000) })));
      feed(protocol, peerFrame(role, { opcode: 8, payload: closePayload(1000) }));
      expect(host.events).toEqual([{ type: 'close', code: 1001, reason: 'going', initiator: 'remote' }]);
      const frames = host.frames();
      expect(frames.map((f) => [f.opcode, toHex(f.payload)])).toEqual([[8, '03 e9']]);
      expect(protocol.state).toBe(ProtocolState.Closed);
    });

    it(`${role}: ignores every frame after the peer's close, in the same chunk and later`, () => {
      const { protocol, host } = makeProtocol(role);
      feed(
        protocol,
        concat(
          peerFrame(role, { opcode: 8, payload: closePayload(1000) }),
          peerFrame(role, { opcode: 1, payload: 'late' }),
          peerFrame(role, { opcode: 9, payload: 'p' }),
        ),
      );
      feed(protocol, peerFrame(role, { opcode: 1, payload: 'later' }), hex('ff ff ff'));
      expect(host.events.map((e) => e.type)).toEqual(['close']);
      expect(host.frames()).toHaveLength(1);
      expect(protocol.bufferedInput).toBe(0);
    });

    it(`${role}: sends nothing once closed by the peer: send/sendFragment/ping/pong/close return false`, () => {
      const { protocol, host } = makeProtocol(role);
      feed(protocol, peerFrame(role, { opcode: 8 }));
      const before = host.writes.length;
      expect(protocol.send(utf8('x'), false)).toBe(false);
      expect(protocol.sendFragment(utf8('x'), false, false)).toBe(false);
      expect(protocol.ping()).toBe(false);
      expect(protocol.pong()).toBe(false);
      expect(protocol.close(1000)).toBe(false);
      expect(host.writes.length).toBe(before);
    });
  }

  it('a local close writes one close frame and moves to Closing; a second close() returns false', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    expect(protocol.close(1000, 'bye')).toBe(true);
    expect(protocol.state).toBe(ProtocolState.Closing);
    expect(protocol.close(1001)).toBe(false);
    expect(toHex(host.written)).toBe(`88 05 03 e8 ${toHex(utf8('bye'))}`);
  });

  it('after a local close, send/sendFragment/ping/pong return false and write nothing', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    protocol.close();
    const before = host.writes.length;
    expect(protocol.send(utf8('x'), true)).toBe(false);
    expect(protocol.sendFragment(utf8('x'), true, true)).toBe(false);
    expect(protocol.ping(utf8('p'))).toBe(false);
    expect(protocol.pong(utf8('p'))).toBe(false);
    expect(host.writes.length).toBe(before);
  });

  it('after a local close, still delivers data and pings but sends no pong, then completes on the peer close', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    protocol.close(1000);
    feed(
      protocol,
      peerFrame(Role.Server, { opcode: 1, payload: 'still here' }),
      peerFrame(Role.Server, { opcode: 9, payload: 'ping' }),
      peerFrame(Role.Server, { opcode: 8, payload: closePayload(1000) }),
    );
    expect(host.events.map((e) => e.type)).toEqual(['message', 'ping', 'close']);
    expect(host.ofType('close')[0]).toEqual({ type: 'close', code: 1000, reason: '', initiator: 'local' });
    // Only our own close frame: no pong, no second close.
    expect(toHex(host.written)).toBe('88 02 03 e8');
    expect(protocol.state).toBe(ProtocolState.Closed);
  });

  it('close() without a code sends an empty close frame; a reason alone is sent with 1000', () => {
    const a = makeProtocol(Role.Server);
    a.protocol.close();
    expect(toHex(a.host.written)).toBe('88 00');
    const b = makeProtocol(Role.Server);
    b.protocol.close(undefined, 'x');
    expect(toHex(b.host.written)).toBe('88 03 03 e8 78');
  });

  it('reports the reason of the peer close, decoded', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, peerFrame(Role.Client, { opcode: 8, payload: closePayload(4000, 'äöü €') }));
    expect(host.ofType('close')[0]).toMatchObject({ code: 4000, reason: 'äöü €' });
  });

  it('accepts a close reason of the maximum 123 bytes', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, peerFrame(Role.Client, { opcode: 8, payload: closePayload(1000, 'r'.repeat(123)) }));
    expect(host.ofType('close')[0]!.reason).toBe('r'.repeat(123));
  });

  for (const role of ROLES) {
    it(`${role}: a close reason with invalid UTF-8 fails with 1007`, () => {
      const { protocol, host } = makeProtocol(role);
      feed(protocol, peerFrame(role, { opcode: 8, payload: concat(closePayload(1000), hex('ed a0 80')) }));
      expectFailedWith(host, role, 'WS_ERR_INVALID_UTF8', 1007);
      expect(host.ofType('close')).toEqual([]);
    });

    it(`${role}: a close reason truncated inside a character fails with 1007`, () => {
      const { protocol, host } = makeProtocol(role);
      feed(protocol, peerFrame(role, { opcode: 8, payload: concat(closePayload(1000), hex('e2 82')) }));
      expectFailedWith(host, role, 'WS_ERR_INVALID_UTF8', 1007);
    });
  }
});

// ---------------------------------------------------------------------------
describe('after a failure', () => {
  it('ignores all further input and sends nothing more', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    feed(protocol, peerFrame(Role.Server, { opcode: 1, payload: hex('ff') }));
    expectFailedWith(host, Role.Server, 'WS_ERR_INVALID_UTF8', 1007);
    const events = host.events.length;
    const writes = host.writes.length;
    feed(
      protocol,
      peerFrame(Role.Server, { opcode: 1, payload: 'x' }),
      peerFrame(Role.Server, { opcode: 9, payload: 'p' }),
      peerFrame(Role.Server, { opcode: 8, payload: closePayload(1000) }),
      hex('83 00'),
    );
    expect(host.events.length).toBe(events);
    expect(host.writes.length).toBe(writes);
    expect(protocol.state).toBe(ProtocolState.Closed);
    expect(protocol.send(utf8('x'), false)).toBe(false);
    expect(protocol.ping()).toBe(false);
    expect(protocol.close(1000)).toBe(false);
  });

  it('ignores the rest of the chunk in which the failure occurred', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, concat(hex('83 00'), hex('81 01 41'), hex('89 00')));
    expect(host.events.map((e) => e.type)).toEqual(['error']);
  });

  it('does not send a second close frame when failing after a local close', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    protocol.close(1000);
    feed(protocol, peerFrame(Role.Server, { opcode: 0xc }));
    expect(host.ofType('error').map((e) => e.error.code)).toEqual(['WS_ERR_INVALID_OPCODE']);
    expect(toHex(host.written)).toBe('88 02 03 e8');
    expect(protocol.state).toBe(ProtocolState.Closed);
  });

  it('drops a partial message', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('01 01 61'), hex('81 01 62'));
    expect(host.events.map((e) => e.type)).toEqual(['error']);
    expect(host.ofType('error')[0]!.error.code).toBe('WS_ERR_EXPECTED_CONTINUATION');
  });
});

// ---------------------------------------------------------------------------
describe('ping and pong (RFC 6455 §5.5.2, §5.5.3)', () => {
  for (const role of ROLES) {
    it(`${role}: answers each ping with a pong of identical payload (0, 1, 125 bytes)`, () => {
      const { protocol, host } = makeProtocol(role);
      const payloads = [new Uint8Array(0), hex('00'), patternBytes(125, 7)];
      for (const p of payloads) feed(protocol, peerFrame(role, { opcode: 9, payload: p }));
      const frames = host.frames();
      expect(frames.map((f) => f.opcode)).toEqual([0xa, 0xa, 0xa]);
      expect(frames.map((f) => toHex(f.payload))).toEqual(payloads.map(toHex));
      expect(frames.every((f) => f.masked === (role === Role.Client))).toBe(true);
      expect(host.ofType('ping').map((e) => toHex(e.data))).toEqual(payloads.map(toHex));
    });
  }

  it('does not answer pongs', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    feed(protocol, hex('8a 01 61 8a 00'));
    expect(host.ofType('pong').map((e) => toHex(e.data))).toEqual(['61', '']);
    expect(host.writes).toEqual([]);
  });

  it('rejects ping and pong payloads over 125 bytes with WS_ERR_CONTROL_PAYLOAD_TOO_LONG, writing nothing', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    expect(() => protocol.ping(new Uint8Array(126))).toThrow(
      expect.objectContaining({ name: 'UsageError', code: 'WS_ERR_CONTROL_PAYLOAD_TOO_LONG' }),
    );
    expect(() => protocol.pong(new Uint8Array(126))).toThrow(expect.objectContaining({ code: 'WS_ERR_CONTROL_PAYLOAD_TOO_LONG' }));
    expect(host.writes).toEqual([]);
    expect(protocol.ping(new Uint8Array(125))).toBe(true);
  });
});

// ---------------------------------------------------------------------------
describe('close() argument validation and encodeClosePayload', () => {
  it.each([0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 1000.5, Number.NaN, -1000])(
    'close(%d) throws UsageError WS_ERR_INVALID_CLOSE_CODE, writes nothing and stays open',
    (code) => {
      const { protocol, host } = makeProtocol(Role.Server);
      expect(() => protocol.close(code)).toThrow(expect.objectContaining({ name: 'UsageError', code: 'WS_ERR_INVALID_CLOSE_CODE' }));
      expect(host.writes).toEqual([]);
      expect(protocol.state).toBe(ProtocolState.Open);
    },
  );

  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])('close(%d) is accepted', (code) => {
    const { protocol, host } = makeProtocol(Role.Server);
    expect(protocol.close(code)).toBe(true);
    expect(toHex(host.written)).toBe(toHex(concat(hex('88 02'), closePayload(code))));
  });

  it('a reason over 123 bytes throws WS_ERR_CLOSE_REASON_TOO_LONG; 123 bytes is accepted', () => {
    const { protocol, host } = makeProtocol(Role.Server);
    expect(() => protocol.close(1000, 'x'.repeat(124))).toThrow(expect.objectContaining({ code: 'WS_ERR_CLOSE_REASON_TOO_LONG' }));
    // 62 two-byte characters: 124 bytes, though only 62 UTF-16 units.
    expect(() => protocol.close(1000, 'é'.repeat(62))).toThrow(expect.objectContaining({ code: 'WS_ERR_CLOSE_REASON_TOO_LONG' }));
    expect(host.writes).toEqual([]);
    expect(protocol.close(1000, 'x'.repeat(123))).toBe(true);
    expect(host.frames()[0]!.payload.length).toBe(125);
  });

  it('encodeClosePayload without code and reason is empty', () => {
    expect(encodeClosePayload(undefined, '').length).toBe(0);
  });

  it.each([
    ['122 ASCII then a 3-byte character', 'a'.repeat(122) + '€', 122],
    ['121 ASCII then a 3-byte character', 'a'.repeat(121) + '€', 121],
    ['120 ASCII then a 3-byte character', 'a'.repeat(120) + '€', 123],
    ['62 two-byte characters', 'é'.repeat(62), 122],
    ['120 ASCII then a 4-byte character', 'a'.repeat(120) + '\u{1F600}', 120],
    ['119 ASCII then a 4-byte character', 'a'.repeat(119) + '\u{1F600}x', 123],
    ['200 ASCII', 'a'.repeat(200), 123],
  ])('truncates on a UTF-8 boundary when asked: %s -> %i reason bytes', (_, reason, bytes) => {
    const payload = encodeClosePayload(1011, reason, true);
    expect(payload.length).toBe(2 + bytes);
    expect(toHex(payload.subarray(0, 2))).toBe('03 f3');
    expect(isValidUtf8(payload, 2)).toBe(true);
    expect(toHex(payload.subarray(2))).toBe(toHex(utf8(reason).subarray(0, bytes)));
  });

  it('truncation keeps the longest whole-character prefix of at most 123 bytes (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 150, size: 'max' }), (reason) => {
        const full = utf8(reason);
        const reasonBytes = encodeClosePayload(1000, reason, true).subarray(2);
        expect(isValidUtf8(reasonBytes)).toBe(true);
        expect(toHex(reasonBytes)).toBe(toHex(full.subarray(0, reasonBytes.length)));
        if (full.length <= 123) expect(reasonBytes.length).toBe(full.length);
        else expect(reasonBytes.length).toBeGreaterThan(123 - 4);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------
// Compression (RFC 7692) through an injected codec.

interface DecompressAnswer {
  error: Error | null;
  output: Uint8Array[] | null;
  tooBig: boolean;
}

/**
 * An in-test codec: "compression" is the identity unless told otherwise.
 * Asynchronous mode queues each call until step()/drain(), so a test
 * controls exactly when the core gets its answer.
 */
class FakeCodec implements CompressionCodec {
  readonly compressCalls: { data: Uint8Array; fin: boolean }[] = [];
  readonly decompressCalls: { data: Uint8Array; fin: boolean; limit: number }[] = [];
  private readonly queue: (() => void)[] = [];
  private compressInFlight = 0;
  private decompressInFlight = 0;
  /** The core promises at most one outstanding call per direction. */
  maxCompressInFlight = 0;
  maxDecompressInFlight = 0;
  closed = false;
  compressWith: (data: Uint8Array, fin: boolean) => { error: Error | null; output: Uint8Array | null } = (data) => ({
    error: null,
    output: data,
  });
  decompressWith: (data: Uint8Array, fin: boolean, limit: number) => DecompressAnswer = (data, _fin, limit) =>
    data.length > limit ? { error: null, output: null, tooBig: true } : { error: null, output: [data], tooBig: false };

  constructor(readonly asynchronous: boolean) {}

  compress(data: Uint8Array, fin: boolean, done: (error: Error | null, output: Uint8Array | null) => void): void {
    const copy = data.slice();
    this.compressCalls.push({ data: copy, fin });
    this.maxCompressInFlight = Math.max(this.maxCompressInFlight, ++this.compressInFlight);
    const run = (): void => {
      this.compressInFlight--;
      const { error, output } = this.compressWith(copy, fin);
      done(error, output);
    };
    if (this.asynchronous) this.queue.push(run);
    else run();
  }

  decompress(data: Uint8Array, fin: boolean, limit: number, done: (error: Error | null, output: Uint8Array[] | null, tooBig: boolean) => void): void {
    const copy = data.slice();
    this.decompressCalls.push({ data: copy, fin, limit });
    this.maxDecompressInFlight = Math.max(this.maxDecompressInFlight, ++this.decompressInFlight);
    const run = (): void => {
      this.decompressInFlight--;
      const { error, output, tooBig } = this.decompressWith(copy, fin, limit);
      done(error, output, tooBig);
    };
    if (this.asynchronous) this.queue.push(run);
    else run();
  }

  close(): void {
    this.closed = true;
  }

  get pending(): number {
    return this.queue.length;
  }

  step(): void {
    const run = this.queue.shift();
    if (run === undefined) throw new Error('no pending codec call');
    run();
  }

  drain(): void {
    for (let i = 0; i < 10_000 && this.queue.length > 0; i++) this.step();
  }
}

/**
 * A real DEFLATE codec on node:zlib (allowed in tests, not in the core),
 * without context takeover: each compress() call is an independent raw
 * deflate run ending in a sync flush, whose 00 00 ff ff is removed at the
 * end of a message (RFC 7692 §7.2.1); decompress() collects a message and
 * inflates it at the end with 00 00 ff ff appended (§7.2.2).
 */
class ZlibCodec implements CompressionCodec {
  private input: Uint8Array[] = [];

  compress(data: Uint8Array, fin: boolean, done: (error: Error | null, output: Uint8Array | null) => void): void {
    const out = new Uint8Array(deflateRawSync(data, { finishFlush: zlibConstants.Z_SYNC_FLUSH }));
    done(null, fin ? out.subarray(0, out.length - 4) : out);
  }

  decompress(data: Uint8Array, fin: boolean, limit: number, done: (error: Error | null, output: Uint8Array[] | null, tooBig: boolean) => void): void {
    this.input.push(data.slice());
    if (!fin) {
      done(null, [], false);
      return;
    }
    const whole = concat(...this.input, hex('00 00 ff ff'));
    this.input = [];
    let out: Uint8Array;
    try {
      out = new Uint8Array(inflateRawSync(whole, { finishFlush: zlibConstants.Z_SYNC_FLUSH }));
    } catch (error) {
      done(error as Error, null, false);
      return;
    }
    if (out.length > limit) done(null, null, true);
    else done(null, [out], false);
  }

  close(): void {}
}

function deflating(role: Role, codec: CompressionCodec, threshold = 0, maxMessageSize?: number): { protocol: Protocol; host: RecordingHost } {
  return makeProtocol(role, { deflate: { codec, threshold }, ...(maxMessageSize === undefined ? {} : { maxMessageSize }) });
}

describe('permessage-deflate: sending', () => {
  it('sets RSV1 only on the first frame of a compressed message, never on control frames', () => {
    const codec = new FakeCodec(false);
    const { protocol, host } = deflating(Role.Client, codec);
    protocol.sendFragment(utf8('a'), false, false);
    protocol.ping(utf8('p'));
    protocol.sendFragment(utf8('b'), false, false);
    protocol.sendFragment(utf8('c'), false, true);
    protocol.send(utf8('d'), true);
    protocol.close(1000);
    expect(host.frames().map((f) => [f.opcode, f.fin, f.rsv1])).toEqual([
      [1, false, true],
      [9, true, false],
      [0, false, false],
      [0, true, false],
      [2, true, true],
      [8, true, false],
    ]);
    expect(codec.compressCalls.map((c) => [decodeUtf8(c.data), c.fin])).toEqual([
      ['a', false],
      ['b', false],
      ['c', true],
      ['d', true],
    ]);
  });

  it('sends uncompressed, without RSV1, when compress is false or the message is under the threshold', () => {
    const codec = new FakeCodec(false);
    const { protocol, host } = deflating(Role.Server, codec, 10);
    protocol.send(utf8('short'), false);
    protocol.send(utf8('long enough message'), false, false);
    protocol.send(utf8('long enough message'), false);
    expect(host.frames().map((f) => f.rsv1)).toEqual([false, false, true]);
    expect(codec.compressCalls).toHaveLength(1);
  });

  it('writes frames in the order asked, behind a compression still in flight', () => {
    const codec = new FakeCodec(true);
    const { protocol, host } = deflating(Role.Server, codec);
    const big = patternBytes(50_000, 4);
    protocol.send(big, true);
    protocol.send(utf8('small'), false, false);
    protocol.ping(utf8('p'));
    protocol.send(utf8('second compressed'), false);
    protocol.close(1000);
    expect(host.writes).toEqual([]);
    codec.drain();
    const frames = host.frames();
    expect(frames.map((f) => [f.opcode, f.rsv1])).toEqual([
      [2, true],
      [1, false],
      [9, false],
      [1, true],
      [8, false],
    ]);
    expect(Buffer.from(frames[0]!.payload).equals(Buffer.from(big))).toBe(true);
    expect(decodeUtf8(frames[1]!.payload)).toBe('small');
    expect(codec.maxCompressInFlight).toBe(1);
  });

  it('round-trips real DEFLATE, fragmented and whole, mixed with uncompressed messages', () => {
    const sender = deflating(Role.Client, new ZlibCodec(), 8);
    const receiver = deflating(Role.Server, new ZlibCodec());
    const long = 'compressible '.repeat(1000);
    sender.protocol.send(utf8(long), false);
    sender.protocol.send(utf8('tiny'), false);
    sender.protocol.sendFragment(utf8('frag one, '), false, false);
    sender.protocol.sendFragment(utf8('frag two, '), false, false);
    sender.protocol.sendFragment(utf8('frag three'), false, true);
    sender.protocol.send(patternBytes(3000, 8), true, false);
    const wire = sender.host.written;
    expect(sender.host.frames().map((f) => f.rsv1)).toEqual([true, false, true, false, false, false]);
    // It really was compressed.
    expect(sender.host.frames()[0]!.payload.length).toBeLessThan(200);
    for (const piece of chunksOf(wire, 7)) receiver.protocol.receive(piece);
    expect(messages(receiver.host).map((m) => m.text ?? m.hex.length)).toEqual([
      long,
      'tiny',
      'frag one, frag two, frag three',
      toHex(patternBytes(3000, 8)).length,
    ]);
  });

  it('a compressor failure closes with 1011, reports an error with that close code and stops reading', () => {
    const codec = new FakeCodec(false);
    codec.compressWith = () => ({ error: new Error('boom'), output: null });
    const { protocol, host } = deflating(Role.Server, codec);
    protocol.send(utf8('x'), false);
    const [error] = host.ofType('error');
    expect(error!.error.code).toBe('WS_ERR_COMPRESSION_FAILED');
    expect(error!.error.closeCode).toBe(1011);
    const frames = host.frames();
    expect(frames.map((f) => f.opcode)).toEqual([8]);
    expect(toHex(frames[0]!.payload.subarray(0, 2))).toBe('03 f3');
    expect(protocol.state).toBe(ProtocolState.Closed);
    feed(protocol, peerFrame(Role.Server, { opcode: 1, payload: 'after' }), peerFrame(Role.Server, { opcode: 9 }));
    expect(host.events.map((e) => e.type)).toEqual(['error']);
    expect(protocol.send(utf8('y'), false)).toBe(false);
  });

  it('a compressor failure after a local close still sends a close frame (the queued one never left)', () => {
    const codec = new FakeCodec(true);
    codec.compressWith = () => ({ error: new Error('boom'), output: null });
    const { protocol, host } = deflating(Role.Server, codec);
    protocol.send(utf8('x'), false);
    protocol.close(1000);
    expect(host.writes).toEqual([]);
    codec.drain();
    expect(host.frames().map((f) => [f.opcode, toHex(f.payload.subarray(0, 2))])).toEqual([[8, '03 f3']]);
    expect(host.events.map((e) => e.type)).toEqual(['error']);
    expect(protocol.state).toBe(ProtocolState.Closed);
  });

  it('a compressor failure after the peer closed sends the owed close frame and no second ending event', () => {
    const codec = new FakeCodec(true);
    codec.compressWith = () => ({ error: new Error('boom'), output: null });
    const { protocol, host } = deflating(Role.Server, codec);
    protocol.send(utf8('x'), false);
    feed(protocol, peerFrame(Role.Server, { opcode: 8, payload: closePayload(1000) }));
    expect(host.events.map((e) => e.type)).toEqual(['close']);
    codec.drain();
    expect(host.frames().map((f) => f.opcode)).toEqual([8]);
    expect(host.events.map((e) => e.type)).toEqual(['close']);
  });
});

describe('permessage-deflate: receiving', () => {
  for (const asynchronous of [false, true]) {
    const mode = asynchronous ? 'asynchronous' : 'synchronous';

    it(`${mode} codec: delivers compressed and uncompressed messages and control frames in wire order`, () => {
      const codec = new FakeCodec(asynchronous);
      const { protocol, host } = deflating(Role.Server, codec);
      feed(
        protocol,
        concat(
          peerFrame(Role.Server, { opcode: 1, rsv1: true, payload: 'A (compressed)' }),
          peerFrame(Role.Server, { opcode: 1, payload: 'B (plain)' }),
          peerFrame(Role.Server, { opcode: 9, payload: 'ping' }),
          peerFrame(Role.Server, { opcode: 2, rsv1: true, fin: false, payload: 'C1' }),
          peerFrame(Role.Server, { opcode: 10, payload: 'pong' }),
          peerFrame(Role.Server, { opcode: 0, fin: true, payload: 'C2' }),
          peerFrame(Role.Server, { opcode: 1, payload: 'D (plain)' }),
        ),
      );
      if (asynchronous) {
        // Nothing may overtake message A while it is being decompressed.
        expect(host.events).toEqual([]);
        expect(protocol.bufferedInput).toBeGreaterThan(0);
        codec.drain();
        expect(host.backlogDrainedCalls).toBeGreaterThan(0);
      }
      expect(host.events.map((e) => (e.type === 'message' ? decodeUtf8(e.data) : e.type))).toEqual([
        'A (compressed)',
        'B (plain)',
        'ping',
        'pong',
        'C1C2',
        'D (plain)',
      ]);
      expect(codec.decompressCalls.map((c) => [decodeUtf8(c.data), c.fin])).toEqual([
        ['A (compressed)', true],
        ['C1', false],
        ['C2', true],
      ]);
      expect(codec.maxDecompressInFlight).toBe(1);
      expect(protocol.bufferedInput).toBe(0);
    });

    it(`${mode} codec: a close frame behind a compressed message comes after that message`, () => {
      const codec = new FakeCodec(asynchronous);
      const { protocol, host } = deflating(Role.Client, codec);
      feed(
        protocol,
        concat(
          peerFrame(Role.Client, { opcode: 1, rsv1: true, payload: 'last words' }),
          peerFrame(Role.Client, { opcode: 8, payload: closePayload(1000) }),
        ),
      );
      codec.drain();
      expect(host.events.map((e) => e.type)).toEqual(['message', 'close']);
    });

    it(`${mode} codec: tooBig fails with 1009, and the limit passed is what is left of maxMessageSize`, () => {
      const codec = new FakeCodec(asynchronous);
      codec.decompressWith = (data, _fin, limit) =>
        data.length * 10 > limit ?
          { error: null, output: null, tooBig: true }
        : { error: null, output: [new Uint8Array(data.length * 10)], tooBig: false };
      const { protocol, host } = deflating(Role.Server, codec, 0, 1000);
      feed(protocol, peerFrame(Role.Server, { opcode: 2, rsv1: true, fin: false, payload: new Uint8Array(60) }));
      codec.drain();
      feed(protocol, peerFrame(Role.Server, { opcode: 0, fin: true, payload: new Uint8Array(41) }));
      codec.drain();
      expect(codec.decompressCalls.map((c) => c.limit)).toEqual([1000, 400]);
      expectFailedWith(host, Role.Server, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
    });

    it(`${mode} codec: a decompression error fails with 1007`, () => {
      const codec = new FakeCodec(asynchronous);
      codec.decompressWith = () => ({ error: new Error('invalid stored block lengths'), output: null, tooBig: false });
      const { protocol, host } = deflating(Role.Client, codec);
      feed(protocol, peerFrame(Role.Client, { opcode: 1, rsv1: true, payload: 'x' }), peerFrame(Role.Client, { opcode: 1, payload: 'after' }));
      codec.drain();
      expectFailedWith(host, Role.Client, 'WS_ERR_DECOMPRESSION_FAILED', 1007);
      expect(host.ofType('message')).toEqual([]);
    });

    it(`${mode} codec: decompressed text is UTF-8 checked across output chunks`, () => {
      const codec = new FakeCodec(asynchronous);
      codec.decompressWith = () => ({ error: null, output: [hex('e2'), hex('82 ac'), hex('ed')], tooBig: false });
      const { protocol, host } = deflating(Role.Server, codec);
      feed(protocol, peerFrame(Role.Server, { opcode: 1, rsv1: true, fin: false, payload: 'x' }));
      codec.drain();
      expect(host.events).toEqual([]);
      feed(protocol, peerFrame(Role.Server, { opcode: 0, fin: true, payload: 'y' }));
      codec.drain();
      expectFailedWith(host, Role.Server, 'WS_ERR_INVALID_UTF8', 1007);
    });
  }

  it('joins several output chunks of one frame into the message', () => {
    const codec = new FakeCodec(false);
    codec.decompressWith = () => ({ error: null, output: [utf8('ab'), utf8(''), utf8('c')], tooBig: false });
    const { protocol, host } = deflating(Role.Server, codec);
    feed(protocol, peerFrame(Role.Server, { opcode: 1, rsv1: true, payload: 'z' }));
    expect(messages(host).map((m) => m.text)).toEqual(['abc']);
  });

  it('delivers an empty message when the codec yields no output', () => {
    const codec = new FakeCodec(false);
    codec.decompressWith = () => ({ error: null, output: [], tooBig: false });
    const { protocol, host } = deflating(Role.Server, codec);
    feed(protocol, peerFrame(Role.Server, { opcode: 1, rsv1: true, payload: hex('00') }));
    expect(messages(host)).toEqual([{ binary: false, text: '', hex: '' }]);
  });

  for (const role of ROLES) {
    it(`${role}: RSV1 on a continuation frame fails with 1002 (RFC 7692 §6.1)`, () => {
      const { protocol, host } = deflating(role, new FakeCodec(false));
      feed(protocol, peerFrame(role, { opcode: 1, rsv1: true, fin: false, payload: 'a' }), peerFrame(role, { opcode: 0, rsv1: true, payload: 'b' }));
      expectFailedWith(host, role, 'WS_ERR_UNEXPECTED_RSV', 1002);
    });

    it(`${role}: RSV1 on a continuation of an uncompressed message fails with 1002`, () => {
      const { protocol, host } = deflating(role, new FakeCodec(false));
      feed(protocol, peerFrame(role, { opcode: 2, fin: false, payload: 'a' }), peerFrame(role, { opcode: 0, rsv1: true, payload: 'b' }));
      expectFailedWith(host, role, 'WS_ERR_UNEXPECTED_RSV', 1002);
    });

    it.each([8, 9, 10])(`${role}: RSV1 on control opcode %i fails with 1002 (RFC 7692 §6.1)`, (opcode) => {
      const { protocol, host } = deflating(role, new FakeCodec(false));
      feed(protocol, peerFrame(role, { opcode, rsv1: true, payload: opcode === 8 ? closePayload(1000) : 'x' }));
      expectFailedWith(host, role, 'WS_ERR_UNEXPECTED_RSV', 1002);
    });

    it(`${role}: RSV2 and RSV3 are still rejected with permessage-deflate`, () => {
      for (const bits of [{ rsv2: true }, { rsv3: true }]) {
        const { protocol, host } = deflating(role, new FakeCodec(false));
        feed(protocol, peerFrame(role, { opcode: 1, payload: 'a', ...bits }));
        expectFailedWith(host, role, 'WS_ERR_UNEXPECTED_RSV', 1002);
      }
    });
  }

  for (const role of ROLES) {
    it(`${role}: inflates a compressed text frame as it arrives and fails invalid UTF-8 in it (1007) before the frame ends`, () => {
      // FakeCodec "inflates" to the same bytes: the payload is the text itself.
      const codec = new FakeCodec(false);
      const payload = utf8('x'.repeat(1000));
      payload.set(hex('61 62 63 64 65 ed a0 80 66 67'), 0); // ED A0 80: a UTF-16 surrogate (RFC 3629 §3)
      const bytes = peerFrame(role, { opcode: 1, rsv1: true, payload });
      const headerLength = role === Role.Server ? 8 : 4;
      const { protocol, host } = deflating(role, codec);
      feed(protocol, bytes.subarray(0, headerLength + 6));
      expect(host.events).toEqual([]);
      feed(protocol, bytes.subarray(headerLength + 6, headerLength + 10));
      expectFailedWith(host, role, 'WS_ERR_INVALID_UTF8', 1007);
      expect(codec.decompressCalls.map((c) => [toHex(c.data), c.fin])).toEqual([
        ['61 62 63 64 65 ed', false],
        ['a0 80 66 67', false],
      ]);
    });
  }

  it('sends the parts of a compressed frame to the decompressor one call at a time, in order, and the rest with fin at the end', () => {
    const codec = new FakeCodec(true);
    const { protocol, host } = makeProtocol(Role.Server, { deflate: { codec, threshold: 0 }, frameEvents: true });
    const text = 'abcdefghij'.repeat(30);
    const bytes = peerFrame(Role.Server, { opcode: 1, rsv1: true, payload: text });
    const pieces = splitAt(bytes, [20, 100, 101, 102, 250]);
    feed(protocol, pieces[0]!); // header and 12 bytes: a part goes to the codec, reading waits
    expect(codec.pending).toBe(1);
    feed(protocol, pieces[1]!, pieces[2]!); // arrive while the codec works
    expect(codec.pending).toBe(1);
    expect(protocol.bufferedInput).toBe(81);
    codec.step(); // the first part's output; the 81 bytes that waited go next, as one call
    expect(codec.pending).toBe(1);
    feed(protocol, pieces[3]!, pieces[4]!, pieces[5]!);
    codec.drain();
    expect(codec.maxDecompressInFlight).toBe(1);
    const calls = codec.decompressCalls;
    expect(calls.map((c) => c.fin)).toEqual([...calls.slice(1).map(() => false), true]);
    expect(decodeUtf8(concat(...calls.map((c) => c.data)))).toBe(text);
    expect(messages(host).map((m) => m.text)).toEqual([text]);
    expect(host.ofType('frame').map((f) => [f.fin, f.rsv1, decodeUtf8(f.payload)])).toEqual([[true, true, text]]);
  });

  it('frameEvents reports each frame of a compressed message with its RSV1 bit and its decompressed bytes', () => {
    const codec = new FakeCodec(false);
    // A stand-in "decompression" whose output differs from its input, in two chunks.
    codec.decompressWith = (data) => ({ error: null, output: [data, data.map((b) => b - 32)], tooBig: false });
    const { protocol, host } = makeProtocol(Role.Client, { deflate: { codec, threshold: 0 }, frameEvents: true });
    feed(protocol, hex('41 01 61 80 01 62'));
    expect(host.events.filter((e) => e.type === 'frame')).toEqual([
      { type: 'frame', opcode: 1, fin: false, rsv1: true, payload: utf8('aA') },
      { type: 'frame', opcode: 0, fin: true, rsv1: false, payload: utf8('bB') },
    ]);
    expect(host.events.map((e) => e.type)).toEqual(['frame', 'frame', 'message']);
    expect(messages(host).map((m) => m.text)).toEqual(['aAbB']);
  });

  for (const role of ROLES) {
    it(`${role}: with real DEFLATE, a frame event carries the inflated text, not the wire bytes`, () => {
      const text = 'frame events carry what the application reads, '.repeat(20);
      const compressed = new Uint8Array(deflateRawSync(utf8(text), { finishFlush: zlibConstants.Z_SYNC_FLUSH }));
      const wire = compressed.subarray(0, compressed.length - 4); // RFC 7692 §7.2.1: drop 00 00 ff ff
      expect(wire.length).toBeLessThan(utf8(text).length / 4);
      const { protocol, host } = makeProtocol(role, { deflate: { codec: new ZlibCodec(), threshold: 0 }, frameEvents: true });
      feed(protocol, peerFrame(role, { opcode: 1, rsv1: true, payload: wire }));
      const frames = host.ofType('frame');
      expect(frames.map((f) => ({ opcode: f.opcode, fin: f.fin, rsv1: f.rsv1, text: decodeUtf8(f.payload) }))).toEqual([
        { opcode: 1, fin: true, rsv1: true, text },
      ]);
      expect(messages(host).map((m) => m.text)).toEqual([text]);
    });
  }

  it('an uncompressed message in a deflate session still has its frames reported as received (RSV1 clear)', () => {
    const { protocol, host } = makeProtocol(Role.Server, { deflate: { codec: new FakeCodec(false), threshold: 0 }, frameEvents: true });
    feed(
      protocol,
      peerFrame(Role.Server, { opcode: 2, fin: false, payload: hex('01 02') }),
      peerFrame(Role.Server, { opcode: 0, payload: hex('03') }),
    );
    expect(host.ofType('frame').map((f) => [f.opcode, f.fin, f.rsv1, toHex(f.payload)])).toEqual([
      [2, false, false, '01 02'],
      [0, true, false, '03'],
    ]);
  });
});

// ---------------------------------------------------------------------------
describe('large fragmented message', () => {
  it('reassembles a 4 MiB message sent as 65,536 masked fragments of 64 bytes, with default limits', () => {
    const data = patternBytes(4 * 1024 * 1024, 11);
    const frameSize = 2 + 4 + 64;
    const stream = new Uint8Array(65_536 * frameSize);
    const key = hex('5a c3 0f 91');
    for (let i = 0; i < 65_536; i++) {
      const o = i * frameSize;
      stream[o] = (i === 0 ? 0x02 : 0x00) | (i === 65_535 ? 0x80 : 0);
      stream[o + 1] = 0x80 | 64;
      stream.set(key, o + 2);
      for (let j = 0; j < 64; j++) stream[o + 6 + j] = data[i * 64 + j]! ^ key[j & 3]!;
    }
    const { protocol, host } = makeProtocol(Role.Server);
    // Chunks that do not line up with frames.
    for (let o = 0; o < stream.length; o += 65_521) protocol.receive(stream.subarray(o, o + 65_521));
    const received = host.ofType('message');
    expect(received).toHaveLength(1);
    expect(received[0]!.binary).toBe(true);
    expect(Buffer.from(received[0]!.data).equals(Buffer.from(data))).toBe(true);
    expect(host.ofType('error')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Property tests: any messages, any fragmentation, any split.

interface Plan {
  binary: boolean;
  data: Uint8Array;
  /** Fragment boundaries (may repeat: empty fragments are legal). */
  cuts: number[];
  /** Pings, each inserted before fragment `at` modulo (fragments + 1). */
  pings: { at: number; data: Uint8Array }[];
}

type Expected = { type: 'message'; binary: boolean; data: Uint8Array } | { type: 'ping'; data: Uint8Array };

/** Sizes in all three length classes (§5.2: 7-bit, 16-bit, 64-bit). */
const sizeArb = fc.oneof(fc.integer({ min: 0, max: 125 }), fc.integer({ min: 126, max: 65_535 }), fc.integer({ min: 65_536, max: 70_000 }));

const binaryArb = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200, size: 'max' }) },
  { weight: 1, arbitrary: fc.tuple(sizeArb, fc.integer()).map(([n, seed]) => patternBytes(n, seed)) },
);

const textArb = fc.oneof(
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 100, size: 'max' }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 20, size: 'max' }), sizeArb)
      .map(([unit, n]) => unit.repeat(Math.max(1, Math.ceil(n / utf8(unit).length)))),
  },
);

const cutsArb = fc.oneof(fc.constant([] as number[]), fc.array(fc.nat(), { minLength: 1, maxLength: 5, size: 'max' }));

const planArb: fc.Arbitrary<Plan> = fc
  .record({
    content: fc.oneof(
      binaryArb.map((data) => ({ binary: true, data })),
      textArb.map((text) => ({ binary: false, data: utf8(text) })),
    ),
    cuts: cutsArb,
    pings: fc.array(fc.record({ at: fc.nat(), data: fc.uint8Array({ maxLength: 125, size: 'max' }) }), { maxLength: 3, size: 'max' }),
  })
  .map(({ content, cuts, pings }) => ({ ...content, cuts, pings }));

function fragmentsOf(plan: Plan): Uint8Array[] {
  const points = plan.cuts.map((c) => c % (plan.data.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let previous = 0;
  for (const p of [...points, plan.data.length]) {
    out.push(plan.data.subarray(previous, p));
    previous = p;
  }
  return out;
}

/** The peer's frames for `plans` (built by the independent test encoder) and the events they must produce. */
function encodePlans(plans: Plan[], receiver: Role, lengthClasses?: Set<number>): { stream: Uint8Array; expected: Expected[] } {
  const parts: Uint8Array[] = [];
  const expected: Expected[] = [];
  for (const plan of plans) {
    const fragments = fragmentsOf(plan);
    const slots = fragments.length + 1;
    for (let i = 0; i < slots; i++) {
      for (const ping of plan.pings) {
        if (ping.at % slots !== i) continue;
        parts.push(peerFrame(receiver, { opcode: 9, payload: ping.data }));
        expected.push({ type: 'ping', data: ping.data });
      }
      if (i === fragments.length) break;
      const fragment = fragments[i]!;
      lengthClasses?.add(
        fragment.length < 126 ? 7
        : fragment.length < 65536 ? 16
        : 64,
      );
      parts.push(
        peerFrame(receiver, {
          opcode:
            i === 0 ?
              plan.binary ?
                2
              : 1
            : 0,
          fin: i === fragments.length - 1,
          payload: fragment,
        }),
      );
      if (i === fragments.length - 1) expected.push({ type: 'message', binary: plan.binary, data: plan.data });
    }
  }
  return { stream: concat(...parts), expected };
}

/** Compare without dumping megabytes on failure. */
function expectEvents(events: ProtocolEvent[], expected: Expected[]): void {
  const summary = (e: { type: string; data?: Uint8Array; binary?: boolean }): string =>
    `${e.type}${
      e.binary === undefined ? ''
      : e.binary ? ':bin'
      : ':text'
    }:${e.data?.length ?? '-'}:${e.data ? Buffer.from(e.data).toString('base64').slice(0, 40) : ''}`;
  expect(events.map((e) => summary(e as { type: string }))).toEqual(expected.map(summary));
  for (let i = 0; i < expected.length; i++) {
    const got = events[i] as { data: Uint8Array };
    if (!Buffer.from(got.data).equals(Buffer.from(expected[i]!.data))) throw new Error(`event ${i} data differs`);
  }
}

describe('properties', () => {
  for (const receiver of ROLES) {
    const sender = receiver === Role.Server ? 'client (masked)' : 'server (unmasked)';

    it(`${receiver}: any messages from a ${sender}, fragmented, with pings, split anywhere, arrive intact and in order`, () => {
      const lengthClasses = new Set<number>();
      fc.assert(
        fc.property(
          fc.array(planArb, { minLength: 1, maxLength: 5, size: 'max' }),
          fc.array(fc.nat(), { maxLength: 40, size: 'max' }),
          (plans, cuts) => {
            const { stream, expected } = encodePlans(plans, receiver, lengthClasses);
            const { protocol, host } = makeProtocol(receiver);
            for (const piece of splitAt(stream, cuts)) protocol.receive(piece);
            expectEvents(host.events, expected);
            // Every ping answered by a pong with the same payload, masked only by a client.
            const pongs = host.frames();
            const pings = expected.filter((e) => e.type === 'ping');
            expect(pongs.map((f) => [f.opcode, f.masked, toHex(f.payload)])).toEqual(
              pings.map((p) => [0xa, receiver === Role.Client, toHex(p.data)]),
            );
            expect(protocol.bufferedInput).toBe(0);
            expect(protocol.state).toBe(ProtocolState.Open);
          },
        ),
        { numRuns: 100 },
      );
      // The generator must have exercised all three length encodings.
      expect([...lengthClasses].sort()).toEqual([16, 64, 7]);
    });

    it(`${receiver}: small messages fed one byte at a time arrive intact`, () => {
      const smallPlan = fc.record({
        binary: fc.boolean(),
        data: fc.oneof(fc.uint8Array({ maxLength: 300, size: 'max' }), fc.string({ unit: 'binary', maxLength: 80, size: 'max' }).map(utf8)),
        cuts: cutsArb,
        pings: fc.array(fc.record({ at: fc.nat(), data: fc.uint8Array({ maxLength: 125, size: 'max' }) }), { maxLength: 2, size: 'max' }),
      });
      fc.assert(
        fc.property(fc.array(smallPlan, { minLength: 1, maxLength: 4, size: 'max' }), (raw) => {
          // Text plans must carry UTF-8: take binary data as binary messages.
          const plans = raw.map((p) => ({ ...p, binary: p.binary || !isValidUtf8(p.data) }));
          const { stream, expected } = encodePlans(plans, receiver);
          const { protocol, host } = makeProtocol(receiver);
          for (const piece of chunksOf(stream, 1)) protocol.receive(piece);
          expectEvents(host.events, expected);
        }),
        { numRuns: 100 },
      );
    });

    it(`${receiver}: what the other role's Protocol sends (send, sendFragment, ping) parses back to the same messages`, () => {
      const senderRole = receiver === Role.Server ? Role.Client : Role.Server;
      fc.assert(
        fc.property(
          fc.array(planArb, { minLength: 1, maxLength: 4, size: 'max' }),
          fc.array(fc.nat(), { maxLength: 20, size: 'max' }),
          (plans, cuts) => {
            const out = makeProtocol(senderRole);
            const expected: Expected[] = [];
            for (const plan of plans) {
              const fragments = fragmentsOf(plan);
              const slots = fragments.length + 1;
              for (let i = 0; i < slots; i++) {
                for (const ping of plan.pings) {
                  if (ping.at % slots !== i) continue;
                  out.protocol.ping(ping.data);
                  expected.push({ type: 'ping', data: ping.data });
                }
                if (i === fragments.length) break;
                const last = i === fragments.length - 1;
                if (fragments.length === 1) out.protocol.send(fragments[0]!, plan.binary);
                else out.protocol.sendFragment(fragments[i]!, plan.binary, last);
                if (last) expected.push({ type: 'message', binary: plan.binary, data: plan.data });
              }
            }
            const { protocol, host } = makeProtocol(receiver);
            for (const piece of splitAt(out.host.written, cuts)) protocol.receive(piece);
            expectEvents(host.events, expected);
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  for (const receiver of ROLES) {
    it(`${receiver}: compressed messages split anywhere, their parts inflated while more arrives, arrive intact and in order (property)`, () => {
      fc.assert(
        fc.property(
          fc.array(planArb, { minLength: 1, maxLength: 4, size: 'max' }),
          fc.array(fc.nat(), { maxLength: 40, size: 'max' }),
          fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 20 }),
          (plans, cuts, steps) => {
            // FakeCodec "inflates" to the same bytes, answering only when stepped.
            const codec = new FakeCodec(true);
            const { protocol, host } = makeProtocol(receiver, { deflate: { codec, threshold: 0 }, frameEvents: true });
            const frames: Uint8Array[] = [];
            for (const plan of plans) {
              const fragments = fragmentsOf(plan);
              fragments.forEach((fragment, i) => {
                const opcode =
                  i === 0 ?
                    plan.binary ?
                      2
                    : 1
                  : 0;
                frames.push(peerFrame(receiver, { opcode, rsv1: i === 0, fin: i === fragments.length - 1, payload: fragment }));
              });
            }
            splitAt(concat(...frames), cuts).forEach((piece, i) => {
              protocol.receive(piece);
              for (let k = 0; k < steps[i % steps.length]! && codec.pending > 0; k++) codec.step();
            });
            codec.drain();
            expect(codec.maxDecompressInFlight).toBeLessThanOrEqual(1);
            expectEvents(
              host.events.filter((e) => e.type === 'message'),
              plans.map((p) => ({ type: 'message', binary: p.binary, data: p.data })),
            );
            // Each frame event: that frame's bytes, whole, however they were inflated.
            const frameEvents = host.ofType('frame');
            expect(frameEvents).toHaveLength(frames.length);
            expect(toHex(concat(...frameEvents.map((f) => f.payload)))).toBe(toHex(concat(...plans.map((p) => p.data))));
            expect(protocol.bufferedInput).toBe(0);
          },
        ),
        { numRuns: 80 },
      );
    });
  }

  const garbageByte = fc.oneof(
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom(0x00, 0x01, 0x02, 0x08, 0x09, 0x0a, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8a, 0xc1, 0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff),
  );
  const garbageArb = fc.array(garbageByte, { maxLength: 400, size: 'max' }).map((a) => Uint8Array.from(a));

  it('arbitrary bytes, alone or after valid frames, never throw and end in at most one error or close, with nothing after', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ROLES),
        fc.boolean(),
        fc.array(
          planArb.filter((p) => p.data.length < 2000),
          { maxLength: 2, size: 'max' },
        ),
        garbageArb,
        fc.array(fc.nat(), { maxLength: 20, size: 'max' }),
        (role, deflate, plans, garbage, cuts) => {
          const { stream: prefix, expected } = encodePlans(plans, role);
          const { protocol, host } = deflate ? deflating(role, new FakeCodec(false)) : makeProtocol(role);
          const pieces = splitAt(concat(prefix, garbage), cuts);
          expect(() => {
            for (const piece of pieces) protocol.receive(piece);
          }).not.toThrow();
          const terminal = host.events.filter((e) => e.type === 'error' || e.type === 'close');
          expect(terminal.length).toBeLessThanOrEqual(1);
          if (terminal.length === 1) {
            expect(host.events[host.events.length - 1]).toBe(terminal[0]);
            expect(protocol.state).toBe(ProtocolState.Closed);
            // Nothing more, whatever arrives.
            const count = host.events.length;
            const writes = host.writes.length;
            protocol.receive(concat(peerFrame(role, { opcode: 1, payload: 'x' }), garbage));
            expect(host.events.length).toBe(count);
            expect(host.writes.length).toBe(writes);
          }
          // At most one close frame written, and nothing after it.
          const written = parseFrames(host.written);
          const closeAt = written.findIndex((f) => f.opcode === 8);
          if (closeAt >= 0) expect(closeAt).toBe(written.length - 1);
          // The valid prefix was delivered, intact, before anything went wrong.
          expectEvents(host.events.slice(0, expected.length), expected);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
