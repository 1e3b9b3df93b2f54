import { UsageError } from './errors.js';
import type { ExtensionOffer } from './handshake/extensions-header.js';

/**
 * permessage-deflate negotiation (RFC 7692 §7.1): what a client offers, which
 * offer a server accepts and what it answers, and whether a client can live
 * with the answer. Only parameters are handled here; DEFLATE itself runs in
 * an injected CompressionCodec (codec.ts).
 *
 * Window bits 8. zlib cannot deflate with a 256-byte window: asked for raw
 * deflate with windowBits 8 it uses 9 (node:zlib maps 8 to 9 itself). That is
 * still a valid way to honour a limit of 8, because zlib never emits a
 * distance larger than its window minus MIN_LOOKAHEAD (262 bytes): with a
 * 512-byte window no match reaches back more than 250 bytes, which a peer
 * with a 256-byte window can decode. A raw DEFLATE stream carries no window
 * size in a header, so nothing else tells the peer about the 9.
 * test/node/zlib-codec.test.ts checks this by scanning the distances in the
 * streams node:zlib produces. So every value 8..15 can be honoured in both
 * directions and no offer is declined, or response refused, for asking for 8.
 */

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** Messages shorter than this many bytes are sent uncompressed unless the options say otherwise. */
export const DEFAULT_DEFLATE_THRESHOLD = 1024;

/** The largest LZ77 window, 32 KiB: what a side may use when nothing limits it. */
export const MAX_WINDOW_BITS = 15;
export const MIN_WINDOW_BITS = 8;

/**
 * What the application asks for. The same object configures either role:
 * on a server it says what to accept and require, on a client what to offer.
 */
export interface DeflateOptions {
  /**
   * Server: always promise not to use context takeover (§7.1.1.1), which lets
   * the server reset its compressor between messages.
   * Client: ask the server for that, and refuse a server that will not.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Server: tell the client not to use context takeover (§7.1.1.2).
   * Client: announce that it will not use context takeover.
   */
  clientNoContextTakeover?: boolean;
  /**
   * Server: the largest window it compresses with; a client asking for less
   * gets what it asks for. Client: the largest server window it accepts
   * (offered as server_max_window_bits). 8..15, default 15.
   */
  serverMaxWindowBits?: number;
  /**
   * Server: the largest window the client may compress with; offers that do
   * not let the server limit it (no client_max_window_bits) are declined
   * when this is below 15. Client: the largest window it compresses with,
   * offered as a hint (§7.1.2.2). 8..15; a client without it offers
   * client_max_window_bits without a value.
   */
  clientMaxWindowBits?: number;
  /** Messages smaller than this many bytes are sent uncompressed. Default 1024. */
  threshold?: number;
}

/** The agreement both sides act on; window bits are 15 when nothing limits them. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

export type DeflateResponseErrorCode =
  | 'PMD_UNEXPECTED_EXTENSION'
  | 'PMD_DUPLICATE_EXTENSION'
  | 'PMD_UNKNOWN_PARAM'
  | 'PMD_DUPLICATE_PARAM'
  | 'PMD_INVALID_VALUE'
  | 'PMD_UNSUPPORTED_PARAMS';

export type DeflateResponseResult = { ok: true; params: DeflateParams | null } | { ok: false; code: DeflateResponseErrorCode; reason: string };

const SERVER_NO_CONTEXT_TAKEOVER = 'server_no_context_takeover';
const CLIENT_NO_CONTEXT_TAKEOVER = 'client_no_context_takeover';
const SERVER_MAX_WINDOW_BITS = 'server_max_window_bits';
const CLIENT_MAX_WINDOW_BITS = 'client_max_window_bits';

/** §7.1.2.1/§7.1.2.2: a decimal integer 8..15 without leading zeroes. */
const WINDOW_BITS_SYNTAX = /^(?:[89]|1[0-5])$/;

/**
 * Throws a UsageError for options no negotiation could honour, so a server
 * or client can refuse a bad configuration when it is created rather than
 * at the first handshake.
 */
export function checkDeflateOptions(options: DeflateOptions): void {
  for (const key of ['serverMaxWindowBits', 'clientMaxWindowBits'] as const) {
    const bits = options[key];
    if (bits !== undefined && !(Number.isInteger(bits) && bits >= MIN_WINDOW_BITS && bits <= MAX_WINDOW_BITS)) {
      throw new UsageError('WS_ERR_INVALID_ARGUMENT', `${key} must be an integer from 8 to 15, got ${String(bits)}`);
    }
  }
  const threshold = options.threshold;
  if (threshold !== undefined && !(Number.isInteger(threshold) && threshold >= 0)) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `threshold must be a non-negative integer, got ${String(threshold)}`);
  }
}

/** The parameters of one permessage-deflate element, each checked for syntax. */
interface ParsedParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** undefined: absent. */
  serverMaxWindowBits: number | undefined;
  /** undefined: absent; true: present without a value (offers only, §7.1.2.2). */
  clientMaxWindowBits: number | true | undefined;
}

