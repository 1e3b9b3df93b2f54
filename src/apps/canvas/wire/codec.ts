/**
 * The shared canvas's binary format, version 2 (documented for people in
 * ../PROTOCOL.md): the messages both ways, their encoding and their
 * decoding. The server and the page (compiled, served as
 * /canvas/wire/codec.js) use this same module.
 * Pure: Uint8Array, DataView and TextEncoder/TextDecoder only, no sockets,
 * no Node modules; it imports only modules of this folder, which is what
 * lets the page load it (src/web/tsconfig.json checks it as browser code).
 *
 * Every message is one WebSocket binary message whose first byte is its
 * type. Client types have the high bit clear, server types have it set, so a
 * message sent the wrong way round is an unknown type. Integers are
 * little-endian. Positions are normalised to the board: x and y run from 0
 * (left, top) to 65535 (right, bottom), whatever the size of the screen.
 * Point lists are flat: [x0, y0, x1, y1, ...].
 */

import { ByteReader, MessageTooShort } from './byte-reader.js';

/** The version this module speaks: the page says hello in it, the server answers in it. */
export const PROTOCOL_VERSION = 2;
/**
 * The oldest version a server still accepts in a `hello`. Version 2 only
 * added message types (undo, clear and their announcements), so a version 1
 * client is served in version 1: it never receives a type it does not know
 * (PROTOCOL.md, "Version").
 */
export const MIN_PROTOCOL_VERSION = 1;
/** The largest coordinate: the right or bottom edge of the board. */
export const COORDINATE_MAX = 0xffff;
/** A name is at most this many UTF-8 bytes on the wire (24 characters of up to 4 bytes fit). */
export const MAX_NAME_BYTES = 96;
/** Points in one client `stroke-points` message. */
export const MAX_POINTS_PER_MESSAGE = 256;
/**
 * Points in one stroke (PROTOCOL.md, "Client to server"): the server's
 * default limit, past which it answers `stroke_too_long`, and where the
 * page ends a stroke and goes on with a new one.
 */
export const MAX_STROKE_POINTS = 4096;
/** Stroke widths, in thousandths of the board's width. */
export const MIN_WIDTH = 1;
export const MAX_WIDTH = 64;
/** Colours are 24-bit 0xRRGGBB. */
export const COLOUR_MAX = 0xffffff;

/** Type bytes of what a client sends. */
export const ClientType = {
  hello: 0x01,
  rename: 0x02,
  move: 0x03,
  strokeBegin: 0x10,
  strokePoints: 0x11,
  strokeEnd: 0x12,
  /** Version 2. */
  undo: 0x13,
  /** Version 2. */
  clear: 0x14,
} as const;

/** Type bytes of what the server sends. */
export const ServerType = {
  welcome: 0x81,
  snapshot: 0x82,
  join: 0x83,
  leave: 0x84,
  renamed: 0x85,
  pointers: 0x86,
  strokeBegin: 0x90,
  strokePoints: 0x91,
  strokeEnd: 0x92,
  trim: 0x93,
  /** Version 2. */
  strokeUndone: 0x94,
  /** Version 2. */
  cleared: 0x95,
  error: 0xff,
} as const;

/**
 * Error codes, in wire order: the wire code is the index plus one. New codes
 * are only ever appended, so the numbers stay stable.
 */
export const CANVAS_ERROR_CODES = [
  'malformed',
  'unknown_type',
  'out_of_range',
  'invalid_utf8',
  'unsupported_version',
  'invalid_name',
  'not_joined',
  'already_joined',
  'no_stroke',
  'stroke_too_long',
  'full',
  'nothing_to_undo',
  'rate_limited',
] as const;

export type CanvasErrorCode = (typeof CANVAS_ERROR_CODES)[number];

export interface CanvasError {
  code: CanvasErrorCode;
  /** A sentence for people. */
  message: string;
}

// ---- client to server -------------------------------------------------------

