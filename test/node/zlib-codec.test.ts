import { once } from 'node:events';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createZlibCodec, ZlibCodecError, type ZlibCodecOptions } from '../../src/node/zlib-codec.js';
import { ZlibLimiter } from '../../src/node/zlib-limiter.js';
import type { CompressionCodec } from '../../src/protocol/codec.js';
import { UsageError } from '../../src/protocol/errors.js';
import type { DeflateParams } from '../../src/protocol/permessage-deflate.js';

// ---- helpers ---------------------------------------------------------------

function params(overrides: Partial<DeflateParams> = {}): DeflateParams {
  return {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
    ...overrides,
  };
}

const codecs: CompressionCodec[] = [];
function codec(p: DeflateParams, role: 'server' | 'client', options?: ZlibCodecOptions): CompressionCodec {
  const c = createZlibCodec(p, role, options);
  codecs.push(c);
  return c;
}
afterEach(() => {
  for (const c of codecs.splice(0)) c.close();
  vi.restoreAllMocks();
});

function compress(c: CompressionCodec, data: Uint8Array, fin = true): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    c.compress(data, fin, (error, output) => {
      if (error !== null) reject(error);
      else resolve(Buffer.from(output!));
    });
  });
}

interface Inflated {
  error: Error | null;
  output: Buffer | null;
  tooBig: boolean;
}
function decompress(c: CompressionCodec, data: Uint8Array, fin = true, limit = 64 << 20): Promise<Inflated> {
  return new Promise((resolve) => {
    c.decompress(data, fin, limit, (error, output, tooBig) => {
      resolve({ error, output: output === null ? null : Buffer.concat(output), tooBig });
    });
  });
}

async function inflateOk(c: CompressionCodec, data: Uint8Array, fin = true, limit?: number): Promise<Buffer> {
  const result = await decompress(c, data, fin, limit);
  expect(result.error).toBeNull();
  expect(result.tooBig).toBe(false);
  return result.output!;
}

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Inflates a sync-flushed stream that has no final block. */
function inflatePlain(data: Buffer): Buffer {
  return zlib.inflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed | 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Messages of many shapes: repetitive text, JSON, random bytes, empty. */
function sampleMessages(count: number): Buffer[] {
  const messages: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    switch (i % 5) {
      case 0:
        messages.push(Buffer.from(JSON.stringify({ type: 'chat', seq: i, user: `user${i % 7}`, text: 'hello '.repeat(i % 50) })));
        break;
      case 1:
        messages.push(noise((i * 37) % 3000, i + 1));
        break;
      case 2:
        messages.push(Buffer.alloc((i * 131) % 70_000, `pattern-${i % 3}-`));
        break;
      case 3:
        messages.push(Buffer.alloc(0));
        break;
      default:
        messages.push(Buffer.concat([noise(300, i), noise(300, i), Buffer.from('tail')]));
    }
  }
  return messages;
}

// ---- a small DEFLATE reader (RFC 1951) that reports the distances used ----

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

interface Huffman {
  counts: number[];
  symbols: number[];
}
function huffman(lengths: number[]): Huffman {
  const counts = new Array<number>(16).fill(0);
  for (const l of lengths) counts[l]!++;
  counts[0] = 0;
  const offsets = [0, 0];
  for (let len = 1; len < 15; len++) offsets[len + 1] = offsets[len]! + counts[len]!;
  const symbols: number[] = [];
  lengths.forEach((l, symbol) => {
    if (l !== 0) symbols[offsets[l]!++] = symbol;
  });
  return { counts, symbols };
}
const FIXED_LITERALS = huffman(
  Array.from({ length: 288 }, (_, s) =>
    s < 144 ? 8
    : s < 256 ? 9
    : s < 280 ? 7
    : 8,
  ),
);
const FIXED_DISTANCES = huffman(new Array<number>(30).fill(5));

/**
 * Decodes a raw DEFLATE stream that ends on a block boundary (as sync-flushed
 * data does) and returns its output and the largest back-reference distance.
 */
