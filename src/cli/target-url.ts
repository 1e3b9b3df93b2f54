import { UsageFailure } from './args.js';

/**
 * The URL a user typed for `sockeye connect`, checked before anything is
 * sent, so a typo is an invalid argument (exit 2) with the reason rather
 * than a connection to some other host: `ws//127.0.0.1:8080` would
 * otherwise read as host `ws` and path `//127.0.0.1:8080`.
 */

const SCHEMES = new Set(['ws:', 'wss:', 'http:', 'https:']);

/**
 * `host:port/path` without a scheme means `ws://`; otherwise the scheme must
 * be ws, wss (RFC 6455 §3), or http/https (taken as their WebSocket
 * counterparts), followed by `//` and a host. A fragment is refused, as
 * RFC 6455 §3 forbids it in a WebSocket URI.
 */
export function parseTargetUrl(text: string): URL {
  const input = text.trim();
  if (input === '') throw new UsageFailure('invalid URL: it is empty');
  // A known scheme name with its separator mistyped: "ws//h", "ws:/h", "ws:h", "wss/h".
  const typo = /^(wss?|https?)(:\/?(?!\/)|\/\/?)/i.exec(input);
  if (typo !== null) {
    const rest = input.slice(typo[0].length).replace(/^\/+/, '');
    throw new UsageFailure(`invalid URL: ${input} (the scheme needs "://": did you mean ${typo[1]!.toLowerCase()}://${rest}?)`);
  }
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input);
  let url: URL;
  try {
    url = new URL(hasScheme ? input : `ws://${input}`);
  } catch {
    throw new UsageFailure(`invalid URL: ${input}`);
  }
  if (!SCHEMES.has(url.protocol)) {
    throw new UsageFailure(`invalid URL: ${input} (the scheme must be ws:// or wss://, not ${url.protocol.slice(0, -1)}://)`);
  }
  if (url.hostname === '') throw new UsageFailure(`invalid URL: ${input} (no host)`);
  if (url.hash !== '' || input.includes('#')) throw new UsageFailure(`invalid URL: ${input} (a WebSocket URL has no #fragment)`);
  return url;
}