export type ClientMessage =
  /** First message of a connection. An empty name asks the server to make one up. */
  | { type: 'hello'; version: number; name: string }
  | { type: 'rename'; name: string }
  | { type: 'move'; x: number; y: number }
  /** Starts a stroke at (x, y), ending the sender's previous stroke if it is still open. */
  | { type: 'stroke-begin'; colour: number; width: number; x: number; y: number }
  /** More points of the sender's open stroke: 1 to 256 of them. */
  | { type: 'stroke-points'; points: number[] }
  | { type: 'stroke-end' }
  /** Remove the sender's own most recent stroke, for everyone (version 2). */
  | { type: 'undo' }
  /** Remove every stroke, for everyone (version 2); the page asks its user to confirm first. */
  | { type: 'clear' };

// ---- server to client -------------------------------------------------------

export interface VisitorInfo {
  id: number;
  colour: number;
  name: string;
  /** Where the visitor's pointer is, or null before it first moved. */
  pointer: { x: number; y: number } | null;
}

export interface StrokeInfo {
  id: number;
  /** The visitor who drew it (who may have left since). */
  visitor: number;
  colour: number;
  width: number;
  /** Still being drawn: more `stroke-points` and a `stroke-end` will follow. */
  open: boolean;
  /** At least one point, flat. */
  points: number[];
}

export interface PointerPosition {
  id: number;
  x: number;
  y: number;
}

export type ServerMessage =
  | { type: 'welcome'; version: number; id: number; colour: number; name: string }
  /** Everyone present and the whole drawing, strokes oldest first: replaces whatever the client held. */
  | { type: 'snapshot'; visitors: VisitorInfo[]; strokes: StrokeInfo[] }
  | { type: 'join'; id: number; colour: number; name: string }
  | { type: 'leave'; id: number }
  | { type: 'renamed'; id: number; name: string }
  /** The latest position of every pointer that moved since the previous batch: at least one. */
  | { type: 'pointers'; pointers: PointerPosition[] }
  | { type: 'stroke-begin'; id: number; visitor: number; colour: number; width: number; x: number; y: number }
  | { type: 'stroke-points'; id: number; points: number[] }
  | { type: 'stroke-end'; id: number }
  /** Every stroke with an id below `before` is gone (the drawing's size limit). */
  | { type: 'trim'; before: number }
  /** Stroke `id` was undone by the visitor who drew it: it is gone (version 2). */
  | { type: 'stroke-undone'; id: number }
  /** Visitor `by` cleared the board: every stroke begun before this message is gone (version 2). */
  | { type: 'cleared'; by: number }
  /** `about`: the type byte of the message that caused it, 0 when it had none. */
  | { type: 'error'; code: CanvasErrorCode; about: number; message: string };

/**
 * The protocol version that introduced a server message's type: 1 for the
 * original types, 2 for `stroke-undone` and `cleared`. A server never sends
 * a client a message of a version newer than the client's hello.
 */
export function versionOf(message: ServerMessage): number {
  return message.type === 'stroke-undone' || message.type === 'cleared' ? 2 : 1;
}

export type Decoded<Message> = { ok: true; message: Message } | { ok: false; error: CanvasError; about: number };

// ---- encoding -----------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Sizes of the fixed parts, type byte included. */
const VISITOR_FIXED = 4 + 3 + 1 + 4 + 1;
const STROKE_FIXED = 4 + 4 + 3 + 1 + 1 + 2;
const POINTER_ENTRY = 4 + 2 + 2;

export function encodeClientMessage(message: ClientMessage): Uint8Array {
  switch (message.type) {
    case 'hello': {
      const name = nameBytes(message.name);
      return new Writer(3 + name.length).u8(ClientType.hello).u8(message.version).name(name).done();
    }
    case 'rename': {
      const name = nameBytes(message.name);
      return new Writer(2 + name.length).u8(ClientType.rename).name(name).done();
    }
    case 'move':
      return new Writer(5).u8(ClientType.move).u16(message.x).u16(message.y).done();
    case 'stroke-begin':
      return new Writer(9).u8(ClientType.strokeBegin).rgb(message.colour).u8(message.width).u16(message.x).u16(message.y).done();
    case 'stroke-points':
      return new Writer(1 + message.points.length * 2).u8(ClientType.strokePoints).points(message.points).done();
    case 'stroke-end':
      return new Writer(1).u8(ClientType.strokeEnd).done();
    case 'undo':
      return new Writer(1).u8(ClientType.undo).done();
    case 'clear':
      return new Writer(1).u8(ClientType.clear).done();
  }
}