type ParseResult = { ok: true; params: ParsedParams } | { ok: false; code: DeflateResponseErrorCode; reason: string };

/**
 * §7.1: an offer is declined, and a response fails the connection, when it
 * has a parameter not defined for it, a parameter with an invalid value, or
 * the same parameter twice. The only difference between the two directions
 * is that client_max_window_bits may come without a value in an offer
 * (§7.1.2.2) but needs one in a response.
 */
function parseParams(element: ExtensionOffer, isOffer: boolean): ParseResult {
  const parsed: ParsedParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [name, value] of element.params) {
    if (seen.has(name)) return { ok: false, code: 'PMD_DUPLICATE_PARAM', reason: `parameter ${name} appears twice` };
    seen.add(name);
    switch (name) {
      case SERVER_NO_CONTEXT_TAKEOVER:
      case CLIENT_NO_CONTEXT_TAKEOVER:
        // §7.1.1.1, §7.1.1.2: "This parameter has no value."
        if (value !== true) return { ok: false, code: 'PMD_INVALID_VALUE', reason: `parameter ${name} takes no value` };
        if (name === SERVER_NO_CONTEXT_TAKEOVER) parsed.serverNoContextTakeover = true;
        else parsed.clientNoContextTakeover = true;
        break;
      case SERVER_MAX_WINDOW_BITS: {
        const bits = parseWindowBits(value);
        if (bits === null) return invalidWindowBits(name, value);
        parsed.serverMaxWindowBits = bits;
        break;
      }
      case CLIENT_MAX_WINDOW_BITS: {
        if (value === true && isOffer) {
          parsed.clientMaxWindowBits = true;
          break;
        }
        const bits = parseWindowBits(value);
        if (bits === null) return invalidWindowBits(name, value);
        parsed.clientMaxWindowBits = bits;
        break;
      }
      default:
        return { ok: false, code: 'PMD_UNKNOWN_PARAM', reason: `unknown parameter ${name}` };
    }
  }
  return { ok: true, params: parsed };
}

function parseWindowBits(value: string | true): number | null {
  return value !== true && WINDOW_BITS_SYNTAX.test(value) ? Number(value) : null;
}

function invalidWindowBits(name: string, value: string | true): ParseResult {
  const shown = value === true ? 'no value' : JSON.stringify(value);
  return { ok: false, code: 'PMD_INVALID_VALUE', reason: `parameter ${name} needs a value from 8 to 15, got ${shown}` };
}

/**
 * Server side (§7.1): walk the client's permessage-deflate offers in the
 * client's order of preference and accept the first one that is valid and
 * that the server can honour. Returns the agreement and the element to send
 * back in Sec-WebSocket-Extensions, or null when every offer is declined
 * (the connection then proceeds without compression).
 */
export function negotiateServer(
  offers: readonly ExtensionOffer[],
  options: DeflateOptions,
): { params: DeflateParams; response: ExtensionOffer } | null {
  checkDeflateOptions(options);
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const parsed = parseParams(offer, true);
    if (!parsed.ok) continue;
    const accepted = acceptOffer(parsed.params, options);
    if (accepted !== null) return accepted;
  }
  return null;
}

function acceptOffer(offer: ParsedParams, options: DeflateOptions): { params: DeflateParams; response: ExtensionOffer } | null {
  const ownServerBits = options.serverMaxWindowBits ?? MAX_WINDOW_BITS;
  const ownClientBits = options.clientMaxWindowBits ?? MAX_WINDOW_BITS;

  // §7.1.2.2: without client_max_window_bits in the offer the response must
  // not carry it, so a server that needs to limit the client's window
  // (to bound its own inflate memory) cannot accept this offer.
  if (offer.clientMaxWindowBits === undefined && ownClientBits < MAX_WINDOW_BITS) return null;

  const params: DeflateParams = {
    // §7.1.1.1: the client's request must be honoured; the server may add it on its own.
    serverNoContextTakeover: offer.serverNoContextTakeover || options.serverNoContextTakeover === true,
    // §7.1.1.2: a client that offers it will not use context takeover whatever
    // the answer; the server may also impose it.
    clientNoContextTakeover: offer.clientNoContextTakeover || options.clientNoContextTakeover === true,
    // §7.1.2.1: answer with the offered value or a smaller one. Any smaller
    // value can be honoured (see the note on window bits 8 at the top), so
    // the server uses the smaller of the two limits rather than declining.
    serverMaxWindowBits: Math.min(offer.serverMaxWindowBits ?? MAX_WINDOW_BITS, ownServerBits),
    // §7.1.2.2: a value in the offer is a promise by the client; the server
    // may lower it further, only if the client said it understands the parameter.
    clientMaxWindowBits: Math.min(typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : MAX_WINDOW_BITS, ownClientBits),
  };

  const response: ExtensionOffer = { name: PERMESSAGE_DEFLATE, params: [] };
  if (params.serverNoContextTakeover) response.params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);
  // Allowed in any response (§7.1.1.2); echoing the client's own promise keeps
  // the response a complete statement of the agreement.
  if (params.clientNoContextTakeover) response.params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);
  // §7.1.2.1: required when offered; otherwise sent only to announce a smaller window.
  if (offer.serverMaxWindowBits !== undefined || params.serverMaxWindowBits < MAX_WINDOW_BITS) {
    response.params.push([SERVER_MAX_WINDOW_BITS, String(params.serverMaxWindowBits)]);
  }
  // §7.1.2.2: only when offered, and then only with a value no larger than the offered one.
  if (offer.clientMaxWindowBits !== undefined && params.clientMaxWindowBits < MAX_WINDOW_BITS) {
    response.params.push([CLIENT_MAX_WINDOW_BITS, String(params.clientMaxWindowBits)]);
  }
  return { params, response };
}

