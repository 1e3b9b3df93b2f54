import { UsageError } from '../errors.js';
import { CR, HTAB, LF, SP, TCHAR, trimOWS } from './http-syntax.js';

/**
 * Incremental parser for the head of an HTTP/1.1 message (RFC 7230 §3): the
 * request head a server reads before an upgrade and the response head a
 * client reads. Bytes arrive in any pieces; the parser scans each byte once,
 * keeps only what it has to, and stops at the blank line. Whatever followed
 * the blank line is handed back untouched: those are the first WebSocket
 * frames.
 *
 * Header bytes are decoded as latin1 (one char per byte), which is what
 * RFC 7230 §3.2.4 describes for field content and keeps every byte visible to
 * later checks.
 */

/** Bounds on what the parser buffers. Every one of them answers 431. */
export interface HeadLimits {
  /** Bytes of the whole head, from the start line through the blank line's CRLF. */
  maxHeadBytes: number;
  /** Number of header lines. */
  maxHeaders: number;
  /** Bytes of one line (start line or header line), CRLF excluded. */
  maxLineBytes: number;
}

export const DEFAULT_HEAD_LIMITS: Readonly<HeadLimits> = Object.freeze({
  maxHeadBytes: 16 * 1024,
  maxHeaders: 100,
  maxLineBytes: 8 * 1024,
});

export interface RequestHead {
  method: string;
  target: string;
  /** "1.1" for HTTP/1.1. */
  httpVersion: string;
  /** Lower-cased names; repeated headers joined with ", " (RFC 7230 §3.2.2). */
  headers: Map<string, string>;
}

export interface ResponseHead {
  /** "1.1" for HTTP/1.1. */
  httpVersion: string;
  status: number;
  reason: string;
  /** Lower-cased names; repeated headers joined with ", " (RFC 7230 §3.2.2). */
  headers: Map<string, string>;
}

export type HeadErrorCode =
  | 'HEAD_TOO_LARGE'
  | 'LINE_TOO_LONG'
  | 'TOO_MANY_HEADERS'
  | 'INVALID_START_LINE'
  | 'INVALID_HTTP_VERSION'
  | 'INVALID_HEADER_NAME'
  | 'WHITESPACE_BEFORE_COLON'
  | 'MISSING_COLON'
  | 'OBS_FOLD'
  | 'BARE_CR'
  | 'BARE_LF'
  | 'CONTROL_CHARACTER';

export interface HeadIncomplete {
  kind: 'incomplete';
}

export interface HeadComplete<H> {
  kind: 'complete';
  head: H;
  /** Bytes after the blank line, a view into the last pushed chunk (never copied). */
  rest: Uint8Array;
}

export interface HeadError {
  kind: 'error';
  /** The status a server answers with: 400 for malformed heads, 431 for a limit exceeded. */
  status: 400 | 431;
  code: HeadErrorCode;
  reason: string;
}

export type HeadResult<H> = HeadIncomplete | HeadComplete<H> | HeadError;

const INCOMPLETE: HeadIncomplete = Object.freeze({ kind: 'incomplete' });

// Where the scanner is within the head.
const AT_START = 0; // before the start line; blank lines are skipped (RFC 7230 §3.5)
const IN_START_LINE = 1;
const AT_FIELD_START = 2; // first byte of a header line, or the blank line ending the head
const IN_NAME = 3;
const IN_VALUE = 4;

const COLON = 0x3a;

function fail(status: 400 | 431, code: HeadErrorCode, reason: string): HeadError {
  return { kind: 'error', status, code, reason };
}

/** field-content bytes: HTAB, SP, VCHAR, obs-text (RFC 7230 §3.2). */
function isFieldByte(b: number): boolean {
  return b >= SP ? b !== 0x7f : b === HTAB;
}

/** Index of the first byte in chunk[from..limit) that is not a field-content byte, or limit. */
function skipFieldBytes(chunk: Uint8Array, from: number, limit: number): number {
  let i = from;
  while (i < limit && isFieldByte(chunk[i]!)) i++;
  return i;
}

/** Index of the first byte in chunk[from..limit) that is not a tchar, or limit. */
function skipTokenBytes(chunk: Uint8Array, from: number, limit: number): number {
  let i = from;
  while (i < limit && TCHAR[chunk[i]!] === 1) i++;
  return i;
}

abstract class HeadParser<H> {
  private readonly limits: HeadLimits;
  /** Bytes of the head seen in earlier pushes (only when the head is split). */
  private buffer: Uint8Array | null = null;
  /** Bytes of the head consumed so far; offsets below are relative to the head's first byte. */
  private consumed = 0;
  private phase = AT_START;
  private sawCR = false;
  private lineStart = 0;
  private colon = -1;
  /** Per header line: offset of the line, of its colon, and of its end (CR). */
  private fields: number[] = [];
  private finished: HeadComplete<H> | HeadError | null = null;

