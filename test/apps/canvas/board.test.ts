import { describe, expect, it } from 'vitest';
import { Board } from '../../../src/apps/canvas/board.js';
import { Drawing } from '../../../src/apps/canvas/drawing.js';
import { InputGuard } from '../../../src/apps/canvas/input-guard.js';
import { checkName, generatedName, hslToRgb, visitorColour } from '../../../src/apps/canvas/names.js';

/** The canvas's state rules: visitors and names, the drawing's bounds, and the input guard. */

function joined(board: Board, name = ''): number {
  const result = board.join(name);
  if (!result.ok) throw new Error(result.error.message);
  return result.visitor.id;
}

/** A one-point stroke by visitor `id` at (x, x). */
function dot(board: Board, id: number, x: number): void {
  expect(board.beginStroke(id, 0, 1, x, x)).toEqual({ ok: true });
  expect(board.endStroke(id)).toEqual({ ok: true });
}

describe('visitors', () => {
  it('gives each visitor its own id and colour, and a made-up name when it chose none', () => {
    const board = new Board();
    const a = board.join('');
    const b = board.join('  Zoe\u0301  ');
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(a.visitor.id).not.toBe(b.visitor.id);
    expect(a.visitor.colour).not.toBe(b.visitor.colour);
    expect(a.visitor.name).toBe(generatedName(a.visitor.id));
    // Trimmed and in NFC.
    expect(b.visitor.name).toBe('Zoé');
    expect(board.flush()).toEqual([
      { type: 'join', id: a.visitor.id, colour: a.visitor.colour, name: a.visitor.name },
      { type: 'join', id: b.visitor.id, colour: b.visitor.colour, name: 'Zoé' },
    ]);
  });

  it('refuses a name that is too long or holds invisible characters, on hello and on rename', () => {
    const board = new Board();
    expect(board.join('x'.repeat(25))).toMatchObject({ ok: false, error: { code: 'invalid_name' } });
    expect(board.join('a\u202eb')).toMatchObject({ ok: false, error: { code: 'invalid_name' } });
    const id = joined(board, 'ok');
    expect(board.rename(id, '   ')).toMatchObject({ ok: false, error: { code: 'invalid_name' } });
    expect(board.rename(id, 'x'.repeat(24))).toEqual({ ok: true });
  });

  it('refuses a visitor past the limit with `full`, and takes one again after someone left', () => {
    const board = new Board({ maxVisitors: 2 });
    const first = joined(board);
    joined(board);
    expect(board.join('')).toMatchObject({ ok: false, error: { code: 'full' } });
    board.leave(first);
    expect(board.join('').ok).toBe(true);
  });

  it('leaves the strokes of a visitor who leaves as they are: ending an open one is a drawing operation of its own', () => {
    const board = new Board();
    const id = joined(board);
    board.beginStroke(id, 0, 1, 0, 0);
    board.addPoints(id, [1, 1]);
    board.flush();
    board.addPoints(id, [2, 2]);
    board.leave(id);
    expect(board.flush()).toEqual([
      { type: 'leave', id },
      { type: 'stroke-points', id: 1, points: [2, 2] },
    ]);
    expect(board.snapshot().strokes).toEqual([{ id: 1, visitor: id, colour: 0, width: 1, open: true, points: [0, 0, 1, 1, 2, 2] }]);
    // The log's end for it still applies after the departure (it may come from another node later).
    expect(board.endStroke(id)).toEqual({ ok: true });
    expect(board.flush()).toEqual([{ type: 'stroke-end', id: 1 }]);
  });

  it('draws for a visitor id it does not know (one of another node, whose arrival is not here yet)', () => {
    const board = new Board();
    expect(board.beginStroke(77, 0xff0000, 2, 5, 5)).toEqual({ ok: true });
    expect(board.addPoints(77, [6, 6])).toEqual({ ok: true });
    expect(board.endStroke(77)).toEqual({ ok: true });
    expect(board.snapshot()).toEqual({
      type: 'snapshot',
      visitors: [],
      strokes: [{ id: 1, visitor: 77, colour: 0xff0000, width: 2, open: false, points: [5, 5, 6, 6] }],
    });
  });

  it('takes visitor ids given by the caller, refusing one already here', () => {
    const board = new Board();
    expect(board.join('Ann', 40)).toMatchObject({ ok: true, visitor: { id: 40, name: 'Ann' } });
    expect(board.join('', 41)).toMatchObject({ ok: true, visitor: { id: 41, name: generatedName(41) } });
    expect(board.join('Bob', 40)).toMatchObject({ ok: false, error: { code: 'already_joined' } });
    expect(board.nameOf(40)).toBe('Ann');
  });

  it('announces a rename only when the name changes', () => {
    const board = new Board();
    const id = joined(board, 'Ann');
    board.flush();
    expect(board.rename(id, ' Ann ')).toEqual({ ok: true });
    expect(board.flush()).toEqual([]);
    expect(board.rename(id, 'Annie')).toEqual({ ok: true });
    expect(board.flush()).toEqual([{ type: 'renamed', id, name: 'Annie' }]);
  });

  it('restores a drawing from a checkpoint: strokes, open ones still taking points, and the next id', () => {
    const board = new Board();
    const first = new Board();
    dot(first, 1, 1);
    first.beginStroke(2, 0, 1, 2, 2);
    first.addPoints(2, [3, 3]);
    const state = first.drawingState();
    expect(state.nextStrokeId).toBe(3);
    board.restoreDrawing(state.strokes, state.nextStrokeId);
    expect(board.flush()).toEqual([]);
    // The same operations applied to both give the same drawing.
    for (const target of [first, board]) {
      target.addPoints(2, [4, 4]);
      target.endStroke(2);
      dot(target, 1, 9);
    }
    expect(board.drawingState()).toEqual(first.drawingState());
    expect(board.drawing.pointCount).toBe(first.drawing.pointCount);
  });

  it('answers stroke messages without an open stroke with `no_stroke`, and unknown visitors with `not_joined`', () => {
    const board = new Board();
    const id = joined(board);
    expect(board.addPoints(id, [1, 1])).toMatchObject({ ok: false, error: { code: 'no_stroke' } });
    expect(board.endStroke(id)).toMatchObject({ ok: false, error: { code: 'no_stroke' } });
    expect(board.move(999, 1, 1)).toMatchObject({ ok: false, error: { code: 'not_joined' } });
    expect(board.rename(999, 'x')).toMatchObject({ ok: false, error: { code: 'not_joined' } });
  });

  it('makes colours from hues a golden angle apart, as 0xRRGGBB', () => {
    expect(hslToRgb(0, 1, 0.5)).toBe(0xff0000);
    expect(hslToRgb(120, 1, 0.5)).toBe(0x00ff00);
    expect(hslToRgb(240, 1, 0.5)).toBe(0x0000ff);
    const colours = new Set(Array.from({ length: 50 }, (_, id) => visitorColour(id + 1)));
    expect(colours.size).toBe(50);
    expect(checkName(generatedName(12345)).ok).toBe(true);
  });
});

