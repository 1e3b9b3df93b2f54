import { UsageError } from '../errors.js';
import { computeAcceptKey, isValidClientKey } from './accept-key.js';
import { type ExtensionOffer, parseExtensions } from './extensions-header.js';
import type { ResponseHead } from './http-head.js';
import { type HeaderPair, extraHeaderLines, headerLine, isToken, listHasToken, splitList } from './http-syntax.js';

/**
 * The client's side of the opening handshake (RFC 6455 §4.1): write the
 * upgrade request, then check the server's response before any frame is
 * read. Which extension parameters are acceptable is decided by the
 * extension's negotiator; this module only checks the header's syntax.
 */

export interface UpgradeRequestOptions {
  /** The Host header value, written verbatim (add ":port" for a non-default port yourself). */
  host: string;
  /** The resource name: path and query, starting with "/" (RFC 6455 §3). */
  path: string;
  /** Sec-WebSocket-Key, e.g. from `generateClientKey()`. */
  key: string;
  /** Subprotocols in order of preference; unique tokens (§4.1 item 10). */
  protocols?: readonly string[];
  /** The Sec-WebSocket-Extensions offer (see `formatExtensions`); omitted when undefined or "". */
  extensions?: string;
  /** The Origin header (§4.1 item 8), sent by browser-like clients. */
  origin?: string;
  /** More headers, written after the handshake's own; these may not repeat them. */
  headers?: ReadonlyArray<HeaderPair>;
}

