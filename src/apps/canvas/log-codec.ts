import type { StreamPosition } from '../../pubsub/broker.js';
import { ByteReader, MessageTooShort } from './wire/byte-reader.js';
import type { PointerPosition, StrokeInfo } from './wire/codec.js';

/**
 * What canvas nodes say to each other through the broker's topics (see
 * cluster.ts), in a compact binary form. Browsers never see these: they
 * keep the format of PROTOCOL.md.
 *
 * - A **batch** (drawing topic): one node's drawing commands of one tick,
 *   by visitor id. Commands name the visitor, not the stroke: stroke ids
 *   are given when the log is applied, in offset order, so that every node
 *   gives the same ones.
 * - **Pointers** (pointer topic, no history needed): positions that moved.
 * - A **checkpoint** (checkpoint topic): the drawing as it stood right
 *   after the drawing topic's message at `position`.
 *
 * Integers are little-endian; points are u16 pairs, as on the browser wire.
 */
export type DrawingCommand =
  | { readonly op: 'begin'; readonly visitor: number; readonly colour: number; readonly width: number; readonly x: number; readonly y: number }
  | { readonly op: 'points'; readonly visitor: number; readonly points: readonly number[] }
  | { readonly op: 'end'; readonly visitor: number }
  | { readonly op: 'undo'; readonly visitor: number }
  | { readonly op: 'clear'; readonly visitor: number };

export interface DrawingBatch {
  /** The node that published it (its random name for this run). */
  readonly node: string;
  /** Counts that node's batches from 1. */
  readonly seq: number;
  /** Its publisher takes a checkpoint right after applying it (cluster.ts). */
  readonly checkpoint: boolean;
  /** Its publisher is starting and asks a node that has the drawing for a checkpoint (cluster.ts). */
  readonly request: boolean;
  readonly commands: readonly DrawingCommand[];
}

export interface Checkpoint {
  /** The drawing topic's message this checkpoint follows. */
  readonly position: StreamPosition;
  readonly nextStrokeId: number;
  /** Oldest first. */
  readonly strokes: readonly StrokeInfo[];
}

const BATCH = 0x01;
const POINTERS = 0x02;
const CHECKPOINT = 0x03;

const OPS = { begin: 1, points: 2, end: 3, undo: 4, clear: 5 } as const;
const OP_NAMES = ['', 'begin', 'points', 'end', 'undo', 'clear'] as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Grows as written; `bytes()` is what was written. */
class Writer {
  private buffer = new Uint8Array(256);
  private view = new DataView(this.buffer.buffer);
  private length = 0;

  private room(size: number): void {
    if (this.length + size <= this.buffer.length) return;
    const bigger = new Uint8Array(Math.max(this.buffer.length * 2, this.length + size));
    bigger.set(this.buffer.subarray(0, this.length));
    this.buffer = bigger;
    this.view = new DataView(bigger.buffer);
  }

