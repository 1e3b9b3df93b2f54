import { randomBytes } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compactJson, rawPayload } from '../../src/cli/payload-output.js';
import { parseTargetUrl } from '../../src/cli/target-url.js';
import type { Connection } from '../../src/node/connection.js';
import { WebSocketServer, type Route } from '../../src/node/server.js';
import { reject, type UpgradeRequest } from '../../src/node/upgrade.js';
import { computeAcceptKey } from '../../src/protocol/handshake/accept-key.js';
import { assertBuilt, killAll, runCli } from './cli-process.js';
import { until } from '../wait.js';

/**
 * `sockeye connect` in scripts and pipelines, as a child process through
 * pipes: --raw output byte for byte, exit statuses, URL checks, --version.
 */

const servers: WebSocketServer[] = [];
const netServers: NetServer[] = [];

beforeAll(() => assertBuilt());
afterEach(async () => {
  killAll();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 200 })));
  for (const server of netServers.splice(0)) server.close();
});

/** An echo server (or the given routes) on an ephemeral port. */
async function startServer(routes: Record<string, Route> = {}): Promise<string> {
  const server = new WebSocketServer({ heartbeat: false });
  servers.push(server);
  for (const [path, route] of Object.entries({ '*': { message: echo } satisfies Route, ...routes })) server.route(path, route);
  const { port } = await server.listen(0, '127.0.0.1');
  return `ws://127.0.0.1:${port}`;
}

function echo(connection: Connection<undefined>, data: string | Buffer, isBinary: boolean): void {
  connection.send(data, { binary: isBinary });
}

