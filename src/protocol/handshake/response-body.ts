import type { ResponseHead } from './http-head.js';

/**
 * The body of an HTTP/1.1 response that a client reads only to report it
 * (a server refusing the upgrade says why in its body). RFC 9112 §6.3
 * decides where the body ends: a chunked transfer coding first, then
 * Content-Length, else the end of the connection. Only `limit` bytes of
 * body are ever kept, whatever the framing claims.
 */

export interface ResponseBody {
  /** The end of the body was seen, or `limit` bytes of it: reading more would change nothing. */
  complete: boolean;
  /** The body as the application would read it: de-chunked, at most `limit` bytes. */
  body: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const CR = 0x0d;
const LF = 0x0a;
/** A chunk-size line with its extensions (RFC 9112 §7.1.1); longer ones are not worth reading for a message. */
const MAX_CHUNK_LINE = 1024;

/**
 * Decode what has arrived (`received`: every byte after the head so far) of
 * the body of `head`. Cheap enough to call again after each read: the
 * caller keeps at most a few KiB.
 */
export function readResponseBody(head: ResponseHead, received: Uint8Array, limit: number): ResponseBody {
  // RFC 9112 §6.3 (1): 1xx, 204 and 304 responses end at the head.
  if (head.status < 200 || head.status === 204 || head.status === 304) return { complete: true, body: EMPTY };
  const codings = head.headers.get('transfer-encoding');
  if (codings !== undefined) {
    // §6.3 (4): chunked as the final coding delimits the body; any other
    // final coding means it runs to the end of the connection.
    const last = codings.split(',').pop()!.trim().toLowerCase();
    if (last === 'chunked') return dechunk(received, limit);
    return untilClose(received, limit);
  }
  const declared = head.headers.get('content-length');
  if (declared !== undefined && /^\d+$/.test(declared.trim())) {
    const wanted = Math.min(Number(declared.trim()), limit);
    return { complete: received.length >= wanted, body: received.subarray(0, wanted) };
  }
  return untilClose(received, limit);
}

function untilClose(received: Uint8Array, limit: number): ResponseBody {
  return { complete: received.length >= limit, body: received.subarray(0, limit) };
}

/**
 * RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF,
 * ended by a chunk of size 0 (trailers after it are of no interest here).
 * Malformed framing ends the body where it went wrong: this is a message
 * for a person, not data to trust.
 */
function dechunk(received: Uint8Array, limit: number): ResponseBody {
  const parts: Uint8Array[] = [];
  let kept = 0;
  let at = 0;
  const result = (complete: boolean): ResponseBody => ({ complete, body: join(parts, kept) });
  for (;;) {
    const lineEnd = findLf(received, at, MAX_CHUNK_LINE);
    if (lineEnd === -2) return result(true); // no end of line where one must be
    if (lineEnd === -1) return result(false);
    const size = chunkSize(received, at, lineEnd);
    if (size === null) return result(true);
    if (size === 0) return result(true); // last-chunk
    const dataStart = lineEnd + 1;
    const available = Math.min(size, received.length - dataStart);
    const take = Math.min(available, limit - kept);
    if (take > 0) {
      parts.push(received.subarray(dataStart, dataStart + take));
      kept += take;
    }
    if (kept >= limit) return result(true);
    if (available < size) return result(false);
    // The CRLF after chunk-data.
    const after = dataStart + size;
    if (received.length < after + 2) return result(false);
    if (received[after] !== CR || received[after + 1] !== LF) return result(true);
    at = after + 2;
  }
}

/** Index of the LF ending the line at `from`; -1: not arrived yet; -2: not within `max` bytes. */
function findLf(bytes: Uint8Array, from: number, max: number): number {
  const end = Math.min(bytes.length, from + max);
  for (let i = from; i < end; i++) if (bytes[i] === LF) return i;
  return bytes.length >= from + max ? -2 : -1;
}

/** The hex chunk-size at the start of the line [from, lf), or null if there is none (RFC 9112 §7.1). */
function chunkSize(bytes: Uint8Array, from: number, lf: number): number | null {
  let size = 0;
  let digits = 0;
  let i = from;
  for (; i < lf; i++) {
    const b = bytes[i]!;
    const digit =
      b >= 0x30 && b <= 0x39 ? b - 0x30
      : b >= 0x61 && b <= 0x66 ? b - 0x57
      : b >= 0x41 && b <= 0x46 ? b - 0x37
      : -1;
    if (digit < 0) break;
    // More than 13 hex digits cannot be an exact number; no refusal body needs that.
    if (++digits > 13) return null;
    size = size * 16 + digit;
  }
  if (digits === 0) return null;
  // What follows the size: optional whitespace and extensions (";name=value"), then CRLF.
  const rest = i;
  if (lf === rest || bytes[lf - 1] !== CR) return null;
  if (rest < lf - 1 && bytes[rest] !== 0x3b && bytes[rest] !== 0x20 && bytes[rest] !== 0x09) return null;
  return size;
}

function join(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