describe('the drawing and its bounds', () => {
  it('refuses points past a stroke’s limit with `stroke_too_long`, keeping those that fit', () => {
    const board = new Board({ limits: { maxStrokePoints: 4, maxPoints: 100 } });
    const id = joined(board);
    board.beginStroke(id, 0, 1, 0, 0);
    expect(board.addPoints(id, [1, 1, 2, 2])).toEqual({ ok: true });
    expect(board.addPoints(id, [3, 3, 4, 4])).toMatchObject({ ok: false, error: { code: 'stroke_too_long' } });
    expect(board.drawing.pointCount).toBe(4);
    // A snapshot holds what was announced: nothing of the new points until the batch is out.
    expect(board.snapshot().strokes[0]!.points).toEqual([0, 0]);
    board.flush();
    expect(board.snapshot().strokes[0]!.points).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });

  it('drops the oldest strokes when the drawing has too many points, and tells everyone with one trim', () => {
    const board = new Board({ limits: { maxStrokePoints: 4, maxPoints: 6 } });
    const id = joined(board);
    for (let stroke = 0; stroke < 3; stroke++) {
      board.beginStroke(id, 0, 1, stroke, stroke);
      board.addPoints(id, [stroke, 1]);
      board.endStroke(id);
    }
    expect(board.drawing.strokeCount).toBe(3);
    expect(board.drawing.pointCount).toBe(6);
    board.flush();
    board.beginStroke(id, 0, 1, 9, 9);
    board.addPoints(id, [9, 10]);
    expect(board.flush()).toEqual([
      { type: 'stroke-begin', id: 4, visitor: id, colour: 0, width: 1, x: 9, y: 9 },
      { type: 'trim', before: 2 },
      { type: 'stroke-points', id: 4, points: [9, 10] },
    ]);
    expect(board.snapshot().strokes.map((stroke) => stroke.id)).toEqual([2, 3, 4]);
    expect(board.drawing.pointCount).toBe(6);
  });

  it('drops the oldest strokes past the stroke count limit', () => {
    const drawing = new Drawing({ maxStrokes: 2 });
    const first = drawing.begin(1, 0, 1, 0, 0);
    drawing.begin(1, 0, 1, 0, 0);
    expect(drawing.takeTrim()).toBe(null);
    drawing.begin(1, 0, 1, 0, 0);
    expect(drawing.has(first)).toBe(false);
    expect(drawing.takeTrim()).toBe(2);
    expect(drawing.takeTrim()).toBe(null);
    expect([...drawing.all()].map((stroke) => stroke.id)).toEqual([2, 3]);
  });

  it('quietly drops points for an open stroke that the limit removed, and ends nothing twice', () => {
    const board = new Board({ limits: { maxStrokePoints: 3, maxPoints: 3 } });
    const a = joined(board);
    const b = joined(board);
    board.beginStroke(a, 0, 1, 0, 0);
    board.beginStroke(b, 0, 1, 5, 5);
    board.addPoints(b, [6, 6, 7, 7]);
    expect(board.drawing.strokeCount).toBe(1);
    board.flush();
    expect(board.addPoints(a, [1, 1])).toEqual({ ok: true });
    expect(board.endStroke(a)).toEqual({ ok: true });
    expect(board.flush()).toEqual([]);
  });

  it('refuses limits that cannot work', () => {
    expect(() => new Drawing({ maxPoints: 10, maxStrokePoints: 20 })).toThrow(RangeError);
    expect(() => new Drawing({ maxStrokes: 0 })).toThrow(RangeError);
    expect(() => new Drawing({ maxStrokePoints: 70_000, maxPoints: 100_000 })).toThrow(RangeError);
  });
});

