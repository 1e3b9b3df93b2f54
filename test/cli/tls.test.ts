import { once } from 'node:events';
import { connect as connectHttp2, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { get as httpsGet } from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import { HandshakeError } from '../../src/node/errors.js';
import { WebSocketServer } from '../../src/node/server.js';
import type { TlsOptions } from 'node:tls';
import { makeSelfSignedCertificate, makeTestCertificates, type TestCertificates } from '../node/test-certificates.js';
import { startConnectProxy, type ConnectProxy } from '../node/test-connect-proxy.js';
import { assertBuilt, killAll, runCli, type CliRun } from './cli-process.js';

/**
 * TLS and proxies in the command line: `connect --ca/--cert/--key/--insecure`,
 * `--proxy`/`--no-proxy`, and `serve`, `serve echo`, `listen` with
 * `--tls-cert/--tls-key`, against certificates openssl makes for the run.
 */

let pki: TestCertificates;
const servers: WebSocketServer[] = [];
const proxies: ConnectProxy[] = [];

beforeAll(() => {
  assertBuilt();
  pki = makeTestCertificates();
});
afterAll(() => pki.remove());
afterEach(async () => {
  killAll();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 200 })));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

/** A wss:// echo server on 127.0.0.1 with the test server certificate, plus `tls` on top. */
async function echoServer(tls: TlsOptions = {}, secure = true): Promise<string> {
  const server = new WebSocketServer({ heartbeat: false, tls: secure ? { cert: pki.serverCert, key: pki.serverKey, ...tls } : undefined });
  servers.push(server);
  server.route('*', { message: (connection, data, isBinary) => void connection.send(data, { binary: isBinary }) });
  const { port } = await server.listen(0);
  return `${secure ? 'wss' : 'ws'}://127.0.0.1:${port}/echo`;
}

/** `connect URL -x hello -w 0.3 ...extra`: its exit code and output. */
async function connectOnce(url: string, extra: string[], env?: Record<string, string>): Promise<{ code: number | string; run: CliRun }> {
  const run = runCli(['connect', url, '-x', 'hello', '-w', '0.3', ...extra], { env });
  return { code: await run.exitCode(15_000), run };
}

/** Resolves with the first match of `pattern` on the server command's standard output. */
async function listening(run: CliRun, pattern: RegExp): Promise<RegExpExecArray> {
  return run.waitFor(pattern, 15_000);
}

describe('sockeye connect over TLS', () => {
  it('trusts the server through --ca, and says how when the CA is missing', async () => {
    const url = await echoServer();
    const trusted = await connectOnce(url, ['--ca', pki.files.ca]);
    expect(trusted.code, trusted.run.stderr()).toBe(0);
    expect(trusted.run.stdout()).toContain('< hello');

    const untrusted = await connectOnce(url, []);
    expect(untrusted.code).toBe(1);
    expect(untrusted.run.stdout()).not.toContain('< hello');
    expect(untrusted.run.stderr()).toMatch(/not signed by a CA this client trusts: pass that CA with --ca FILE/);

    const insecure = await connectOnce(url, ['--insecure']);
    expect(insecure.code, insecure.run.stderr()).toBe(0);
    expect(insecure.run.stdout()).toContain('< hello');
  });

  it('presents --cert/--key to a server that requires a client certificate', async () => {
    const url = await echoServer({ requestCert: true, rejectUnauthorized: true, ca: pki.ca });
    const withCert = await connectOnce(url, ['--ca', pki.files.ca, '--cert', pki.files.clientCert, '--key', pki.files.clientKey]);
    expect(withCert.code, withCert.run.stderr()).toBe(0);
    expect(withCert.run.stdout()).toContain('< hello');

    const without = await connectOnce(url, ['--ca', pki.files.ca]);
    expect(without.code).toBe(1);
    expect(without.run.stdout()).not.toContain('< hello');
  });

  it('-k (short for --insecure) accepts the self-signed certificate of serve echo --tls-cert', async () => {
    const selfSigned = makeSelfSignedCertificate();
    try {
      const server = runCli(['serve', 'echo', '--port', '0', '--tls-cert', selfSigned.certFile, '--tls-key', selfSigned.keyFile]);
      const [, port] = await listening(server, /listening on wss:\/\/127\.0\.0\.1:(\d+)/);
      const url = `wss://127.0.0.1:${port}/k`;
      const refused = await connectOnce(url, []);
      expect(refused.code).toBe(1);
      expect(refused.run.stdout()).not.toContain('< hello');
      const accepted = await connectOnce(url, ['-k']);
      expect(accepted.code, accepted.run.stderr()).toBe(0);
      expect(accepted.run.stdout()).toContain('< hello');
    } finally {
      selfSigned.remove();
    }
  });

  it('refuses unreadable files and a lone --key as invalid arguments (exit 2)', async () => {
    const url = 'wss://127.0.0.1:9/';
    const missing = await connectOnce(url, ['--ca', `${pki.dir}/no-such.pem`]);
    expect(missing.code).toBe(2);
    expect(missing.run.stderr()).toMatch(/cannot read --ca .*no-such\.pem: ENOENT/);
    const lone = await connectOnce(url, ['--key', pki.files.clientKey]);
    expect(lone.code).toBe(2);
    expect(lone.run.stderr()).toContain('--key goes with --cert');
  });
});

