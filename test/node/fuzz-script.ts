import { deflateRawSync } from 'node:zlib';
import { closePayload, deflateMessage, frame, OP } from './raw-client.js';

/**
 * Seeded scripts for the random-frame fuzz test: what one raw client writes
 * to an echo server, and what it must get back. A script is a run of valid
 * messages and pings (text, binary, fragmented with control frames between
 * the fragments, compressed when permessage-deflate was negotiated), then
 * either a valid close or one invalid input, chosen among the ways RFC 6455
 * and RFC 7692 say a peer can break the protocol, each with the close codes
 * the server may answer it with.
 */

/** xorshift32 (Marsaglia 2003): small, fast and reproducible from one 32-bit seed. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    // A zero state would stay zero forever.
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.state = x;
    return x;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

/** A message as the echo server must send it back. */
export interface Message {
  binary: boolean;
  data: Buffer;
}

/** How a script ends after its valid part. */
export type Ending =
  /**
   * The client closes with `code` (none: an empty close payload), in the
   * same write as its messages or (`later`) only once every echo is back and
   * the connection has shown it is still open.
   */
  | { kind: 'close'; code: number | undefined; reason: string; frame: Buffer; later: boolean }
  /**
   * One invalid input. `codes`: the close codes the server may answer with.
   * `mayWait`: the input may never complete a frame the server can judge,
   * so it may wait for more and close only at the client's FIN, without a
   * close frame. `bytes`: the invalid input and what follows it.
   */
  | { kind: 'invalid'; name: string; codes: readonly number[]; mayWait: boolean; bytes: Buffer };

export interface Script {
  /** The valid part's bytes, in order (their split into TCP writes is chosen by the test); the ending's bytes follow. */
  bytes: Buffer;
  /** Every data message before the first invalid input, as it must come back. */
  echoes: Message[];
  /** The payloads of every ping before the first invalid input, in order. */
  pings: Buffer[];
  ending: Ending;
  /** What was generated, for the failure message. */
  outline: string[];
}

export interface ScriptOptions {
  /** permessage-deflate was negotiated: compressed messages are valid, RSV1 means compressed. */
  deflate: boolean;
  /** The server's maxMessageSize. */
  maxMessageSize: number;
}

/** Close codes a peer may send (RFC 6455 §7.4.1, §7.4.2; 1012-1014 from the IANA registry). */
const VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] as const;
/** Close codes that must never be on the wire (§7.4.1: 1004 reserved, 1005/1006/1015 only local; 0-999 unused; >= 5000 undefined). */
const INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] as const;

/** Byte sequences that are not UTF-8 (RFC 3629 §3-4): stray continuation, overlong, surrogate, past U+10FFFF, 0xFF. */
const BAD_UTF8 = [
  Buffer.from([0x80]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xe0, 0x80, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0xff]),
  Buffer.from([0xc3, 0x28]),
] as const;

/** Random text whose UTF-8 takes one to four bytes per character, no surrogates. */
export function randomText(prng: Prng, characters: number): string {
  let text = '';
  for (let i = 0; i < characters; i++) {
    const width = prng.int(10);
    let point: number;
    if (width < 6) point = prng.range(0x20, 0x7e);
    else if (width < 8) point = prng.range(0x80, 0x7ff);
    else if (width < 9) {
      point = prng.range(0x800, 0xfffd);
      if (point >= 0xd800 && point <= 0xdfff) point -= 0x800;
    } else point = prng.range(0x10000, 0x10ffff);
    text += String.fromCodePoint(point);
  }
  return text;
}

/** Split `bytes` into `parts` pieces at random offsets (empty pieces allowed: a zero-length fragment is valid). */
function split(prng: Prng, bytes: Buffer, parts: number): Buffer[] {
  const cuts = Array.from({ length: parts - 1 }, () => prng.int(bytes.length + 1)).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let at = 0;
  for (const cut of cuts) {
    pieces.push(bytes.subarray(at, cut));
    at = cut;
  }
  pieces.push(bytes.subarray(at));
  return pieces;
}