describe('undo and clear', () => {
  /** A finished stroke of one point for visitor `id`. */
  it('undoes the asking visitor’s own latest stroke, never someone else’s, one more with each undo', () => {
    const board = new Board();
    const ann = joined(board);
    const bob = joined(board);
    dot(board, ann, 1);
    dot(board, ann, 2);
    dot(board, bob, 3);
    board.flush();
    expect(board.undo(ann)).toEqual({ ok: true });
    expect(board.flush()).toEqual([{ type: 'stroke-undone', id: 2 }]);
    expect(board.snapshot().strokes.map((stroke) => stroke.id)).toEqual([1, 3]);
    expect(board.undo(ann)).toEqual({ ok: true });
    expect(board.undo(ann)).toMatchObject({ ok: false, error: { code: 'nothing_to_undo' } });
    expect(board.flush()).toEqual([{ type: 'stroke-undone', id: 1 }]);
    expect(board.snapshot().strokes.map((stroke) => stroke.id)).toEqual([3]);
    expect(board.drawing.pointCount).toBe(1);
    // Undo is resolved for whoever the log names, here or not: an id with no stroke has nothing to undo.
    expect(board.undo(999)).toMatchObject({ ok: false, error: { code: 'nothing_to_undo' } });
  });

  it('undoes a stroke still being drawn: its unannounced points are not sent, the points after it are dropped quietly', () => {
    const board = new Board();
    const ann = joined(board);
    board.beginStroke(ann, 0, 1, 0, 0);
    board.flush();
    board.addPoints(ann, [1, 1]);
    expect(board.undo(ann)).toEqual({ ok: true });
    expect(board.addPoints(ann, [2, 2])).toEqual({ ok: true });
    expect(board.endStroke(ann)).toEqual({ ok: true });
    expect(board.flush()).toEqual([{ type: 'stroke-undone', id: 1 }]);
    expect(board.snapshot().strokes).toEqual([]);
    expect(board.drawing.pointCount).toBe(0);
    // The next stroke is a new one with a new id.
    dot(board, ann, 5);
    expect(board.snapshot().strokes.map((stroke) => stroke.id)).toEqual([2]);
  });

  it('clears every stroke, open ones included, and tells who cleared; ids go on counting', () => {
    const board = new Board();
    const ann = joined(board);
    const bob = joined(board);
    board.flush();
    dot(board, ann, 1);
    board.beginStroke(bob, 0, 1, 2, 2);
    board.addPoints(bob, [3, 3]);
    expect(board.clear(ann)).toEqual({ ok: true });
    expect(board.addPoints(bob, [4, 4])).toEqual({ ok: true });
    expect(board.flush()).toEqual([
      { type: 'stroke-begin', id: 1, visitor: ann, colour: 0, width: 1, x: 1, y: 1 },
      { type: 'stroke-end', id: 1 },
      { type: 'stroke-begin', id: 2, visitor: bob, colour: 0, width: 1, x: 2, y: 2 },
      { type: 'cleared', by: ann },
    ]);
    expect(board.snapshot().strokes).toEqual([]);
    expect(board.drawing.strokeCount).toBe(0);
    expect(board.drawing.pointCount).toBe(0);
    expect(board.undo(ann)).toMatchObject({ ok: false, error: { code: 'nothing_to_undo' } });
    dot(board, bob, 9);
    expect(board.snapshot().strokes.map((stroke) => stroke.id)).toEqual([3]);
    // A clear from a visitor of another node counts the same.
    expect(board.clear(999)).toEqual({ ok: true });
    expect(board.snapshot().strokes).toEqual([]);
  });
});

