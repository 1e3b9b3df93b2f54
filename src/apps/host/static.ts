import { createReadStream, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/**
 * Pages may load scripts, styles, images and fonts from this server only, and
 * open connections (fetch, WebSocket) to it only: nothing is fetched from
 * outside the machine, and injected markup cannot bring in a script. In CSP
 * Level 3, 'self' in connect-src also covers ws:/wss: to the same host.
 * Inline style attributes stay allowed (harmless, and handy for layouts).
 * Images may also come from blob: URLs, which a page makes from bytes it
 * already holds (the chat's images arrive over its WebSocket).
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export interface StaticOptions {
  /**
   * Cache-Control for everything but HTML. Pages and app scripts change with
   * the server, so the default makes browsers revalidate (cheap, thanks to
   * the ETag); vendored libraries can afford a max-age.
   */
  cacheControl?: string;
}

/**
 * Serve `relativePath` from `root`: GET and HEAD, a content type from the
 * extension, ETag/Last-Modified with 304 answers, `index.html` for a
 * directory. Returns false when there is no such file (the caller answers
 * 404); paths that try to leave `root`, and hidden files (a segment starting
 * with a dot), are refused the same way.
 */
export async function serveStatic(
  request: IncomingMessage,
  response: ServerResponse,
  root: string,
  relativePath: string,
  options: StaticOptions = {},
): Promise<boolean> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(relativePath);
  } catch {
    return false;
  }
  if (decoded.includes('\0') || decoded.split(/[\\/]/).some((segment) => segment.startsWith('.'))) return false;
  const base = resolve(root);
  let file = resolve(base, '.' + (decoded.startsWith('/') ? decoded : `/${decoded}`));
  if (file !== base && !file.startsWith(base + sep)) return false;
  let info: Stats;
  try {
    info = await stat(file);
    if (info.isDirectory()) {
      file = join(file, 'index.html');
      info = await stat(file);
    }
  } catch {
    return false;
  }
  if (!info.isFile()) return false;

  const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  response.setHeader('Content-Type', type);
  response.setHeader('ETag', etag);
  response.setHeader('Last-Modified', info.mtime.toUTCString());
  response.setHeader('Cache-Control', type.startsWith('text/html') ? 'no-cache' : (options.cacheControl ?? 'no-cache'));
  response.setHeader('X-Content-Type-Options', 'nosniff');
  if (type.startsWith('text/html')) response.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  if (notModified(request, etag, info.mtimeMs)) {
    response.statusCode = 304;
    response.end();
    return true;
  }
  response.setHeader('Content-Length', info.size);
  if (request.method === 'HEAD') {
    response.end();
    return true;
  }
  await new Promise<void>((done) => {
    const stream = createReadStream(file);
    stream.on('error', () => {
      response.destroy();
      done();
    });
    response.on('close', () => {
      stream.destroy();
      done();
    });
    stream.pipe(response);
  });
  return true;
}

/**
 * RFC 9110 §13.1.2: If-None-Match, a list of entity tags or `*`, compared
 * weakly (W/ ignored); when present, If-Modified-Since is not looked at
 * (§13.1.3), which otherwise matches a file not changed since that second.
 */
function notModified(request: IncomingMessage, etag: string, mtimeMs: number): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return true;
    const opaque = (tag: string): string => tag.trim().replace(/^W\//, '');
    const ours = opaque(etag);
    return ifNoneMatch.split(',').some((tag) => opaque(tag) === ours);
  }
  const ifModifiedSince = request.headers['if-modified-since'];
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  // HTTP dates carry whole seconds: compare the file's time truncated to its second.
  return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
}