function messageSize(prng: Prng, max: number): number {
  const roll = prng.int(20);
  if (roll === 0) return 0;
  if (roll < 15) return prng.range(1, 125);
  if (roll < 19) return prng.range(126, 4096);
  // Past 65535: the 64-bit length form (§5.2).
  return prng.range(65_536, Math.min(70_000, Math.floor(max / 4)));
}

/**
 * One valid data message as frames: whole or fragmented, compressed or not,
 * with pings between the fragments (§5.4: control frames may be injected
 * in the middle of a fragmented message).
 */
function validMessage(prng: Prng, options: ScriptOptions, out: Buffer[], script: Script): void {
  const binary = prng.chance(0.5);
  const size = messageSize(prng, options.maxMessageSize);
  // Text of `size` characters is up to 4 times as many bytes: the options keep that under the limit.
  const payload = binary ? prng.bytes(size) : Buffer.from(randomText(prng, size), 'utf8');
  const compressed = options.deflate && prng.chance(0.5);
  const wire = compressed ? deflateMessage(payload) : payload;
  const parts = prng.chance(0.6) ? 1 : prng.range(2, 5);
  const pieces = split(prng, wire, parts);
  pieces.forEach((piece, i) => {
    out.push(
      frame({
        opcode:
          i === 0 ?
            binary ? OP.binary
            : OP.text
          : OP.continuation,
        fin: i === pieces.length - 1,
        // RFC 7692 §6: RSV1 on the first frame of a compressed message only.
        rsv1: compressed && i === 0,
        payload: piece,
      }),
    );
    if (i < pieces.length - 1 && prng.chance(0.3)) ping(prng, out, script);
  });
  script.echoes.push({ binary, data: payload });
  script.outline.push(`${binary ? 'binary' : 'text'}(${payload.length}${compressed ? ',deflate' : ''}${parts > 1 ? `,${parts} frames` : ''})`);
}

function ping(prng: Prng, out: Buffer[], script: Script): void {
  const payload = prng.bytes(prng.range(0, 125));
  out.push(frame({ opcode: OP.ping, payload }));
  script.pings.push(payload);
}

/** A frame-length field of 2^63 or more: the most significant bit must be 0 (§5.2). */
function hugeLengthHeader(prng: Prng): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(0x8000_0000_0000_0000n | BigInt(prng.int(1000)), 2);
  prng.bytes(4).copy(header, 10);
  return header;
}

type InvalidMaker = (prng: Prng, options: ScriptOptions) => { bytes: Buffer[]; codes: readonly number[]; mayWait?: boolean };

