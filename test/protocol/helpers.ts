/**
 * Test helpers for the protocol core. The frame encoder and decoder here are
 * written independently of src/protocol/frame-writer.ts and frame-reader.ts,
 * byte by byte from RFC 6455 §5.2, so the tests do not check the core
 * against itself.
 */
import type { ProtocolErrorCode } from '../../src/protocol/errors.js';
import { Protocol, type ProtocolEvent, type ProtocolHost, type ProtocolOptions } from '../../src/protocol/protocol.js';
import { Role } from '../../src/protocol/role.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** "81 05 48 65" (spaces and newlines ignored) -> bytes. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, '');
  if (digits.length % 2 !== 0 || /[^0-9a-fA-F]/.test(digits)) throw new Error(`bad hex: ${text}`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), so large payloads cost no generator time. */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export interface FrameFields {
  opcode: number;
  payload?: Uint8Array | string;
  /** Default true. */
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** A 4-byte key masks the frame; null or absent leaves it unmasked. */
  mask?: Uint8Array | null;
  /** Force a length encoding (to build non-minimal lengths); default the minimal one. */
  lengthEncoding?: 7 | 16 | 64;
  /** Put this length in the header instead of the payload's real length (the payload is still appended). */
  declaredLength?: number | bigint;
}

/** Build one frame from its fields (RFC 6455 §5.2), masking with `mask` if given. */
export function frame(fields: FrameFields): Uint8Array {
  const payload = typeof fields.payload === 'string' ? utf8(fields.payload) : (fields.payload ?? new Uint8Array(0));
  const declared = BigInt(fields.declaredLength ?? payload.length);
  const encoding =
    fields.lengthEncoding ??
    (declared < 126n ? 7
    : declared < 65536n ? 16
    : 64);
  const key = fields.mask ?? null;
  const head: number[] = [
    ((fields.fin ?? true) ? 0x80 : 0) | (fields.rsv1 ? 0x40 : 0) | (fields.rsv2 ? 0x20 : 0) | (fields.rsv3 ? 0x10 : 0) | (fields.opcode & 0x0f),
  ];
  const maskBit = key === null ? 0 : 0x80;
  if (encoding === 7) {
    head.push(maskBit | Number(declared));
  } else if (encoding === 16) {
    head.push(maskBit | 126, Number(declared >> 8n) & 0xff, Number(declared) & 0xff);
  } else {
    head.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) head.push(Number((declared >> shift) & 0xffn));
  }
  if (key !== null) head.push(...key);
  const body = new Uint8Array(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ (key === null ? 0 : key[i % 4]!);
  return concat(Uint8Array.from(head), body);
}

/** A fresh random mask key (tests only; the core draws its own). */
export function randomKey(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(4));
}

/** A frame as the peer of `receiver` would send it: masked towards a server, unmasked towards a client. */
export function peerFrame(receiver: Role, fields: Omit<FrameFields, 'mask'>, key: Uint8Array = randomKey()): Uint8Array {
  return frame({ ...fields, mask: receiver === Role.Server ? key : null });
}

export interface ParsedFrame {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  masked: boolean;
  maskKey: Uint8Array | null;
  /** Unmasked. */
  payload: Uint8Array;
  /** The bytes of the frame exactly as written. */
  raw: Uint8Array;
}

/** Decode a byte stream that must consist of whole frames. */
export function parseFrames(bytes: Uint8Array): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let o = 0;
  while (o < bytes.length) {
    const start = o;
    if (bytes.length - o < 2) throw new Error('truncated frame header');
    const b0 = bytes[o++]!;
    const b1 = bytes[o++]!;
    let length = b1 & 0x7f;
    if (length === 126) {
      length = (bytes[o]! << 8) | bytes[o + 1]!;
      o += 2;
    } else if (length === 127) {
      let value = 0;
      for (let i = 0; i < 8; i++) value = value * 256 + bytes[o + i]!;
      length = value;
      o += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskKey = masked ? bytes.slice(o, o + 4) : null;
    if (masked) o += 4;
    if (o + length > bytes.length) throw new Error('truncated frame payload');
    const payload = bytes.slice(o, o + length);
    if (maskKey !== null) for (let i = 0; i < payload.length; i++) payload[i]! ^= maskKey[i % 4]!;
    o += length;
    frames.push({
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f,
      masked,
      maskKey,
      payload,
      raw: bytes.slice(start, o),
    });
  }
  return frames;
}

/**
 * A ProtocolHost that records everything. Written chunks are copied at write
 * time (the payload may be the application's buffer); events are kept as
 * given, so a later change to delivered data by the core would show up.
 */
