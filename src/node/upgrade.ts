import type { ExtensionOffer } from '../protocol/handshake/extensions-header.js';

/**
 * The upgrade pipeline's vocabulary: what a route sees of the request, and
 * how a step refuses it.
 */

export interface UpgradeRequest {
  readonly method: string;
  /** The request target resolved against the Host header. */
  readonly url: URL;
  readonly path: string;
  /**
   * What the route's pattern matched: `{ id: '42' }` for `/room/:id` and
   * `/room/42`, the rest of the path under `'*'` for a prefix such as
   * `/files/*`; percent-decoded. Empty for an exact route.
   */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  readonly origin: string | undefined;
  /** Subprotocols the client offered, in its order of preference. */
  readonly protocols: readonly string[];
  readonly extensions: readonly ExtensionOffer[];
  readonly remoteAddress: string | undefined;
}

/** A refusal: the client gets this HTTP status, with `reason` as the body, and no WebSocket. */
export class UpgradeRejection {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: ReadonlyArray<readonly [string, string]> = [],
  ) {}
}

/** Refuse an upgrade from any pipeline step: `return reject(401, 'missing token')`. */
export function reject(status: number, reason: string, headers?: ReadonlyArray<readonly [string, string]>): UpgradeRejection {
  return new UpgradeRejection(status, reason, headers);
}
