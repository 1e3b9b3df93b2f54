import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allApps, AppServer } from '../../src/apps/index.js';
import { WebSocketServer } from '../../src/node/server.js';
import type { UpgradeRequest } from '../../src/node/upgrade.js';
import { makeTestCertificates, type TestCertificates } from '../node/test-certificates.js';
import { browserTestsUnavailable, CHROMIUM_ARGS, CHROMIUM_PATH } from './browser.js';

/**
 * Chromium and WebSockets over HTTP/2 (RFC 8441). A node:http2 server with
 * TLS serves a page over h2 (ALPN offers h2 and http/1.1 on one port,
 * SETTINGS_ENABLE_CONNECT_PROTOCOL announced) and hands WebSockets to a
 * Sockeye WebSocketServer: extended CONNECT streams through
 * `handleHttp2Stream`, HTTP/1.1 upgrades through `handleUpgrade`. The route
 * records how each WebSocket arrived (`CONNECT` over HTTP/2, `GET` over
 * HTTP/1.1), so the test can say which one Chromium used.
 *
 * Chromium opens a WebSocket over HTTP/2 only on an HTTP/2 connection it
 * already has to that origin whose SETTINGS allowed extended CONNECT; it
 * never opens a new connection for it. Loading the page first over h2
 * provides that connection. The test certificate is accepted with
 * `--ignore-certificate-errors`.
 */

let pki: TestCertificates;
let browser: Browser | null = null;
/** A page server with its WebSocket server, and what each saw. */
interface Site {
  http: Http2SecureServer;
  wss: WebSocketServer;
  port: number;
  /** How each WebSocket arrived: CONNECT over HTTP/2, GET over HTTP/1.1. */
  arrivals: Array<{ method: string; path: string }>;
  /** `httpVersion url` of each page request. */
  pages: string[];
}
const sites: Site[] = [];

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>h2</title></head><body><script>
  window.result = new Promise((resolve) => {
    const socket = new WebSocket('wss://' + location.host + '/echo');
    socket.onopen = () => socket.send('over h2?');
    socket.onmessage = (event) => { resolve({ echoed: event.data, protocol: socket.protocol }); socket.close(1000); };
    socket.onerror = () => resolve({ error: 'the WebSocket failed' });
  });
</script></body></html>`;

/** The page server; `enableConnectProtocol` false leaves SETTINGS_ENABLE_CONNECT_PROTOCOL out of its SETTINGS. */
async function startSite(enableConnectProtocol: boolean): Promise<Site> {
  const arrivals: Site['arrivals'] = [];
  const pages: string[] = [];
  const wss = new WebSocketServer({ heartbeat: false });
  wss.route<UpgradeRequest>('/echo', {
    protocols: (offered) => offered[0],
    authenticate: (request) => {
      arrivals.push({ method: request.method, path: request.path });
      return request;
    },
    message: (connection, data, isBinary) => void connection.send(data, { binary: isBinary }),
  });
  const http = createSecureServer(
    { key: pki.serverKey, cert: pki.serverCert, allowHTTP1: true, settings: { enableConnectProtocol } },
    (request: Http2ServerRequest, response: Http2ServerResponse) => {
      pages.push(`${request.httpVersion} ${request.url}`);
      if (request.url !== '/') {
        response.writeHead(404, { 'content-type': 'text/plain' });
        response.end('not found\n');
        return;
      }
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(PAGE);
    },
  );
  // Extended CONNECT arrives as the compatibility API's 'connect' event.
  http.on('connect', (request: Http2ServerRequest) => {
    if (!wss.handleHttp2Stream(request.stream, request.headers)) request.stream.close();
  });
  http.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const site: Site = { http, wss, port: (http.address() as AddressInfo).port, arrivals, pages };
  sites.push(site);
  return site;
}

beforeAll(async () => {
  const problem = browserTestsUnavailable();
  if (problem !== null) throw new Error(problem);
  pki = makeTestCertificates();
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const site of sites.splice(0)) {
    await site.wss.close({ timeout: 500 });
    await new Promise<void>((resolve) => site.http.close(() => resolve()));
  }
  pki?.remove();
});

/** Load the page in a fresh context; resolves with what its WebSocket got. */
async function loadPage(site: Site): Promise<unknown> {
  const context = await browser!.newContext();
  try {
    const page = await context.newPage();
    const response = await page.goto(`https://127.0.0.1:${site.port}/`);
    expect(response?.status()).toBe(200);
    return await page.evaluate(() => (globalThis as unknown as { result: Promise<unknown> }).result);
  } finally {
    await context.close();
  }
}

describe('Chromium and RFC 8441', () => {
  it("opens the page's WebSocket as an HTTP/2 stream on the page's connection", async () => {
    const site = await startSite(true);
    expect(await loadPage(site)).toEqual({ echoed: 'over h2?', protocol: '' });
    // The page came over HTTP/2 ...
    expect(site.pages).toContain('2.0 /');
    // ... and so did its WebSocket: an extended CONNECT, not an HTTP/1.1 GET.
    expect(site.arrivals).toEqual([{ method: 'CONNECT', path: '/echo' }]);
  });

  it("the apps host with TLS (sockeye serve --tls-cert) takes the home page's WebSockets over HTTP/2", async () => {
    const apps = new AppServer({ apps: allApps, tls: { cert: pki.serverCert, key: pki.serverKey }, logLevel: 'silent' });
    const arrivals: string[] = [];
    // A probe route on the host's own WebSocket server, to see how the browser's request came.
    apps.websockets.route('/probe', {
      authenticate: (request) => void arrivals.push(request.method),
      message: (connection, data) => void connection.send(data),
    });
    const { port } = await apps.listen(0);
    const context = await browser!.newContext();
    try {
      const page = await context.newPage();
      expect((await page.goto(`https://127.0.0.1:${port}/`))?.status()).toBe(200);
      const echoed = await page.evaluate(
        (url) =>
          new Promise((resolve) => {
            const socket = new WebSocket(url);
            socket.onopen = () => socket.send('probe');
            socket.onmessage = (event) => {
              resolve(event.data);
              socket.close(1000);
            };
            socket.onerror = () => resolve('failed');
          }),
        `wss://127.0.0.1:${port}/probe`,
      );
      expect(echoed).toBe('probe');
      expect(arrivals).toEqual(['CONNECT']);
    } finally {
      await context.close();
      await apps.close();
    }
  });

  it('falls back to an HTTP/1.1 upgrade when the server does not announce SETTINGS_ENABLE_CONNECT_PROTOCOL', async () => {
    const site = await startSite(false);
    expect(await loadPage(site)).toEqual({ echoed: 'over h2?', protocol: '' });
    expect(site.pages).toContain('2.0 /');
    expect(site.arrivals).toEqual([{ method: 'GET', path: '/echo' }]);
  });
});