function scanDeflate(data: Uint8Array): { output: Buffer; maxDistance: number } {
  let pos = 0;
  let bitPos = 0;
  const bits = (n: number): number => {
    let value = 0;
    for (let i = 0; i < n; i++) {
      if (pos >= data.length) throw new Error('truncated DEFLATE data');
      value |= ((data[pos]! >> bitPos) & 1) << i;
      if (++bitPos === 8) {
        bitPos = 0;
        pos++;
      }
    }
    return value;
  };
  const decode = (h: Huffman): number => {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= 15; len++) {
      code |= bits(1);
      const count = h.counts[len]!;
      if (code - count < first) return h.symbols[index + (code - first)]!;
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new Error('invalid Huffman code');
  };
  const out: number[] = [];
  let maxDistance = 0;
  while (pos < data.length) {
    const final = bits(1);
    const type = bits(2);
    if (type === 0) {
      if (bitPos !== 0) {
        bitPos = 0;
        pos++;
      }
      const len = data[pos]! | (data[pos + 1]! << 8);
      const nlen = data[pos + 2]! | (data[pos + 3]! << 8);
      if ((len ^ 0xffff) !== nlen) throw new Error('stored block length mismatch');
      pos += 4;
      for (let i = 0; i < len; i++) out.push(data[pos++]!);
    } else {
      let literals = FIXED_LITERALS;
      let distances = FIXED_DISTANCES;
      if (type === 2) {
        const hlit = bits(5) + 257;
        const hdist = bits(5) + 1;
        const hclen = bits(4) + 4;
        const codeLengths = new Array<number>(19).fill(0);
        for (let i = 0; i < hclen; i++) codeLengths[CODE_LENGTH_ORDER[i]!] = bits(3);
        const lengthCode = huffman(codeLengths);
        const lengths: number[] = [];
        while (lengths.length < hlit + hdist) {
          const symbol = decode(lengthCode);
          if (symbol < 16) lengths.push(symbol);
          else if (symbol === 16) lengths.push(...new Array<number>(3 + bits(2)).fill(lengths[lengths.length - 1]!));
          else if (symbol === 17) lengths.push(...new Array<number>(3 + bits(3)).fill(0));
          else lengths.push(...new Array<number>(11 + bits(7)).fill(0));
        }
        literals = huffman(lengths.slice(0, hlit));
        distances = huffman(lengths.slice(hlit));
      } else if (type !== 1) {
        throw new Error('invalid block type');
      }
      for (;;) {
        const symbol = decode(literals);
        if (symbol < 256) out.push(symbol);
        else if (symbol === 256) break;
        else {
          const length = LENGTH_BASE[symbol - 257]! + bits(LENGTH_EXTRA[symbol - 257]!);
          const d = decode(distances);
          const distance = DIST_BASE[d]! + bits(DIST_EXTRA[d]!);
          if (distance > out.length) throw new Error('distance before the start of the stream');
          maxDistance = Math.max(maxDistance, distance);
          for (let i = 0; i < length; i++) out.push(out[out.length - distance]!);
        }
      }
    }
    if (final === 1) break;
  }
  return { output: Buffer.from(out), maxDistance };
}

/** Writes DEFLATE bits: values LSB first, Huffman codes MSB first (RFC 1951 §3.1.1). */
class BitWriter {
  readonly bytes: number[] = [];
  #bit = 0;
  value(value: number, n: number): this {
    for (let i = 0; i < n; i++) this.#push((value >> i) & 1);
    return this;
  }
  code(code: number, n: number): this {
    for (let i = n - 1; i >= 0; i--) this.#push((code >> i) & 1);
    return this;
  }
  #push(bit: number): void {
    if (this.#bit === 0) this.bytes.push(0);
    this.bytes[this.bytes.length - 1]! |= bit << this.#bit;
    this.#bit = (this.#bit + 1) % 8;
  }
}

/** A payload holding `data` in one stored block, then an empty stored block's header byte. */
function storedMessage(data: Buffer): Buffer {
  const header = Buffer.from([0x00, data.length & 0xff, data.length >> 8, ~data.length & 0xff, (~data.length >> 8) & 0xff]);
  return Buffer.concat([header, data, hex('00')]);
}

/**
 * One fixed-Huffman block holding a single match of `length` 10 at
 * `distance` (129..256 or 257..384), then the header byte of an empty stored
 * block, as a permessage-deflate payload (the receiver adds 00 00 ff ff).
 */