  /** Unset (or undefined) limits take their defaults; a limit that is not a positive integer is a usage error. */
  constructor(limits?: Partial<HeadLimits>) {
    const merged: HeadLimits = {
      maxHeadBytes: limits?.maxHeadBytes ?? DEFAULT_HEAD_LIMITS.maxHeadBytes,
      maxHeaders: limits?.maxHeaders ?? DEFAULT_HEAD_LIMITS.maxHeaders,
      maxLineBytes: limits?.maxLineBytes ?? DEFAULT_HEAD_LIMITS.maxLineBytes,
    };
    for (const [name, value] of Object.entries(merged)) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new UsageError('WS_ERR_INVALID_ARGUMENT', `${name} must be a positive integer`);
      }
    }
    this.limits = merged;
  }

  /**
   * Feeds the next bytes. Returns `incomplete` until the blank line has been
   * seen, then `complete` once; an `error` is final and repeated on every
   * later push. Pushing after `complete` is a usage error: those bytes belong
   * to the WebSocket connection, not to the head.
   */
  push(chunk: Uint8Array): HeadResult<H> {
    const finished = this.finished;
    if (finished !== null) {
      if (finished.kind === 'error') return finished;
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'the HTTP head is already complete');
    }
    const result = this.scan(chunk);
    if (result.kind !== 'incomplete') {
      this.finished = result;
      this.buffer = null;
      this.fields = [];
    }
    return result;
  }

  /** Checks and decodes the start line `bytes[start..end)`; returns the error, or null when valid. */
  protected abstract parseStartLine(bytes: Uint8Array, start: number, end: number): HeadError | null;
  /** The head, from the start line decoded earlier and the headers. */
  protected abstract makeHead(headers: Map<string, string>): H;

  private scan(chunk: Uint8Array): HeadResult<H> {
    const { maxHeadBytes, maxLineBytes, maxHeaders } = this.limits;
    const base = this.consumed;
    // Scanning stops at the head size limit: the head cannot extend past it.
    const room = maxHeadBytes - base;
    const stop = chunk.length < room ? chunk.length : room;
    let phase = this.phase;
    let sawCR = this.sawCR;
    let lineStart = this.lineStart;
    let i = 0;
    for (; i < stop; i++) {
      const b = chunk[i]!;
      const at = base + i;
      if (sawCR) {
        // RFC 7230 §3.5: a CR that is not part of CRLF is rejected, not taken as a line end.
        if (b !== LF) return fail(400, 'BARE_CR', 'CR not followed by LF');
        sawCR = false;
        const lineEnd = at - 1;
        if (phase === AT_START) {
          // RFC 7230 §3.5: ignore empty lines received before the request line.
        } else if (phase === IN_START_LINE) {
          const bytes = this.view(chunk, i);
          const error = this.parseStartLine(bytes, lineStart, lineEnd);
          if (error !== null) return error;
          phase = AT_FIELD_START;
        } else if (phase === AT_FIELD_START) {
          // The blank line: the head is complete.
          return this.complete(chunk, i + 1);
        } else {
          // IN_VALUE (IN_NAME is refused when its CR arrives).
          this.fields.push(lineStart, this.colon, lineEnd);
          phase = AT_FIELD_START;
        }
        lineStart = at + 1;
        continue;
      }
      if (b === CR) {
        if (phase === IN_NAME) return fail(400, 'MISSING_COLON', 'header line without a colon');
        sawCR = true;
        continue;
      }
      // RFC 7230 §3.5 lets a recipient accept a bare LF as a line end; a
      // handshake has no legacy senders to excuse, so we hold senders to CRLF.
      if (b === LF) return fail(400, 'BARE_LF', 'LF not preceded by CR');
      if (at - lineStart >= maxLineBytes) {
        return fail(431, 'LINE_TOO_LONG', `a line of the head is longer than ${maxLineBytes} bytes`);
      }
      // Bytes of this line that still fit the line limit: the fast-forward
      // loops below stop there, so the check above sees the next byte.
      const lineRoom = lineStart - base + maxLineBytes;
      const limit = stop < lineRoom ? stop : lineRoom;
      switch (phase) {
        case IN_VALUE:
          // field-content: VCHAR / obs-text / SP / HTAB (RFC 7230 §3.2); no other controls.
          if (!isFieldByte(b)) return fail(400, 'CONTROL_CHARACTER', 'control character in a header value');
          i = skipFieldBytes(chunk, i + 1, limit) - 1;
          break;
        case IN_NAME:
          if (b === COLON) {
            this.colon = at;
            phase = IN_VALUE;
          } else if (TCHAR[b] === 1) {
            i = skipTokenBytes(chunk, i + 1, limit) - 1;
          } else if (b === SP || b === HTAB) {
            // RFC 7230 §3.2.4: no whitespace between field-name and colon; a server MUST answer 400.
            return fail(400, 'WHITESPACE_BEFORE_COLON', 'whitespace between header name and colon');
          } else {
            return fail(400, 'INVALID_HEADER_NAME', 'invalid character in a header name');
          }
          break;
        case AT_FIELD_START:
          if (TCHAR[b] === 1) {
            if (this.fields.length / 3 >= maxHeaders) {
              return fail(431, 'TOO_MANY_HEADERS', `more than ${maxHeaders} header lines`);
            }
            phase = IN_NAME;
          } else if (b === SP || b === HTAB) {
            // RFC 7230 §3.2.4: obs-fold (a line continued by leading whitespace) is
            // refused with 400; so is whitespace before the first header (§3).
            return fail(400, 'OBS_FOLD', 'header line starts with whitespace (obs-fold)');
          } else {
            return fail(400, 'INVALID_HEADER_NAME', 'header line does not start with a header name');
          }
          break;
        default:
          // AT_START or IN_START_LINE. The start line is checked in full at its
          // end; here only controls are refused (HTAB may occur in a reason phrase).
          if (!isFieldByte(b)) return fail(400, 'CONTROL_CHARACTER', 'control character in the start line');
          phase = IN_START_LINE;
          i = skipFieldBytes(chunk, i + 1, limit) - 1;
      }
    }
    if (stop < chunk.length || base + stop === maxHeadBytes) {
      return fail(431, 'HEAD_TOO_LARGE', `the head is larger than ${maxHeadBytes} bytes`);
    }
    this.keep(chunk);
    this.phase = phase;
    this.sawCR = sawCR;
    this.lineStart = lineStart;
    return INCOMPLETE;
  }

  /**
   * The head's bytes from offset 0 through `chunk[0..end)`: the chunk itself
   * when nothing was buffered before, else the buffer with that prefix of the
   * chunk appended.
   */
  private view(chunk: Uint8Array, end: number): Uint8Array {
    if (this.consumed === 0) return chunk;
    this.ensure(this.consumed + end);
    const buffer = this.buffer!;
    buffer.set(chunk.subarray(0, end), this.consumed);
    return buffer;
  }

  /** Appends a chunk that did not finish the head to the buffer. */
  private keep(chunk: Uint8Array): void {
    const total = this.consumed + chunk.length;
    this.ensure(total);
    this.buffer!.set(chunk, this.consumed);
    this.consumed = total;
  }

  private ensure(size: number): void {
    const buffer = this.buffer;
    if (buffer !== null && buffer.length >= size) return;
    let capacity = buffer === null ? 512 : buffer.length * 2;
    while (capacity < size) capacity *= 2;
    if (capacity > this.limits.maxHeadBytes) capacity = Math.max(size, this.limits.maxHeadBytes);
    const grown = new Uint8Array(capacity);
    if (buffer !== null) grown.set(buffer.subarray(0, this.consumed));
    this.buffer = grown;
  }

  private complete(chunk: Uint8Array, end: number): HeadComplete<H> {
    const bytes = this.view(chunk, end);
    const fields = this.fields;
    const headers = new Map<string, string>();
    // One decode of the header section, then cheap slices of it per name and value.
    const first = fields.length > 0 ? fields[0]! : 0;
    const text = latin1(bytes, first, fields.length > 0 ? fields[fields.length - 1]! : 0);
    for (let f = 0; f < fields.length; f += 3) {
      const nameStart = fields[f]!;
      const colon = fields[f + 1]!;
      let valueEnd = fields[f + 2]!;
      // Names are tchar only, so lower-casing ASCII is all that case folding needs.
      const name = text.slice(nameStart - first, colon - first).toLowerCase();
      // Leading and trailing OWS is not part of the value (RFC 7230 §3.2.4).
      let valueStart = colon + 1;
      while (valueStart < valueEnd && (bytes[valueStart] === SP || bytes[valueStart] === HTAB)) valueStart++;
      while (valueEnd > valueStart && (bytes[valueEnd - 1] === SP || bytes[valueEnd - 1] === HTAB)) valueEnd--;
      const value = text.slice(valueStart - first, valueEnd - first);
      const previous = headers.get(name);
      // RFC 7230 §3.2.2: repeated fields combine into one comma list, in order.
      headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
    }
    return { kind: 'complete', head: this.makeHead(headers), rest: chunk.subarray(end) };
  }
}

