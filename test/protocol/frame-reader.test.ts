import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { FrameReader, type FrameReaderOptions, type FrameSink } from '../../src/protocol/frame-reader.js';
import type { Opcode } from '../../src/protocol/opcode.js';
import { chunksOf, concat, frame, hex, patternBytes, splitAt, toHex } from './helpers.js';

type SinkCall =
  | { kind: 'header'; fin: boolean; rsv1: boolean; opcode: Opcode; length: number }
  | { kind: 'payload'; payload: Uint8Array }
  | { kind: 'error'; code: ProtocolErrorCode };

class RecordingSink implements FrameSink {
  readonly calls: SinkCall[] = [];
  /** Answer frameHeader with this error (once) to check that the reader stops. */
  rejectNextHeader: ProtocolError | null = null;
  onPayload: ((payload: Uint8Array) => void) | null = null;

  frameHeader(fin: boolean, rsv1: boolean, opcode: Opcode, length: number): ProtocolError | null {
    this.calls.push({ kind: 'header', fin, rsv1, opcode, length });
    const error = this.rejectNextHeader;
    this.rejectNextHeader = null;
    return error;
  }
  framePayload(payload: Uint8Array): void {
    this.calls.push({ kind: 'payload', payload });
    this.onPayload?.(payload);
  }
  frameError(error: ProtocolError): void {
    this.calls.push({ kind: 'error', code: error.code });
  }
  get errors(): ProtocolErrorCode[] {
    return this.calls.flatMap((c) => (c.kind === 'error' ? [c.code] : []));
  }
  get payloads(): string[] {
    return this.calls.flatMap((c) => (c.kind === 'payload' ? [toHex(c.payload)] : []));
  }
}

const SERVER: FrameReaderOptions = { expectMasked: true, allowRsv1: false };
const CLIENT: FrameReaderOptions = { expectMasked: false, allowRsv1: false };
const KEY = hex('37 fa 21 3d');

function reader(options: FrameReaderOptions): { reader: FrameReader; sink: RecordingSink } {
  const sink = new RecordingSink();
  return { reader: new FrameReader(sink, options), sink };
}