function fixedBlockWithMatch(distance: number): Buffer {
  const d = distance <= 256 ? 15 : 16; // distance codes 15: 193..256, 16: 257..384 (6 and 7 extra bits)
  const w = new BitWriter()
    .value(0, 1) // BFINAL
    .value(1, 2) // BTYPE 01, fixed Huffman
    .code(0b0001000, 7) // symbol 264: length 10
    .code(d, 5)
    .value(distance - DIST_BASE[d]!, DIST_EXTRA[d]!)
    .code(0, 7) // symbol 256: end of block
    .value(0, 3); // next block: BFINAL 0, BTYPE 00 (stored); the rest of the byte is padding
  return Buffer.from(w.bytes);
}

// ---- tests -------------------------------------------------------------------

describe('the DEFLATE reader used by these tests', () => {
  it('decodes what node:zlib produces, fixed and dynamic blocks, and sees the distances', () => {
    const input = Buffer.concat([noise(1000, 9), noise(1000, 9), Buffer.from('hello hello hello')]);
    const compressed = zlib.deflateRawSync(input, { level: 9 });
    const scanned = scanDeflate(compressed);
    expect(scanned.output.equals(input)).toBe(true);
    expect(scanned.maxDistance).toBe(1000);
    expect(scanDeflate(hex('f2 48 cd c9 c9 07 00 00 00 ff ff')).output.toString()).toBe('Hello');
  });
});

describe('createZlibCodec: round trips', () => {
  for (const [label, p] of [
    ['context takeover both ways', params()],
    ['no context takeover both ways', params({ serverNoContextTakeover: true, clientNoContextTakeover: true })],
    ['small windows', params({ serverMaxWindowBits: 9, clientMaxWindowBits: 10 })],
    ['windows of 8', params({ serverMaxWindowBits: 8, clientMaxWindowBits: 8 })],
    ['mixed', params({ serverNoContextTakeover: true, clientMaxWindowBits: 11 })],
  ] as const) {
    it(`carries 100 messages each way with ${label}`, async () => {
      const server = codec(p, 'server');
      const client = codec(p, 'client');
      const messages = sampleMessages(100);
      for (const message of messages) {
        expect((await inflateOk(client, await compress(server, message))).equals(message)).toBe(true);
        expect((await inflateOk(server, await compress(client, message))).equals(message)).toBe(true);
      }
    });
  }

  it('carries messages sent in fragments (fin only on the last) and received in other fragments', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 4000 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (parts, cuts) => {
          const sender = codec(params(), 'client');
          const receiver = codec(params(), 'server');
          const wire: Buffer[] = [];
          for (let i = 0; i < parts.length; i++) wire.push(await compress(sender, parts[i]!, i === parts.length - 1));
          const payload = Buffer.concat(wire);
          const offsets = [...new Set(cuts.map((c) => c % (payload.length + 1)))].sort((a, b) => a - b);
          const frames: Buffer[] = [];
          let from = 0;
          for (const to of [...offsets, payload.length]) {
            frames.push(payload.subarray(from, to));
            from = to;
          }
          const received: Buffer[] = [];
          for (let i = 0; i < frames.length; i++) received.push(await inflateOk(receiver, frames[i]!, i === frames.length - 1));
          expect(Buffer.concat(received).equals(Buffer.concat(parts))).toBe(true);
          sender.close();
          receiver.close();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reads messages from a plain node:zlib peer that sync-flushes and strips the tail', async () => {
    const peer = zlib.createDeflateRaw({ level: 6, flush: zlib.constants.Z_SYNC_FLUSH });
    const chunks: Buffer[] = [];
    peer.on('data', (c: Buffer) => chunks.push(c));
    const receiver = codec(params(), 'client');
    for (const message of sampleMessages(30)) {
      await new Promise<void>((resolve) => peer.write(message, () => resolve()));
      const wire = Buffer.concat(chunks.splice(0));
      // A flush with no new input writes nothing; the peer then sends 00 (§7.2.3.6).
      const payload = wire.length === 0 ? hex('00') : wire.subarray(0, -4);
      if (wire.length > 0) expect(wire.subarray(-4).equals(TAIL)).toBe(true);
      expect((await inflateOk(receiver, payload)).equals(message)).toBe(true);
    }
    peer.destroy();
  });

  it('writes messages a plain node:zlib inflater reads once the tail is appended', async () => {
    const sender = codec(params({ serverNoContextTakeover: true }), 'server');
    for (const message of sampleMessages(30)) {
      const wire = await compress(sender, message);
      // Without context takeover every message stands alone.
      expect(inflatePlain(Buffer.concat([wire, TAIL])).equals(message)).toBe(true);
    }
  });
});

