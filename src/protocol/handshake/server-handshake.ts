import { UsageError } from '../errors.js';
import { computeAcceptKey, isValidClientKey } from './accept-key.js';
import { type ExtensionOffer, parseExtensions } from './extensions-header.js';
import type { RequestHead } from './http-head.js';
import { type HeaderPair, extraHeaderLines, headerLine, isToken, listHasToken } from './http-syntax.js';
import { parseSubprotocols } from './subprotocol.js';

/**
 * The server's side of the opening handshake (RFC 6455 §4.2): check the
 * client's request, then answer 101 or refuse with an HTTP error. What to
 * accept beyond the RFC (Origin, path, authentication, which subprotocol and
 * extensions) is the application's and negotiator's choice, made between
 * `validateUpgradeRequest` and `buildAcceptResponse`.
 */

export type UpgradeRejectionCode =
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_HTTP_VERSION'
  | 'INVALID_TARGET'
  | 'MISSING_HOST'
  | 'INVALID_HOST'
  | 'NOT_WEBSOCKET_UPGRADE'
  | 'CONNECTION_NOT_UPGRADE'
  | 'UNSUPPORTED_WEBSOCKET_VERSION'
  | 'INVALID_WEBSOCKET_VERSION'
  | 'INVALID_KEY'
  | 'INVALID_SUBPROTOCOLS'
  | 'INVALID_EXTENSIONS';

export interface UpgradeRequestAccepted {
  ok: true;
  /** Sec-WebSocket-Key, for `buildAcceptResponse`. */
  key: string;
  /** Offered subprotocols in the client's order of preference; empty when none. */
  protocols: string[];
  /** Offered extensions in the client's order; empty when none. */
  extensions: ExtensionOffer[];
}

export interface UpgradeRequestRejected {
  ok: false;
  code: UpgradeRejectionCode;
  status: 400 | 405 | 426;
  reason: string;
  /** Headers the rejection must carry (Allow, Upgrade, Sec-WebSocket-Version). */
  headers?: Array<[string, string]>;
}

export type UpgradeRequestValidation = UpgradeRequestAccepted | UpgradeRequestRejected;

/** RFC 7231 §6.5.15: a 426 names the protocol to switch to, and Upgrade is hop-by-hop (RFC 7230 §6.7). */
const UPGRADE_REQUIRED_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
];

function reject(
  code: UpgradeRejectionCode,
  status: 400 | 405 | 426,
  reason: string,
  headers?: ReadonlyArray<readonly [string, string]>,
): UpgradeRequestRejected {
  const rejection: UpgradeRequestRejected = { ok: false, code, status, reason };
  if (headers !== undefined) rejection.headers = headers.map(([name, value]) => [name, value]);
  return rejection;
}

function isHttp11OrLater(version: string): boolean {
  const match = /^(\d+)\.(\d+)$/.exec(version);
  if (match === null) return false;
  const major = Number(match[1]);
  return major > 1 || (major === 1 && Number(match[2]) >= 1);
}

/**
 * Origin-form ("/chat?room=1") or absolute-form with an http(s) or ws(s)
 * scheme: RFC 6455 §4.2.1 item 1 takes a resource name or "an absolute
 * HTTP/HTTPS URI containing the /resource name/". The asterisk and
 * authority forms are not GET targets (RFC 7230 §5.3).
 */
function isResourceTarget(target: string): boolean {
  if (target.startsWith('/')) return true;
  return /^(?:https?|wss?):\/\//i.test(target);
}

