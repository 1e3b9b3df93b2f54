import { MAX_STROKE_POINTS, type StrokeInfo } from './wire/codec.js';

/**
 * The drawing: its strokes, oldest first, within bounds on its size. Points
 * are drawing content, so unlike pointer positions they are never merged
 * away; instead the drawing as a whole is bounded, and when it grows past a
 * bound its oldest strokes are forgotten (every client is told, with one
 * `trim` message, to forget the same ones).
 */

export interface DrawingLimits {
  /** Points in one stroke; points past it are refused. Default `MAX_STROKE_POINTS` (4096), what the page expects. */
  maxStrokePoints: number;
  /** Points in the whole drawing; past it, the oldest strokes go. Default 50 000 (200 KB of coordinates). */
  maxPoints: number;
  /** Strokes in the drawing; past it, the oldest go. Default 2000. */
  maxStrokes: number;
}

export const DEFAULT_DRAWING_LIMITS: Readonly<DrawingLimits> = { maxStrokePoints: MAX_STROKE_POINTS, maxPoints: 50_000, maxStrokes: 2000 };

export interface Stroke {
  readonly id: number;
  readonly visitor: number;
  readonly colour: number;
  readonly width: number;
  /** Flat: [x0, y0, x1, y1, ...]. */
  readonly points: number[];
  open: boolean;
  /** How many coordinates of `points` the clients were sent (the rest goes out with the next batch). */
  announced: number;
}

export class Drawing {
  readonly limits: Readonly<DrawingLimits>;
  /** By id; a Map keeps insertion order, which is id order, so the first entry is the oldest stroke. */
  private readonly strokes = new Map<number, Stroke>();
  private nextId = 1;
  private points = 0;
  /** Strokes below this id were trimmed since `takeTrim()` last asked; null if none were. */
  private trimmedBefore: number | null = null;

  constructor(limits: Partial<DrawingLimits> = {}) {
    const merged = { ...DEFAULT_DRAWING_LIMITS, ...limits };
    for (const [name, value] of Object.entries(merged)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
    if (merged.maxPoints < merged.maxStrokePoints) throw new RangeError('maxPoints must be at least maxStrokePoints');
    // A stroke's point count travels as a u16 in snapshots (PROTOCOL.md).
    if (merged.maxStrokePoints > 0xffff || merged.maxStrokes > 0xffff) throw new RangeError('maxStrokePoints and maxStrokes are at most 65535');
    this.limits = merged;
  }

  get strokeCount(): number {
    return this.strokes.size;
  }

  get pointCount(): number {
    return this.points;
  }

  /** The id the next stroke will get. */
  get nextStrokeId(): number {
    return this.nextId;
  }

  /**
   * Start again from a checkpoint of another drawing (strokes oldest first,
   * and the id its next stroke gets): what a node that joins a cluster
   * loads before applying the operations after the checkpoint. Returns the
   * strokes still open, for their visitors.
   */
  restore(strokes: readonly StrokeInfo[], nextId: number): Stroke[] {
    this.strokes.clear();
    this.points = 0;
    this.trimmedBefore = null;
    const open: Stroke[] = [];
    for (const info of strokes) {
      const stroke: Stroke = {
        id: info.id,
        visitor: info.visitor,
        colour: info.colour,
        width: info.width,
        points: info.points.slice(),
        open: info.open,
        announced: info.points.length,
      };
      this.strokes.set(stroke.id, stroke);
      this.points += stroke.points.length / 2;
      if (stroke.open) open.push(stroke);
    }
    this.nextId = nextId;
    return open;
  }

  /** How many of the visitor's strokes are in the drawing. */
  countOf(visitor: number): number {
    let count = 0;
    for (const stroke of this.strokes.values()) if (stroke.visitor === visitor) count++;
    return count;
  }

  /** Start a stroke with its first point; the oldest strokes go if the drawing is over a bound. */
  begin(visitor: number, colour: number, width: number, x: number, y: number): Stroke {
    const stroke: Stroke = { id: this.nextId++, visitor, colour, width, points: [x, y], open: true, announced: 2 };
    this.strokes.set(stroke.id, stroke);
    this.points++;
    this.trim();
    return stroke;
  }

  /**
   * Add points (flat) to an open stroke, as many as its limit allows, and
   * say how many were added. Adding may trim the oldest strokes, this one
   * included if it is the oldest.
   */
  append(stroke: Stroke, flat: readonly number[]): number {
    const room = this.limits.maxStrokePoints - stroke.points.length / 2;
    const count = Math.max(0, Math.min(flat.length / 2, room));
    for (let i = 0; i < count * 2; i++) stroke.points.push(flat[i]!);
    this.points += count;
    this.trim();
    return count;
  }

  end(stroke: Stroke): void {
    stroke.open = false;
  }

  /**
   * The visitor's most recent stroke still in the drawing, or null. A scan
   * from the newest end would need a second index; the drawing holds at most
   * `maxStrokes` (2000) strokes and undos are rate-limited, so a plain pass
   * is cheap enough.
   */
  latestOf(visitor: number): Stroke | null {
    let latest: Stroke | null = null;
    for (const stroke of this.strokes.values()) if (stroke.visitor === visitor) latest = stroke;
    return latest;
  }

  /** Take one stroke out (an undo); an open stroke is closed, so its further points are ignored. */
  remove(stroke: Stroke): boolean {
    if (!this.has(stroke)) return false;
    this.strokes.delete(stroke.id);
    this.points -= stroke.points.length / 2;
    stroke.open = false;
    return true;
  }

  /** Take every stroke out (a clear). Ids go on counting: a new stroke never reuses an old id. */
  clear(): void {
    for (const stroke of this.strokes.values()) stroke.open = false;
    this.strokes.clear();
    this.points = 0;
  }

  /** Whether the stroke is still part of the drawing (not trimmed, undone or cleared). */
  has(stroke: Stroke): boolean {
    return this.strokes.get(stroke.id) === stroke;
  }

  /** Oldest first. */
  all(): IterableIterator<Stroke> {
    return this.strokes.values();
  }

  /** The id every stroke below was trimmed since the last call, or null if nothing was. */
  takeTrim(): number | null {
    const before = this.trimmedBefore;
    this.trimmedBefore = null;
    return before;
  }

  private trim(): void {
    const { maxPoints, maxStrokes } = this.limits;
    if (this.points <= maxPoints && this.strokes.size <= maxStrokes) return;
    for (const [id, stroke] of this.strokes) {
      if (this.points <= maxPoints && this.strokes.size <= maxStrokes) break;
      this.strokes.delete(id);
      this.points -= stroke.points.length / 2;
      stroke.open = false;
    }
    const oldest = this.strokes.keys().next();
    this.trimmedBefore = oldest.done === true ? this.nextId : oldest.value;
  }
}
