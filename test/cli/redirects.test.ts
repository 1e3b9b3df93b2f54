import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { headersAfterRedirect, redirectTarget } from '../../src/cli/redirects.js';
import { WebSocketServer } from '../../src/node/server.js';
import type { UpgradeRequest } from '../../src/node/upgrade.js';
import { assertBuilt, killAll, runCli } from './cli-process.js';

/** `sockeye connect -L` against an HTTP server that redirects some upgrade paths and accepts one. */

const https: Server[] = [];
const sockets: WebSocketServer[] = [];

beforeAll(() => assertBuilt());
afterEach(async () => {
  killAll();
  await Promise.all(sockets.splice(0).map((server) => server.close({ timeout: 200 })));
  const open = https.splice(0);
  for (const server of open) server.closeAllConnections();
  await Promise.all(open.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** Paths in `redirects` answer 3xx with a Location; `/ws` is an echo endpoint that records its requests. */
async function start(redirects: Record<string, [number, string]>): Promise<{ base: string; accepted: UpgradeRequest[]; asked: string[] }> {
  const accepted: UpgradeRequest[] = [];
  const asked: string[] = [];
  const wss = new WebSocketServer({ heartbeat: false });
  sockets.push(wss);
  wss.route('/ws', {
    authenticate: (request) => void accepted.push(request),
    message: (connection, data) => connection.send(data),
  });
  const http = createServer();
  https.push(http);
  http.on('upgrade', (request, socket, head) => {
    const path = request.url ?? '/';
    asked.push(path);
    const redirect = redirects[path];
    if (redirect === undefined) {
      wss.handleUpgrade(request, socket, head);
      return;
    }
    socket.end(`HTTP/1.1 ${redirect[0]} Moved\r\nLocation: ${redirect[1]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { base: `ws://127.0.0.1:${(http.address() as AddressInfo).port}`, accepted, asked };
}

describe('sockeye connect -L', () => {
  it('follows 301, 307 and 308 (relative and absolute http:// Locations) to the endpoint, keeping credentials on the same host', async () => {
    const redirects: Record<string, [number, string]> = { '/a': [301, '/b'], '/b': [307, 'c'] };
    const server = await start(redirects);
    redirects['/c'] = [308, `${server.base.replace('ws://', 'http://')}/ws`];
    const run = runCli(['connect', `${server.base}/a`, '-L', '--auth', 'u:p', '-x', 'hello', '-w', '0.2'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe(
      [
        `* redirected with 301 to ${server.base}/b`,
        `* redirected with 307 to ${server.base}/c`,
        `* redirected with 308 to ${server.base}/ws`,
        `* connected to ${server.base}/ws`,
        '> hello',
        '< hello',
        '* closed: 1000 normal closure',
        '',
      ].join('\n'),
    );
    expect(server.accepted).toHaveLength(1);
    expect(server.accepted[0]!.headers.get('authorization')).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('without -L exits 3 with the redirect status and does not follow it', async () => {
    const server = await start({ '/old': [301, '/ws'] });
    const run = runCli(['connect', `${server.base}/old`], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(3);
    expect(run.stderr()).toMatch(/^sockeye: server refused the upgrade with 301 /);
    expect(server.asked).toEqual(['/old']);
  });

  it('stops a redirect loop after --max-redirects and exits 1', async () => {
    const server = await start({ '/x': [302, '/y'], '/y': [302, '/x'] });
    const run = runCli(['connect', `${server.base}/x`, '-L', '--max-redirects', '3'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(1);
    expect(run.stderr()).toBe(`sockeye: too many redirects: 3 followed, and 302 to ${server.base}/x next\n`);
    expect(run.stdout().match(/redirected/g)).toHaveLength(3);
  });

  it('refuses a Location that is not a WebSocket URL (exit 3)', async () => {
    const server = await start({ '/ftp': [301, 'ftp://127.0.0.1/file'] });
    const run = runCli(['connect', `${server.base}/ftp`, '-L'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(3);
    expect(run.stderr()).toContain('a redirect without a ws, wss, http or https Location to follow');
  });
});

describe('redirect rules', () => {
  it('resolves Locations against the URL that answered and maps http(s) to ws(s)', () => {
    const from = new URL('wss://example.com/a/b?q=1');
    expect(redirectTarget('c', from)?.href).toBe('wss://example.com/a/c');
    expect(redirectTarget('https://other.example/x#frag', from)?.href).toBe('wss://other.example/x');
    expect(redirectTarget('http://h:81/', from)?.href).toBe('ws://h:81/');
    expect(redirectTarget('mailto:a@b', from)).toBeNull();
  });

  it('drops Authorization and Cookie when the origin changes, keeps them when it does not', () => {
    const headers: Array<readonly [string, string]> = [
      ['Authorization', 'Basic x'],
      ['cookie', 'a=1'],
      ['X-Other', 'y'],
    ];
    const from = new URL('ws://a.example/');
    expect(headersAfterRedirect(headers, from, new URL('ws://a.example/other'))).toEqual(headers);
    expect(headersAfterRedirect(headers, from, new URL('ws://b.example/'))).toEqual([['X-Other', 'y']]);
    expect(headersAfterRedirect(headers, from, new URL('wss://a.example/'))).toEqual([['X-Other', 'y']]);
  });
});
