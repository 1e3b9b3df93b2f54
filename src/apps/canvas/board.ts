import type { CanvasError, PointerPosition, ServerMessage, StrokeInfo, VisitorInfo } from './wire/codec.js';
import { Drawing, type DrawingLimits, type Stroke } from './drawing.js';
import { checkName, generatedName, visitorColour } from './names.js';
import { isDrawingOperation } from './operations.js';

/**
 * The shared canvas's state, without sockets or clocks: who is here (id,
 * name, colour, pointer), the drawing, and the journal of changes that the
 * next batch will announce.
 *
 * Changes are not announced one by one. They pile up in the journal until
 * `flush()` (the fan-out calls it once per tick) and are merged there:
 * however often a pointer moved, the batch carries its latest position
 * once; however many messages brought points to a stroke, the batch carries
 * one `stroke-points` with all of them. So no visitor's updates reach the
 * others more often than the tick rate, and nothing of a stroke is lost.
 */
export interface BoardOptions {
  limits?: Partial<DrawingLimits>;
  /** Visitors at once; a join past it is refused with `full`. Default 256. */
  maxVisitors?: number;
}

interface Visitor {
  readonly id: number;
  name: string;
  readonly colour: number;
  pointer: { x: number; y: number } | null;
}

export type JoinResult = { ok: true; visitor: Readonly<VisitorInfo> } | { ok: false; error: CanvasError };
export type ChangeResult = { ok: true } | { ok: false; error: CanvasError };

const OK: ChangeResult = { ok: true };

export class Board {
  readonly drawing: Drawing;
  readonly maxVisitors: number;
  private readonly visitors = new Map<number, Visitor>();
  /**
   * Per visitor id, its latest stroke while it may still be open (it may
   * have been trimmed or undone meanwhile). Kept apart from `visitors`: the
   * drawing follows the log of operations, whoever is present; a visitor
   * on another node may draw before its arrival is known here.
   */
  private readonly strokesOf = new Map<number, Stroke>();
  private nextVisitorId = 1;
  private journal: ServerMessage[] = [];
  /** Visitors whose pointer moved since the last flush. */
  private readonly moved = new Set<Visitor>();
  /** Open strokes with points not announced yet. */
  private readonly growing = new Set<Stroke>();

  constructor(options: BoardOptions = {}) {
    this.drawing = new Drawing(options.limits);
    this.maxVisitors = options.maxVisitors ?? 256;
  }

  get visitorCount(): number {
    return this.visitors.size;
  }

  /**
   * A newcomer: `name` as chosen, or '' for a made-up one. `id` is given by
   * the caller when ids are shared by several nodes (see cluster.ts); by
   * default the board counts its own.
   */
  join(name: string, id?: number): JoinResult {
    if (id !== undefined && this.visitors.has(id)) {
      return { ok: false, error: { code: 'already_joined', message: `Visitor ${id} is already here.` } };
    }
    if (this.visitors.size >= this.maxVisitors) {
      return { ok: false, error: { code: 'full', message: `The canvas is full (${this.maxVisitors} visitors); try again later.` } };
    }
    let chosen: string | null = null;
    if (name !== '') {
      const checked = checkName(name);
      if (!checked.ok) return checked;
      chosen = checked.name;
    }
    const given = id ?? this.nextVisitorId++;
    const visitor: Visitor = { id: given, name: chosen ?? generatedName(given), colour: visitorColour(given), pointer: null };
    this.visitors.set(given, visitor);
    this.journal.push({ type: 'join', id: given, colour: visitor.colour, name: visitor.name });
    return { ok: true, visitor: { id: given, colour: visitor.colour, name: visitor.name, pointer: null } };
  }

  /** Whether the visitor is here. */
  has(id: number): boolean {
    return this.visitors.has(id);
  }

  /** The visitor's name as kept, or null if it is not here. */
  nameOf(id: number): string | null {
    return this.visitors.get(id)?.name ?? null;
  }