describe('input guard', () => {
  it('accepts up to `maxUndosPerSecond` undos in one second, and one clear per `clearIntervalMs`', () => {
    const guard = new InputGuard({ maxUndosPerSecond: 2, clearIntervalMs: 3000 });
    expect([guard.undo(0), guard.undo(10), guard.undo(20)]).toEqual([true, true, false]);
    expect(guard.undo(1000)).toBe(true);
    expect([guard.clear(0), guard.clear(2999), guard.clear(3000), guard.clear(3001)]).toEqual([true, false, true, false]);
  });

  it('accepts up to the limit in one second and refuses the next, then starts afresh a second later', () => {
    const guard = new InputGuard({ maxMessagesPerSecond: 3 });
    expect([guard.message(0), guard.message(10), guard.message(20), guard.message(30)]).toEqual([true, true, true, false]);
    expect(guard.message(1000)).toBe(true);
  });

  it('calls the tenth error within ten seconds too many, but not ten errors spread wider', () => {
    const spread = new InputGuard();
    for (let i = 0; i < 30; i++) expect(spread.error(i * 1500)).toBe(true);
    const burst = new InputGuard();
    for (let i = 0; i < 9; i++) expect(burst.error(i)).toBe(true);
    expect(burst.error(9)).toBe(false);
  });
});