  u8(value: number): void {
    this.room(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
  }

  u16(value: number): void {
    this.room(2);
    this.view.setUint16(this.length, value, true);
    this.length += 2;
  }

  u32(value: number): void {
    this.room(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
  }

  f64(value: number): void {
    this.room(8);
    this.view.setFloat64(this.length, value, true);
    this.length += 8;
  }

  colour(value: number): void {
    this.u8((value >> 16) & 0xff);
    this.u8((value >> 8) & 0xff);
    this.u8(value & 0xff);
  }

  /** A u8 byte count, then UTF-8: for node names and epochs, both short and ASCII in practice. */
  text(value: string): void {
    const bytes = encoder.encode(value);
    if (bytes.length > 0xff) throw new RangeError(`too long for the canvas log: ${value.slice(0, 40)}...`);
    this.u8(bytes.length);
    this.room(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  points(flat: readonly number[]): void {
    for (const coordinate of flat) this.u16(coordinate);
  }

  bytes(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/** This format's short text: a u8 byte count, then UTF-8. */
function readText(reader: ByteReader): string {
  return decoder.decode(reader.take(reader.u8()));
}

/** A value the format does not allow (an unknown op, an impossible offset): the bytes are not a message. */
class Malformed extends Error {}

function decoding<T>(bytes: Uint8Array, kind: number, read: (reader: ByteReader) => T): T | null {
  const reader = new ByteReader(bytes);
  try {
    if (reader.u8() !== kind) return null;
    const value = read(reader);
    return reader.left === 0 ? value : null;
  } catch (error) {
    // TypeError: the fatal UTF-8 decoder refusing a text.
    if (error instanceof Malformed || error instanceof MessageTooShort || error instanceof TypeError) return null;
    throw error;
  }
}

export function encodeBatch(batch: DrawingBatch): Uint8Array {
  const writer = new Writer();
  writer.u8(BATCH);
  writer.u8((batch.checkpoint ? 1 : 0) | (batch.request ? 2 : 0));
  writer.text(batch.node);
  writer.u32(batch.seq);
  for (const command of batch.commands) {
    writer.u8(OPS[command.op]);
    writer.u32(command.visitor);
    if (command.op === 'begin') {
      writer.colour(command.colour);
      writer.u8(command.width);
      writer.u16(command.x);
      writer.u16(command.y);
    } else if (command.op === 'points') {
      writer.u16(command.points.length / 2);
      writer.points(command.points);
    }
  }
  return writer.bytes();
}

/** A batch, or null if the bytes are not one. */
export function decodeBatch(bytes: Uint8Array): DrawingBatch | null {
  return decoding(bytes, BATCH, (reader) => {
    const flags = reader.u8();
    const checkpoint = (flags & 1) !== 0;
    const request = (flags & 2) !== 0;
    const node = readText(reader);
    const seq = reader.u32();
    const commands: DrawingCommand[] = [];
    while (reader.left > 0) {
      const op = OP_NAMES[reader.u8()];
      const visitor = reader.u32();
      switch (op) {
        case 'begin':
          commands.push({ op, visitor, colour: reader.rgb(), width: reader.u8(), x: reader.u16(), y: reader.u16() });
          break;
        case 'points':
          commands.push({ op, visitor, points: reader.points(reader.u16()) });
          break;
        case 'end':
        case 'undo':
        case 'clear':
          commands.push({ op, visitor });
          break;
        default:
          throw new Malformed();
      }
    }
    return { node, seq, checkpoint, request, commands };
  });
}

export function encodePointers(pointers: readonly PointerPosition[]): Uint8Array {
  const writer = new Writer();
  writer.u8(POINTERS);
  for (const { id, x, y } of pointers) {
    writer.u32(id);
    writer.u16(x);
    writer.u16(y);
  }
  return writer.bytes();
}

export function decodePointers(bytes: Uint8Array): PointerPosition[] | null {
  return decoding(bytes, POINTERS, (reader) => {
    const pointers: PointerPosition[] = [];
    while (reader.left > 0) pointers.push({ id: reader.u32(), x: reader.u16(), y: reader.u16() });
    return pointers;
  });
}

export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const writer = new Writer();
  writer.u8(CHECKPOINT);
  writer.text(checkpoint.position.epoch);
  writer.f64(checkpoint.position.offset);
  writer.u32(checkpoint.nextStrokeId);
  writer.u32(checkpoint.strokes.length);
  for (const stroke of checkpoint.strokes) {
    writer.u32(stroke.id);
    writer.u32(stroke.visitor);
    writer.colour(stroke.colour);
    writer.u8(stroke.width);
    writer.u8(stroke.open ? 1 : 0);
    writer.u32(stroke.points.length / 2);
    writer.points(stroke.points);
  }
  return writer.bytes();
}

export function decodeCheckpoint(bytes: Uint8Array): Checkpoint | null {
  return decoding(bytes, CHECKPOINT, (reader) => {
    const epoch = readText(reader);
    const offset = reader.f64();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Malformed();
    const nextStrokeId = reader.u32();
    const count = reader.u32();
    const strokes: StrokeInfo[] = [];
    for (let i = 0; i < count; i++) {
      const id = reader.u32();
      const visitor = reader.u32();
      const colour = reader.rgb();
      const width = reader.u8();
      const open = (reader.u8() & 1) === 1;
      const points = reader.points(reader.u32());
      strokes.push({ id, visitor, colour, width, open, points });
    }
    return { position: { epoch, offset }, nextStrokeId, strokes };
  });
}