  /**
   * The visitor goes: its pointer disappears. Its strokes stay, an open one
   * too: ending it is a drawing operation (`endStroke`), which the caller
   * applies first, so that it has its place in the drawing's log.
   */
  leave(id: number): boolean {
    const visitor = this.visitors.get(id);
    if (visitor === undefined) return false;
    this.visitors.delete(id);
    this.moved.delete(visitor);
    this.journal.push({ type: 'leave', id });
    return true;
  }

  rename(id: number, name: string): ChangeResult {
    const visitor = this.visitors.get(id);
    if (visitor === undefined) return notJoined();
    const checked = checkName(name);
    if (!checked.ok) return checked;
    // Presence refreshes repeat a name: only a change is announced.
    if (visitor.name === checked.name) return OK;
    visitor.name = checked.name;
    this.journal.push({ type: 'renamed', id, name: visitor.name });
    return OK;
  }

  move(id: number, x: number, y: number): ChangeResult {
    const visitor = this.visitors.get(id);
    if (visitor === undefined) return notJoined();
    visitor.pointer = { x, y };
    this.moved.add(visitor);
    return OK;
  }

  /*
   * The drawing operations below take a visitor id, present here or not:
   * they are applied in the order of the drawing's log, on every node alike.
   */

  /** Start a stroke; the visitor's previous one ends first if it is still open. */
  beginStroke(id: number, colour: number, width: number, x: number, y: number): ChangeResult {
    this.finishStroke(id);
    const stroke = this.drawing.begin(id, colour, width, x, y);
    this.strokesOf.set(id, stroke);
    this.journal.push({ type: 'stroke-begin', id: stroke.id, visitor: id, colour, width, x, y });
    this.noteTrim();
    return OK;
  }

  /**
   * Points for the visitor's open stroke. Points for a stroke that the
   * drawing's size limit already removed are dropped without complaint: the
   * client did nothing wrong, and its stroke is gone for everyone alike.
   */
  addPoints(id: number, flat: readonly number[]): ChangeResult {
    const stroke = this.strokesOf.get(id);
    if (stroke === undefined) return noStroke();
    if (!this.drawing.has(stroke)) return OK;
    const added = this.drawing.append(stroke, flat);
    if (added > 0) this.growing.add(stroke);
    this.noteTrim();
    if (added * 2 < flat.length) {
      const max = this.drawing.limits.maxStrokePoints;
      return { ok: false, error: { code: 'stroke_too_long', message: `A stroke has at most ${max} points; begin a new stroke to go on.` } };
    }
    return OK;
  }

  endStroke(id: number): ChangeResult {
    if (!this.strokesOf.has(id)) return noStroke();
    this.finishStroke(id);
    return OK;
  }

  /**
   * Undo the visitor's own most recent stroke (still being drawn or not):
   * it goes for everyone. Someone else's strokes are never touched.
   */
  undo(id: number): ChangeResult {
    const stroke = this.drawing.latestOf(id);
    if (stroke === null) return { ok: false, error: { code: 'nothing_to_undo', message: 'You have no stroke on the board to undo.' } };
    // If it is still open, `strokesOf` keeps pointing at it: the points and
    // the end still on their way are then dropped quietly, as for a trimmed stroke.
    this.drawing.remove(stroke);
    this.growing.delete(stroke);
    this.journal.push({ type: 'stroke-undone', id: stroke.id });
    return OK;
  }

  /** Remove every stroke, everyone's, open ones included (their further points are dropped quietly). */
  clear(id: number): ChangeResult {
    this.drawing.clear();
    this.growing.clear();
    this.journal.push({ type: 'cleared', by: id });
    return OK;
  }

  /**
   * The batch: everything that changed since the previous flush, in order,
   * merged (see the class comment); the journal starts empty again.
   */
  flush(): ServerMessage[] {
    for (const stroke of this.growing) this.announce(stroke);
    this.growing.clear();
    if (this.moved.size > 0) {
      const pointers: PointerPosition[] = [];
      for (const visitor of this.moved) pointers.push({ id: visitor.id, x: visitor.pointer!.x, y: visitor.pointer!.y });
      this.moved.clear();
      this.journal.push({ type: 'pointers', pointers });
    }
    const batch = this.journal;
    this.journal = [];
    return batch;
  }

