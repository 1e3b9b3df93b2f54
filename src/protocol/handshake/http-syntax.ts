import { UsageError } from '../errors.js';

/**
 * Character classes and small helpers of HTTP/1.1 message syntax
 * (RFC 7230 §3.2, §3.2.6, §7) shared by the handshake modules.
 */

export const HTAB = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;

/**
 * tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA   (RFC 7230 §3.2.6)
 * A 256-entry table so the byte loops test a character with one load.
 */
export const TCHAR: Uint8Array = (() => {
  const table = new Uint8Array(256);
  for (let c = 0x30; c <= 0x39; c++) table[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) table[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) table[c] = 1;
  for (const ch of "!#$%&'*+-.^_`|~") table[ch.charCodeAt(0)] = 1;
  return table;
})();

/** token = 1*tchar (RFC 7230 §3.2.6). */
export function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TCHAR[c] !== 1) return false;
  }
  return true;
}

/**
 * Whether `s` may be sent as a header value by us: SP, HTAB and VCHAR only.
 * This refuses CR and LF (header injection) and every other control
 * character. RFC 7230 §3.2 would also let obs-text (0x80-0xFF) through, but
 * §3.2.4 asks senders not to generate it, and keeping what we emit pure ASCII
 * means the head encodes to the same bytes whether written as UTF-8 or latin1.
 */
export function isSafeFieldValue(s: string): boolean {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === HTAB) continue;
    if (c < SP || c > 0x7e) return false;
  }
  return true;
}

/** Removes leading and trailing OWS (SP / HTAB, RFC 7230 §3.2.3). */
export function trimOWS(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOWS(s.charCodeAt(start))) start++;
  while (end > start && isOWS(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isOWS(c: number): boolean {
  return c === SP || c === HTAB;
}

/**
 * Splits a `#rule` list value (RFC 7230 §7) at commas and trims OWS around
 * each element. Empty elements are dropped: §7 says a recipient must accept
 * and ignore them ("a, , b"). No element of the lists we read (Upgrade,
 * Connection, Sec-WebSocket-Protocol) may contain a comma or a quoted string.
 */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  const n = value.length;
  for (let i = 0; i <= n; i++) {
    if (i === n || value.charCodeAt(i) === 0x2c) {
      const element = trimOWS(value.slice(start, i));
      if (element.length > 0) out.push(element);
      start = i + 1;
    }
  }
  return out;
}

/** Whether a comma list holds `lowerToken`, compared ASCII case-insensitively. */
export function listHasToken(value: string, lowerToken: string): boolean {
  for (const element of splitList(value)) {
    if (element.toLowerCase() === lowerToken) return true;
  }
  return false;
}

/** A header the caller asks us to add to a head we build. */
export type HeaderPair = readonly [name: string, value: string];

/**
 * Renders `name: value\r\n` after checking that the name is a token and the
 * value cannot break out of its line. Values come from applications, so a CR
 * or LF in them would let a caller (or whoever feeds the caller) inject
 * headers or a whole response: refuse with a typed error instead.
 */
export function headerLine(name: string, value: string): string {
  if (!isToken(name)) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `invalid header name ${JSON.stringify(name)}`);
  }
  if (!isSafeFieldValue(value)) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `invalid value for header ${name}: only SP, HTAB and visible ASCII are allowed (no CR/LF)`);
  }
  return `${name}: ${value}\r\n`;
}

/**
 * Renders the caller's extra headers, refusing those the builder writes
 * itself (`reserved`, lower-case): a second Upgrade or Content-Length would
 * make the message contradict itself.
 */
export function extraHeaderLines(headers: ReadonlyArray<HeaderPair> | undefined, reserved: ReadonlySet<string>): string {
  if (headers === undefined) return '';
  let out = '';
  for (const [name, value] of headers) {
    if (reserved.has(name.toLowerCase())) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', `header ${name} is set by the handshake itself`);
    }
    out += headerLine(name, value);
  }
  return out;
}