/**
 * Checks an upgrade request against RFC 6455 §4.2.1, in this order, and
 * returns what the handshake offers or how to refuse it:
 *
 * - method not GET: 405 with `Allow: GET` (RFC 7231 §6.5.5 requires Allow).
 * - HTTP version below 1.1: 400. Not 505, which refuses a major version the
 *   server cannot speak at all; HTTP/1.0 is fine, it just has no upgrade.
 * - request target neither origin-form nor absolute http(s)/ws(s): 400.
 * - Host missing or empty: 400; a Host holding a comma or whitespace is
 *   several Host lines joined, which RFC 7230 §5.4 answers with 400 too.
 * - Upgrade without the token "websocket", or Connection without the token
 *   "upgrade" (both case-insensitive, RFC 6455 §4.2.1 items 3-4): 426 with
 *   `Upgrade: websocket` and `Connection: Upgrade`. Both mean the request is
 *   a plain GET, not an upgrade: Upgrade not nominated by Connection must be
 *   ignored (RFC 7230 §6.7), and 426 is how RFC 7231 §6.5.15 tells a client
 *   that this resource requires one.
 * - Sec-WebSocket-Version missing or a version other than 13: 426 with
 *   `Sec-WebSocket-Version: 13` (RFC 6455 §4.2.2 item 4, §4.4) plus the
 *   Upgrade/Connection pair every 426 needs. A value that is not a single
 *   number (e.g. two header lines, forbidden by §11.3.5) is malformed: 400.
 * - Sec-WebSocket-Key not base64 of 16 bytes (§4.2.1 item 5): 400. Two key
 *   lines join to an invalid key, so they are refused as well (§11.3.1).
 * - Sec-WebSocket-Protocol or Sec-WebSocket-Extensions malformed: 400.
 */
export function validateUpgradeRequest(head: RequestHead): UpgradeRequestValidation {
  const headers = head.headers;
  if (head.method !== 'GET') {
    return reject('METHOD_NOT_ALLOWED', 405, `method ${head.method} is not allowed for a WebSocket upgrade`, [['Allow', 'GET']]);
  }
  if (!isHttp11OrLater(head.httpVersion)) {
    return reject('UNSUPPORTED_HTTP_VERSION', 400, `a WebSocket upgrade needs HTTP/1.1, got HTTP/${head.httpVersion}`);
  }
  if (!isResourceTarget(head.target)) {
    return reject('INVALID_TARGET', 400, 'the request target is not a resource path');
  }
  const host = headers.get('host');
  if (host === undefined || host === '') return reject('MISSING_HOST', 400, 'missing Host header');
  if (/[,\s]/.test(host)) return reject('INVALID_HOST', 400, 'invalid or repeated Host header');

  const upgrade = headers.get('upgrade');
  if (upgrade === undefined || !listHasToken(upgrade, 'websocket')) {
    return reject('NOT_WEBSOCKET_UPGRADE', 426, 'expected Upgrade: websocket', UPGRADE_REQUIRED_HEADERS);
  }
  const connection = headers.get('connection');
  if (connection === undefined || !listHasToken(connection, 'upgrade')) {
    return reject('CONNECTION_NOT_UPGRADE', 426, 'expected Connection: Upgrade', UPGRADE_REQUIRED_HEADERS);
  }

  const version = headers.get('sec-websocket-version');
  if (version !== '13') {
    if (version !== undefined && !/^\d{1,3}$/.test(version)) {
      return reject('INVALID_WEBSOCKET_VERSION', 400, 'malformed Sec-WebSocket-Version header');
    }
    return reject(
      'UNSUPPORTED_WEBSOCKET_VERSION',
      426,
      version === undefined ? 'missing Sec-WebSocket-Version header' : `unsupported WebSocket version ${version}`,
      [...UPGRADE_REQUIRED_HEADERS, ['Sec-WebSocket-Version', '13']],
    );
  }

  const key = headers.get('sec-websocket-key');
  if (key === undefined) return reject('INVALID_KEY', 400, 'missing Sec-WebSocket-Key header');
  if (!isValidClientKey(key)) return reject('INVALID_KEY', 400, 'Sec-WebSocket-Key is not base64 of 16 bytes');

  let protocols: string[] = [];
  const protocolHeader = headers.get('sec-websocket-protocol');
  if (protocolHeader !== undefined) {
    const parsed = parseSubprotocols(protocolHeader);
    if (!parsed.ok) return reject('INVALID_SUBPROTOCOLS', 400, `invalid Sec-WebSocket-Protocol: ${parsed.reason}`);
    protocols = parsed.protocols;
  }

  let extensions: ExtensionOffer[] = [];
  const extensionHeader = headers.get('sec-websocket-extensions');
  if (extensionHeader !== undefined) {
    const parsed = parseExtensions(extensionHeader);
    if (!parsed.ok) return reject('INVALID_EXTENSIONS', 400, `invalid Sec-WebSocket-Extensions: ${parsed.reason}`);
    extensions = parsed.offers;
  }

  return { ok: true, key, protocols, extensions };
}