  /**
   * Everyone and the whole drawing as announced so far: right after a
   * flush, exactly what a client that received every batch holds.
   */
  snapshot(): ServerMessage & { type: 'snapshot' } {
    const visitors: VisitorInfo[] = [];
    for (const visitor of this.visitors.values()) {
      visitors.push({ id: visitor.id, colour: visitor.colour, name: visitor.name, pointer: visitor.pointer });
    }
    const strokes: StrokeInfo[] = [];
    for (const stroke of this.drawing.all()) {
      const points = stroke.announced === stroke.points.length ? stroke.points : stroke.points.slice(0, stroke.announced);
      strokes.push({ id: stroke.id, visitor: stroke.visitor, colour: stroke.colour, width: stroke.width, open: stroke.open, points });
    }
    return { type: 'snapshot', visitors, strokes };
  }

  /**
   * The whole drawing as applied so far, points not yet announced included,
   * and the id of the next stroke: what a checkpoint holds (cluster.ts).
   */
  drawingState(): { strokes: StrokeInfo[]; nextStrokeId: number } {
    const strokes: StrokeInfo[] = [];
    for (const stroke of this.drawing.all()) {
      strokes.push({
        id: stroke.id,
        visitor: stroke.visitor,
        colour: stroke.colour,
        width: stroke.width,
        open: stroke.open,
        points: stroke.points.slice(),
      });
    }
    return { strokes, nextStrokeId: this.drawing.nextStrokeId };
  }

  /** The position of every pointer that has one, or null if none has. */
  pointers(): (ServerMessage & { type: 'pointers' }) | null {
    const pointers: PointerPosition[] = [];
    for (const visitor of this.visitors.values()) {
      if (visitor.pointer !== null) pointers.push({ id: visitor.id, x: visitor.pointer.x, y: visitor.pointer.y });
    }
    return pointers.length === 0 ? null : { type: 'pointers', pointers };
  }

  /**
   * Replace the drawing with a checkpoint's (strokes oldest first, and the
   * id of the next stroke), as a node that joins a cluster does before it
   * applies the log after the checkpoint. Nothing is announced: the clients
   * are given snapshots.
   */
  restoreDrawing(strokes: readonly StrokeInfo[], nextStrokeId: number): void {
    this.strokesOf.clear();
    this.growing.clear();
    for (const stroke of this.drawing.restore(strokes, nextStrokeId)) this.strokesOf.set(stroke.visitor, stroke);
    this.journal = this.journal.filter((message) => !isDrawingOperation(message));
  }

  /** End the visitor's open stroke, announcing its last points before the end. */
  private finishStroke(id: number): void {
    const stroke = this.strokesOf.get(id);
    this.strokesOf.delete(id);
    if (stroke === undefined || !this.drawing.has(stroke)) return;
    this.announce(stroke);
    this.growing.delete(stroke);
    this.drawing.end(stroke);
    this.journal.push({ type: 'stroke-end', id: stroke.id });
  }

  private announce(stroke: Stroke): void {
    if (!this.drawing.has(stroke) || stroke.announced === stroke.points.length) return;
    this.journal.push({ type: 'stroke-points', id: stroke.id, points: stroke.points.slice(stroke.announced) });
    stroke.announced = stroke.points.length;
  }

  private noteTrim(): void {
    const before = this.drawing.takeTrim();
    if (before !== null) this.journal.push({ type: 'trim', before });
  }
}

function notJoined(): ChangeResult {
  return { ok: false, error: { code: 'not_joined', message: 'Say hello first.' } };
}

function noStroke(): ChangeResult {
  return { ok: false, error: { code: 'no_stroke', message: 'No stroke is open: begin one first.' } };
}
