import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompressionCodec } from '../../src/protocol/codec.js';
import { Opcode } from '../../src/protocol/opcode.js';
import { Role } from '../../src/protocol/role.js';
import { closePayload, makeProtocol, peerFrame, utf8 } from './helpers.js';

/**
 * The sending side's count of data waiting for the compressor
 * (`pendingSendBytes`, payloads plus the headers they will carry) and whether a compression is still under way
 * (`sendInProgress`): the I/O layer's backpressure and its closing order
 * rely on both.
 */

/** A codec whose compressions wait until the test settles them, oldest first. */
class HeldCodec implements CompressionCodec {
  readonly waiting: Array<(error: Error | null) => void> = [];

  compress(data: Uint8Array, _fin: boolean, done: (error: Error | null, output: Uint8Array | null) => void): void {
    const copy = data.slice();
    this.waiting.push((error) => (error === null ? done(null, copy) : done(error, null)));
  }

  decompress(
    data: Uint8Array,
    _fin: boolean,
    _limit: number,
    done: (error: Error | null, output: Uint8Array[] | null, tooBig: boolean) => void,
  ): void {
    done(null, [data.slice()], false);
  }

  close(): void {}

  settleNext(error: Error | null = null): void {
    const next = this.waiting.shift();
    if (next === undefined) throw new Error('no compression is waiting');
    next(error);
  }
}

/** A server's unmasked frame of `n` payload bytes: payload plus a 2-, 4- or 10-byte header (RFC 6455 §5.2). */
function weight(n: number): number {
  return (
    n +
    (n < 126 ? 2
    : n < 65536 ? 4
    : 10)
  );
}

function deflating(role: Role = Role.Server) {
  const codec = new HeldCodec();
  const { protocol, host } = makeProtocol(role, { deflate: { codec, threshold: 0 } });
  return { codec, protocol, host };
}

describe('Protocol pendingSendBytes and sendInProgress', () => {
  it('count the message being compressed and every frame queued behind it, headers included, and fall to zero as they come out', () => {
    const { codec, protocol, host } = deflating();
    expect(protocol.pendingSendBytes).toBe(0);
    expect(protocol.sendInProgress).toBe(false);

    protocol.send(new Uint8Array(1000), true);
    expect(protocol.pendingSendBytes).toBe(weight(1000));
    expect(protocol.sendInProgress).toBe(true);
    protocol.send(new Uint8Array(300), true);
    protocol.ping(utf8('abc'));
    protocol.send(new Uint8Array(20), true, false);
    expect(protocol.pendingSendBytes).toBe(weight(1000) + weight(300) + weight(3) + weight(20));
    expect(host.writes).toHaveLength(0);

    // The first compression ends: its frame comes out, the next message starts compressing.
    codec.settleNext();
    expect(host.writes).toHaveLength(1);
    expect(protocol.pendingSendBytes).toBe(weight(300) + weight(3) + weight(20));
    expect(protocol.sendInProgress).toBe(true);

    // The second ends: the ping and the uncompressed message behind it come out too.
    codec.settleNext();
    expect(host.frames().map((f) => f.opcode)).toEqual([Opcode.Binary, Opcode.Binary, Opcode.Ping, Opcode.Binary]);
    expect(protocol.pendingSendBytes).toBe(0);
    expect(protocol.sendInProgress).toBe(false);
  });

  it('count a close reply queued behind a compression, so the I/O layer knows not to end yet', () => {
    const { codec, protocol, host } = deflating();
    protocol.send(new Uint8Array(64), true);
    protocol.receive(peerFrame(Role.Server, { opcode: Opcode.Close, payload: closePayload(1000) }));
    expect(protocol.sendInProgress).toBe(true);
    expect(protocol.pendingSendBytes).toBe(weight(64) + weight(2));
    expect(host.writes).toHaveLength(0);
    codec.settleNext();
    expect(protocol.sendInProgress).toBe(false);
    expect(protocol.pendingSendBytes).toBe(0);
    const frames = host.frames();
    expect(frames.map((f) => f.opcode)).toEqual([Opcode.Binary, Opcode.Close]);
    expect(Array.from(frames[1]!.payload)).toEqual([0x03, 0xe8]);
  });

  it('count pongs to empty pings queued behind a compression: two header bytes each', () => {
    const { codec, protocol, host } = deflating();
    protocol.send(new Uint8Array(10), true);
    const ping = peerFrame(Role.Server, { opcode: Opcode.Ping });
    const pings = new Uint8Array(ping.length * 1000);
    for (let i = 0; i < 1000; i++) pings.set(ping, i * ping.length);
    protocol.receive(pings);
    expect(host.ofType('ping')).toHaveLength(1000);
    expect(protocol.pendingSendBytes).toBe(weight(10) + 1000 * weight(0));
    codec.settleNext();
    expect(protocol.pendingSendBytes).toBe(0);
    expect(host.writes).toHaveLength(1001);
  });

  it('drop to zero when a compression fails and the frames behind it are discarded', () => {
    const { codec, protocol, host } = deflating();
    protocol.send(new Uint8Array(500), true);
    protocol.send(new Uint8Array(700), true);
    expect(protocol.pendingSendBytes).toBe(weight(500) + weight(700));
    codec.settleNext(new Error('zlib broke'));
    expect(protocol.pendingSendBytes).toBe(0);
    expect(protocol.sendInProgress).toBe(false);
    expect(host.frames().map((f) => f.opcode)).toEqual([Opcode.Close]);
  });

  it('stay zero without compression', () => {
    const { protocol, host } = makeProtocol(Role.Client);
    protocol.send(new Uint8Array(5000), true);
    protocol.ping();
    expect(protocol.pendingSendBytes).toBe(0);
    expect(protocol.sendInProgress).toBe(false);
    expect(host.writes).toHaveLength(2);
  });

  it('always equal the bytes not yet written, whatever the order of sends and completions', () => {
    // Each step: send a message of some size (compressed or not), a ping, or settle the oldest compression.
    const step = fc.oneof(
      fc.record({ kind: fc.constant('send' as const), size: fc.nat(2000), compress: fc.boolean() }),
      fc.record({ kind: fc.constant('ping' as const), size: fc.nat(125) }),
      fc.record({ kind: fc.constant('settle' as const) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const { codec, protocol, host } = deflating();
        let accepted = 0;
        const written = (): number => host.writes.reduce((sum, w) => sum + weight(w.payload.length), 0);
        for (const s of steps) {
          if (s.kind === 'send') {
            protocol.send(new Uint8Array(s.size), true, s.compress);
            accepted += weight(s.size);
          } else if (s.kind === 'ping') {
            protocol.ping(new Uint8Array(s.size));
            accepted += weight(s.size);
          } else if (codec.waiting.length > 0) {
            codec.settleNext();
          }
          // The held codec's output is its input, so what is not written yet is exactly what is pending.
          expect(protocol.pendingSendBytes).toBe(accepted - written());
          expect(protocol.sendInProgress).toBe(codec.waiting.length > 0);
        }
        while (codec.waiting.length > 0) codec.settleNext();
        expect(protocol.pendingSendBytes).toBe(0);
        expect(written()).toBe(accepted);
      }),
      { numRuns: 200 },
    );
  });
});
