import { describe, expect, it } from 'vitest';
import { Connection } from '../../src/node/connection.js';
import type { CompressionCodec } from '../../src/protocol/codec.js';
import { Role } from '../../src/protocol/role.js';
import { useSocketPairs } from './socket-pair.js';
import { frame, OP } from './raw-client.js';
import { until } from '../wait.js';

/**
 * Limits of a Connection that need a hand-made peer and a hand-made codec:
 * the number of pings awaiting their pong, and reading paused while input
 * piles up behind a slow decompression.
 */

const socketPair = useSocketPairs();

/** A codec whose decompressions wait until the test releases them; output = input. */
function heldCodec(): CompressionCodec & { release(): void; held: number } {
  const waiting: Array<() => void> = [];
  return {
    get held() {
      return waiting.length;
    },
    release() {
      for (const done of waiting.splice(0)) done();
    },
    compress(data, _fin, done) {
      done(null, data);
    },
    decompress(data, _fin, _limit, done) {
      const copy = Uint8Array.from(data);
      waiting.push(() => done(null, [copy], false));
    },
    close() {},
  };
}

describe('Connection limits', () => {
  it('refuses a 33rd ping while 32 await their pong, and rejects them all on close', async () => {
    const [local, peer] = await socketPair();
    peer.pause(); // never answers
    const connection = Connection.adopt(local, { role: Role.Server }, undefined);
    const pending = Array.from({ length: 32 }, () => connection.ping());
    for (const ping of pending) ping.catch(() => {});
    await expect(connection.ping()).rejects.toMatchObject({ code: 'WS_ERR_INVALID_ARGUMENT' });
    connection.terminate();
    const outcomes = await Promise.allSettled(pending);
    expect(outcomes.every((outcome) => outcome.status === 'rejected')).toBe(true);
  });

  it('stops reading while more than 1 MiB waits behind a decompression, and resumes when it ends', async () => {
    const [local, peer] = await socketPair();
    const codec = heldCodec();
    const connection = Connection.adopt(local, { role: Role.Server, deflate: { codec, threshold: 1024 } }, undefined);
    const received: number[] = [];
    connection.on('message', (data) => received.push(data.length));
    // A compressed message (RSV1) the codec holds, then 2 MiB of plain messages behind it.
    peer.write(frame({ opcode: OP.binary, rsv1: true, payload: Buffer.alloc(10, 1) }));
    await until(() => codec.held === 1, 'the decompression to start', 2000);
    const chunk = frame({ opcode: OP.binary, payload: Buffer.alloc(64 * 1024, 2) });
    for (let i = 0; i < 32; i++) peer.write(chunk);
    await until(() => local.isPaused(), 'reading to pause', 2000);
    expect(received).toEqual([]);
    codec.release();
    await until(() => received.length === 33, 'every message after the release', 2000);
    expect(received[0]).toBe(10);
    expect(local.isPaused()).toBe(false);
  });
});