describe('createZlibCodec: context takeover and roles', () => {
  const message = Buffer.from(JSON.stringify({ a: noise(200, 3).toString('base64'), b: 'the same message again' }));

  it('compresses a repeated message to a few bytes with context takeover, and from scratch without it', async () => {
    const withContext = codec(params(), 'server');
    const first = await compress(withContext, message);
    const second = await compress(withContext, message);
    expect(second.length).toBeLessThan(20);
    expect(first.length).toBeGreaterThan(200);

    const without = codec(params({ serverNoContextTakeover: true }), 'server');
    const a = await compress(without, message);
    const b = await compress(without, message);
    expect(b.equals(a)).toBe(true);
  });

  it('a server compresses with the server_* parameters and a client with the client_* ones', async () => {
    const p = params({ serverNoContextTakeover: true, serverMaxWindowBits: 9 });
    const server = codec(p, 'server');
    const client = codec(p, 'client');
    // Repeats 300 bytes apart: reachable with a client window of 15, not with a server window of 9.
    const input = Buffer.concat([noise(300, 5), noise(300, 5), noise(300, 5)]);
    const fromServer = scanDeflate(Buffer.concat([await compress(server, input), TAIL]));
    const fromClient = scanDeflate(Buffer.concat([await compress(client, input), TAIL]));
    expect(fromServer.output.equals(input)).toBe(true);
    expect(fromClient.output.equals(input)).toBe(true);
    expect(fromServer.maxDistance).toBeLessThanOrEqual(256);
    expect(fromClient.maxDistance).toBeGreaterThan(256);
    // Context takeover: only the client's second copy is short.
    expect((await compress(server, input)).length).toBeGreaterThan(600);
    expect((await compress(client, input)).length).toBeLessThan(20);
  });

  it('a receiver keeps the window between messages when the peer uses context takeover', async () => {
    const sender = codec(params(), 'client');
    const receiver = codec(params(), 'server');
    await inflateOk(receiver, await compress(sender, message));
    const back = await compress(sender, message);
    expect(back.length).toBeLessThan(20); // a reference into the previous message
    expect((await inflateOk(receiver, back)).equals(message)).toBe(true);
  });
});

describe('createZlibCodec: window bits 8', () => {
  it('node:zlib asked for 8 compresses with distances of at most 256 bytes, across messages', async () => {
    const sender = codec(params({ serverMaxWindowBits: 8 }), 'server');
    const control = codec(params({ serverMaxWindowBits: 10 }), 'server');
    // Repeats at distances 251..300 across message boundaries, plus plain text.
    const messages = Array.from({ length: 40 }, (_, i) =>
      Buffer.concat([noise(251 + (i % 50), i % 7), noise(251 + (i % 50), i % 7), Buffer.from('x'.repeat(i * 10))]),
    );
    const stream: Buffer[] = [];
    const controlStream: Buffer[] = [];
    for (const m of messages) {
      stream.push(await compress(sender, m), TAIL);
      controlStream.push(await compress(control, m), TAIL);
    }
    const scanned = scanDeflate(Buffer.concat(stream));
    expect(scanned.output.equals(Buffer.concat(messages))).toBe(true);
    expect(scanned.maxDistance).toBeLessThanOrEqual(256);
    // The same data with a 1 KiB window does use the longer distances, so the check above can fail.
    expect(scanDeflate(Buffer.concat(controlStream)).maxDistance).toBeGreaterThan(256);
  });

  it('a receiver limited to 8 follows a reference exactly 256 bytes back into the previous message', async () => {
    const receiver = codec(params({ clientMaxWindowBits: 8 }), 'server');
    const first = noise(1000, 11);
    expect((await inflateOk(receiver, storedMessage(first))).equals(first)).toBe(true);
    const second = await inflateOk(receiver, fixedBlockWithMatch(256));
    expect(second.equals(first.subarray(1000 - 256, 1000 - 256 + 10))).toBe(true);
  });

  it('a receiver limited to 8 keeps only 256 bytes of history: a reference 258 back fails', async () => {
    const limited = codec(params({ clientMaxWindowBits: 8 }), 'server');
    const unlimited = codec(params(), 'server');
    const first = noise(1000, 11);
    for (const receiver of [limited, unlimited]) await inflateOk(receiver, storedMessage(first));
    // Where the window is larger, the same reference is fine: it is the window that refuses it.
    expect((await inflateOk(unlimited, fixedBlockWithMatch(258))).equals(first.subarray(1000 - 258, 1000 - 248))).toBe(true);
    const result = await decompress(limited, fixedBlockWithMatch(258));
    expect(result.error).toBeInstanceOf(ZlibCodecError);
  });
});