describe('FrameReader: RFC 6455 §5.7 examples', () => {
  it('parses the unmasked "Hello" text frame 81 05 48 65 6c 6c 6f', () => {
    const { reader: r, sink } = reader(CLIENT);
    r.push(hex('81 05 48 65 6c 6c 6f'));
    expect(sink.calls).toEqual([
      { kind: 'header', fin: true, rsv1: false, opcode: 1, length: 5 },
      { kind: 'payload', payload: hex('48 65 6c 6c 6f') },
    ]);
  });

  it('parses and unmasks the masked "Hello" frame 81 85 37 fa 21 3d 7f 9f 4d 51 58', () => {
    const { reader: r, sink } = reader(SERVER);
    r.push(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expect(sink.payloads).toEqual(['48 65 6c 6c 6f']);
    expect(sink.errors).toEqual([]);
  });

  it('parses the fragmented "Hel" + "lo" frames', () => {
    const { reader: r, sink } = reader(CLIENT);
    r.push(hex('01 03 48 65 6c 80 02 6c 6f'));
    expect(sink.calls).toEqual([
      { kind: 'header', fin: false, rsv1: false, opcode: 1, length: 3 },
      { kind: 'payload', payload: hex('48 65 6c') },
      { kind: 'header', fin: true, rsv1: false, opcode: 0, length: 2 },
      { kind: 'payload', payload: hex('6c 6f') },
    ]);
  });

  it('parses the ping 89 05 "Hello" and the masked pong 8a 85 37 fa 21 3d 7f 9f 4d 51 58', () => {
    const client = reader(CLIENT);
    client.reader.push(hex('89 05 48 65 6c 6c 6f'));
    expect(client.sink.calls[0]).toEqual({ kind: 'header', fin: true, rsv1: false, opcode: 9, length: 5 });
    expect(client.sink.payloads).toEqual(['48 65 6c 6c 6f']);
    const server = reader(SERVER);
    server.reader.push(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expect(server.sink.calls[0]).toEqual({ kind: 'header', fin: true, rsv1: false, opcode: 10, length: 5 });
    expect(server.sink.payloads).toEqual(['48 65 6c 6c 6f']);
  });

  it('reads the 16-bit length of the 256-byte binary frame 82 7E 01 00', () => {
    const payload = patternBytes(256);
    const { reader: r, sink } = reader(CLIENT);
    r.push(concat(hex('82 7e 01 00'), payload));
    expect(sink.calls[0]).toEqual({ kind: 'header', fin: true, rsv1: false, opcode: 2, length: 256 });
    expect(sink.payloads).toEqual([toHex(payload)]);
  });

  it('reads the 64-bit length of the 64 KiB binary frame 82 7F 00 00 00 00 00 01 00 00', () => {
    const payload = patternBytes(65536);
    const { reader: r, sink } = reader(CLIENT);
    r.push(concat(hex('82 7f 00 00 00 00 00 01 00 00'), payload));
    expect(sink.calls[0]).toEqual({ kind: 'header', fin: true, rsv1: false, opcode: 2, length: 65536 });
    expect(sink.payloads).toEqual([toHex(payload)]);
  });
});

describe('FrameReader: header rules (RFC 6455 §5.2)', () => {
  const cases: [string, FrameReaderOptions, Uint8Array, ProtocolErrorCode][] = [
    ['RSV1 without a negotiated extension', CLIENT, hex('c1 00'), 'WS_ERR_UNEXPECTED_RSV'],
    ['RSV2', CLIENT, hex('a1 00'), 'WS_ERR_UNEXPECTED_RSV'],
    ['RSV3', CLIENT, hex('91 00'), 'WS_ERR_UNEXPECTED_RSV'],
    ['RSV2 even when RSV1 is allowed', { expectMasked: false, allowRsv1: true }, hex('a1 00'), 'WS_ERR_UNEXPECTED_RSV'],
    ['a masked frame sent to a client', CLIENT, hex('81 80 00 00 00 00'), 'WS_ERR_UNEXPECTED_MASK'],
    ['an unmasked frame sent to a server', SERVER, hex('81 00'), 'WS_ERR_EXPECTED_MASK'],
    ['a 16-bit length under 126', CLIENT, hex('82 7e 00 7d'), 'WS_ERR_NON_MINIMAL_LENGTH'],
    ['a 16-bit length of 0', CLIENT, hex('82 7e 00 00'), 'WS_ERR_NON_MINIMAL_LENGTH'],
    ['a 64-bit length under 65536', CLIENT, hex('82 7f 00 00 00 00 00 00 ff ff'), 'WS_ERR_NON_MINIMAL_LENGTH'],
    ['a 64-bit length of 126', CLIENT, hex('82 7f 00 00 00 00 00 00 00 7e'), 'WS_ERR_NON_MINIMAL_LENGTH'],
    ['a 64-bit length with the top bit set', CLIENT, hex('82 7f 80 00 00 00 00 00 00 00'), 'WS_ERR_INVALID_LENGTH'],
    ['a 64-bit length of all ones', CLIENT, hex('82 7f ff ff ff ff ff ff ff ff'), 'WS_ERR_INVALID_LENGTH'],
    ['a ping of 126 bytes (16-bit length)', CLIENT, hex('89 7e 00 7e'), 'WS_ERR_CONTROL_TOO_LONG'],
    ['a close with a 64-bit length', CLIENT, hex('88 7f'), 'WS_ERR_CONTROL_TOO_LONG'],
    ['a ping without FIN', CLIENT, hex('09 00'), 'WS_ERR_FRAGMENTED_CONTROL'],
    ['a close without FIN', CLIENT, hex('08 00'), 'WS_ERR_FRAGMENTED_CONTROL'],
  ];
  for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    cases.push([`reserved opcode 0x${op.toString(16)}`, CLIENT, Uint8Array.of(0x80 | op, 0), 'WS_ERR_INVALID_OPCODE']);
  }

  it.each(cases)('rejects %s, without asking the sink about the frame', (_, options, bytes, code) => {
    const { reader: r, sink } = reader(options);
    r.push(bytes);
    expect(sink.calls).toEqual([{ kind: 'error', code }]);
  });

  it('accepts a 16-bit length of exactly 126 and a 64-bit length of exactly 65536', () => {
    const a = reader(CLIENT);
    a.reader.push(concat(hex('82 7e 00 7e'), new Uint8Array(126)));
    expect(a.sink.errors).toEqual([]);
    expect(a.sink.calls[0]).toMatchObject({ kind: 'header', length: 126 });
    const b = reader(CLIENT);
    b.reader.push(hex('82 7f 00 00 00 00 00 01 00 00'));
    expect(b.sink.calls).toEqual([{ kind: 'header', fin: true, rsv1: false, opcode: 2, length: 65536 }]);
  });

  it('reports a 64-bit length above 2^32 as is', () => {
    const { reader: r, sink } = reader(CLIENT);
    r.push(hex('82 7f 00 00 00 01 00 00 00 01'));
    expect(sink.calls).toEqual([{ kind: 'header', fin: true, rsv1: false, opcode: 2, length: 2 ** 32 + 1 }]);
  });

  it('accepts RSV1 when allowed and passes it to the sink', () => {
    const { reader: r, sink } = reader({ expectMasked: false, allowRsv1: true });
    r.push(hex('c1 01 41'));
    expect(sink.calls[0]).toEqual({ kind: 'header', fin: true, rsv1: true, opcode: 1, length: 1 });
  });

  it('accepts a 125-byte control frame', () => {
    const { reader: r, sink } = reader(CLIENT);
    r.push(concat(hex('89 7d'), new Uint8Array(125)));
    expect(sink.errors).toEqual([]);
    expect(sink.calls).toHaveLength(2);
  });

  it('asks the sink about the frame as soon as the length is known, before the payload or mask key', () => {
    const { reader: r, sink } = reader(SERVER);
    r.push(hex('82 fe 01'));
    expect(sink.calls).toEqual([]);
    r.push(hex('00'));
    expect(sink.calls).toEqual([{ kind: 'header', fin: true, rsv1: false, opcode: 2, length: 256 }]);
  });

  it('stops when the sink rejects a header, and reports that error', () => {
    const { reader: r, sink } = reader(CLIENT);
    sink.rejectNextHeader = new ProtocolError('WS_ERR_MESSAGE_TOO_BIG', 'too big');
    r.push(concat(hex('82 03 01 02 03'), hex('81 01 41')));
    expect(sink.calls).toEqual([
      { kind: 'header', fin: true, rsv1: false, opcode: 2, length: 3 },
      { kind: 'error', code: 'WS_ERR_MESSAGE_TOO_BIG' },
    ]);
    r.push(hex('81 01 41'));
    expect(sink.calls).toHaveLength(2);
  });

  it('ignores all input after a framing error', () => {
    const { reader: r, sink } = reader(CLIENT);
    r.push(hex('83 00 81 01 41'));
    r.push(hex('81 01 41'));
    expect(sink.calls).toEqual([{ kind: 'error', code: 'WS_ERR_INVALID_OPCODE' }]);
    expect(r.bufferedBytes).toBe(0);
  });
});

describe('FrameReader: buffering', () => {
  it('parses a frame fed one byte at a time', () => {
    const { reader: r, sink } = reader(SERVER);
    const bytes = frame({ opcode: 2, payload: patternBytes(300), mask: KEY });
    for (let i = 0; i < bytes.length; i++) {
      r.push(bytes.slice(i, i + 1));
      if (i < bytes.length - 1) expect(sink.payloads).toEqual([]);
    }
    expect(sink.payloads).toEqual([toHex(patternBytes(300))]);
  });

  it('hands a payload that lies in one chunk on as a view of that chunk, unmasked in place', () => {
    const { reader: r, sink } = reader(SERVER);
    const chunk = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58');
    r.push(chunk);
    const payload = (sink.calls[1] as { payload: Uint8Array }).payload;
    expect(payload.buffer).toBe(chunk.buffer);
    expect(payload.byteOffset).toBe(chunk.byteOffset + 6);
    expect(toHex(chunk.subarray(6))).toBe('48 65 6c 6c 6f');
  });

  it('copies a payload that spans chunks', () => {
    const { reader: r, sink } = reader(CLIENT);
    const a = hex('82 04 01 02');
    const b = hex('03 04');
    r.push(a);
    r.push(b);
    expect(sink.payloads).toEqual(['01 02 03 04']);
    const payload = (sink.calls[1] as { payload: Uint8Array }).payload;
    expect(payload.buffer).not.toBe(a.buffer);
    expect(payload.buffer).not.toBe(b.buffer);
  });

  it('delivers empty payloads, masked or not', () => {
    const server = reader(SERVER);
    server.reader.push(hex('82 80 01 02 03 04 89 80 01 02 03 04'));
    expect(server.sink.payloads).toEqual(['', '']);
    const client = reader(CLIENT);
    client.reader.push(hex('82 00'));
    client.reader.push(hex('8a 00'));
    expect(client.sink.payloads).toEqual(['', '']);
  });

  it('holds frames while paused and parses the backlog on resume', () => {
    const { reader: r, sink } = reader(CLIENT);
    sink.onPayload = () => r.pause();
    r.push(hex('81 01 41 81 01 42 81 01 43'));
    expect(sink.payloads).toEqual(['41']);
    expect(r.bufferedBytes).toBe(6);
    r.push(hex('81 01 44'));
    expect(sink.payloads).toEqual(['41']);
    expect(r.bufferedBytes).toBe(9);
    sink.onPayload = null;
    r.resume();
    expect(sink.payloads).toEqual(['41', '42', '43', '44']);
    expect(r.bufferedBytes).toBe(0);
  });

  it('continues in the same loop when resumed from inside framePayload', () => {
    const { reader: r, sink } = reader(CLIENT);
    sink.onPayload = () => {
      r.pause();
      r.resume();
    };
    r.push(hex('81 01 41 81 01 42'));
    expect(sink.payloads).toEqual(['41', '42']);
  });

  it('accepts chunks pushed from inside framePayload, in order', () => {
    const { reader: r, sink } = reader(CLIENT);
    let pushed = false;
    sink.onPayload = () => {
      if (!pushed) {
        pushed = true;
        r.push(hex('81 01 43'));
      }
    };
    r.push(hex('81 01 41 81 01 42'));
    expect(sink.payloads).toEqual(['41', '42', '43']);
  });

  it('stops parsing the rest of a chunk when stopped from inside framePayload', () => {
    const { reader: r, sink } = reader(CLIENT);
    sink.onPayload = () => r.stop();
    r.push(hex('81 01 41 81 01 42'));
    expect(sink.payloads).toEqual(['41']);
    r.resume();
    r.push(hex('81 01 43'));
    expect(sink.payloads).toEqual(['41']);
    expect(r.bufferedBytes).toBe(0);
  });

  it('parses any sequence of frames the same at any split (property)', () => {
    const frameArb = fc.record({
      opcode: fc.constantFrom(0, 1, 2, 8, 9, 10),
      fin: fc.boolean(),
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 130, size: 'max' }),
        fc.integer({ min: 126, max: 70_000 }).map((n) => patternBytes(n, n)),
      ),
      key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    });
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 6, size: 'max' }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 20, size: 'max' }),
        (specs, masked, cuts) => {
          // Control frames must be FIN and short; make the generated ones legal.
          const legal = specs.map((s) => (s.opcode >= 8 ? { ...s, fin: true, payload: s.payload.subarray(0, 125) } : s));
          const stream = concat(...legal.map((s) => frame({ opcode: s.opcode, fin: s.fin, payload: s.payload, mask: masked ? s.key : null })));
          const { reader: r, sink } = reader({ expectMasked: masked, allowRsv1: false });
          for (const piece of splitAt(stream, cuts)) r.push(piece);
          expect(sink.errors).toEqual([]);
          expect(sink.calls.filter((c) => c.kind === 'header')).toEqual(
            legal.map((s) => ({ kind: 'header', fin: s.fin, rsv1: false, opcode: s.opcode, length: s.payload.length })),
          );
          expect(sink.payloads).toEqual(legal.map((s) => toHex(s.payload)));
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** A sink that also records the parts of payloads still arriving (`framePayloadPart`). */
class PartSink extends RecordingSink {
  readonly parts: Uint8Array[] = [];
  /** Answer the part that brings the part total to at least this many bytes with an error. */
  failAtPartBytes = Infinity;
  private partBytes = 0;

  framePayloadPart(part: Uint8Array): ProtocolError | null {
    this.parts.push(part.slice());
    this.partBytes += part.length;
    return this.partBytes >= this.failAtPartBytes ? new ProtocolError('WS_ERR_INVALID_UTF8', 'bad part') : null;
  }
}

/** An allocator that records every request, to see what a payload in progress costs. */
function countingAllocator(): { allocate: (size: number) => Uint8Array; sizes: number[] } {
  const sizes: number[] = [];
  return {
    sizes,
    allocate: (size) => {
      sizes.push(size);
      return new Uint8Array(size);
    },
  };
}

describe('FrameReader: payloads that arrive over many reads', () => {
  it('does not allocate what a header claims: a 60 MiB frame costs what has arrived of it', () => {
    const { allocate, sizes } = countingAllocator();
    const sink = new RecordingSink();
    const r = new FrameReader(sink, { ...SERVER, allocate });
    r.push(concat(hex('82 ff 00 00 00 00 03 c0 00 00'), KEY));
    expect(sink.calls).toEqual([{ kind: 'header', fin: true, rsv1: false, opcode: 2, length: 60 * 1024 * 1024 }]);
    // 100,000 one-byte reads: after the first eight, kept as they are, they
    // are copied into 16 KiB blocks, so the blocks hold the bytes and no more.
    for (let i = 0; i < 100_000; i++) r.push(Uint8Array.of(i & 0xff));
    expect(r.bufferedBytes).toBe(100_000);
    expect(sizes).toEqual(Array.from({ length: Math.ceil((100_000 - 8) / 16384) }, () => 16384));
  });

  it('keeps reads of 4 KiB or more as they are and allocates the payload once, at its declared length, when a quarter is here', () => {
    const { allocate, sizes } = countingAllocator();
    const sink = new RecordingSink();
    const r = new FrameReader(sink, { ...SERVER, allocate });
    // With its 14-byte header the frame is exactly 200 reads of 5,000 bytes.
    const payload = patternBytes(1_000_000 - 14, 5);
    const pieces = chunksOf(frame({ opcode: 2, payload, mask: KEY }), 5000);
    expect(pieces).toHaveLength(200);
    pieces.forEach((piece, i) => {
      r.push(piece);
      const received = (i + 1) * 5000 - 14;
      // From then on each read is unmasked straight into that buffer.
      expect(sizes).toEqual(received * 4 >= payload.length ? [payload.length] : []);
      expect(r.bufferedBytes).toBe(i === pieces.length - 1 ? 0 : received);
    });
    const delivered = (sink.calls[1] as { payload: Uint8Array }).payload;
    expect(delivered.length).toBe(payload.length);
    expect(Buffer.from(delivered).equals(Buffer.from(payload))).toBe(true);
  });

  it('gathers a large payload into its buffer: parts shown unmasked and in order, before and after the buffer exists', () => {
    const sink = new PartSink();
    const r = new FrameReader(sink, SERVER);
    const payload = patternBytes(300_000, 7);
    const next = frame({ opcode: 9, payload: 'after', mask: KEY });
    // Reads of 7,001 bytes: parts start at every offset modulo 4, the buffer
    // comes with the eleventh, and the last read also holds the next frame.
    for (const piece of chunksOf(concat(frame({ opcode: 1, payload, mask: KEY }), next), 7001)) r.push(piece);
    expect(sink.payloads).toEqual([toHex(payload), toHex(new TextEncoder().encode('after'))]);
    const parts = concat(...sink.parts);
    expect(toHex(parts)).toBe(toHex(payload.subarray(0, parts.length)));
    expect(parts.length).toBeGreaterThan(payload.length - 7001);
    expect(r.bufferedBytes).toBe(0);
  });

  it('stops gathering at the part the sink fails, and delivers nothing', () => {
    const sink = new PartSink();
    sink.failAtPartBytes = 200_000;
    const r = new FrameReader(sink, SERVER);
    const pieces = chunksOf(frame({ opcode: 1, payload: patternBytes(300_000, 8), mask: KEY }), 10_000);
    for (const piece of pieces) r.push(piece);
    expect(sink.errors).toEqual(['WS_ERR_INVALID_UTF8']);
    expect(sink.calls.filter((c) => c.kind === 'payload')).toEqual([]);
    expect(concat(...sink.parts).length).toBeLessThan(210_000);
    expect(r.bufferedBytes).toBe(0);
  });

  it('gathers large payloads over random reads, with the sink pausing on parts, the same as whole (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 60_000, max: 200_000 }), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 500, max: 40_000 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        (lengths, masked, sizes, pauses) => {
          const payloads = lengths.map((length, i) => patternBytes(length, i + 11));
          const stream = concat(...payloads.map((p) => frame({ opcode: 2, payload: p, mask: masked ? KEY : null })));
          const sink = new PartSink();
          const r = new FrameReader(sink, { expectMasked: masked, allowRsv1: false });
          let part = 0;
          // Like a decompressor: wait for asynchronous work on some parts.
          const show = sink.framePayloadPart.bind(sink);
          sink.framePayloadPart = (bytes) => {
            if (pauses[part++ % pauses.length]!) r.pause();
            return show(bytes);
          };
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const end = Math.min(stream.length, at + sizes[i % sizes.length]!);
            r.push(stream.subarray(at, end));
            at = end;
            if (i % 3 === 2) r.resume();
          }
          // Each resume runs until the next pausing part: bounded by the number of parts.
          const count = (): number => sink.calls.filter((c) => c.kind === 'payload').length;
          for (let i = 0; i < 10_000 && count() < payloads.length; i++) r.resume();
          expect(sink.errors).toEqual([]);
          const delivered = sink.calls.flatMap((c) => (c.kind === 'payload' ? [Buffer.from(c.payload)] : []));
          expect(delivered.map((p) => p.length)).toEqual(lengths);
          delivered.forEach((p, i) => expect(p.equals(payloads[i]!)).toBe(true));
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('delivers a payload trickled a byte per read intact, from staged blocks', () => {
    const sink = new RecordingSink();
    const r = new FrameReader(sink, SERVER);
    const payload = patternBytes(40_000, 6);
    for (const piece of chunksOf(frame({ opcode: 2, payload, mask: KEY }), 1)) r.push(piece);
    expect(sink.payloads).toEqual([toHex(payload)]);
    expect(r.bufferedBytes).toBe(0);
  });

  it('shows each new part of a masked payload to the sink unmasked, and the whole payload at the end', () => {
    const sink = new PartSink();
    const r = new FrameReader(sink, SERVER);
    const payload = patternBytes(1000, 3);
    const bytes = frame({ opcode: 1, payload, mask: KEY });
    // Odd cut points, so parts start at every offset modulo 4 of the mask key.
    for (const piece of splitAt(bytes, [3, 9, 10, 17, 30, 31, 555, 556, 1003])) r.push(piece);
    expect(sink.payloads).toEqual([toHex(payload)]);
    const parts = concat(...sink.parts);
    // Header 8 bytes (16-bit length, key): every payload byte before the last read, 995 of them.
    expect(parts.length).toBe(995);
    expect(toHex(parts)).toBe(toHex(payload.subarray(0, parts.length)));
  });

  it('stops and reports the error a part is answered with, before the rest of the payload arrives', () => {
    const sink = new PartSink();
    sink.failAtPartBytes = 10;
    const r = new FrameReader(sink, CLIENT);
    r.push(concat(hex('81 7e 03 e8'), patternBytes(10)));
    expect(sink.errors).toEqual(['WS_ERR_INVALID_UTF8']);
    r.push(patternBytes(990));
    expect(sink.calls.filter((c) => c.kind === 'payload')).toEqual([]);
    expect(r.bufferedBytes).toBe(0);
  });

  it('does not show parts of a payload that arrives in one read', () => {
    const sink = new PartSink();
    const r = new FrameReader(sink, SERVER);
    r.push(frame({ opcode: 1, payload: patternBytes(1000), mask: KEY }));
    expect(sink.parts).toEqual([]);
    expect(sink.payloads).toHaveLength(1);
  });

  it('copies small reads that wait behind a pause into shared blocks, not one buffer each', () => {
    const { allocate, sizes } = countingAllocator();
    const sink = new RecordingSink();
    const r = new FrameReader(sink, { ...SERVER, allocate });
    sink.onPayload = () => r.pause();
    const first = frame({ opcode: 2, payload: Uint8Array.of(1), mask: KEY });
    const later = Array.from({ length: 2000 }, (_, i) => frame({ opcode: 2, payload: patternBytes(20, i + 1), mask: KEY }));
    r.push(first);
    // 52,000 bytes in one-byte reads while paused.
    for (const piece of chunksOf(concat(...later), 1)) r.push(piece);
    expect(r.bufferedBytes).toBe(52_000);
    expect(sizes).toEqual([16384, 16384, 16384, 16384]);
    sink.onPayload = null;
    r.resume();
    expect(sink.payloads).toEqual(['01', ...Array.from({ length: 2000 }, (_, i) => toHex(patternBytes(20, i + 1)))]);
    expect(r.bufferedBytes).toBe(0);
  });

  it('parses a header trickled one byte per read', () => {
    const sink = new RecordingSink();
    const r = new FrameReader(sink, SERVER);
    const bytes = concat(frame({ opcode: 2, payload: patternBytes(70_000, 4), mask: KEY }), frame({ opcode: 9, payload: 'p', mask: KEY }));
    for (const piece of chunksOf(bytes.subarray(0, 14), 1)) r.push(piece);
    expect(sink.calls).toEqual([{ kind: 'header', fin: true, rsv1: false, opcode: 2, length: 70_000 }]);
    for (const piece of chunksOf(bytes.subarray(14), 3)) r.push(piece);
    expect(sink.payloads).toEqual([toHex(patternBytes(70_000, 4)), '70']);
  });

  it('parses frames fed in tiny reads, pausing after some, the same as whole (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ length: fc.integer({ min: 0, max: 3000 }), pause: fc.boolean() }), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 30 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        (specs, masked, sizes, key) => {
          const payloads = specs.map((spec, i) => patternBytes(spec.length, i + 3));
          const stream = concat(...payloads.map((p) => frame({ opcode: 2, payload: p, mask: masked ? key : null })));
          const sink = new PartSink();
          const r = new FrameReader(sink, { expectMasked: masked, allowRsv1: false });
          let delivered = 0;
          sink.onPayload = () => {
            if (specs[delivered++]!.pause) r.pause();
          };
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const end = Math.min(stream.length, at + sizes[i % sizes.length]!);
            r.push(stream.slice(at, end));
            at = end;
            // Resume every so often, as an I/O layer would once its asynchronous work ends.
            if (i % 50 === 49) r.resume();
          }
          for (let i = 0; i < specs.length; i++) r.resume();
          expect(sink.errors).toEqual([]);
          expect(sink.payloads).toEqual(payloads.map(toHex));
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('gathers, unmasks and reports parts the same at any split (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        (lengths, masked, cuts, key) => {
          const payloads = lengths.map((n, i) => patternBytes(n, i + 7));
          const stream = concat(...payloads.map((p) => frame({ opcode: 2, payload: p, mask: masked ? key : null })));
          const sink = new PartSink();
          const r = new FrameReader(sink, { expectMasked: masked, allowRsv1: false });
          const seen: number[] = [];
          sink.onPayload = () => seen.push(sink.parts.length);
          for (const piece of splitAt(stream, cuts)) r.push(piece);
          expect(sink.errors).toEqual([]);
          expect(sink.payloads).toEqual(payloads.map(toHex));
          // The parts shown before each payload are a prefix of it.
          let from = 0;
          payloads.forEach((p, i) => {
            const shown = concat(...sink.parts.slice(from, seen[i]));
            expect(toHex(shown)).toBe(toHex(p.subarray(0, shown.length)));
            expect(shown.length).toBeLessThan(Math.max(1, p.length));
            from = seen[i]!;
          });
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('FrameReader: payloads under 64 KiB split across reads', () => {
  /** The payloads delivered, as Buffers for byte-for-byte comparison. */
  function deliveredPayloads(sink: RecordingSink): Buffer[] {
    return sink.calls.flatMap((c) => (c.kind === 'payload' ? [Buffer.from(c.payload)] : []));
  }

  const roles: [string, FrameReaderOptions][] = [
    ['masked (server side)', SERVER],
    ['unmasked (client side)', CLIENT],
  ];

  it.each(roles)('delivers a payload, %s, cut into two reads at every offset, inside header and key too', (_, options) => {
    // 1,001 bytes: pieces of every length, so both sides of the mask's 128- and 256-byte paths, at every offset modulo 4.
    const payload = patternBytes(1001, 21);
    const mask = options.expectMasked ? KEY : null;
    const bytes = concat(frame({ opcode: 2, payload, mask }), frame({ opcode: 9, payload: 'next', mask }));
    for (let cut = 1; cut < bytes.length; cut++) {
      const sink = new PartSink();
      const r = new FrameReader(sink, options);
      let partsBefore = -1;
      sink.onPayload = () => {
        if (partsBefore < 0) partsBefore = sink.parts.length;
      };
      r.push(bytes.slice(0, cut));
      r.push(bytes.slice(cut));
      expect(sink.errors, `cut at ${cut}`).toEqual([]);
      const [whole, next] = deliveredPayloads(sink);
      expect(whole?.equals(payload), `cut at ${cut}`).toBe(true);
      expect(next?.toString(), `cut at ${cut}`).toBe('next');
      // What the sink was shown before the payload was complete is its prefix, already unmasked.
      const shown = Buffer.from(concat(...sink.parts.slice(0, partsBefore)));
      expect(shown.equals(payload.subarray(0, shown.length)), `cut at ${cut}`).toBe(true);
      expect(r.bufferedBytes).toBe(0);
    }
  });

  it.each(roles)('delivers a payload, %s, cut into three reads at every pair of offsets', (_, options) => {
    // 130 bytes: a 16-bit length, and a payload just over the mask's 128-byte word path.
    const payload = patternBytes(130, 22);
    const bytes = frame({ opcode: 2, payload, mask: options.expectMasked ? KEY : null });
    let checked = 0;
    for (let a = 1; a < bytes.length - 1; a++) {
      for (let b = a + 1; b < bytes.length; b++) {
        const sink = new RecordingSink();
        const r = new FrameReader(sink, options);
        r.push(bytes.slice(0, a));
        r.push(bytes.slice(a, b));
        r.push(bytes.slice(b));
        const delivered = deliveredPayloads(sink);
        if (delivered.length !== 1 || !delivered[0]!.equals(payload))
          expect.fail(`cuts at ${a} and ${b}: ${toHex(delivered[0] ?? new Uint8Array(0))}`);
        checked++;
      }
    }
    expect(checked).toBe(((bytes.length - 2) * (bytes.length - 1)) / 2);
  });

  it('delivers payloads up to 65,535 bytes over many reads of any size the same as whole (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 65_535 }), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        (lengths, masked, key, sizes, pauseOnParts) => {
          const payloads = lengths.map((n, i) => patternBytes(n, i + 31));
          const stream = concat(...payloads.map((p) => frame({ opcode: 2, payload: p, mask: masked ? key : null })));
          const sink = new PartSink();
          const r = new FrameReader(sink, { expectMasked: masked, allowRsv1: false });
          // Like a sink that checks UTF-8 or inflates: it may wait on a part while more reads arrive.
          const show = sink.framePayloadPart.bind(sink);
          sink.framePayloadPart = (part) => {
            if (pauseOnParts) r.pause();
            return show(part);
          };
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const end = Math.min(stream.length, at + sizes[i % sizes.length]!);
            r.push(stream.subarray(at, end));
            at = end;
            if (i % 2 === 1) r.resume();
          }
          for (let i = 0; i < 10_000 && deliveredPayloads(sink).length < payloads.length; i++) r.resume();
          expect(sink.errors).toEqual([]);
          const delivered = deliveredPayloads(sink);
          expect(delivered.map((p) => p.length)).toEqual(lengths);
          delivered.forEach((p, i) => expect(p.equals(payloads[i]!)).toBe(true));
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 800 },
    );
  });

  it('delivers a text payload whose first parts were shown unmasked before it was complete without unmasking them twice', () => {
    const text = 'Grüße, señor ✓ — 日本語 '.repeat(20);
    const payload = new TextEncoder().encode(text);
    const bytes = frame({ opcode: 1, payload, mask: KEY });
    // Header and key are 8 bytes; parts end at payload offsets 1, 6 and 303 (none a multiple of 4).
    const pieces = splitAt(bytes, [9, 14, 311]);
    const sink = new PartSink();
    const r = new FrameReader(sink, SERVER);
    for (const piece of pieces) r.push(piece);
    expect(sink.parts.map((p) => p.length)).toEqual([1, 5, 297]);
    expect(new TextDecoder().decode(concat(...sink.parts))).toBe(new TextDecoder().decode(payload.subarray(0, 303)));
    expect(sink.errors).toEqual([]);
    expect(new TextDecoder().decode(deliveredPayloads(sink)[0])).toBe(text);
  });

  it('delivers a payload whose sink paused on its first part while the rest arrived', () => {
    const payload = patternBytes(5000, 23);
    const sink = new PartSink();
    const r = new FrameReader(sink, SERVER);
    const show = sink.framePayloadPart.bind(sink);
    sink.framePayloadPart = (part) => {
      r.pause();
      return show(part);
    };
    for (const piece of splitAt(frame({ opcode: 1, payload, mask: KEY }), [11, 1003, 2222])) r.push(piece);
    expect(sink.parts.map((p) => p.length)).toEqual([3]);
    r.resume();
    expect(sink.parts.map((p) => p.length)).toEqual([3]);
    expect(deliveredPayloads(sink)[0]?.equals(payload)).toBe(true);
  });

  it('copies the bytes already shown as they are and unmasks the rest, when both lie in one staged read', () => {
    const payload = patternBytes(300, 24);
    const bytes = frame({ opcode: 2, payload, mask: KEY });
    const sink = new PartSink();
    const r = new FrameReader(sink, SERVER);
    // Header and key, then 20 one-byte reads: after eight kept as they are,
    // the rest go into a staging block, which the last read (the other 280
    // bytes) joins too, behind the twelve bytes already shown from it.
    r.push(bytes.subarray(0, 8));
    for (let i = 8; i < 28; i++) r.push(bytes.slice(i, i + 1));
    expect(concat(...sink.parts).length).toBe(20);
    r.push(bytes.slice(28));
    expect(deliveredPayloads(sink)[0]?.equals(payload)).toBe(true);
  });
});
