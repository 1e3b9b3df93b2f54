import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';

/**
 * `connect -L`: following an upgrade answered with a redirect (RFC 9110
 * §15.4: 301, 302, 303, 307, 308). The WebSocket client reports the status
 * but not the Location, so the request is asked once more with node:http,
 * the same headers and a fresh key, to read where it points. RFC 6455 §4.1
 * leaves following redirects to the client; a bounded number is followed.
 */

export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Default for `--max-redirects`. */
export const DEFAULT_MAX_REDIRECTS = 5;

/** The Location of the server's redirect for this upgrade request, or `null` if it no longer redirects. */
export function probeRedirect(
  target: URL,
  headers: ReadonlyArray<readonly [string, string]>,
  options: { tls?: TlsConnectionOptions; timeoutMs?: number } = {},
): Promise<string | null> {
  const secure = target.protocol === 'wss:' || target.protocol === 'https:';
  const send = secure ? httpsRequest : httpRequest;
  const url = new URL(target.href);
  url.protocol = secure ? 'https:' : 'http:';
  return new Promise((resolve) => {
    let settled = false;
    const done = (value: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(value);
    };
    const request = send(url, {
      agent: false,
      ...(secure ? options.tls : {}),
      headers: {
        ...Object.fromEntries(headers.map(([name, value]) => [name, value])),
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        'Sec-WebSocket-Version': '13',
      },
    });
    request.on('response', (response) => {
      const location = response.headers.location;
      done(REDIRECT_STATUSES.has(response.statusCode ?? 0) && typeof location === 'string' ? location : null);
    });
    // It accepted this time: there is nothing to follow.
    request.on('upgrade', (_response, socket) => {
      socket.destroy();
      done(null);
    });
    request.on('error', () => done(null));
    const timer = setTimeout(() => done(null), options.timeoutMs ?? 5000);
    request.end();
  });
}

/**
 * Where a Location sends a WebSocket client: resolved against the URL that
 * answered (RFC 9110 §10.2.2), http(s) taken as ws(s). `null` for other
 * schemes, which a WebSocket cannot follow.
 */
export function redirectTarget(location: string, from: URL): URL | null {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    return null;
  }
  if (next.protocol === 'http:') next.protocol = 'ws:';
  else if (next.protocol === 'https:') next.protocol = 'wss:';
  if (next.protocol !== 'ws:' && next.protocol !== 'wss:') return null;
  next.hash = '';
  return next;
}

/** Credentials stay with the origin they were given for: a redirect elsewhere drops them (as curl does). */
export function headersAfterRedirect(headers: ReadonlyArray<readonly [string, string]>, from: URL, to: URL): Array<readonly [string, string]> {
  const sameOrigin = from.protocol === to.protocol && from.host === to.host;
  return sameOrigin ? [...headers] : headers.filter(([name]) => !/^(authorization|cookie)$/i.test(name));
}