describe('createZlibCodec: the 00 00 ff ff tail (RFC 7692 §7.2)', () => {
  it('removes the tail at the end of a message: "Hello" is f2 48 cd c9 c9 07 00 (§7.2.3.1)', async () => {
    const c = codec(params(), 'client');
    expect((await compress(c, Buffer.from('Hello'))).toString('hex')).toBe('f248cdc9c90700');
  });

  it('keeps the tail on a fragment that does not end the message', async () => {
    const c = codec(params(), 'client');
    const part = await compress(c, Buffer.from('Hello, '), false);
    expect(part.subarray(-4).equals(TAIL)).toBe(true);
    const end = await compress(c, Buffer.from('world'), true);
    expect(end.subarray(-4).equals(TAIL)).toBe(false);
    expect(inflatePlain(Buffer.concat([part, end, TAIL])).toString()).toBe('Hello, world');
  });

  it('sends an empty message as the single byte 00 (§7.2.3.6), also when the flush has nothing to write', async () => {
    const c = codec(params(), 'client');
    expect((await compress(c, Buffer.alloc(0))).toString('hex')).toBe('00');
    expect((await compress(c, Buffer.alloc(0))).toString('hex')).toBe('00');
    // A fragment flushed to the tail, then an empty last fragment: zlib writes nothing for it.
    const part = await compress(c, Buffer.from('abc'), false);
    const end = await compress(c, Buffer.alloc(0), true);
    expect(end.toString('hex')).toBe('00');
    const receiver = codec(params(), 'server');
    expect((await inflateOk(receiver, Buffer.concat([part, end]))).toString()).toBe('abc');
    expect((await inflateOk(receiver, hex('00'))).length).toBe(0);
  });

  it('decodes the payloads of RFC 7692 §7.2.3', async () => {
    const c = codec(params(), 'client');
    expect((await inflateOk(c, hex('f2 48 cd c9 c9 07 00'))).toString()).toBe('Hello');
    // §7.2.3.2: the same message again, referring to the first one.
    expect((await inflateOk(c, hex('f2 00 11 00 00'))).toString()).toBe('Hello');
    // §7.2.3.3: a stored block.
    expect((await inflateOk(c, hex('00 05 00 fa ff 48 65 6c 6c 6f 00'))).toString()).toBe('Hello');
    // §7.2.3.5: two DEFLATE blocks in one message.
    expect((await inflateOk(c, hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00'))).toString()).toBe('Hello');
    // §7.2.3.1: the message in two fragments.
    expect((await inflateOk(c, hex('f2 48 cd'), false)).toString()).toBe('He');
    expect((await inflateOk(c, hex('c9 c9 07 00'), true)).toString()).toBe('llo');
  });

  it('decodes a block with BFINAL set (§7.2.3.4) and carries on with the next message', async () => {
    const c = codec(params(), 'server');
    expect((await inflateOk(c, hex('f3 48 cd c9 c9 07 00 00'))).toString()).toBe('Hello');
    const peer = codec(params({ clientNoContextTakeover: true }), 'client');
    expect((await inflateOk(c, await compress(peer, Buffer.from('next message')))).toString()).toBe('next message');
  });

  it('tolerates a data set that ends with the payload, without the empty block after it', async () => {
    const c = codec(params(), 'server');
    expect((await inflateOk(c, zlib.deflateRawSync(Buffer.from('complete stream')))).toString()).toBe('complete stream');
    // The final block ended exactly at the end of a fragment: the next fragment starts afresh.
    expect((await inflateOk(c, zlib.deflateRawSync(Buffer.from('part one, ')), false)).toString()).toBe('part one, ');
    expect((await inflateOk(c, hex('f3 48 cd c9 c9 07 00 00'))).toString()).toBe('Hello');
  });

  it('accepts several final blocks in one frame but refuses a flood of them', async () => {
    const block = zlib.deflateRawSync(Buffer.from('ab'));
    const c = codec(params(), 'server');
    expect((await inflateOk(c, Buffer.concat([...new Array<Buffer>(8).fill(block), hex('00')]))).toString()).toBe('ab'.repeat(8));
    const flood = await decompress(c, Buffer.concat([...new Array<Buffer>(50).fill(block), hex('00')]));
    expect(flood.error).toBeInstanceOf(ZlibCodecError);
    expect(flood.tooBig).toBe(false);
  });
});

describe('createZlibCodec: limits and failures', () => {
  let bomb: Buffer;
  const BOMB_SIZE = 256 << 20;
  beforeAll(async () => {
    // 256 MiB of zeros; DEFLATE cannot beat about 1:1032, so this is ~260 KB.
    const deflate = zlib.createDeflateRaw({ level: 9, memLevel: 9 });
    const chunks: Buffer[] = [];
    deflate.on('data', (c: Buffer) => chunks.push(c));
    const zeros = Buffer.alloc(1 << 20);
    for (let i = 0; i < BOMB_SIZE / zeros.length; i++) deflate.write(zeros);
    await new Promise<void>((resolve) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
    deflate.destroy();
    bomb = Buffer.concat(chunks).subarray(0, -4);
  });

  it('refuses a decompression bomb with tooBig after producing little more than the limit', async () => {
    expect(bomb.length).toBeLessThan(300_000);
    const real = zlib.createInflateRaw;
    let produced = 0;
    let inflater: zlib.InflateRaw | null = null;
    vi.spyOn(zlib, 'createInflateRaw').mockImplementation((options) => {
      const stream = real(options);
      stream.on('data', (chunk: Buffer) => {
        produced += chunk.length;
      });
      inflater = stream;
      return stream;
    });
    const limit = 1 << 20;
    const c = codec(params(), 'server');
    const result = await decompress(c, bomb, true, limit);
    expect(result).toEqual({ error: null, output: null, tooBig: true });
    // The inflater must really stop, not just stop being listened to.
    const stream = inflater!;
    if (!stream.closed) await once(stream, 'close');
    // node:zlib hands out 16 KiB chunks; the inflater stops within one of them past the limit.
    expect(produced).toBeGreaterThan(limit);
    expect(produced).toBeLessThanOrEqual(limit + 64 * 1024);
    // ...and most of the bomb was never even read.
    expect(stream.bytesWritten).toBeLessThan(bomb.length / 10);
  });

  it('counts the limit over one call: exactly the limit passes, one byte more is too big', async () => {
    const message = noise(5000, 1);
    const sender = codec(params({ clientNoContextTakeover: true }), 'client');
    const wire = await compress(sender, message);
    expect((await inflateOk(codec(params(), 'server'), wire, true, 5000)).equals(message)).toBe(true);
    const result = await decompress(codec(params(), 'server'), wire, true, 4999);
    expect(result.tooBig).toBe(true);
  });

  it('after tooBig refuses decompression, while compression (a separate zlib stream) goes on', async () => {
    const c = codec(params(), 'server');
    expect((await decompress(c, bomb.subarray(0, 20_000), false, 1000)).tooBig).toBe(true);
    const again = await decompress(c, hex('f2 48 cd c9 c9 07 00'));
    expect(again.error).toMatchObject({ code: 'ZLIB_CODEC_FAILED' });
    // What is still being sent to the peer (queued echoes, the close frame's predecessors) can be compressed.
    const wire = await compress(c, Buffer.from('still compressing'));
    expect(inflatePlain(Buffer.concat([wire, TAIL])).toString()).toBe('still compressing');
  });

  it('a compression already running when decompression fails still completes', async () => {
    const c = codec(params(), 'server');
    const message = noise(200_000, 4);
    const running = compress(c, message);
    const failed = await decompress(c, hex('ff ff ff ff'));
    expect(failed.error).toMatchObject({ code: 'ZLIB_ERROR' });
    expect(inflatePlain(Buffer.concat([await running, TAIL])).equals(message)).toBe(true);
  });

  it('reports corrupt data as an error (which the core maps to 1007) and then refuses work', async () => {
    const c = codec(params(), 'server');
    // BTYPE 11 is reserved (RFC 1951 §3.2.3).
    const result = await decompress(c, hex('ff ff ff ff'));
    expect(result.tooBig).toBe(false);
    expect(result.output).toBeNull();
    expect(result.error).toBeInstanceOf(ZlibCodecError);
    expect(result.error).toMatchObject({ code: 'ZLIB_ERROR' });
    expect((await decompress(c, hex('00'))).error).toMatchObject({ code: 'ZLIB_CODEC_FAILED' });
  });

  it('refuses a second call in one direction while the first is outstanding', async () => {
    const c = codec(params(), 'server');
    const first = compress(c, noise(100_000, 2));
    await expect(compress(c, Buffer.from('x'))).rejects.toMatchObject({ code: 'ZLIB_CODEC_BUSY' });
    await expect(first).resolves.toBeInstanceOf(Buffer);
  });

  it('ends outstanding calls with ZLIB_CODEC_CLOSED on close() and refuses later ones', async () => {
    const c = codec(params(), 'server');
    const pending = compress(c, noise(200_000, 4));
    const pendingInflate = decompress(c, bomb, true, 1 << 30);
    c.close();
    await expect(pending).rejects.toMatchObject({ code: 'ZLIB_CODEC_CLOSED' });
    expect((await pendingInflate).error).toMatchObject({ code: 'ZLIB_CODEC_CLOSED' });
    await expect(compress(c, Buffer.from('x'))).rejects.toMatchObject({ code: 'ZLIB_CODEC_CLOSED' });
  });

  it('calls back asynchronously even when refusing', () => {
    const c = codec(params(), 'server');
    c.close();
    let called = false;
    c.compress(Buffer.from('x'), true, () => {
      called = true;
    });
    expect(called).toBe(false);
  });

  it('rejects invalid parameters and options as usage errors', () => {
    expect(() => createZlibCodec(params({ serverMaxWindowBits: 7 }), 'server')).toThrow(UsageError);
    expect(() => createZlibCodec(params(), 'server', { level: 10 })).toThrow(UsageError);
    expect(() => createZlibCodec(params(), 'server', { memLevel: 0 })).toThrow(UsageError);
  });
});

describe('createZlibCodec: the limiter', () => {
  it('queues zlib work beyond the limiter concurrency and runs it when a slot frees', async () => {
    const limiter = new ZlibLimiter(1);
    const a = codec(params(), 'server', { limiter });
    const b = codec(params(), 'client', { limiter });
    const first = compress(a, noise(50_000, 1));
    const second = compress(b, noise(50_000, 2));
    expect(limiter.active).toBe(1);
    expect(limiter.queued).toBe(1);
    await Promise.all([first, second]);
    expect(limiter.active).toBe(0);
    expect(limiter.queued).toBe(0);
  });

  it('releases its slot when a call fails, is too big or the codec closes', async () => {
    const limiter = new ZlibLimiter(1);
    await decompress(codec(params(), 'server', { limiter }), hex('ff ff'));
    await decompress(codec(params(), 'server', { limiter }), zlib.deflateRawSync(Buffer.alloc(10_000)), true, 1);
    const closing = codec(params(), 'server', { limiter });
    const pending = compress(closing, noise(100_000, 3));
    closing.close();
    await pending.catch(() => undefined);
    expect(limiter.active).toBe(0);
    const c = codec(params(), 'server', { limiter });
    expect((await inflateOk(c, await compress(codec(params(), 'client', { limiter }), Buffer.from('still works')))).toString()).toBe('still works');
  });
});