const REQUEST_RESERVED: ReadonlySet<string> = new Set([
  'host',
  'upgrade',
  'connection',
  'origin',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

function invalid(message: string): UsageError {
  return new UsageError('WS_ERR_INVALID_ARGUMENT', message);
}

/**
 * The upgrade request of RFC 6455 §4.1 (items 1-11 of the client's
 * requirements). Arguments that would produce an invalid request or inject
 * header lines throw UsageError (WS_ERR_INVALID_ARGUMENT). The result is
 * ASCII: write it as latin1 or UTF-8, the bytes are the same.
 */
export function buildUpgradeRequest(options: UpgradeRequestOptions): string {
  const { host, path, key } = options;
  // The request target sits between two spaces of the request line: visible ASCII only.
  if (!path.startsWith('/') || !/^[\x21-\x7e]*$/.test(path)) {
    throw invalid('path must start with "/" and contain only visible ASCII (percent-encode the rest)');
  }
  if (host === '' || !/^[\x21-\x7e]*$/.test(host)) throw invalid('host must be non-empty visible ASCII');
  if (!isValidClientKey(key)) throw invalid('key must be base64 of 16 bytes');

  let head =
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
  if (options.origin !== undefined) head += headerLine('Origin', options.origin);
  const protocols = options.protocols ?? [];
  if (protocols.length > 0) {
    for (let i = 0; i < protocols.length; i++) {
      const protocol = protocols[i]!;
      if (!isToken(protocol)) throw invalid(`subprotocol ${JSON.stringify(protocol)} is not a token`);
      if (protocols.indexOf(protocol) !== i) throw invalid(`subprotocol ${protocol} listed twice`);
    }
    head += `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n`;
  }
  if (options.extensions !== undefined && options.extensions !== '') {
    const parsed = parseExtensions(options.extensions);
    if (!parsed.ok) throw invalid(`invalid Sec-WebSocket-Extensions value: ${parsed.reason}`);
    head += headerLine('Sec-WebSocket-Extensions', options.extensions);
  }
  return head + extraHeaderLines(options.headers, REQUEST_RESERVED) + '\r\n';
}

export type UpgradeResponseFailureCode =
  'UNEXPECTED_STATUS' | 'INVALID_UPGRADE' | 'INVALID_CONNECTION' | 'INVALID_ACCEPT' | 'INVALID_EXTENSIONS' | 'UNEXPECTED_SUBPROTOCOL';

export interface UpgradeResponseAccepted {
  ok: true;
  /** The subprotocol the server selected, or undefined. */
  protocol: string | undefined;
  /** The extensions the server accepted, in its order, for the negotiator to check. */
  extensions: ExtensionOffer[];
}

export interface UpgradeResponseRejected {
  ok: false;
  code: UpgradeResponseFailureCode;
  /** The response's status code (101 when the status was right but a header was not). */
  status: number;
  reason: string;
}

export type UpgradeResponseValidation = UpgradeResponseAccepted | UpgradeResponseRejected;

export interface UpgradeExpectation {
  /** The Sec-WebSocket-Key that was sent. */
  key: string;
  /** The subprotocols that were offered; empty when none. */
  protocols: readonly string[];
}

/**
 * Checks the server's response as RFC 6455 §4.1 (the client's "MUST _Fail
 * the WebSocket Connection_" list) requires, in its order:
 *
 * 1. status 101, else the server's status and reason phrase are reported;
 * 2. Upgrade is "websocket", ASCII case-insensitively (the whole value);
 * 3. Connection holds the token "upgrade" case-insensitively. §4.1 speaks of
 *    a value matching "Upgrade"; Connection is a list (RFC 7230 §6.1), so
 *    "Upgrade, keep-alive" is taken, as browsers take it;
 * 4. Sec-WebSocket-Accept equals the accept key of the key sent;
 * 5. Sec-WebSocket-Extensions, when present, is well-formed (whether it
 *    names extensions the client offered is the negotiator's check);
 * 6. Sec-WebSocket-Protocol, when present, is exactly one of the offered
 *    subprotocols (so with none offered, any value fails).
 */
export function validateUpgradeResponse(head: ResponseHead, expected: UpgradeExpectation): UpgradeResponseValidation {
  const { status, headers } = head;
  const fail = (code: UpgradeResponseFailureCode, reason: string): UpgradeResponseRejected => ({
    ok: false,
    code,
    status,
    reason,
  });
  if (status !== 101) {
    const phrase = head.reason === '' ? '' : ` ${head.reason}`;
    return fail('UNEXPECTED_STATUS', `server answered ${status}${phrase} instead of 101 Switching Protocols`);
  }
  const upgrade = headers.get('upgrade');
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
    return fail('INVALID_UPGRADE', 'response lacks Upgrade: websocket');
  }
  const connection = headers.get('connection');
  if (connection === undefined || !listHasToken(connection, 'upgrade')) {
    return fail('INVALID_CONNECTION', 'response lacks Connection: Upgrade');
  }
  const accept = headers.get('sec-websocket-accept');
  if (accept === undefined) return fail('INVALID_ACCEPT', 'response lacks Sec-WebSocket-Accept');
  if (accept !== computeAcceptKey(expected.key)) {
    return fail('INVALID_ACCEPT', 'Sec-WebSocket-Accept does not match the key sent');
  }

  let extensions: ExtensionOffer[] = [];
  const extensionHeader = headers.get('sec-websocket-extensions');
  if (extensionHeader !== undefined) {
    const parsed = parseExtensions(extensionHeader);
    if (!parsed.ok) return fail('INVALID_EXTENSIONS', `invalid Sec-WebSocket-Extensions: ${parsed.reason}`);
    extensions = parsed.offers;
  }

  let protocol: string | undefined;
  const protocolHeader = headers.get('sec-websocket-protocol');
  if (protocolHeader !== undefined) {
    // Two header lines would have been joined into a list: the server picks one (§4.2.2 item 5.5).
    const selected = splitList(protocolHeader);
    if (selected.length !== 1 || !expected.protocols.includes(selected[0]!)) {
      const what = expected.protocols.length === 0 ? 'none was offered' : 'it was not offered';
      return fail('UNEXPECTED_SUBPROTOCOL', `server selected subprotocol ${JSON.stringify(protocolHeader)} but ${what}`);
    }
    protocol = selected[0]!;
  }

  return { ok: true, protocol, extensions };
}
