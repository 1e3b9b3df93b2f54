import { BlockList, isIP } from 'node:net';
import { HandshakeError } from './errors.js';

/**
 * Which proxy, if any, a client uses to reach a WebSocket URL: the explicit
 * `proxy` option, else the proxy environment variables, read the way curl
 * documents them (curl(1) "ENVIRONMENT", CURLOPT_NOPROXY(3), and curl 8.4's
 * fallback from ws/wss to the http/https variables):
 *
 * - `ws://`:  `ws_proxy`, `WS_PROXY`, then `http_proxy` (lower case only: a
 *   CGI program gets the request's `Proxy:` header as `HTTP_PROXY`, so curl
 *   never reads that name, see "httpoxy", CVE-2016-5385), then `all_proxy`,
 *   `ALL_PROXY`.
 * - `wss://`: `wss_proxy`, `WSS_PROXY`, then `https_proxy`, `HTTPS_PROXY`,
 *   then `all_proxy`, `ALL_PROXY`.
 * - The lower-case name wins over the upper-case one.
 * - `no_proxy` / `NO_PROXY` (lower case first) lists hosts reached directly,
 *   even when the proxy came from the option (curl does the same with `-x`).
 *
 * Where this differs from curl, on purpose:
 * - An empty variable counts as unset, so the next name is tried (curl takes
 *   a set-but-empty lower-case name as final).
 * - A `NO_PROXY` entry may carry a port (`host:8080`, `[::1]:8080`,
 *   `10.0.0.1:8080`) and then matches that port only; curl has no ports in
 *   the list, such an entry never matches there.
 * - A `*` entry anywhere in the list matches every host, and a leading `*.`
 *   means the same as a leading `.`; curl honours `*` only as the whole value
 *   and takes `*.example.com` literally (so it never matches).
 */

/** The environment to read: `process.env` by default, any string map in tests. */
export type ProxyEnvironment = Readonly<Record<string, string | undefined>>;

/** How the tunnel is opened: HTTP CONNECT, or SOCKS5 with names resolved here or by the proxy. */
export type ProxyKind = 'http' | 'socks5' | 'socks5h';

/** A proxy, parsed: where it listens and how to speak to it. */
export interface ProxyEndpoint {
  kind: ProxyKind;
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  port: number;
  /** Percent-decoded user name from the URL; '' when there is none. */
  username: string;
  /** Percent-decoded password from the URL; '' when there is none. */
  password: string;
  /** `scheme://[user@]host:port`, the password left out: safe to print. */
  display: string;
}

/** The chosen proxy and where the choice came from (`option` or the variable's name). */
export interface ProxySelection {
  endpoint: ProxyEndpoint;
  source: string;
}

export interface ProxyLookupOptions {
  /**
   * A proxy URL to use instead of the environment's; `false` (or `''`, as
   * curl's CURLOPT_PROXY takes it) for a direct connection whatever the
   * environment says. Default: the environment.
   */
  proxy?: string | false;
  /** Default `process.env`. */
  env?: ProxyEnvironment;
}

/**
 * The proxy to use for `target` (a `ws:`/`wss:`/`http:`/`https:` URL), or
 * `null` to connect directly. Throws a `HandshakeError` with
 * `WS_ERR_INVALID_URL` when the proxy URL it would use is unusable.
 */
