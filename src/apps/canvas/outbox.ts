import type { CanvasError } from './wire/codec.js';
import type { ChangeResult } from './board.js';
import type { DrawingCommand } from './log-codec.js';

/**
 * This node's visitors' drawing commands, gathered between two ticks and
 * then published as one batch (cluster.ts). The board changes only when a
 * batch comes back through the drawing topic, in the log's order; the
 * answers a client needs at once (`no_stroke`, `stroke_too_long`,
 * `nothing_to_undo`) are given here, from what this node's own visitors
 * sent and what of it the log has not applied yet.
 *
 * Points of one visitor that arrive between two ticks go out as one
 * command, as the board used to merge them; nothing else is merged.
 */
interface Tracked {
  /** A stroke was begun and not ended, as far as this visitor's own messages go. */
  open: boolean;
  /** Points of that stroke sent so far (the first included). */
  points: number;
  /** Begins and undos sent that the log has not applied yet. */
  pendingBegins: number;
  pendingUndos: number;
}

/** Points in one command: the count travels as a u16 (log-codec.ts). */
const MAX_POINTS_PER_COMMAND = 0xffff;

const OK: ChangeResult = { ok: true };

export class Outbox {
  private commands: DrawingCommand[] = [];
  private readonly visitors = new Map<number, Tracked>();

  constructor(readonly maxStrokePoints: number) {}

  /** Commands waiting for the next batch. */
  get size(): number {
    return this.commands.length;
  }

  /** Whether the visitor is one of this node's. */
  has(visitor: number): boolean {
    return this.visitors.has(visitor);
  }

  add(visitor: number): void {
    this.visitors.set(visitor, { open: false, points: 0, pendingBegins: 0, pendingUndos: 0 });
  }

  /** The visitor leaves: its open stroke is ended (a command like any other), and it is forgotten. */
  remove(visitor: number): void {
    const tracked = this.visitors.get(visitor);
    if (tracked?.open === true) this.commands.push({ op: 'end', visitor });
    this.visitors.delete(visitor);
  }

  begin(visitor: number, colour: number, width: number, x: number, y: number): ChangeResult {
    const tracked = this.visitors.get(visitor);
    if (tracked === undefined) return notJoined();
    tracked.open = true;
    tracked.points = 1;
    tracked.pendingBegins++;
    this.commands.push({ op: 'begin', visitor, colour, width, x, y });
    return OK;
  }

  /** As many of the points (flat) as the stroke's limit leaves room for; `stroke_too_long` if not all. */
  points(visitor: number, flat: readonly number[]): ChangeResult {
    const tracked = this.visitors.get(visitor);
    if (tracked === undefined) return notJoined();
    if (!tracked.open) return noStroke();
    const count = Math.max(0, Math.min(flat.length / 2, this.maxStrokePoints - tracked.points));
    if (count > 0) {
      tracked.points += count;
      const accepted = count * 2 === flat.length ? flat : flat.slice(0, count * 2);
      const last = this.commands.at(-1);
      if (last?.op === 'points' && last.visitor === visitor && last.points.length / 2 + count <= MAX_POINTS_PER_COMMAND) {
        this.commands[this.commands.length - 1] = { op: 'points', visitor, points: [...last.points, ...accepted] };
      } else {
        this.commands.push({ op: 'points', visitor, points: accepted.slice() });
      }
    }
    if (count * 2 < flat.length) {
      return {
        ok: false,
        error: { code: 'stroke_too_long', message: `A stroke has at most ${this.maxStrokePoints} points; begin a new stroke to go on.` },
      };
    }
    return OK;
  }

  end(visitor: number): ChangeResult {
    const tracked = this.visitors.get(visitor);
    if (tracked === undefined) return notJoined();
    if (!tracked.open) return noStroke();
    tracked.open = false;
    this.commands.push({ op: 'end', visitor });
    return OK;
  }

  /**
   * Undo the visitor's latest stroke, given how many of its strokes the
   * board holds now. Which stroke goes is decided when the log applies the
   * command, so every node removes the same one; a clear applied before it
   * may leave it nothing to remove, and then it does nothing.
   */
  undo(visitor: number, onBoard: number): ChangeResult {
    const tracked = this.visitors.get(visitor);
    if (tracked === undefined) return notJoined();
    if (onBoard + tracked.pendingBegins - tracked.pendingUndos <= 0) {
      return { ok: false, error: { code: 'nothing_to_undo', message: 'You have no stroke on the board to undo.' } };
    }
    tracked.pendingUndos++;
    this.commands.push({ op: 'undo', visitor });
    return OK;
  }

  clear(visitor: number): ChangeResult {
    if (!this.visitors.has(visitor)) return notJoined();
    this.commands.push({ op: 'clear', visitor });
    return OK;
  }

  /** End a stroke of a visitor of any node (one whose node died): harmless if it was ended already. */
  endFor(visitor: number): void {
    this.commands.push({ op: 'end', visitor });
  }

  /** One of this node's commands came back through the log and was applied. */
  applied(command: DrawingCommand): void {
    const tracked = this.visitors.get(command.visitor);
    if (tracked === undefined) return;
    if (command.op === 'begin') tracked.pendingBegins = Math.max(0, tracked.pendingBegins - 1);
    else if (command.op === 'undo') tracked.pendingUndos = Math.max(0, tracked.pendingUndos - 1);
  }

  /** The commands for the next batch; the outbox starts empty again. */
  take(): DrawingCommand[] {
    const taken = this.commands;
    this.commands = [];
    return taken;
  }
}

function notJoined(): ChangeResult {
  return { ok: false, error: { code: 'not_joined', message: 'Say hello first.' } satisfies CanvasError };
}

function noStroke(): ChangeResult {
  return { ok: false, error: { code: 'no_stroke', message: 'No stroke is open: begin one first.' } };
}
