import type { WireFrame } from '../node/connection.js';
import { Opcode } from '../protocol/opcode.js';

/**
 * How the interactive commands show what crosses a connection: one marker
 * column (`<` received, `>` sent, `<<`/`>>` frames, `*` notes) followed by
 * text that is always safe to print to a terminal.
 */

/** Bytes shown in hex before a binary summary stops. */
const HEX_PREVIEW = 32;

export interface MessageStyle {
  /** Pretty-print text messages that parse as JSON. */
  json: boolean;
}

/**
 * A whole message after its direction marker. Text keeps its lines; lines
 * after the first are indented under the marker so the marker column stays
 * readable. Binary becomes a length, a hex preview and its printable bytes.
 */
export function formatMessage(marker: string, data: string | Uint8Array, isBinary: boolean, style: MessageStyle): string {
  if (isBinary || typeof data !== 'string') {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return `${marker} ${describeBinary(bytes)}`;
  }
  let text = data;
  if (style.json) text = prettyJson(data) ?? data;
  const indent = ' '.repeat(marker.length + 1);
  return `${marker} ${escapeControls(text).split('\n').join(`\n${indent}`)}`;
}

/** "binary 5 bytes: 68 65 6c 6c 6f |hello|", cut after 32 bytes with a count of the rest. */
export function describeBinary(bytes: Uint8Array): string {
  const shown = bytes.subarray(0, HEX_PREVIEW);
  const unit = bytes.length === 1 ? 'byte' : 'bytes';
  if (bytes.length === 0) return 'binary 0 bytes';
  const hex = Array.from(shown, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const ascii = Array.from(shown, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  const more = bytes.length > shown.length ? ` ... (+${bytes.length - shown.length} bytes)` : '';
  return `binary ${bytes.length} ${unit}: ${hex} |${ascii}|${more}`;
}

/** A ping/pong payload: nothing when empty, quoted when it is printable UTF-8, hex otherwise. */
export function describeControlPayload(payload: Uint8Array): string {
  if (payload.length === 0) return '';
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  if (!text.includes('\ufffd') && !/[\x00-\x1f\x7f]/.test(text)) return ` ${JSON.stringify(text)}`;
  return ` ${describeBinary(payload)}`;
}

const OPCODE_NAMES: Record<number, string> = {
  [Opcode.Continuation]: 'continuation',
  [Opcode.Text]: 'text',
  [Opcode.Binary]: 'binary',
  [Opcode.Close]: 'close',
  [Opcode.Ping]: 'ping',
  [Opcode.Pong]: 'pong',
};

/**
 * One frame header per line, RFC 6455 §5.2 fields in wire order:
 * `<< text         fin=1 rsv1=0 rsv2=0 rsv3=0 masked=0 len=5`.
 */
export function formatWireFrame(frame: WireFrame): string {
  const name = OPCODE_NAMES[frame.opcode] ?? `0x${frame.opcode.toString(16)}`;
  const bit = (value: boolean): string => (value ? '1' : '0');
  return (
    `${frame.direction === 'in' ? '<<' : '>>'} ${name.padEnd(12)} fin=${bit(frame.fin)} ` +
    `rsv1=${bit(frame.rsv1)} rsv2=${bit(frame.rsv2)} rsv3=${bit(frame.rsv3)} masked=${bit(frame.masked)} len=${frame.length}`
  );
}

/** RFC 6455 §7.4.1 names, for close lines people can read without the RFC at hand. */
const CLOSE_NAMES: Record<number, string> = {
  1000: 'normal closure',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no status code',
  1006: 'abnormal closure',
  1007: 'invalid payload data',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'mandatory extension',
  1011: 'internal error',
  1012: 'service restart',
  1013: 'try again later',
  1014: 'bad gateway',
  1015: 'TLS handshake failure',
};

/** `1000 normal closure "bye"`: the code, its meaning when it has a standard one, and the reason. */
export function describeClose(code: number, reason: string): string {
  const name = CLOSE_NAMES[code];
  const quoted = reason === '' ? '' : ` ${JSON.stringify(reason)}`;
  return `${code}${name === undefined ? '' : ` ${name}`}${quoted}`;
}

/** Milliseconds with enough digits for loopback round trips. */
export function formatRtt(ms: number): string {
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}

/** Reduce text to one line of at most `max` characters (for error lines). */
export function oneLine(text: string, max = 300): string {
  const flat = escapeControls(text.replace(/\s+/g, ' ').trim());
  return flat.length <= max ? flat : `${flat.slice(0, max - 3)}...`;
}

function prettyJson(text: string): string | null {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return null;
  }
}

/**
 * Received text goes to a terminal: control characters (C0 except tab and
 * newline, DEL, C1) are shown as escapes so a peer cannot move the cursor,
 * recolour or retitle the user's terminal.
 */
export function escapeControls(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => {
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}