export function selectProxy(target: URL, options: ProxyLookupOptions = {}): ProxySelection | null {
  if (options.proxy === false || options.proxy === '') return null;
  const env = options.env ?? process.env;
  const secure = target.protocol === 'wss:' || target.protocol === 'https:';
  let raw: string | undefined;
  let source = 'option';
  if (options.proxy !== undefined) {
    raw = options.proxy;
  } else {
    const names =
      secure ?
        ['wss_proxy', 'WSS_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']
      : ['ws_proxy', 'WS_PROXY', 'http_proxy', 'all_proxy', 'ALL_PROXY'];
    for (const name of names) {
      const value = env[name]?.trim();
      if (value !== undefined && value !== '') {
        raw = value;
        source = name;
        break;
      }
    }
    if (raw === undefined) return null;
  }
  const noProxy = nonEmpty(env['no_proxy']) ?? nonEmpty(env['NO_PROXY']);
  const port =
    target.port === '' ?
      secure ? 443
      : 80
    : Number(target.port);
  if (noProxy !== undefined && bypassesProxy(target.hostname, port, noProxy)) return null;
  return { endpoint: parseProxyUrl(raw, source), source };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** curl's default proxy port when the URL names none (CURLOPT_PROXY(3)); curl uses it for http:// proxies too. */
const DEFAULT_PROXY_PORT = 1080;

/**
 * Parse a proxy URL as curl reads one: `[scheme://][user[:password]@]host[:port]`,
 * scheme `http` when absent, port 1080 when absent. `https://` proxies (TLS
 * to the proxy itself) and SOCKS4 are not supported.
 */
export function parseProxyUrl(raw: string, source = 'option'): ProxyEndpoint {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  const scheme = text.slice(0, text.indexOf(':')).toLowerCase();
  const invalid = (why: string): HandshakeError => new HandshakeError('WS_ERR_INVALID_URL', `unusable proxy URL from ${source}: ${why}`);
  if (!isProxyKind(scheme)) throw invalid(`unsupported proxy scheme ${scheme}: (use http:, socks5: or socks5h:)`);
  // Parsed under a non-special scheme: the WHATWG parser drops a port equal
  // to a special scheme's default (http://proxy:80 would lose its ":80" and
  // then get curl's 1080); for other schemes it keeps the port as written.
  let url: URL;
  try {
    url = new URL(`proxy-url${text.slice(scheme.length)}`);
  } catch {
    throw invalid('not a URL (the password is not shown)');
  }
  if (url.hostname === '') throw invalid('no host');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw invalid('a proxy URL has no path, query or fragment');
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname.toLowerCase();
  const port = url.port === '' ? DEFAULT_PROXY_PORT : Number(url.port);
  const username = percentDecode(url.username);
  const password = percentDecode(url.password);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const shownUser = url.username === '' ? '' : `${url.username}@`;
  return { kind: scheme, host, port, username, password, display: `${scheme}://${shownUser}${shownHost}:${port}` };
}

function isProxyKind(scheme: string): scheme is ProxyKind {
  return scheme === 'http' || scheme === 'socks5' || scheme === 'socks5h';
}

/** Userinfo as the user meant it: `%40` is an `@` in the name; a stray `%` stays as it is. */
function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Whether `no_proxy` sends `hostname` (as the URL parser gives it: lower
 * case, IPv6 in brackets) straight to the server. Entries are separated by
 * commas or blanks. A host name matches an entry equal to it or naming one of
 * its parent domains ("example.com" and ".example.com" both cover
 * "www.example.com", never "notexample.com"); trailing dots are ignored. An
 * IP address matches entries that are the same address or a CIDR block
 * holding it (curl 7.86); a name never matches an address entry or the
 * reverse, as no DNS is involved.
 */
export function bypassesProxy(hostname: string, port: number, noProxy: string): boolean {
  const bracketed = hostname.startsWith('[') && hostname.endsWith(']');
  let host = bracketed ? hostname.slice(1, -1) : hostname.toLowerCase();
  const family = isIP(host);
  if (family === 0 && host.endsWith('.')) host = host.slice(0, -1);
  for (const token of noProxy.split(/[\s,]+/)) {
    if (token === '') continue;
    if (token === '*') return true;
    const entry = splitPort(token);
    if (entry === null) continue;
    if (entry.port !== null && entry.port !== port) continue;
    if (family === 0) {
      if (hostMatches(host, entry.host.toLowerCase())) return true;
    } else if (addressMatches(host, family, entry.host)) {
      return true;
    }
  }
  return false;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, a bare IPv6 address (no port: its colons are its own). */
function splitPort(token: string): { host: string; port: number | null } | null {
  if (token.startsWith('[')) {
    const close = token.indexOf(']');
    if (close < 0) return null;
    const after = token.slice(close + 1);
    if (after === '') return { host: token.slice(1, close), port: null };
    if (!/^:\d{1,5}$/.test(after)) return null;
    return { host: token.slice(1, close), port: Number(after.slice(1)) };
  }
  const colon = token.indexOf(':');
  if (colon < 0 || token.indexOf(':', colon + 1) >= 0) return { host: token, port: null };
  const port = token.slice(colon + 1);
  if (!/^\d{1,5}$/.test(port)) return null;
  return { host: token.slice(0, colon), port: Number(port) };
}

function hostMatches(host: string, pattern: string): boolean {
  let suffix = pattern.endsWith('.') ? pattern.slice(0, -1) : pattern;
  if (suffix.startsWith('*.')) suffix = suffix.slice(2);
  else if (suffix.startsWith('.')) suffix = suffix.slice(1);
  if (suffix === '') return false;
  return host === suffix || (host.endsWith(suffix) && host[host.length - suffix.length - 1] === '.');
}

function addressMatches(address: string, family: number, pattern: string): boolean {
  const slash = pattern.indexOf('/');
  const network = slash < 0 ? pattern : pattern.slice(0, slash);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (isIP(network) !== family) return false;
  const bits =
    slash < 0 ?
      family === 4 ?
        32
      : 128
    : Number(pattern.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128) || (slash >= 0 && !/^\d+$/.test(pattern.slice(slash + 1)))) {
    return false;
  }
  const block = new BlockList();
  block.addSubnet(network, bits, type);
  return block.check(address, type);
}
