import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compactJson, rawPayload } from '../../src/cli/payload-output.js';
import { parseTargetUrl } from '../../src/cli/target-url.js';
import type { Connection } from '../../src/node/connection.js';
import { WebSocketServer, type Route } from '../../src/node/server.js';
import { reject } from '../../src/node/upgrade.js';
import { assertBuilt, killAll, runCli } from './cli-process.js';

/**
 * `sockeye connect` in scripts and pipelines, as a child process through
 * pipes: --raw output byte for byte, exit statuses, URL checks, --version.
 */

const servers: WebSocketServer[] = [];

beforeAll(() => assertBuilt());
afterEach(async () => {
  killAll();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 200 })));
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