/** Every invalid input the generator knows, by name, with the codes RFC 6455 / RFC 7692 allow in answer. */
const INVALID: Record<string, InvalidMaker> = {
  // §5.2: reserved opcodes fail the connection; 1002 is the protocol-error code (§7.4.1).
  'reserved data opcode': (prng) => ({ bytes: [frame({ opcode: prng.range(3, 7), payload: prng.bytes(prng.int(20)) })], codes: [1002] }),
  'reserved control opcode': (prng) => ({ bytes: [frame({ opcode: prng.range(0xb, 0xf), payload: prng.bytes(prng.int(20)) })], codes: [1002] }),
  // §5.2: RSV bits without an extension that defines them.
  'RSV2 or RSV3': (prng) => ({
    bytes: [frame({ opcode: OP.text, payload: 'x', rsv2: prng.chance(0.5), rsv3: true })],
    codes: [1002],
  }),
  'RSV1 on a control frame or without deflate': (prng, options) => ({
    bytes: [
      options.deflate ? frame({ opcode: OP.ping, payload: 'p', rsv1: true }) : frame({ opcode: OP.binary, payload: prng.bytes(4), rsv1: true }),
    ],
    codes: [1002],
  }),
  // RFC 7692 §6.1: RSV1 set on a continuation frame.
  'RSV1 on a continuation frame': (prng) => ({
    bytes: [frame({ opcode: OP.binary, fin: false, payload: prng.bytes(3) }), frame({ opcode: OP.continuation, rsv1: true, payload: prng.bytes(3) })],
    codes: [1002],
  }),
  // §5.1: a server must close on an unmasked client frame.
  'unmasked frame': (prng) => ({ bytes: [frame({ opcode: prng.pick([OP.text, OP.binary, OP.ping]), payload: 'abc', mask: false })], codes: [1002] }),
  // §5.5: control frames carry at most 125 bytes and are never fragmented.
  'control frame over 125 bytes': (prng) => ({
    bytes: [
      frame({ opcode: prng.pick([OP.ping, OP.pong, OP.close]), payload: Buffer.concat([closePayload(1000), prng.bytes(prng.range(124, 300))]) }),
    ],
    codes: [1002],
  }),
  'fragmented control frame': (prng) => ({ bytes: [frame({ opcode: prng.pick([OP.ping, OP.pong]), fin: false, payload: 'p' })], codes: [1002] }),
  // §5.4: a continuation with nothing to continue, and a new data frame inside a fragmented message.
  'continuation without a start': (prng) => ({ bytes: [frame({ opcode: OP.continuation, payload: prng.bytes(5) })], codes: [1002] }),
  'new message inside a fragmented one': (prng) => ({
    bytes: [frame({ opcode: OP.text, fin: false, payload: 'a' }), frame({ opcode: prng.pick([OP.text, OP.binary]), payload: 'b' })],
    codes: [1002],
  }),
  // §8.1: text that is not UTF-8 fails with 1007, whether whole, in fragments or compressed.
  'invalid UTF-8': (prng, options) => {
    const bad = Buffer.concat([Buffer.from(randomText(prng, prng.int(30)), 'utf8'), prng.pick(BAD_UTF8), Buffer.from('tail', 'utf8')]);
    const compressed = options.deflate && prng.chance(0.5);
    const wire = compressed ? deflateMessage(bad) : bad;
    if (prng.chance(0.5)) return { bytes: [frame({ opcode: OP.text, payload: wire, rsv1: compressed })], codes: [1007] };
    const [first, second] = split(prng, wire, 2);
    return {
      bytes: [frame({ opcode: OP.text, fin: false, payload: first, rsv1: compressed }), frame({ opcode: OP.continuation, payload: second })],
      codes: [1007],
    };
  },
  'close reason not UTF-8': (prng) => ({ bytes: [frame({ opcode: OP.close, payload: closePayload(1000, prng.pick(BAD_UTF8)) })], codes: [1007] }),
  // §7.4: codes a peer may not send; §5.5.1: a body of one byte cannot hold a code.
  'invalid close code': (prng) => ({ bytes: [frame({ opcode: OP.close, payload: closePayload(prng.pick(INVALID_CLOSE_CODES)) })], codes: [1002] }),
  'one-byte close payload': (prng) => ({ bytes: [frame({ opcode: OP.close, payload: prng.bytes(1) })], codes: [1002] }),
  // §10.4: a message over the server's limit; 1009 is "too big to process" (§7.4.1).
  'frame over maxMessageSize': (prng, options) => {
    // Only the header and a little of the payload: the server must refuse from the declared length.
    const full = frame({ opcode: OP.binary, payload: Buffer.alloc(options.maxMessageSize + 1 + prng.int(1000)) });
    return { bytes: [full.subarray(0, 14 + prng.int(100))], codes: [1009] };
  },
  'fragments over maxMessageSize': (_prng, options) => {
    const half = Buffer.alloc(Math.ceil(options.maxMessageSize / 2) + 1, 0x61);
    return { bytes: [frame({ opcode: OP.binary, fin: false, payload: half }), frame({ opcode: OP.continuation, payload: half })], codes: [1009] };
  },
  'length with the top bit set': (prng) => ({ bytes: [hugeLengthHeader(prng)], codes: [1002, 1009] }),
  // RFC 7692 §8: a message that inflates past the limit, and one that is not DEFLATE at all.
  'deflate bomb': (_prng, options) => {
    if (!options.deflate) return { bytes: [frame({ opcode: OP.binary, rsv1: true, payload: 'z' })], codes: [1002] };
    const bomb = deflateRawSync(Buffer.alloc(options.maxMessageSize * 4), { finishFlush: 2 });
    return { bytes: [frame({ opcode: OP.binary, rsv1: true, payload: bomb.subarray(0, bomb.length - 4) })], codes: [1009] };
  },
  'corrupt deflate data': (prng, options) => {
    if (!options.deflate) return { bytes: [frame({ opcode: OP.text, rsv1: true, payload: 'z' })], codes: [1002] };
    // 0xff starts a block of the reserved type 3 (RFC 1951 §3.2.3): never valid.
    // It may arrive while echoes are still being compressed: they must all
    // leave before the 1007 (deflate-close-queued.test.ts pins it too).
    return {
      bytes: [
        frame({ opcode: prng.pick([OP.text, OP.binary]), rsv1: true, payload: Buffer.concat([Buffer.from([0xff]), prng.bytes(prng.int(40))]) }),
      ],
      codes: [1007],
    };
  },
  // No answer possible: the frame never completes; the server can only see the client's FIN.
  'truncated header': (prng) => {
    const whole = frame({ opcode: OP.binary, payload: prng.bytes(prng.range(126, 300)) });
    return { bytes: [whole.subarray(0, prng.range(1, 7))], codes: [], mayWait: true };
  },
  // Random bytes, the mask bit cleared so that they cannot form a valid
  // client frame (a random valid close would be echoed with its own code).
  // The server may wait for more (a long declared length) or fail the connection.
  garbage: (prng) => {
    const bytes = prng.bytes(prng.range(1, 64));
    if (bytes.length > 1) bytes[1] = bytes[1]! & 0x7f;
    return { bytes: [bytes], codes: [1002, 1007, 1008, 1009], mayWait: true };
  },
};