export function encodeServerMessage(message: ServerMessage): Uint8Array {
  switch (message.type) {
    case 'welcome': {
      const name = nameBytes(message.name);
      return new Writer(10 + name.length).u8(ServerType.welcome).u8(message.version).u32(message.id).rgb(message.colour).name(name).done();
    }
    case 'snapshot': {
      const names = message.visitors.map((visitor) => nameBytes(visitor.name));
      let size = 1 + 2 + 2;
      for (const name of names) size += VISITOR_FIXED + name.length;
      for (const stroke of message.strokes) size += STROKE_FIXED + stroke.points.length * 2;
      const writer = new Writer(size).u8(ServerType.snapshot).u16(checkCount(message.visitors.length, 'visitors'));
      message.visitors.forEach((visitor, index) => {
        const pointer = visitor.pointer;
        writer
          .u32(visitor.id)
          .rgb(visitor.colour)
          .u8(pointer === null ? 0 : 1)
          .u16(pointer?.x ?? 0)
          .u16(pointer?.y ?? 0)
          .name(names[index]!);
      });
      writer.u16(checkCount(message.strokes.length, 'strokes'));
      for (const stroke of message.strokes) {
        if (stroke.points.length < 2) throw new RangeError('a stroke has at least one point');
        writer
          .u32(stroke.id)
          .u32(stroke.visitor)
          .rgb(stroke.colour)
          .u8(stroke.width)
          .u8(stroke.open ? 1 : 0)
          .u16(checkCount(stroke.points.length / 2, 'points of a stroke'))
          .points(stroke.points);
      }
      return writer.done();
    }
    case 'join': {
      const name = nameBytes(message.name);
      return new Writer(9 + name.length).u8(ServerType.join).u32(message.id).rgb(message.colour).name(name).done();
    }
    case 'leave':
      return new Writer(5).u8(ServerType.leave).u32(message.id).done();
    case 'renamed': {
      const name = nameBytes(message.name);
      return new Writer(6 + name.length).u8(ServerType.renamed).u32(message.id).name(name).done();
    }
    case 'pointers': {
      const writer = new Writer(1 + message.pointers.length * POINTER_ENTRY).u8(ServerType.pointers);
      for (const pointer of message.pointers) writer.u32(pointer.id).u16(pointer.x).u16(pointer.y);
      return writer.done();
    }
    case 'stroke-begin':
      return new Writer(17)
        .u8(ServerType.strokeBegin)
        .u32(message.id)
        .u32(message.visitor)
        .rgb(message.colour)
        .u8(message.width)
        .u16(message.x)
        .u16(message.y)
        .done();
    case 'stroke-points':
      return new Writer(5 + message.points.length * 2).u8(ServerType.strokePoints).u32(message.id).points(message.points).done();
    case 'stroke-end':
      return new Writer(5).u8(ServerType.strokeEnd).u32(message.id).done();
    case 'trim':
      return new Writer(5).u8(ServerType.trim).u32(message.before).done();
    case 'stroke-undone':
      return new Writer(5).u8(ServerType.strokeUndone).u32(message.id).done();
    case 'cleared':
      return new Writer(5).u8(ServerType.cleared).u32(message.by).done();
    case 'error': {
      const text = encoder.encode(message.message);
      return new Writer(3 + text.length).u8(ServerType.error).u8(errorWireCode(message.code)).u8(message.about).bytes(text).done();
    }
  }
}

function nameBytes(name: string): Uint8Array {
  const bytes = encoder.encode(name);
  if (bytes.length > MAX_NAME_BYTES) throw new RangeError(`a name has at most ${MAX_NAME_BYTES} UTF-8 bytes`);
  return bytes;
}

function checkCount(count: number, what: string): number {
  if (!Number.isInteger(count) || count > 0xffff) throw new RangeError(`at most 65535 ${what} fit in a message`);
  return count;
}

