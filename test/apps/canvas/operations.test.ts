import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Board } from '../../../src/apps/canvas/board.js';
import { applyOperation, drawingFrom, isDrawingOperation, type DrawingOperation } from '../../../src/apps/canvas/operations.js';
import type { StrokeInfo } from '../../../src/apps/canvas/wire/codec.js';

/**
 * The drawing as an ordered log: whatever visitors do (draw, undo, clear,
 * with the size limits trimming), a snapshot taken after any batch, plus the
 * drawing operations of the batches after it, gives the board's current
 * snapshot. That is the property a topic history (snapshot + operations)
 * will rely on.
 */

type Action =
  | { kind: 'begin'; who: number; x: number }
  | { kind: 'points'; who: number; count: number }
  | { kind: 'end'; who: number }
  | { kind: 'undo'; who: number }
  | { kind: 'clear'; who: number }
  | { kind: 'move'; who: number }
  | { kind: 'flush' };

const VISITORS = 3;
const who = fc.integer({ min: 0, max: VISITORS - 1 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('begin' as const), who, x: fc.integer({ min: 0, max: 0xffff }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('points' as const), who, count: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('end' as const), who }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('undo' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), who }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'flush' as const }) },
);

function replay(base: readonly StrokeInfo[], operations: readonly DrawingOperation[]): StrokeInfo[] {
  const state = drawingFrom(base);
  for (const operation of operations) applyOperation(state, operation);
  return [...state.values()];
}

describe('the drawing as an ordered log of operations', () => {
  it('rebuilds the current drawing from any earlier snapshot and the operations after it (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 80 }), fc.nat(), (actions, pick) => {
        // Small limits, so that trims happen too.
        const board = new Board({ limits: { maxStrokePoints: 6, maxPoints: 12, maxStrokes: 4 } });
        const ids: number[] = [];
        for (let i = 0; i < VISITORS; i++) {
          const joined = board.join('');
          if (!joined.ok) throw new Error(joined.error.message);
          ids.push(joined.visitor.id);
        }
        board.flush();
        // Snapshots taken after each flush, each with the operations that followed it.
        const checkpoints: Array<{ strokes: StrokeInfo[]; after: DrawingOperation[] }> = [{ strokes: board.snapshot().strokes, after: [] }];
        const flush = (): void => {
          const operations = board.flush().filter(isDrawingOperation);
          for (const checkpoint of checkpoints) checkpoint.after.push(...operations);
          checkpoints.push({ strokes: structuredClone(board.snapshot().strokes), after: [] });
        };
        let coordinate = 0;
        for (const step of actions) {
          const id = step.kind === 'flush' ? 0 : ids[step.who]!;
          switch (step.kind) {
            case 'begin':
              board.beginStroke(id, 0x123456, 2, step.x, step.x);
              break;
            case 'points':
              board.addPoints(
                id,
                Array.from({ length: step.count * 2 }, () => coordinate++ % 0x10000),
              );
              break;
            case 'end':
              board.endStroke(id);
              break;
            case 'undo':
              board.undo(id);
              break;
            case 'clear':
              board.clear(id);
              break;
            case 'move':
              board.move(id, 1, 1);
              break;
            case 'flush':
              flush();
              break;
          }
        }
        flush();
        const now = board.snapshot().strokes;
        const checkpoint = checkpoints[pick % checkpoints.length]!;
        expect(replay(checkpoint.strokes, checkpoint.after)).toEqual(now);
        // And from nothing at all: the whole log is the whole drawing.
        expect(replay([], checkpoints[0]!.after)).toEqual(now);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps presence out of the log: joins, moves, renames and departures are not drawing operations', () => {
    const board = new Board();
    const joined = board.join('Ann');
    if (!joined.ok) throw new Error(joined.error.message);
    board.move(joined.visitor.id, 1, 2);
    board.rename(joined.visitor.id, 'Annie');
    board.beginStroke(joined.visitor.id, 0, 1, 0, 0);
    board.endStroke(joined.visitor.id);
    board.leave(joined.visitor.id);
    expect(
      board
        .flush()
        .filter(isDrawingOperation)
        .map((operation) => operation.type),
    ).toEqual(['stroke-begin', 'stroke-end']);
  });
});
