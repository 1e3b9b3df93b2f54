import { UsageError } from '../errors.js';
import { HTAB, SP, TCHAR, isToken } from './http-syntax.js';

/**
 * The Sec-WebSocket-Extensions grammar (RFC 6455 §9.1):
 *
 *   extension-list  = 1#extension
 *   extension       = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 *
 * with token and quoted-string from RFC 7230 §3.2.6, the list rule of
 * RFC 7230 §7 (empty elements ignored, so header lines joined with ", "
 * parse as one list) and optional whitespace around every separator (the
 * implied LWS of RFC 2616 §2.1, which RFC 6455's ABNF is written in).
 * Whether an offer is acceptable is the negotiator's business; this module
 * only reads and writes the syntax.
 */

export interface ExtensionOffer {
  name: string;
  /** In received order; a duplicate stays visible so the negotiator can refuse it. */
  params: Array<[name: string, value: string | true]>;
}

export type ParseExtensionsResult = { ok: true; offers: ExtensionOffer[] } | { ok: false; reason: string };

const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

function skipOWS(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c !== SP && c !== HTAB) break;
    i++;
  }
  return i;
}

/** Index just past the token starting at `i` (== i when there is none). */
function scanToken(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TCHAR[c] !== 1) break;
    i++;
  }
  return i;
}

function describe(s: string, i: number): string {
  return i < s.length ? `${JSON.stringify(s[i])} at position ${i}` : 'end of value';
}

export function parseExtensions(value: string): ParseExtensionsResult {
  const offers: ExtensionOffer[] = [];
  const n = value.length;
  let i = 0;
  for (;;) {
    i = skipOWS(value, i);
    if (i === n) break;
    if (value.charCodeAt(i) === COMMA) {
      i++; // an empty list element (RFC 7230 §7)
      continue;
    }
    const nameEnd = scanToken(value, i);
    if (nameEnd === i) return { ok: false, reason: `expected an extension name, found ${describe(value, i)}` };
    const offer: ExtensionOffer = { name: value.slice(i, nameEnd), params: [] };
    i = skipOWS(value, nameEnd);
    while (i < n && value.charCodeAt(i) === SEMICOLON) {
      i = skipOWS(value, i + 1);
      const paramEnd = scanToken(value, i);
      if (paramEnd === i) return { ok: false, reason: `expected a parameter name, found ${describe(value, i)}` };
      const paramName = value.slice(i, paramEnd);
      let paramValue: string | true = true;
      i = skipOWS(value, paramEnd);
      if (i < n && value.charCodeAt(i) === EQUALS) {
        i = skipOWS(value, i + 1);
        if (i < n && value.charCodeAt(i) === DQUOTE) {
          const quoted = readQuoted(value, i);
          if (typeof quoted === 'string') return { ok: false, reason: quoted };
          // RFC 6455 §9.1: "When using the quoted-string syntax variant, the
          // value after quoted-string unescaping MUST conform to the 'token' ABNF."
          if (!isToken(quoted.text)) {
            return { ok: false, reason: `value of parameter ${paramName} is not a token after unquoting` };
          }
          paramValue = quoted.text;
          i = quoted.end;
        } else {
          const valueEnd = scanToken(value, i);
          if (valueEnd === i) {
            return { ok: false, reason: `expected a value for parameter ${paramName}, found ${describe(value, i)}` };
          }
          paramValue = value.slice(i, valueEnd);
          i = valueEnd;
        }
        i = skipOWS(value, i);
      }
      offer.params.push([paramName, paramValue]);
    }
    offers.push(offer);
    if (i === n) break;
    if (value.charCodeAt(i) !== COMMA) {
      return { ok: false, reason: `expected ";" or "," after extension ${offer.name}, found ${describe(value, i)}` };
    }
    i++;
  }
  // 1#extension: at least one.
  if (offers.length === 0) return { ok: false, reason: 'empty extension list' };
  return { ok: true, offers };
}

/**
 * quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
 * qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
 * quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )      (RFC 7230 §3.2.6)
 * Returns the unescaped text and the index after the closing quote, or an error reason.
 */
function readQuoted(s: string, open: number): { text: string; end: number } | string {
  const n = s.length;
  let text = '';
  let from = open + 1;
  for (let i = from; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === DQUOTE) return { text: text + s.slice(from, i), end: i + 1 };
    if (c === BACKSLASH) {
      const escaped = i + 1 < n ? s.charCodeAt(i + 1) : -1;
      if (escaped === -1 || !(escaped === HTAB || (escaped >= SP && escaped <= 0xff && escaped !== 0x7f))) {
        return `invalid escape in quoted string at position ${i}`;
      }
      text += s.slice(from, i);
      from = ++i; // keep the escaped character, drop the backslash
      continue;
    }
    if (!(c === HTAB || (c >= SP && c <= 0xff && c !== 0x7f))) {
      return `invalid character in quoted string at position ${i}`;
    }
  }
  return `unterminated quoted string starting at position ${open}`;
}

/**
 * Renders offers as `name; param; param=value, name2`, the style of
 * RFC 7692's examples. Names and values must be tokens (values never need
 * quoting, §9.1 restricts them to tokens anyway); anything else is a usage
 * error, since it could not be parsed back or would corrupt the header.
 */
export function formatExtensions(list: readonly ExtensionOffer[]): string {
  const parts: string[] = [];
  for (const offer of list) {
    if (!isToken(offer.name)) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', `extension name ${JSON.stringify(offer.name)} is not a token`);
    }
    let part = offer.name;
    for (const [name, value] of offer.params) {
      if (!isToken(name)) {
        throw new UsageError('WS_ERR_INVALID_ARGUMENT', `parameter name ${JSON.stringify(name)} is not a token`);
      }
      if (value === true) {
        part += `; ${name}`;
      } else if (isToken(value)) {
        part += `; ${name}=${value}`;
      } else {
        throw new UsageError('WS_ERR_INVALID_ARGUMENT', `value of parameter ${name} is not a token`);
      }
    }
    parts.push(part);
  }
  return parts.join(', ');
}