export interface AcceptResponseOptions {
  /** The client's Sec-WebSocket-Key. */
  key: string;
  /** The selected subprotocol, a token; omitted when none was selected. */
  protocol?: string;
  /** The negotiated Sec-WebSocket-Extensions value (see `formatExtensions`); omitted when undefined or "". */
  extensions?: string;
  /** More headers, written after the handshake's own; these may not repeat them. */
  headers?: ReadonlyArray<HeaderPair>;
}

const ACCEPT_RESERVED: ReadonlySet<string> = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/**
 * The 101 response of RFC 6455 §4.2.2 item 5. Every value is checked for
 * header injection; a bad one throws UsageError (WS_ERR_INVALID_ARGUMENT).
 * The result is ASCII: write it as latin1 or UTF-8, the bytes are the same.
 */
export function buildAcceptResponse(options: AcceptResponseOptions): string {
  let head =
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${computeAcceptKey(options.key)}\r\n`;
  if (options.protocol !== undefined) {
    // §4.2.2 item 5.5 (and §4.1 item 10): a subprotocol is a token.
    if (!isToken(options.protocol)) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', `subprotocol ${JSON.stringify(options.protocol)} is not a token`);
    }
    head += `Sec-WebSocket-Protocol: ${options.protocol}\r\n`;
  }
  if (options.extensions !== undefined && options.extensions !== '') {
    const parsed = parseExtensions(options.extensions);
    if (!parsed.ok) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', `invalid Sec-WebSocket-Extensions value: ${parsed.reason}`);
    }
    head += headerLine('Sec-WebSocket-Extensions', options.extensions);
  }
  return head + extraHeaderLines(options.headers, ACCEPT_RESERVED) + '\r\n';
}

const REASON_PHRASES: Readonly<Record<number, string>> = {
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  414: 'URI Too Long',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const REJECTION_RESERVED: ReadonlySet<string> = new Set(['content-length', 'content-type', 'transfer-encoding']);

/** Bytes of `s` in UTF-8, counting a lone surrogate as the 3 bytes of U+FFFD it is encoded as. */
function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    } else bytes += 3;
  }
  return bytes;
}

/**
 * A complete HTTP/1.1 error response refusing an upgrade: status line,
 * `Connection: close` (the server closes after it), the caller's headers,
 * `Content-Type: text/plain; charset=utf-8`, a Content-Length in bytes and
 * `reason` as the body. A Connection header among `headers` (the
 * `Connection: Upgrade` of a 426) is merged into the one Connection line.
 * Status must be 300-599: a 1xx/2xx cannot refuse anything, and a 101 would
 * claim the upgrade happened. Write the result as UTF-8 (the head is ASCII,
 * the body is UTF-8).
 */
export function buildRejection(status: number, reason: string, headers?: ReadonlyArray<HeaderPair>): string {
  if (!Number.isInteger(status) || status < 300 || status > 599) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `status ${status} cannot reject an upgrade (300-599)`);
  }
  let connection = 'close';
  const others: HeaderPair[] = [];
  for (const pair of headers ?? []) {
    if (pair[0].toLowerCase() === 'connection') connection = `${pair[1]}, ${connection}`;
    else others.push(pair);
  }
  return (
    `HTTP/1.1 ${status} ${REASON_PHRASES[status] ?? ''}\r\n` +
    headerLine('Connection', connection) +
    extraHeaderLines(others, REJECTION_RESERVED) +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${utf8Length(reason)}\r\n\r\n` +
    reason
  );
}