export class RecordingHost implements ProtocolHost {
  readonly writes: { header: Uint8Array; payload: Uint8Array }[] = [];
  readonly events: ProtocolEvent[] = [];
  backlogDrainedCalls = 0;
  /** Called after each event is recorded (to act from inside a callback). */
  onEvent: ((event: ProtocolEvent) => void) | null = null;

  writeFrame(header: Uint8Array, payload: Uint8Array): void {
    this.writes.push({ header: header.slice(), payload: payload.slice() });
  }

  event(event: ProtocolEvent): void {
    this.events.push(event);
    this.onEvent?.(event);
  }

  backlogDrained(): void {
    this.backlogDrainedCalls++;
  }

  /** Every byte written so far, in order. */
  get written(): Uint8Array {
    return concat(...this.writes.flatMap((w) => [w.header, w.payload]));
  }

  frames(): ParsedFrame[] {
    return parseFrames(this.written);
  }

  ofType<T extends ProtocolEvent['type']>(type: T): Extract<ProtocolEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<ProtocolEvent, { type: T }> => e.type === type);
  }

  clear(): void {
    this.writes.length = 0;
    this.events.length = 0;
  }
}

export function makeProtocol(role: Role, options: Omit<ProtocolOptions, 'role'> = {}): { protocol: Protocol; host: RecordingHost } {
  const host = new RecordingHost();
  const protocol = new Protocol(host, { ...options, role });
  return { protocol, host };
}

/**
 * Split `bytes` at the given cut positions (taken modulo length+1, sorted) into
 * copies, so that in-place unmasking by the core never touches the caller's data.
 */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    if (point > previous) pieces.push(bytes.slice(previous, point));
    previous = point;
  }
  return pieces;
}

export function chunksOf(bytes: Uint8Array, size: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.slice(i, i + size));
  return pieces;
}

/** Feed a copy of `bytes` (or of each piece) to the protocol. */
export function feed(protocol: Protocol, ...pieces: Uint8Array[]): void {
  for (const piece of pieces) protocol.receive(piece.slice());
}

/** Close frame payload: 2-byte code then the UTF-8 reason (§5.5.1). */
export function closePayload(code: number, reason = ''): Uint8Array {
  return concat(Uint8Array.of(code >> 8, code & 0xff), utf8(reason));
}

export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * The connection failed with `code`: exactly one error event, the last event,
 * and exactly one frame written, a close frame whose payload is the close code
 * followed by the error's message as reason, masked iff we are a client.
 * Returns the error for further checks.
 */
export function expectFailedWith(
  host: RecordingHost,
  role: Role,
  code: ProtocolErrorCode,
  closeCode: number,
): { message: string; written: Uint8Array } {
  const errors = host.ofType('error');
  if (errors.length !== 1) throw new Error(`expected one error event, got ${errors.length}: ${JSON.stringify(host.events.map((e) => e.type))}`);
  const error = errors[0]!.error;
  if (host.events[host.events.length - 1]!.type !== 'error') throw new Error('error is not the last event');
  if (error.code !== code) throw new Error(`expected ${code}, got ${error.code} (${error.message})`);
  if (error.closeCode !== closeCode) throw new Error(`expected close code ${closeCode}, got ${error.closeCode}`);
  const frames = host.frames();
  const closes = frames.filter((f) => f.opcode === 0x8);
  if (closes.length !== 1) throw new Error(`expected one close frame written, got ${closes.length}`);
  const close = closes[0]!;
  const reason = utf8(error.message);
  const expectedPayload = closePayload(closeCode, error.message);
  if (toHex(close.payload) !== toHex(expectedPayload)) {
    throw new Error(`close payload ${toHex(close.payload)} != ${toHex(expectedPayload)}`);
  }
  if (close.masked !== (role === Role.Client)) throw new Error('close frame masking does not match the role');
  if (!close.fin || close.rsv1 || close.rsv2 || close.rsv3) throw new Error('close frame header bits wrong');
  // The exact bytes: for a server, 88 <len> <code> <reason>; for a client the same, masked.
  const expectedHead = role === Role.Client ? Uint8Array.of(0x88, 0x80 | (2 + reason.length)) : Uint8Array.of(0x88, 2 + reason.length);
  if (toHex(close.raw.subarray(0, 2)) !== toHex(expectedHead)) throw new Error(`close header ${toHex(close.raw)}`);
  if (role === Role.Server && toHex(close.raw) !== toHex(concat(expectedHead, expectedPayload))) {
    throw new Error(`close frame bytes ${toHex(close.raw)}`);
  }
  return { message: error.message, written: close.raw };
}