/**
 * Client side: the one permessage-deflate element to send in
 * Sec-WebSocket-Extensions. client_max_window_bits is always included,
 * with the configured value or none, because this client can compress with
 * whatever window the server asks for (§7.1.2.2).
 */
export function buildClientOffer(options: DeflateOptions): ExtensionOffer {
  checkDeflateOptions(options);
  const offer: ExtensionOffer = { name: PERMESSAGE_DEFLATE, params: [] };
  if (options.serverNoContextTakeover === true) offer.params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);
  if (options.clientNoContextTakeover === true) offer.params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);
  if (options.serverMaxWindowBits !== undefined) {
    offer.params.push([SERVER_MAX_WINDOW_BITS, String(options.serverMaxWindowBits)]);
  }
  offer.params.push([CLIENT_MAX_WINDOW_BITS, options.clientMaxWindowBits !== undefined ? String(options.clientMaxWindowBits) : true]);
  return offer;
}

/**
 * Client side: check the server's Sec-WebSocket-Extensions (all of its
 * elements, parsed) against the offer buildClientOffer(options) made.
 * `params: null` means the server declined compression. Any result with
 * `ok: false` means the client must fail the connection (RFC 6455 §9.1,
 * RFC 7692 §7.1).
 */
export function acceptServerResponse(response: readonly ExtensionOffer[], options: DeflateOptions): DeflateResponseResult {
  checkDeflateOptions(options);
  let element: ExtensionOffer | null = null;
  for (const extension of response) {
    // RFC 6455 §9.1: the server may only answer with extensions the client offered.
    if (extension.name !== PERMESSAGE_DEFLATE) {
      return { ok: false, code: 'PMD_UNEXPECTED_EXTENSION', reason: `server accepted extension ${extension.name}, which was not offered` };
    }
    // One offer was made, so at most one can be accepted (RFC 7692 §5).
    if (element !== null) {
      return { ok: false, code: 'PMD_DUPLICATE_EXTENSION', reason: 'server accepted permessage-deflate more than once' };
    }
    element = extension;
  }
  if (element === null) return { ok: true, params: null };

  const parsed = parseParams(element, false);
  if (!parsed.ok) return parsed;
  const answer = parsed.params;

  // §7.1.1.1: a server accepting an offer with server_no_context_takeover must say so.
  if (options.serverNoContextTakeover === true && !answer.serverNoContextTakeover) {
    return unsupported('server did not agree to server_no_context_takeover');
  }

  // §7.1.2.1: the server answers a server_max_window_bits offer with the same or a smaller value.
  let serverMaxWindowBits = answer.serverMaxWindowBits ?? MAX_WINDOW_BITS;
  if (options.serverMaxWindowBits !== undefined) {
    if (answer.serverMaxWindowBits === undefined) {
      return unsupported('server did not answer server_max_window_bits');
    }
    if (answer.serverMaxWindowBits > options.serverMaxWindowBits) {
      return unsupported(`server_max_window_bits=${answer.serverMaxWindowBits} is larger than the offered ${options.serverMaxWindowBits}`);
    }
    serverMaxWindowBits = answer.serverMaxWindowBits;
  }

  // §7.1.2.2: client_max_window_bits is always offered (buildClientOffer), so
  // any valid value may come back. The offered value is a promise the client
  // keeps even when the server answers a larger one or none at all.
  const clientMaxWindowBits = Math.min(
    typeof answer.clientMaxWindowBits === 'number' ? answer.clientMaxWindowBits : MAX_WINDOW_BITS,
    options.clientMaxWindowBits ?? MAX_WINDOW_BITS,
  );

  return {
    ok: true,
    params: {
      serverNoContextTakeover: answer.serverNoContextTakeover,
      // §7.1.1.2: the server may impose it; a client that offered it keeps its word regardless.
      clientNoContextTakeover: answer.clientNoContextTakeover || options.clientNoContextTakeover === true,
      serverMaxWindowBits,
      clientMaxWindowBits,
    },
  };
}

function unsupported(reason: string): DeflateResponseResult {
  return { ok: false, code: 'PMD_UNSUPPORTED_PARAMS', reason };
}