function errorWireCode(code: CanvasErrorCode): number {
  return CANVAS_ERROR_CODES.indexOf(code) + 1;
}

/** Writes into a buffer of a size computed beforehand; a wrong size is a bug, so it throws. */
class Writer {
  private readonly buffer: Uint8Array;
  private readonly view: DataView;
  private offset = 0;

  constructor(size: number) {
    this.buffer = new Uint8Array(size);
    this.view = new DataView(this.buffer.buffer);
  }

  u8(value: number): this {
    checkInteger(value, 0xff);
    this.view.setUint8(this.offset, value);
    this.offset += 1;
    return this;
  }

  u16(value: number): this {
    checkInteger(value, 0xffff);
    this.view.setUint16(this.offset, value, true);
    this.offset += 2;
    return this;
  }

  u32(value: number): this {
    checkInteger(value, 0xffffffff);
    this.view.setUint32(this.offset, value, true);
    this.offset += 4;
    return this;
  }

  /** 0xRRGGBB as three bytes, red first: the order people read a colour in. */
  rgb(colour: number): this {
    checkInteger(colour, COLOUR_MAX);
    return this.u8(colour >>> 16)
      .u8((colour >>> 8) & 0xff)
      .u8(colour & 0xff);
  }

  name(bytes: Uint8Array): this {
    return this.u8(bytes.length).bytes(bytes);
  }

  points(flat: readonly number[]): this {
    if (flat.length % 2 !== 0) throw new RangeError('a point list holds x, y pairs');
    for (const coordinate of flat) this.u16(coordinate);
    return this;
  }

  bytes(bytes: Uint8Array): this {
    this.buffer.set(bytes, this.offset);
    this.offset += bytes.length;
    return this;
  }

  done(): Uint8Array {
    if (this.offset !== this.buffer.length) throw new Error(`encoded ${this.offset} bytes into a ${this.buffer.length}-byte message`);
    return this.buffer;
  }
}

