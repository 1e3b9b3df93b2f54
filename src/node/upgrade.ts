import type { Duplex } from 'node:stream';
import type { ExtensionOffer } from '../protocol/handshake/extensions-header.js';
import type { RequestHead } from '../protocol/handshake/http-head.js';
import { remoteAddressOf } from './http2-upgrade.js';
import { isThenable, type Awaitable } from './thenable.js';

/**
 * The upgrade pipeline's vocabulary: what a route sees of the request, how
 * a step refuses it, and the two checks a route declares rather than codes
 * (allowed origins, offered subprotocols).
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

/** Allowed `Origin` values (compared case-insensitively), or a predicate; as `Route.origins`. */
type OriginRule = readonly string[] | ((origin: string, request: UpgradeRequest) => boolean | Promise<boolean>);

/** Subprotocols in order of preference, or a function that picks one of the offered ones (or refuses); as `Route.protocols`. */
type ProtocolRule =
  | readonly string[]
  | ((offered: readonly string[], request: UpgradeRequest) => string | undefined | UpgradeRejection | Promise<string | undefined | UpgradeRejection>);

/**
 * The part of a route the checks below read. `Route` (server.ts) spells
 * the same field types out, so the package's public types name nothing new;
 * passing a `Route` here makes the type-checker hold the two in step.
 */
export interface UpgradeChecks {
  readonly origins?: OriginRule;
  readonly requireOrigin?: boolean;
  readonly protocols?: ProtocolRule;
}

/**
 * The request as the pipeline sees it. Costly parts (the query string
 * object, the peer address: a system call) are computed only if asked for.
 */
export class IncomingUpgrade implements UpgradeRequest {
  readonly method: string;
  readonly headers: ReadonlyMap<string, string>;
  private readonly target: string;

  constructor(
    head: RequestHead,
    readonly path: string,
    private parsedUrl: URL | null,
    readonly protocols: readonly string[],
    readonly extensions: readonly ExtensionOffer[],
    private readonly socket: Duplex,
    readonly params: Readonly<Record<string, string>>,
  ) {
    this.method = head.method;
    this.headers = head.headers;
    this.target = head.target;
  }

  get url(): URL {
    if (this.parsedUrl === null) {
      const host = this.headers.get('host') ?? 'localhost';
      try {
        this.parsedUrl = new URL(this.target, `http://${host}`);
      } catch {
        // The Host header was checked but may still not form a URL; the path is what matters.
        this.parsedUrl = new URL(this.target, 'http://localhost');
      }
    }
    return this.parsedUrl;
  }

  get query(): URLSearchParams {
    return this.url.searchParams;
  }

  get origin(): string | undefined {
    return this.headers.get('origin');
  }

  get remoteAddress(): string | undefined {
    return remoteAddressOf(this.socket);
  }
}

/**
 * A route's `origins` and `requireOrigin` applied to the request: null to go
 * on, a 403 otherwise. The Origin header is what browsers send to say which
 * page opened the socket (RFC 6455 §4.2.1 item 8, §10.2).
 */
export function checkOrigin(route: UpgradeChecks, request: UpgradeRequest): Awaitable<UpgradeRejection | null> {
  const origin = request.origin;
  if (origin === undefined) {
    return route.requireOrigin === true ? new UpgradeRejection(403, 'an Origin header is required') : null;
  }
  const allowed = route.origins;
  if (allowed === undefined) return null;
  if (typeof allowed === 'function') {
    const ok = allowed(origin, request);
    return isThenable(ok) ? ok.then((yes) => originVerdict(yes, origin)) : originVerdict(ok, origin);
  }
  return originVerdict(
    allowed.some((entry) => entry.toLowerCase() === origin.toLowerCase()),
    origin,
  );
}

function originVerdict(ok: boolean, origin: string): UpgradeRejection | null {
  return ok ? null : new UpgradeRejection(403, `origin ${origin} is not allowed`);
}

/**
 * The subprotocol the route selects from the client's offer (RFC 6455
 * §4.2.2 item 5.5: one of the offered values, or none), or a refusal.
 */
export function chooseProtocol(route: UpgradeChecks, request: UpgradeRequest): Awaitable<string | undefined | UpgradeRejection> {
  const supported = route.protocols;
  if (supported === undefined || request.protocols.length === 0) {
    return typeof supported === 'function' ? supported(request.protocols, request) : undefined;
  }
  if (typeof supported === 'function') return supported(request.protocols, request);
  // The server's order of preference decides among what the client offered.
  return supported.find((protocol) => request.protocols.includes(protocol));
}
