import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../../src/apps/app.js';
import { createClockApp } from '../../../src/apps/clock/index.js';
import { echoApp } from '../../../src/apps/echo/index.js';
import type { LogLevel } from '../../../src/apps/host/log.js';
import { PROJECT_ROOT } from '../../../src/apps/host/paths.js';
import { AppServer } from '../../../src/apps/host/server.js';
import { CONTENT_SECURITY_POLICY } from '../../../src/apps/host/static.js';
import { connect } from '../../../src/node/client.js';
import type { Connection } from '../../../src/node/connection.js';
import { HandshakeError } from '../../../src/node/errors.js';
import { until } from '../../wait.js';
import { get } from './http-get.js';

/**
 * The shell's HTTP side over real sockets: static files with their content
 * types and caching headers, conditional requests, refused paths, the list
 * of applications, its reachability endpoint, and its logs.
 */

const servers: AppServer[] = [];
const sockets: Connection<undefined>[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate('test over');
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

const APPS: readonly App[] = [createClockApp(), echoApp];

interface Harness {
  port: number;
  server: AppServer;
  log: string[];
}

async function start(logLevel: LogLevel = 'silent'): Promise<Harness> {
  const log: string[] = [];
  const server = new AppServer({ apps: APPS, logLevel, logWrite: (line) => log.push(line) });
  servers.push(server);
  const { port } = await server.listen(0);
  return { port, server, log };
}

const homeFile = (name: string): string => readFileSync(join(PROJECT_ROOT, 'src', 'apps', 'home', 'page', name), 'utf8');

describe('static files', () => {
  it.each([
    ['/', 'text/html; charset=utf-8'],
    ['/index.html', 'text/html; charset=utf-8'],
    ['/home.js', 'text/javascript; charset=utf-8'],
    ['/style.css', 'text/css; charset=utf-8'],
    ['/favicon.svg', 'image/svg+xml'],
    ['/clock/', 'text/html; charset=utf-8'],
    ['/clock/clock.js', 'text/javascript; charset=utf-8'],
    ['/clock/clock.css', 'text/css; charset=utf-8'],
    ['/web/reconnecting-websocket.js', 'text/javascript; charset=utf-8'],
  ])('serves %s as %s, with validators and no-cache', async (path, type) => {
    const { port } = await start();
    const response = await get(port, path);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(type);
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.headers['etag']).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
    expect(Date.parse(String(response.headers['last-modified']))).not.toBeNaN();
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(response.body));
  });

  it('serves the files themselves', async () => {
    const { port } = await start();
    expect((await get(port, '/')).body).toBe(homeFile('index.html'));
    expect((await get(port, '/style.css')).body).toBe(homeFile('style.css'));
  });

  it('sends pages with a Content-Security-Policy that keeps them on this server', async () => {
    const { port } = await start();
    const page = await get(port, '/clock/');
    expect(page.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toMatch(/default-src 'self'/);
    expect(CONTENT_SECURITY_POLICY).toMatch(/script-src 'self';/);
    expect(CONTENT_SECURITY_POLICY).toMatch(/connect-src 'self';/);
    expect((await get(port, '/style.css')).headers['content-security-policy']).toBeUndefined();
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const { port } = await start();
    const head = await get(port, '/style.css', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(homeFile('style.css')));
    expect(head.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('redirects an app name without its slash to its page', async () => {
    const { port } = await start();
    const response = await get(port, '/clock');
    expect(response.status).toBe(301);
    expect(response.headers['location']).toBe('/clock/');
  });

  it('answers 404 for what does not exist, an app without a page among them', async () => {
    const { port } = await start();
    for (const path of ['/nope.html', '/clock/nope.js', '/web/nope.js', '/echo/', '/api/nope']) {
      const response = await get(port, path);
      expect(response.status, path).toBe(404);
      expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
    }
  });

  it('answers 405 to methods other than GET and HEAD', async () => {
    const { port } = await start();
    const response = await get(port, '/', { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers['allow']).toBe('GET, HEAD');
  });
});

describe('an app page folder', () => {
  let folder = '';

  afterEach(() => {
    if (folder !== '') rmSync(folder, { recursive: true, force: true });
    folder = '';
  });

  /** A server hosting one app whose page folder holds `files`. */
  async function withPage(files: Record<string, string>): Promise<number> {
    folder = mkdtempSync(join(tmpdir(), 'sockeye-page-'));
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(folder, name, '..'), { recursive: true });
      writeFileSync(join(folder, name), content);
    }
    const app: App = { name: 'demo', title: 'Demo', summary: 'a test page', pageDir: folder, mount() {} };
    const server = new AppServer({ apps: [app], logLevel: 'silent' });
    servers.push(server);
    return (await server.listen(0)).port;
  }

  it('gives each file the content type of its extension', async () => {
    const port = await withPage({ 'a.json': '{}', 'b.png': 'x', 'c.woff2': 'x', 'd.map': '{}', 'e.bin': 'x', 'f.TXT': 'x', 'sub/index.html': 'hi' });
    const expected: Record<string, string> = {
      '/demo/a.json': 'application/json; charset=utf-8',
      '/demo/b.png': 'image/png',
      '/demo/c.woff2': 'font/woff2',
      '/demo/d.map': 'application/json; charset=utf-8',
      '/demo/e.bin': 'application/octet-stream',
      '/demo/f.TXT': 'text/plain; charset=utf-8',
      '/demo/sub/': 'text/html; charset=utf-8',
    };
    for (const [path, type] of Object.entries(expected)) expect((await get(port, path)).headers['content-type'], path).toBe(type);
  });

  it('does not serve hidden files or anything in hidden folders', async () => {
    const port = await withPage({ 'index.html': 'hi', '.env': 'secret=1', '.git/config': 'secret', 'ok.txt': 'fine' });
    expect((await get(port, '/demo/ok.txt')).status).toBe(200);
    for (const path of ['/demo/.env', '/demo/%2eenv', '/demo/.git/config', '/demo/.git%2fconfig']) {
      const response = await get(port, path);
      expect(response.status, path).toBe(404);
      expect(response.body).not.toContain('secret');
    }
  });
});

describe('conditional requests (RFC 9110 §13)', () => {
  it('answers 304 without a body to a matching If-None-Match, keeping the validators', async () => {
    const { port } = await start();
    const first = await get(port, '/home.js');
    const etag = String(first.headers['etag']);
    const again = await get(port, '/home.js', { headers: { 'If-None-Match': etag } });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers['etag']).toBe(etag);
    expect(again.headers['cache-control']).toBe('no-cache');
  });

  it('matches If-None-Match weakly, in a list, and as *', async () => {
    const { port } = await start();
    const etag = String((await get(port, '/')).headers['etag']);
    const strong = etag.replace(/^W\//, '');
    for (const header of [strong, `"nope", ${etag}`, `"a",${strong} , "b"`, '*']) {
      expect((await get(port, '/', { headers: { 'If-None-Match': header } })).status, header).toBe(304);
    }
    for (const header of ['"nope"', 'W/"0-0"']) {
      expect((await get(port, '/', { headers: { 'If-None-Match': header } })).status, header).toBe(200);
    }
  });

  it('answers If-Modified-Since by the file time, unless If-None-Match is there', async () => {
    const { port } = await start();
    const lastModified = String((await get(port, '/style.css')).headers['last-modified']);
    expect((await get(port, '/style.css', { headers: { 'If-Modified-Since': lastModified } })).status).toBe(304);
    const before = new Date(Date.parse(lastModified) - 1000).toUTCString();
    expect((await get(port, '/style.css', { headers: { 'If-Modified-Since': before } })).status).toBe(200);
    expect((await get(port, '/style.css', { headers: { 'If-Modified-Since': 'not a date' } })).status).toBe(200);
    const both = await get(port, '/style.css', { headers: { 'If-Modified-Since': lastModified, 'If-None-Match': '"other"' } });
    expect(both.status).toBe(200);
  });
});

describe('paths that try to leave the served folders', () => {
  const packageJson = readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8');

  it.each([
    '/../../../package.json',
    '/..%2f..%2f..%2f..%2fpackage.json',
    '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/package.json',
    '/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
    '/web/..%2f..%2f..%2fpackage.json',
    '/web/%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json',
    '/clock/..%2f..%2f..%2f..%2fpackage.json',
    '/clock/..%5c..%5c..%5c..%5cpackage.json',
    '/..%252f..%252fpackage.json',
    '/clock/..%2findex.ts',
    '/web/..%2fweb%2freconnecting-websocket.js',
  ])('refuses %s with 404', async (path) => {
    const { port } = await start();
    const response = await get(port, path);
    expect(response.status).toBe(404);
    expect(response.body).not.toContain(packageJson.slice(0, 40));
  });

  it('refuses NUL bytes and broken escapes', async () => {
    const { port } = await start();
    for (const path of ['/index.html%00.js', '/%00', '/%E0%A4%A', '/%']) {
      expect((await get(port, path)).status, path).toBe(404);
    }
  });
});

describe('/api/apps', () => {
  it('lists the hosted apps with their page and socket paths, not cached', async () => {
    const { port } = await start();
    const response = await get(port, '/api/apps');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(JSON.parse(response.body)).toEqual(
      APPS.map((app) => ({
        name: app.name,
        title: app.title,
        summary: app.summary,
        page: app.pageDir === undefined ? null : `/${app.name}/`,
        socket: `/${app.name}/ws`,
      })),
    );
  });
});

describe('the shell WebSocket /ws', () => {
  it('answers ping with pong and ignores anything else', async () => {
    const { port } = await start();
    const socket = await connect(`ws://127.0.0.1:${port}/ws`);
    sockets.push(socket);
    const received: string[] = [];
    socket.on('message', (data) => received.push(String(data)));
    socket.send('hello');
    socket.send('ping');
    await until(() => received.length > 0, 'an answer');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received).toEqual(['pong']);
  });

  it('closes with 1001 when the server stops', async () => {
    const { port, server } = await start();
    const socket = await connect(`ws://127.0.0.1:${port}/ws`);
    sockets.push(socket);
    const closed = new Promise<number>((resolve) => socket.once('close', (info) => resolve(info.code)));
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    expect(await closed).toBe(1001);
  });
});

describe('logs', () => {
  const lines = (log: string[], pattern: RegExp): string[] => log.filter((line) => pattern.test(line));

  it('writes one line per open and per close, with an ISO timestamp', async () => {
    const h = await start('info');
    const socket = await connect(`ws://127.0.0.1:${h.port}/echo/ws`);
    await until(() => lines(h.log, /^\S+ open /).length === 1, 'the open line');
    socket.send('hello');
    socket.close(1000, 'done');
    await until(() => lines(h.log, /^\S+ close /).length === 1, 'the close line');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.log).toHaveLength(2);
    expect(h.log[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z open \/echo\/ws 127\.0\.0\.1 extensions=permessage-deflate.*\n$/);
    expect(h.log[1]).toMatch(/^\S+ close \/echo\/ws 127\.0\.0\.1 code=1000 reason="done" clean=true\n$/);
  });

  it('writes one line per refused handshake, with status and reason', async () => {
    const h = await start('info');
    await expect(connect(`ws://127.0.0.1:${h.port}/nowhere/ws`)).rejects.toBeInstanceOf(HandshakeError);
    // An upgrade request without Sec-WebSocket-Key (RFC 6455 §4.2.1): 400.
    await new Promise<void>((resolve, reject) => {
      const socket = netConnect(h.port, '127.0.0.1', () => {
        socket.write(`GET /echo/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      socket.on('data', () => {});
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    await until(() => h.log.length >= 2, 'two refusal lines');
    expect(h.log).toHaveLength(2);
    expect(h.log[0]).toMatch(/ refused \/nowhere\/ws 127\.0\.0\.1 status=404 reason=".+"\n$/);
    expect(h.log[1]).toMatch(/ refused \/echo\/ws 127\.0\.0\.1 status=400 reason=".*[Kk]ey.*"\n$/);
  });

  it('writes no frame or request lines at info level', async () => {
    const h = await start('info');
    await get(h.port, '/');
    const socket = await connect(`ws://127.0.0.1:${h.port}/echo/ws`);
    const echoed = new Promise((resolve) => socket.once('message', resolve));
    socket.send('hello');
    await echoed;
    socket.close();
    await until(() => lines(h.log, /^\S+ close /).length === 1, 'the close line');
    expect(lines(h.log, / frame | http /)).toEqual([]);
  });

  it('at debug level also writes a line per frame either way, and per HTTP request', async () => {
    const h = await start('debug');
    await get(h.port, '/style.css');
    const socket = await connect(`ws://127.0.0.1:${h.port}/echo/ws`, { perMessageDeflate: false });
    const echoed = new Promise((resolve) => socket.once('message', resolve));
    socket.send('hello');
    await echoed;
    socket.close(1000);
    await until(() => lines(h.log, /^\S+ close /).length === 1, 'the close line');
    expect(lines(h.log, / http /)).toEqual([expect.stringMatching(/ http GET \/style\.css 200 127\.0\.0\.1\n$/)]);
    expect(lines(h.log, / frame /)).toEqual([
      expect.stringMatching(/ frame in \/echo\/ws 127\.0\.0\.1 text fin=1 masked=1 length=5\n$/),
      expect.stringMatching(/ frame out \/echo\/ws 127\.0\.0\.1 text fin=1 masked=0 length=5\n$/),
      expect.stringMatching(/ frame in \/echo\/ws 127\.0\.0\.1 close fin=1 masked=1 length=2\n$/),
      expect.stringMatching(/ frame out \/echo\/ws 127\.0\.0\.1 close fin=1 masked=0 length=2\n$/),
    ]);
  });

  it('says nothing at silent level', async () => {
    const h = await start('silent');
    await expect(connect(`ws://127.0.0.1:${h.port}/nowhere/ws`)).rejects.toBeInstanceOf(HandshakeError);
    const socket = await connect(`ws://127.0.0.1:${h.port}/echo/ws`);
    socket.close();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(h.log).toEqual([]);
  });
});
