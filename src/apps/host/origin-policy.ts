import type { UpgradeRequest } from '../../node/upgrade.js';

/**
 * Which browser pages may open the apps' WebSockets.
 *
 * A browser attaches the page's origin to every WebSocket handshake
 * (RFC 6455 §4.1 step 8, §10.2) but, unlike fetch, applies no same-origin
 * rule of its own: a page on any site can open a socket to this server with
 * the user's cookies and read what comes back (cross-site WebSocket
 * hijacking). The server has to refuse foreign origins itself, with 403
 * (RFC 6455 §4.2.2).
 *
 * The default accepts the server's own origin: same scheme, and the host
 * and port of the request's Host header (the address the browser connected
 * to). The apps host speaks plain HTTP, so its scheme is `http:`, unless a
 * proxy in front that terminates TLS says `https` in `X-Forwarded-Proto` or
 * `Forwarded: proto=` (RFC 7239 §5.4). Trusting those is safe for this
 * check: the attack comes from a browser page, and pages cannot add
 * headers to a WebSocket handshake; a program, which can, can also send
 * any Origin it likes. `null` (sandboxed frames,
 * `file:` pages; RFC 6454 §7.3) is refused unless listed. Requests without
 * an Origin header come from programs, not pages, and are accepted (the
 * library does not even ask the predicate unless `requireOrigin` is set).
 */

/** The scheme of the apps host's own origin when no proxy says otherwise: it listens on plain HTTP. */
const OWN_SCHEME = 'http:';

/** The shape of `Route.origins` as a function; `undefined` is a request without an Origin header. */
export type OriginPredicate = (origin: string | undefined, request: UpgradeRequest) => boolean;

/**
 * An `--allow-origin` entry in the form the predicate compares: `*`, `null`,
 * or `scheme://host[:port]` as the URL parser serialises it (lower-case
 * host, default port left out). `null` when the text is not an origin.
 */
export function normalizeAllowedOrigin(text: string): string | null {
  const trimmed = text.trim();
  if (trimmed === '*' || trimmed.toLowerCase() === 'null') return trimmed.toLowerCase();
  const parsed = parseOrigin(trimmed);
  if (parsed === null) return null;
  // An origin is scheme, host and port only (RFC 6454 §6.2): a path, query or credentials mean a typo.
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#@]+\/?$/i.test(trimmed)) return null;
  return parsed.origin;
}

/**
 * The predicate for `Route.origins`: the server's own origin, plus the
 * `allowed` entries (already normalised; `*` allows every origin).
 * `secure`: the server itself speaks TLS (`--tls-cert`), so its own origin
 * is `https:` whatever the request's headers say.
 */
export function originPolicy(allowed: readonly string[] = [], secure = false): OriginPredicate {
  const any = allowed.includes('*');
  const listed = new Set(allowed);
  return (origin, request) => {
    if (any || origin === undefined) return true;
    const trimmed = origin.trim();
    if (trimmed.toLowerCase() === 'null') return listed.has('null');
    const parsed = parseOrigin(trimmed);
    if (parsed === null) return false;
    if (listed.has(parsed.origin)) return true;
    const scheme = secure ? 'https:' : ownScheme(request.headers);
    return parsed.protocol === scheme && parsed.host === hostOf(request.headers.get('host'), scheme);
  };
}

/** `https:` when a TLS-terminating proxy says the browser used it, `http:` otherwise. */
function ownScheme(headers: ReadonlyMap<string, string>): string {
  // The first proxy's word counts: later ones append theirs after a comma.
  const forwarded = /(?:^|[;,\s])proto="?(https?)"?/i.exec(headers.get('forwarded') ?? '')?.[1];
  const claimed = forwarded ?? headers.get('x-forwarded-proto')?.split(',')[0]?.trim();
  return claimed?.toLowerCase() === 'https' ? 'https:' : OWN_SCHEME;
}

/** An http(s) origin as a URL, or `null` (opaque or unparsable origins never match a host). */
function parseOrigin(text: string): URL | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  return url;
}

/**
 * The Host header (RFC 9110 §7.2) as `URL.host` writes it for the server's
 * scheme: lower-case, default port left out, so `Host: Example.com:80`
 * and `Origin: http://example.com` agree. `undefined` when absent or invalid.
 */
function hostOf(header: string | undefined, scheme: string): string | undefined {
  if (header === undefined || header === '' || /[/?#@\\\s]/.test(header)) return undefined;
  try {
    return new URL(`${scheme}//${header}`).host;
  } catch {
    return undefined;
  }
}
