import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeBatch,
  decodeCheckpoint,
  decodePointers,
  encodeBatch,
  encodeCheckpoint,
  encodePointers,
  type DrawingCommand,
} from '../../../src/apps/canvas/log-codec.js';

/** What canvas nodes tell each other through the broker: every message reads back as written; anything else reads as null. */

const u16 = fc.integer({ min: 0, max: 0xffff });
const visitor = fc.integer({ min: 1, max: 0xffffffff });
const command: fc.Arbitrary<DrawingCommand> = fc.oneof(
  fc.record({
    op: fc.constant('begin' as const),
    visitor,
    colour: fc.integer({ min: 0, max: 0xffffff }),
    width: fc.integer({ min: 1, max: 64 }),
    x: u16,
    y: u16,
  }),
  fc.record({
    op: fc.constant('points' as const),
    visitor,
    points: fc.array(fc.tuple(u16, u16), { minLength: 1, maxLength: 40 }).map((pairs) => pairs.flat()),
  }),
  fc.record({ op: fc.constantFrom('end' as const, 'undo' as const, 'clear' as const), visitor }),
);

describe('canvas log codec', () => {
  it('reads back every batch as written (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        fc.boolean(),
        fc.array(command, { maxLength: 20 }),
        (node, seq, checkpoint, request, commands) => {
          const batch = { node, seq, checkpoint, request, commands };
          expect(decodeBatch(encodeBatch(batch))).toEqual(batch);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads back pointers and checkpoints as written', () => {
    const pointers = [
      { id: 1, x: 0, y: 65535 },
      { id: 0xffffffff, x: 123, y: 456 },
    ];
    expect(decodePointers(encodePointers(pointers))).toEqual(pointers);
    const checkpoint = {
      position: { epoch: 'e-1f3a', offset: 2 ** 40 },
      nextStrokeId: 12,
      strokes: [
        { id: 3, visitor: 9, colour: 0x112233, width: 4, open: false, points: [1, 2, 3, 4] },
        { id: 11, visitor: 10, colour: 0xffffff, width: 64, open: true, points: [65535, 0] },
      ],
    };
    expect(decodeCheckpoint(encodeCheckpoint(checkpoint))).toEqual(checkpoint);
  });

  it('reads a truncated message, a message with bytes left over, an unknown op or another kind as null', () => {
    const batch = encodeBatch({
      node: 'n',
      seq: 1,
      checkpoint: false,
      request: false,
      commands: [{ op: 'begin', visitor: 1, colour: 0, width: 1, x: 1, y: 1 }],
    });
    for (let cut = 0; cut < batch.length; cut++) {
      // Every prefix that is not a whole batch: the commands end where the message ends, so only cuts between commands are whole.
      const decoded = decodeBatch(batch.subarray(0, cut));
      if (decoded !== null) expect(decoded.commands).toEqual([]);
    }
    expect(decodeBatch(new Uint8Array([...batch, 0]))).toBeNull();
    const unknown = encodeBatch({ node: 'n', seq: 1, checkpoint: false, request: false, commands: [{ op: 'end', visitor: 1 }] });
    unknown[unknown.length - 5] = 9;
    expect(decodeBatch(unknown)).toBeNull();
    expect(decodeBatch(encodePointers([]))).toBeNull();
    expect(decodePointers(new Uint8Array([2, 1, 0, 0]))).toBeNull();
    const checkpoint = encodeCheckpoint({ position: { epoch: 'e', offset: 1 }, nextStrokeId: 1, strokes: [] });
    expect(decodeCheckpoint(checkpoint.subarray(0, checkpoint.length - 1))).toBeNull();
  });
});