describe('--raw (-q)', () => {
  it('writes only the received text messages to stdout, exactly as received, one per line', async () => {
    const url = await startServer();
    const run = runCli(['connect', `${url}/x`, '--raw', '-w', '0.5']);
    // Tabs, a carriage return, an escape, non-ASCII and an empty message all come back as they were.
    run.child.stdin!.end('first\nwith\ttab and \x1b[1mbold\x1b[0m\n\nhéllo ✓\nlast\r\n');
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe('first\nwith\ttab and \x1b[1mbold\x1b[0m\n\nhéllo ✓\nlast\n');
    expect(run.stderr()).toBe(`* connected to ${url}/x\n* closed: 1000 normal closure\n`);
  });

  it('with --json writes one compact JSON value per line, non-JSON text as a JSON string', async () => {
    const url = await startServer({
      '/feed': {
        open(connection) {
          connection.send('{\n  "a": 1,\n  "b": [true, null]\n}');
          connection.send('{"big":12345678901234567890}');
          connection.send('plain "text"');
          connection.send('42');
          connection.close(1000);
        },
      },
    });
    const run = runCli(['connect', `${url}/feed`, '-q', '--json'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe('{"a":1,"b":[true,null]}\n{"big":12345678901234567890}\n"plain \\"text\\""\n42\n');
    // Every line parses on its own.
    for (const line of run.stdout().trimEnd().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('notes a binary message on stderr and keeps it off stdout', async () => {
    const url = await startServer({
      '/bin': {
        open(connection) {
          connection.send(Buffer.from([0, 1, 2]), { binary: true });
          connection.send('after');
          connection.close(1000);
        },
      },
    });
    const run = runCli(['connect', `${url}/bin`, '-q'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe('after\n');
    expect(run.stderr()).toContain('* binary message of 3 bytes not written');
  });

  it('rawPayload and compactJson: the formats in one place', () => {
    expect(rawPayload('a\nb', false, { json: false, binary: false })).toBe('a\nb\n');
    expect(rawPayload(Buffer.from([1]), true, { json: false, binary: false })).toBeNull();
    expect(rawPayload(Buffer.from([1]), true, { json: true, binary: true })).toEqual(Buffer.from([1]));
    expect(compactJson(' {"x": 1} ')).toBe('{"x": 1}');
    expect(compactJson('')).toBe('""');
    expect(compactJson('[1,\n2]')).toBe('[1,2]');
  });
});

describe('exit statuses', () => {
  it('0 after a normal close', async () => {
    const url = await startServer();
    const run = runCli(['connect', url, '-x', 'hi', '-w', '0.2', '-q'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe('hi\n');
  });

  it('1 when the server closes with another code than 1000', async () => {
    const url = await startServer({ '/bye': { open: (connection) => connection.close(4001, 'go') } });
    const run = runCli(['connect', `${url}/bye`], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(1);
    expect(run.stderr()).toContain('4001');
  });

  it('3 when the upgrade is refused with an HTTP status', async () => {
    const url = await startServer({ '/private': { authenticate: () => reject(403, 'no') } });
    const run = runCli(['connect', `${url}/private`], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(3);
    expect(run.stderr()).toBe('sockeye: server refused the upgrade with 403 Forbidden: no\n');
  });

  it.each([
    ['ws//127.0.0.1:8080', 'invalid URL: ws//127.0.0.1:8080 (the scheme needs "://": did you mean ws://127.0.0.1:8080?)'],
    ['ws:/127.0.0.1:8080', 'invalid URL: ws:/127.0.0.1:8080 (the scheme needs "://": did you mean ws://127.0.0.1:8080?)'],
    ['ftp://127.0.0.1:8080', 'invalid URL: ftp://127.0.0.1:8080 (the scheme must be ws:// or wss://, not ftp://)'],
    ['ws://127.0.0.1:99999', 'invalid URL: ws://127.0.0.1:99999'],
    ['ws://127.0.0.1:8080/#top', 'invalid URL: ws://127.0.0.1:8080/#top (a WebSocket URL has no #fragment)'],
    ['ws://', 'invalid URL: ws://'],
  ])('2 for the URL %s, with the reason', async (url, reason) => {
    const run = runCli(['connect', url], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(2);
    expect(run.stderr()).toBe(`sockeye: ${reason}\n`);
  });

  it('lists every status in --help', async () => {
    const run = runCli(['connect', '--help'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    for (const status of ['0 ', '1 ', '2 ', '3 ', '130 ']) expect(run.stdout()).toMatch(new RegExp(`^ {2}${status}`, 'm'));
  });
});

describe('parseTargetUrl', () => {
  it('adds ws:// to host:port/path and keeps ws, wss, http and https', () => {
    expect(parseTargetUrl('127.0.0.1:8080/echo/ws').href).toBe('ws://127.0.0.1:8080/echo/ws');
    expect(parseTargetUrl('localhost:9000').href).toBe('ws://localhost:9000/');
    expect(parseTargetUrl('wss://example.com/x?y=1').href).toBe('wss://example.com/x?y=1');
    expect(parseTargetUrl('http://example.com').protocol).toBe('http:');
    // A host that merely starts like a scheme is a host.
    expect(parseTargetUrl('wsserver:8080/x').host).toBe('wsserver:8080');
  });
});

describe('sockeye --version', () => {
  it.each([['--version'], ['version'], ['-V']])('%s prints the package version and exits 0', async (arg) => {
    const run = runCli([arg], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toMatch(/^sockeye \d+\.\d+\.\d+\S* \(node \d+\.\d+\.\d+\)\n$/);
  });
});

describe('--binary (-b)', () => {
  it.each([0, 1, 1000, 65_537, 1024 * 1024])('round-trips %i random bytes through stdin and stdout, byte for byte', async (size) => {
    const url = await startServer();
    const bytes = randomBytes(size);
    const run = runCli(['connect', url, '-b', '-w', '1', '--max-message', '2MiB']);
    run.child.stdin!.end(bytes);
    expect(await run.exitCode(15_000)).toBe(0);
    expect(run.stdoutBytes().equals(bytes)).toBe(true);
  });

  it('sends one message per chunk read, binary; text from the server stays a text line', async () => {
    const seen: Array<{ size: number; isBinary: boolean }> = [];
    const url = await startServer({
      '*': {
        message(connection, data, isBinary) {
          seen.push({ size: data.length, isBinary });
          connection.send(`got ${data.length}`);
        },
      },
    });
    const run = runCli(['connect', url, '-b', '-w', '0.5']);
    run.child.stdin!.end(Buffer.from([0xff, 0x00, 0x0a]));
    expect(await run.exitCode()).toBe(0);
    expect(seen).toEqual([{ size: 3, isBinary: true }]);
    expect(run.stdout()).toBe('got 3\n');
  });

  it('with --lines sends one binary message per line, without its line feed', async () => {
    const seen: Buffer[] = [];
    const url = await startServer({ '*': { message: (_connection, data) => void seen.push(data as Buffer) } });
    const run = runCli(['connect', url, '-b', '--lines', '-w', '0.3']);
    run.child.stdin!.end(Buffer.from('one\n\xfe\x00two\n\nlast', 'latin1'));
    expect(await run.exitCode()).toBe(0);
    expect(seen.map((b) => b.toString('latin1'))).toEqual(['one', '\xfe\x00two', '', 'last']);
  });
});

describe('--once (-1)', () => {
  it('prints the first reply, closes with 1000 and exits 0 without waiting out --wait', async () => {
    const closes: number[] = [];
    const url = await startServer({
      '*': {
        message(connection, data) {
          connection.send(`first ${String(data)}`);
          connection.send('second');
        },
        close: (_connection, info) => void closes.push(info.code),
      },
    });
    const started = performance.now();
    const run = runCli(['connect', url, '-1', '-q', '-x', 'hello', '-w', '20'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe('first hello\n');
    expect(closes).toEqual([1000]);
    // It did not sit out the 20 s wait.
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('takes the message from stdin, and a message the server sends first counts as the reply', async () => {
    const url = await startServer({ '/welcome': { open: (connection) => connection.send('welcome') } });
    const run = runCli(['connect', `${url}/welcome`, '--once', '-q']);
    run.child.stdin!.end('ignored\n');
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe('welcome\n');
  });

  it('exits 1 when nothing comes within --wait', async () => {
    const url = await startServer({ '*': { message: () => undefined } });
    const run = runCli(['connect', url, '--once', '-x', 'anyone?', '-w', '0.3'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(1);
    expect(run.stderr()).toBe('sockeye: no message within 0.3 s\n');
  });
});

/** A server that completes the opening handshake and then never sends another byte (no pongs). */
async function startMuteServer(): Promise<string> {
  const server = createNetServer((socket) => {
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head.endsWith('\r\n\r\n')) return; // frames after the handshake are read and ignored
      head += chunk.toString('latin1');
      const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1];
      if (head.includes('\r\n\r\n') && key !== undefined) {
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n\r\n`,
        );
      }
    });
    socket.on('error', () => undefined);
  });
  netServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('--ping-interval and --ping-timeout', () => {
  it('exits 1 with a clear message when pongs stop coming', async () => {
    const url = await startMuteServer();
    const run = runCli(['connect', url, '--ping-interval', '0.1', '--ping-timeout', '0.3']);
    expect(await run.exitCode()).toBe(1);
    expect(run.stderr()).toBe('sockeye: no pong within 0.3 s: the server stopped answering pings\n');
  });

  it('keeps a connection to a server that answers, sending pings at the interval, not printing their pongs', async () => {
    const pings: Buffer[] = [];
    const url = await startServer({ '*': { open: (connection) => void connection.on('ping', (payload: Buffer) => pings.push(payload)) } });
    const run = runCli(['connect', url, '--ping-interval', '0.05', '--ping-timeout', '2', '-w', '0']);
    // Wait for the pings themselves (bounded), then end the input.
    await until(() => pings.length >= 3, 'three pings', 5000);
    run.child.stdin!.end();
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).not.toContain('pong');
  });

  it('refuses --ping-timeout without --ping-interval (exit 2)', async () => {
    const run = runCli(['connect', 'ws://127.0.0.1:1', '--ping-timeout', '1'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(2);
    expect(run.stderr()).toBe('sockeye: --ping-timeout needs --ping-interval\n');
  });
});

describe('--auth', () => {
  it('sends HTTP Basic credentials (RFC 7617), the password split at the first colon only', async () => {
    const requests: UpgradeRequest[] = [];
    const url = await startServer({
      '*': {
        authenticate: (request) => {
          requests.push(request);
          return undefined;
        },
        message: echo,
      },
    });
    const run = runCli(['connect', url, '--auth', 'zoë:pa:ss', '-x', 'hi', '-w', '0.2', '-q'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(requests[0]!.headers.get('authorization')).toBe(`Basic ${Buffer.from('zoë:pa:ss', 'utf8').toString('base64')}`);
  });

  it('refuses credentials without a colon (exit 2)', async () => {
    const run = runCli(['connect', 'ws://127.0.0.1:1', '--auth', 'nobody'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(2);
    expect(run.stderr()).toBe('sockeye: invalid --auth: use USER:PASSWORD\n');
  });
});

describe('exit status 130', () => {
  it('closes normally on the first SIGINT and gives up at once on the second, when the server never answers the close', async () => {
    const url = await startMuteServer();
    const run = runCli(['connect', url]);
    await run.waitFor(/\* connected to /);
    run.child.kill('SIGINT');
    await run.waitFor(/\* closing \(press Ctrl-C again to quit at once\)\n/);
    run.child.kill('SIGINT');
    expect(await run.exitCode()).toBe(130);
  });
});
