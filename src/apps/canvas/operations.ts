import type { ServerMessage, StrokeInfo } from './wire/codec.js';

/**
 * The drawing as an ordered log of operations. Every change the board makes
 * to the drawing goes out as one of these messages, in the order it was
 * made, and the drawing is exactly what folding them over a snapshot gives:
 * `snapshot` + the operations after it = the next `snapshot`. The same
 * rule, one level down, lets a node that did not see the drawing happen
 * rebuild it from a checkpoint and the log of commands after it
 * (cluster.ts; PROTOCOL.md, "Across several nodes").
 *
 * Pointer positions, arrivals, departures and names are not part of the
 * drawing: they are presence, and stay out of the log.
 *
 * Pure: no sockets, no clocks.
 */
export type DrawingOperation = Extract<
  ServerMessage,
  { type: 'stroke-begin' | 'stroke-points' | 'stroke-end' | 'stroke-undone' | 'cleared' | 'trim' }
>;

/** The strokes by id. Ids grow with age and a Map keeps insertion order, so iteration is oldest first. */
export type DrawingState = Map<number, StrokeInfo>;

const OPERATION_TYPES: ReadonlySet<ServerMessage['type']> = new Set([
  'stroke-begin',
  'stroke-points',
  'stroke-end',
  'stroke-undone',
  'cleared',
  'trim',
]);

export function isDrawingOperation(message: ServerMessage): message is DrawingOperation {
  return OPERATION_TYPES.has(message.type);
}

/** A state to apply operations to, from a snapshot's strokes (copied: the snapshot is left as it is). */
export function drawingFrom(strokes: readonly StrokeInfo[]): DrawingState {
  return new Map(strokes.map((stroke) => [stroke.id, { ...stroke, points: stroke.points.slice() }]));
}

/**
 * Apply one operation. Operations on a stroke that is not there (undone,
 * cleared or trimmed before its last points arrived) change nothing, as a
 * page that receives them does.
 */
export function applyOperation(state: DrawingState, operation: DrawingOperation): void {
  switch (operation.type) {
    case 'stroke-begin': {
      const { id, visitor, colour, width, x, y } = operation;
      state.set(id, { id, visitor, colour, width, open: true, points: [x, y] });
      return;
    }
    case 'stroke-points': {
      const stroke = state.get(operation.id);
      if (stroke !== undefined) for (const coordinate of operation.points) stroke.points.push(coordinate);
      return;
    }
    case 'stroke-end': {
      const stroke = state.get(operation.id);
      if (stroke !== undefined) stroke.open = false;
      return;
    }
    case 'stroke-undone':
      state.delete(operation.id);
      return;
    case 'cleared':
      state.clear();
      return;
    case 'trim':
      for (const id of state.keys()) {
        if (id >= operation.before) break;
        state.delete(id);
      }
      return;
  }
}
