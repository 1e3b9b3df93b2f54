import type { Opcode } from '../protocol/opcode.js';
import type { ProtocolEvent } from '../protocol/protocol.js';
import { Role } from '../protocol/role.js';

/**
 * Frame-level views of a connection's traffic, for traces and debugging:
 * the shapes of the `frame` and `wire` events, and the `wire` event's
 * records built from the headers the core parsed or wrote. A connection
 * builds them only while someone listens.
 */

export interface FrameInfo {
  opcode: Opcode;
  fin: boolean;
  rsv1: boolean;
  /** Payload unmasked and, in a compressed message, decompressed: the bytes this frame adds to its message. */
  payload: Buffer;
}

/** One frame header as it crossed the wire, for traces (the `wire` event). */
export interface WireFrame {
  direction: 'in' | 'out';
  opcode: Opcode;
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  masked: boolean;
  /** Payload length on the wire: after compression, as framed. */
  length: number;
}

type FrameHeaderEvent = Extract<ProtocolEvent, { type: 'frameHeader' }>;

/** A received frame header, as the core parsed it, for the `wire` event of a connection in `role`. */
export function describeReceivedHeader(event: FrameHeaderEvent, role: Role): WireFrame {
  return {
    direction: 'in',
    opcode: event.opcode,
    fin: event.fin,
    rsv1: event.rsv1,
    // The reader fails frames with RSV2/RSV3 set or the wrong masking (§5.1, §5.2) before reporting them.
    rsv2: false,
    rsv3: false,
    // §5.1: a client masks every frame it sends, a server none, so what a server receives was masked.
    masked: role === Role.Server,
    length: event.length,
  };
}

/** The bits of a frame header the core wrote (RFC 6455 §5.2 layout), for the `wire` event. */
export function describeSentHeader(header: Uint8Array, length: number): WireFrame {
  const b0 = header[0]!;
  return {
    direction: 'out',
    opcode: (b0 & 0x0f) as Opcode,
    fin: (b0 & 0x80) !== 0,
    rsv1: (b0 & 0x40) !== 0,
    rsv2: (b0 & 0x20) !== 0,
    rsv3: (b0 & 0x10) !== 0,
    masked: (header[1]! & 0x80) !== 0,
    length,
  };
}