export const INVALID_NAMES = Object.keys(INVALID);

/** A script for one connection, fully determined by `seed`. */
export function generateScript(seed: number, options: ScriptOptions): Script {
  const prng = new Prng(seed);
  const script: Script = {
    bytes: Buffer.alloc(0),
    echoes: [],
    pings: [],
    ending: { kind: 'close', code: undefined, reason: '', frame: Buffer.alloc(0), later: false },
    outline: [],
  };
  const out: Buffer[] = [];
  const steps = prng.range(0, 12);
  for (let i = 0; i < steps; i++) {
    if (prng.chance(0.2)) {
      ping(prng, out, script);
      script.outline.push('ping');
    } else validMessage(prng, options, out, script);
  }
  if (prng.chance(0.3)) {
    const withCode = prng.chance(0.85);
    const code = withCode ? prng.pick(VALID_CLOSE_CODES) : undefined;
    const reason = withCode ? randomText(prng, prng.int(20)) : '';
    const closeFrame = frame({ opcode: OP.close, payload: code === undefined ? Buffer.alloc(0) : closePayload(code, reason) });
    const later = prng.chance(0.5);
    script.ending = { kind: 'close', code, reason, frame: closeFrame, later };
    script.outline.push(`close(${code ?? 'no code'}${later ? ', after the echoes' : ''})`);
  } else {
    const name = prng.pick(INVALID_NAMES);
    const made = INVALID[name]!(prng, options);
    // Valid frames after the invalid input: the server must not act on them.
    if (made.mayWait !== true)
      made.bytes.push(frame({ opcode: OP.text, payload: 'after the invalid frame' }), frame({ opcode: OP.ping, payload: 'after' }));
    script.ending = { kind: 'invalid', name, codes: made.codes, mayWait: made.mayWait === true, bytes: Buffer.concat(made.bytes) };
    script.outline.push(`INVALID: ${name}`);
  }
  script.bytes = Buffer.concat(out);
  return script;
}
