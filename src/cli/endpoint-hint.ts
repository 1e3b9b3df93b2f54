import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';

/**
 * After a 404 from the upgrade: if the server is a Sockeye apps host, its
 * `/api/apps` lists the WebSocket endpoints it does have, which is the
 * most useful thing to tell someone who typed the wrong path. Anything
 * else (no such page, not JSON, slow, large) means no hint.
 */

const MAX_BODY_BYTES = 64 * 1024;

/** The full `ws(s)://` URLs of the endpoints `/api/apps` lists, or `null`. */
export function listEndpoints(target: URL, options: { timeoutMs?: number; tls?: TlsConnectionOptions } = {}): Promise<string[] | null> {
  const secure = target.protocol === 'wss:' || target.protocol === 'https:';
  const api = new URL('/api/apps', `${secure ? 'https' : 'http'}://${target.host}`);
  const get = secure ? httpsGet : httpGet;
  return new Promise((resolve) => {
    let settled = false;
    const done = (value: string[] | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(value);
    };
    const request = get(api, { agent: false, headers: { Accept: 'application/json' }, ...(secure ? options.tls : {}) }, (response) => {
      if (response.statusCode !== 200 || !/json/.test(response.headers['content-type'] ?? '')) return done(null);
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) return done(null);
        chunks.push(chunk);
      });
      response.on('end', () => done(endpointsFrom(Buffer.concat(chunks).toString('utf8'), target)));
      response.on('error', () => done(null));
    });
    request.on('error', () => done(null));
    const timer = setTimeout(() => done(null), options.timeoutMs ?? 2000);
  });
}

/** The `socket` paths of an `/api/apps` body as URLs on the target's host; `null` when the body is not that list. */
export function endpointsFrom(body: string, target: URL): string[] | null {
  let list: unknown;
  try {
    list = JSON.parse(body);
  } catch {
    return null;
  }
  if (!Array.isArray(list)) return null;
  const scheme = target.protocol === 'wss:' || target.protocol === 'https:' ? 'wss' : 'ws';
  const urls: string[] = [];
  for (const entry of list as unknown[]) {
    const socket = typeof entry === 'object' && entry !== null ? (entry as { socket?: unknown }).socket : undefined;
    if (typeof socket === 'string' && socket.startsWith('/')) urls.push(`${scheme}://${target.host}${socket}`);
  }
  return urls.length > 0 ? urls : null;
}