describe('sockeye connect through a proxy', () => {
  it('tunnels through --proxy, and --no-proxy ignores the environment', async () => {
    const url = await echoServer({}, false);
    const target = new URL(url).host;
    const proxy = await startConnectProxy();
    proxies.push(proxy);
    const through = await connectOnce(url, ['--proxy', proxy.url]);
    expect(through.code, through.run.stderr()).toBe(0);
    expect(through.run.stdout()).toContain('< hello');
    expect(proxy.requested).toEqual([target]);

    // The environment, read as curl reads it (http_proxy for ws://), unless --no-proxy.
    const fromEnv = await connectOnce(url, [], { http_proxy: proxy.url, NO_PROXY: '' });
    expect(fromEnv.code, fromEnv.run.stderr()).toBe(0);
    expect(proxy.requested).toEqual([target, target]);
    const direct = await connectOnce(url, ['--no-proxy'], { http_proxy: proxy.url, ALL_PROXY: proxy.url, NO_PROXY: '' });
    expect(direct.code, direct.run.stderr()).toBe(0);
    expect(direct.run.stdout()).toContain('< hello');
    expect(proxy.requested).toHaveLength(2);
  });

  it('goes through the proxy to a wss:// server, TLS end to end', async () => {
    const url = await echoServer();
    const proxy = await startConnectProxy();
    proxies.push(proxy);
    const run = await connectOnce(url, ['--proxy', proxy.url, '--ca', pki.files.ca]);
    expect(run.code, run.run.stderr()).toBe(0);
    expect(run.run.stdout()).toContain('< hello');
    expect(proxy.requested).toEqual([new URL(url).host]);
  });

  it('refuses a malformed --proxy and --proxy with --no-proxy (exit 2); --help names the variables', async () => {
    const bad = await connectOnce('ws://127.0.0.1:9/', ['--proxy', 'ftp://127.0.0.1:21']);
    expect(bad.code).toBe(2);
    expect(bad.run.stderr()).toMatch(/unsupported proxy scheme ftp/);
    const both = await connectOnce('ws://127.0.0.1:9/', ['--proxy', 'http://127.0.0.1:1', '--no-proxy']);
    expect(both.code).toBe(2);
    const help = runCli(['connect', '--help']);
    expect(await help.exitCode()).toBe(0);
    expect(help.stdout()).toMatch(/environment variables are read as curl reads them/);
    expect(help.stdout()).toMatch(/HTTPS_PROXY/);
    expect(help.stdout()).toMatch(/NO_PROXY/);
  });
});

/** `https://host:port/path` fetched with the test CA: status and body. */
function fetchTrusted(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsGet(url, { ca: pki.ca, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 10 s')));
    request.on('error', reject);
  });
}