/** UTF-8 and latin1 agree on ASCII, and the native decoder is much faster. */
const asciiDecoder = new TextDecoder();

/**
 * Decodes bytes as latin1: each byte becomes the char with the same code.
 * (TextDecoder's "latin1" label is windows-1252, which remaps 0x80-0x9F, so
 * it only serves the all-ASCII case.)
 */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  const STEP = 4096;
  // Short strings (method, version, target): a decoder call costs more than it saves.
  if (end - start <= 32) return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
  let i = start;
  while (i < end && bytes[i]! < 0x80) i++;
  if (i === end) return asciiDecoder.decode(bytes.subarray(start, end));
  const parts: string[] = [];
  for (i = start; i < end; i += STEP) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + STEP)) as unknown as number[]));
  }
  return parts.join('');
}

const H = 0x48;
const T = 0x54;
const P = 0x50;
const SLASH = 0x2f;
const DOT = 0x2e;

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/** HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 7230 §2.6), at bytes[at..at+8). */
function readVersion(bytes: Uint8Array, at: number, end: number): string | null {
  if (end - at !== 8) return null;
  if (bytes[at] !== H || bytes[at + 1] !== T || bytes[at + 2] !== T || bytes[at + 3] !== P || bytes[at + 4] !== SLASH) {
    return null;
  }
  const major = bytes[at + 5]!;
  const minor = bytes[at + 7]!;
  if (!isDigit(major) || bytes[at + 6] !== DOT || !isDigit(minor)) return null;
  return String.fromCharCode(major, DOT, minor);
}