function checkInteger(value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${value} is not an integer from 0 to ${max}`);
}

// ---- decoding -----------------------------------------------------------------

/** Thrown inside the decoder only, and turned into a result before leaving it. */
class DecodeFailure extends Error {
  constructor(
    readonly code: CanvasErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// Fields of this format on top of the shared reader (byte-reader.ts). A
// plain ByteReader and functions rather than a subclass: constructing a
// derived class costs about 20 ns more per message, 10% of a decode.

/** A name: a u8 byte count, then that many bytes of UTF-8, at most MAX_NAME_BYTES. */
function readName(read: ByteReader, what: string): string {
  const length = read.u8();
  if (length > MAX_NAME_BYTES) throw new DecodeFailure('out_of_range', `${what}: a name has at most ${MAX_NAME_BYTES} bytes, this one ${length}.`);
  const bytes = read.take(length);
  try {
    return decoder.decode(bytes);
  } catch {
    throw new DecodeFailure('invalid_utf8', `${what}: the name is not valid UTF-8.`);
  }
}

/** The rest of the message as UTF-8 text. */
function readText(read: ByteReader, what: string): string {
  const bytes = read.take(read.left);
  try {
    return decoder.decode(bytes);
  } catch {
    throw new DecodeFailure('invalid_utf8', `${what}: the text is not valid UTF-8.`);
  }
}

/** Nothing may follow the last field: a longer message is as wrong as a shorter one. */
function expectEnd(read: ByteReader, what: string): void {
  if (read.left !== 0) throw new DecodeFailure('malformed', `${what}: ${read.left} unexpected bytes after the message.`);
}

/** Fixed sizes of the client messages that have one, type byte included. */
const CLIENT_FIXED_SIZE: Readonly<Record<number, number>> = {
  [ClientType.move]: 5,
  [ClientType.strokeBegin]: 9,
  [ClientType.strokeEnd]: 1,
  [ClientType.undo]: 1,
  [ClientType.clear]: 1,
};

/**
 * Decode one message from a client. Never throws: a malformed message is
 * reported with its error code and the type byte it claimed (0 if empty).
 */
export function decodeClientMessage(bytes: Uint8Array): Decoded<ClientMessage> {
  return bytes.length === 0 ? failure('malformed', 'An empty message.', 0) : decodeWith(bytes, clientTypeName(bytes[0]!), readClientMessage);
}

function readClientMessage(read: ByteReader, type: number, what: string, bytes: Uint8Array): ClientMessage {
  const fixed = CLIENT_FIXED_SIZE[type];
  if (fixed !== undefined && bytes.length !== fixed) {
    throw new DecodeFailure('malformed', `${what}: ${fixed} bytes expected, got ${bytes.length}.`);
  }
  let message: ClientMessage;
  switch (type) {
    case ClientType.hello: {
      const version = read.u8();
      if (version < MIN_PROTOCOL_VERSION || version > PROTOCOL_VERSION) {
        throw new DecodeFailure(
          'unsupported_version',
          `This server speaks canvas protocol versions ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}, not ${version}.`,
        );
      }
      message = { type: 'hello', version, name: readName(read, what) };
      break;
    }
    case ClientType.rename:
      message = { type: 'rename', name: readName(read, what) };
      break;
    case ClientType.move:
      message = { type: 'move', x: read.u16(), y: read.u16() };
      break;
    case ClientType.strokeBegin: {
      const colour = read.rgb();
      const width = read.u8();
      if (width < MIN_WIDTH || width > MAX_WIDTH) {
        throw new DecodeFailure('out_of_range', `stroke-begin: the width must be ${MIN_WIDTH} to ${MAX_WIDTH}, not ${width}.`);
      }
      message = { type: 'stroke-begin', colour, width, x: read.u16(), y: read.u16() };
      break;
    }
    case ClientType.strokePoints: {
      const body = bytes.length - 1;
      if (body === 0 || body % 4 !== 0) {
        throw new DecodeFailure('malformed', `stroke-points: 4 bytes per point expected, got ${body} bytes.`);
      }
      const count = body / 4;
      if (count > MAX_POINTS_PER_MESSAGE) {
        throw new DecodeFailure('out_of_range', `stroke-points: at most ${MAX_POINTS_PER_MESSAGE} points per message, got ${count}.`);
      }
      message = { type: 'stroke-points', points: read.points(count) };
      break;
    }
    case ClientType.strokeEnd:
      message = { type: 'stroke-end' };
      break;
    case ClientType.undo:
      message = { type: 'undo' };
      break;
    case ClientType.clear:
      message = { type: 'clear' };
      break;
    default:
      throw new DecodeFailure('unknown_type', `Unknown message type 0x${hex(type)}.`);
  }
  return message;
}

/** Decode one message from the server (what the page does; the tests use it too). Never throws. */
export function decodeServerMessage(bytes: Uint8Array): Decoded<ServerMessage> {
  return bytes.length === 0 ?
      failure('malformed', 'An empty message.', 0)
    : decodeWith(bytes, `server message 0x${hex(bytes[0]!)}`, readServerMessage);
}

function readServerMessage(read: ByteReader, type: number, what: string): ServerMessage {
  let message: ServerMessage;
  switch (type) {
    case ServerType.welcome: {
      const version = read.u8();
      if (version < MIN_PROTOCOL_VERSION || version > PROTOCOL_VERSION) {
        throw new DecodeFailure(
          'unsupported_version',
          `Canvas protocol version ${version} is not one of ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}.`,
        );
      }
      message = { type: 'welcome', version, id: read.u32(), colour: read.rgb(), name: readName(read, what) };
      break;
    }
    case ServerType.snapshot: {
      const visitors: VisitorInfo[] = [];
      const visitorCount = read.u16();
      for (let i = 0; i < visitorCount; i++) {
        const id = read.u32();
        const colour = read.rgb();
        const flags = read.u8();
        if (flags > 1) throw new DecodeFailure('out_of_range', `snapshot: unknown visitor flags ${flags}.`);
        const x = read.u16();
        const y = read.u16();
        // One encoding per message: without a pointer the position bytes are zero.
        if (flags === 0 && (x !== 0 || y !== 0)) throw new DecodeFailure('malformed', 'snapshot: a position for a visitor without a pointer.');
        visitors.push({ id, colour, name: readName(read, what), pointer: flags === 1 ? { x, y } : null });
      }
      const strokes: StrokeInfo[] = [];
      const strokeCount = read.u16();
      for (let i = 0; i < strokeCount; i++) {
        const id = read.u32();
        const visitor = read.u32();
        const colour = read.rgb();
        const width = read.u8();
        const flags = read.u8();
        if (flags > 1) throw new DecodeFailure('out_of_range', `snapshot: unknown stroke flags ${flags}.`);
        const count = read.u16();
        if (count === 0) throw new DecodeFailure('out_of_range', 'snapshot: a stroke without points.');
        strokes.push({ id, visitor, colour, width, open: flags === 1, points: read.points(count) });
      }
      message = { type: 'snapshot', visitors, strokes };
      break;
    }
    case ServerType.join:
      message = { type: 'join', id: read.u32(), colour: read.rgb(), name: readName(read, what) };
      break;
    case ServerType.leave:
      message = { type: 'leave', id: read.u32() };
      break;
    case ServerType.renamed:
      message = { type: 'renamed', id: read.u32(), name: readName(read, what) };
      break;
    case ServerType.pointers: {
      if (read.left === 0 || read.left % POINTER_ENTRY !== 0)
        throw new DecodeFailure('malformed', `pointers: ${POINTER_ENTRY} bytes per pointer expected.`);
      const pointers: PointerPosition[] = [];
      while (read.left > 0) pointers.push({ id: read.u32(), x: read.u16(), y: read.u16() });
      message = { type: 'pointers', pointers };
      break;
    }
    case ServerType.strokeBegin:
      message = { type: 'stroke-begin', id: read.u32(), visitor: read.u32(), colour: read.rgb(), width: read.u8(), x: read.u16(), y: read.u16() };
      break;
    case ServerType.strokePoints: {
      const id = read.u32();
      if (read.left === 0 || read.left % 4 !== 0) throw new DecodeFailure('malformed', 'stroke-points: 4 bytes per point expected.');
      message = { type: 'stroke-points', id, points: read.points(read.left / 4) };
      break;
    }
    case ServerType.strokeEnd:
      message = { type: 'stroke-end', id: read.u32() };
      break;
    case ServerType.trim:
      message = { type: 'trim', before: read.u32() };
      break;
    case ServerType.strokeUndone:
      message = { type: 'stroke-undone', id: read.u32() };
      break;
    case ServerType.cleared:
      message = { type: 'cleared', by: read.u32() };
      break;
    case ServerType.error: {
      const wire = read.u8();
      const code = CANVAS_ERROR_CODES[wire - 1];
      if (code === undefined) throw new DecodeFailure('out_of_range', `error: unknown error code ${wire}.`);
      message = { type: 'error', code, about: read.u8(), message: readText(read, what) };
      break;
    }
    default:
      throw new DecodeFailure('unknown_type', `Unknown message type 0x${hex(type)}.`);
  }
  return message;
}

/**
 * The part both decoders share: read the message after its type byte with
 * `readMessage`, require that it ends there, and turn what a malformed
 * message throws into a failure naming the type it claimed.
 */
function decodeWith<Message>(
  bytes: Uint8Array,
  what: string,
  readMessage: (read: ByteReader, type: number, what: string, bytes: Uint8Array) => Message,
): Decoded<Message> {
  const type = bytes[0]!;
  try {
    const read = new ByteReader(bytes, 1);
    const message = readMessage(read, type, what, bytes);
    expectEnd(read, what);
    return { ok: true, message };
  } catch (error) {
    if (error instanceof DecodeFailure) return failure(error.code, error.message, type);
    if (error instanceof MessageTooShort) return failure('malformed', `${what}: the message ends too early (${bytes.length} bytes).`, type);
    throw error;
  }
}

function failure(code: CanvasErrorCode, message: string, about: number): { ok: false; error: CanvasError; about: number } {
  return { ok: false, error: { code, message }, about };
}

const CLIENT_TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(ClientType).map(([name, value]) => [value, name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)]),
);

function clientTypeName(type: number): string {
  return CLIENT_TYPE_NAMES[type] ?? `type 0x${hex(type)}`;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
