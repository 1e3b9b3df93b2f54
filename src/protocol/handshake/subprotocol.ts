import { isToken, splitList } from './http-syntax.js';

/**
 * Sec-WebSocket-Protocol (RFC 6455 §4.1 item 10, §11.3.4): the client offers
 * `1#token`, unique, in order of preference; the server answers with one of
 * them or with nothing.
 */

export type ParseSubprotocolsResult = { ok: true; protocols: string[] } | { ok: false; reason: string };

/**
 * Parses a Sec-WebSocket-Protocol value. Empty list elements are ignored
 * (RFC 7230 §7); an element that is not a token, a repeated element (§4.1
 * item 10: "MUST all be unique strings") or an empty list is an error.
 */
export function parseSubprotocols(value: string): ParseSubprotocolsResult {
  const protocols = splitList(value);
  if (protocols.length === 0) return { ok: false, reason: 'empty subprotocol list' };
  for (let i = 0; i < protocols.length; i++) {
    const protocol = protocols[i]!;
    if (!isToken(protocol)) return { ok: false, reason: `subprotocol ${JSON.stringify(protocol)} is not a token` };
    if (protocols.indexOf(protocol) !== i) return { ok: false, reason: `subprotocol ${protocol} offered twice` };
  }
  return { ok: true, protocols };
}

/**
 * The subprotocol a server selects: the first one in the client's list that
 * the server supports, or undefined for none. The client's order wins
 * because §11.3.4 has the client list its subprotocols "ordered by
 * preference" (a server that insists on its own order can write
 * `supported.find((p) => offered.includes(p))`). Names compare exactly (case-sensitive), as the WHATWG
 * WebSocket API compares them.
 */
export function selectSubprotocol(offered: readonly string[], supported: readonly string[]): string | undefined {
  for (const protocol of offered) {
    if (supported.includes(protocol)) return protocol;
  }
  return undefined;
}