/** Parses request heads (server side). */
export class RequestHeadParser extends HeadParser<RequestHead> {
  private method = '';
  private target = '';
  private httpVersion = '';

  /** request-line = method SP request-target SP HTTP-version (RFC 7230 §3.1.1), single spaces. */
  protected parseStartLine(bytes: Uint8Array, start: number, end: number): HeadError | null {
    let i = start;
    while (i < end && TCHAR[bytes[i]!] === 1) i++;
    if (i === start || i === end || bytes[i] !== SP) {
      return fail(400, 'INVALID_START_LINE', 'malformed request line: expected a method token and a space');
    }
    const methodEnd = i;
    const targetStart = ++i;
    // request-target is URI syntax: visible ASCII, no spaces (RFC 7230 §5.3, RFC 3986 §2).
    while (i < end && bytes[i]! > SP && bytes[i]! < 0x7f) i++;
    if (i === targetStart || i === end || bytes[i] !== SP) {
      return fail(400, 'INVALID_START_LINE', 'malformed request line: expected a request target and a space');
    }
    const targetEnd = i;
    const version = readVersion(bytes, i + 1, end);
    if (version === null) return fail(400, 'INVALID_HTTP_VERSION', 'malformed HTTP version in the request line');
    this.method = latin1(bytes, start, methodEnd);
    this.target = latin1(bytes, targetStart, targetEnd);
    this.httpVersion = version;
    return null;
  }

  protected makeHead(headers: Map<string, string>): RequestHead {
    return { method: this.method, target: this.target, httpVersion: this.httpVersion, headers };
  }
}

/** Parses response heads (client side). */
export class ResponseHeadParser extends HeadParser<ResponseHead> {
  private httpVersion = '';
  private status = 0;
  private reason = '';

  /**
   * status-line = HTTP-version SP status-code SP reason-phrase (RFC 7230 §3.1.2).
   * A status line that ends right after the code, without the SP, is taken
   * too: the reason phrase carries no meaning (§3.1.2) and some servers omit it.
   */
  protected parseStartLine(bytes: Uint8Array, start: number, end: number): HeadError | null {
    const version = end - start >= 8 ? readVersion(bytes, start, start + 8) : null;
    if (version === null) return fail(400, 'INVALID_HTTP_VERSION', 'malformed HTTP version in the status line');
    const s = start + 9;
    if (
      bytes[start + 8] !== SP ||
      end - s < 3 ||
      !isDigit(bytes[s]!) ||
      !isDigit(bytes[s + 1]!) ||
      !isDigit(bytes[s + 2]!) ||
      (end > s + 3 && bytes[s + 3] !== SP)
    ) {
      return fail(400, 'INVALID_START_LINE', 'malformed status line: expected a 3-digit status code');
    }
    this.httpVersion = version;
    this.status = (bytes[s]! - 0x30) * 100 + (bytes[s + 1]! - 0x30) * 10 + (bytes[s + 2]! - 0x30);
    this.reason = end > s + 3 ? trimOWS(latin1(bytes, s + 4, end)) : '';
    return null;
  }

  protected makeHead(headers: Map<string, string>): ResponseHead {
    return { httpVersion: this.httpVersion, status: this.status, reason: this.reason, headers };
  }
}

/**
 * Builds the same header map as the parser from Node's
 * `IncomingMessage.rawHeaders` ([name, value, name, value, ...] as received),
 * so an upgrade taken from a node:http server is validated exactly like one
 * parsed here: lower-cased names, OWS trimmed, repeats joined with ", ".
 */
export function headersFromRaw(raw: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = trimOWS(raw[i + 1]!);
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return headers;
}