describe('the servers with --tls-cert/--tls-key', () => {
  const tlsArgs = (): string[] => ['--tls-cert', pki.files.serverCert, '--tls-key', pki.files.serverKey];

  it('serve echo answers on wss://', async () => {
    const server = runCli(['serve', 'echo', '--port', '0', ...tlsArgs()]);
    const [, port] = await listening(server, /listening on wss:\/\/127\.0\.0\.1:(\d+)/);
    const connection = await connect(`wss://127.0.0.1:${port}/any`, { tls: { ca: pki.ca } });
    const echoed = new Promise((resolve) => connection.once('message', resolve));
    connection.send('over tls');
    expect(await echoed).toBe('over tls');
    connection.close();
  });

  it('serve runs the pages on https:// and the apps on wss://, with https:// as its own origin', async () => {
    const server = runCli(['serve', '--port', '0', '--log-level', 'silent', ...tlsArgs()]);
    const [, port] = await listening(server, /listening on https:\/\/127\.0\.0\.1:(\d+)\//);
    const page = await fetchTrusted(`https://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<html/i);
    const own = await connect(`wss://127.0.0.1:${port}/echo/ws`, { tls: { ca: pki.ca }, origin: `https://127.0.0.1:${port}` });
    const echoed = new Promise((resolve) => own.once('message', resolve));
    own.send('hi');
    expect(await echoed).toBe('hi');
    own.close();
    // The same host over plain http is another origin (RFC 6454 §4: the scheme is part of it).
    const foreign = await connect(`wss://127.0.0.1:${port}/echo/ws`, { tls: { ca: pki.ca }, origin: `http://127.0.0.1:${port}` }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(foreign).toBeInstanceOf(HandshakeError);
    expect((foreign as HandshakeError).status).toBe(403);
  });

  it('serve speaks HTTP/2 too: pages over h2, and the apps take WebSockets as extended CONNECT streams', async () => {
    const server = runCli(['serve', '--port', '0', '--log-level', 'silent', ...tlsArgs()]);
    const [, port] = await listening(server, /listening on https:\/\/127\.0\.0\.1:(\d+)\//);
    const session: ClientHttp2Session = connectHttp2(`https://127.0.0.1:${port}`, { ca: pki.ca });
    try {
      await once(session, 'remoteSettings');
      expect(session.alpnProtocol).toBe('h2');
      const answer = async (fields: Record<string, string>, end: boolean): Promise<IncomingHttpHeaders> => {
        const stream = session.request(fields, { endStream: end });
        const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
        return headers;
      };
      expect((await answer({ ':path': '/' }, true))[':status']).toBe(200);
      const socket = (origin: string): Record<string, string> => ({
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'https',
        ':path': '/echo/ws',
        ':authority': `127.0.0.1:${port}`,
        'sec-websocket-version': '13',
        origin,
      });
      expect((await answer(socket(`https://127.0.0.1:${port}`), false))[':status']).toBe(200);
      expect((await answer(socket('https://evil.example'), false))[':status']).toBe(403);
      // Our own client over h2, to the same apps.
      const h2 = await connect(`wss://127.0.0.1:${port}/echo/ws`, { http2: true, tls: { ca: pki.ca } });
      const echoed = new Promise((resolve) => h2.once('message', resolve));
      h2.send('h2 to the apps');
      expect(await echoed).toBe('h2 to the apps');
      h2.close();
    } finally {
      session.destroy();
    }
  });

  it('serve echo and listen take WebSockets over HTTP/2 as well', async () => {
    const echo = runCli(['serve', 'echo', '--port', '0', ...tlsArgs()]);
    const [, echoPort] = await listening(echo, /listening on wss:\/\/127\.0\.0\.1:(\d+)/);
    // sockeye connect --http2 to it: the same echo, as a stream.
    const cli = await connectOnce(`wss://127.0.0.1:${echoPort}/cli`, ['--http2', '--ca', pki.files.ca]);
    expect(cli.code, cli.run.stderr()).toBe(0);
    expect(cli.run.stdout()).toContain('< hello');
    expect(cli.run.stdout()).toMatch(/connected to wss:.*over HTTP\/2/);
    const plainUrl = await connectOnce(`ws://127.0.0.1:${echoPort}/cli`, ['--http2']);
    expect(plainUrl.code).toBe(2);
    expect(plainUrl.run.stderr()).toContain('--http2 needs a wss:// URL');
    const viaEcho = await connect(`wss://127.0.0.1:${echoPort}/x`, { http2: true, tls: { ca: pki.ca } });
    const echoed = new Promise((resolve) => viaEcho.once('message', resolve));
    viaEcho.send('echo over h2');
    expect(await echoed).toBe('echo over h2');
    viaEcho.close();
    const listener = runCli(['listen', '0', ...tlsArgs()]);
    const [, listenPort] = await listening(listener, /listening on wss:\/\/127\.0\.0\.1:(\d+)/);
    const viaListen = await connect(`wss://127.0.0.1:${listenPort}/room`, { http2: true, tls: { ca: pki.ca } });
    viaListen.send('listen over h2');
    await listening(listener, /< listen over h2/);
    viaListen.close();
  });

  it('listen serves wss:// and prints what a client sends', async () => {
    const listener = runCli(['listen', '0', ...tlsArgs()]);
    const [, port] = await listening(listener, /listening on wss:\/\/127\.0\.0\.1:(\d+)/);
    const connection = await connect(`wss://127.0.0.1:${port}/room`, { tls: { ca: pki.ca } });
    connection.send('from a tls client');
    await listening(listener, /< from a tls client/);
    connection.close();
  });

  it('refuses --tls-cert without --tls-key (exit 2)', async () => {
    const run = runCli(['serve', 'echo', '--port', '0', '--tls-cert', pki.files.serverCert]);
    expect(await run.exitCode()).toBe(2);
    expect(run.stderr()).toContain('--tls-cert needs --tls-key');
  });
});
