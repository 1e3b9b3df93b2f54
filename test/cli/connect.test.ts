import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reconnectDelay } from '../../src/cli/connect.js';
import type { CloseInfo, Connection } from '../../src/node/connection.js';
import { WebSocketServer, type Route } from '../../src/node/server.js';
import { reject, type UpgradeRequest } from '../../src/node/upgrade.js';
import { computeAcceptKey } from '../../src/protocol/handshake/accept-key.js';
import { assertBuilt, killAll, MAIN, PTY_BRIDGE, runCli } from './cli-process.js';
import { freePort } from '../free-port.js';
import { until } from '../wait.js';

/**
 * `sockeye connect` as a child process, through pipes (and one
 * pseudo-terminal), against a real server on 127.0.0.1.
 */

interface Seen {
  requests: UpgradeRequest[];
  messages: Array<{ data: string | Buffer; isBinary: boolean }>;
  pings: Buffer[];
  pongs: Buffer[];
  closes: CloseInfo[];
  connections: Connection<UpgradeRequest>[];
}

const servers: WebSocketServer[] = [];
const rawServers: Server[] = [];
let scratch = '';

beforeAll(() => {
  assertBuilt();
  scratch = mkdtempSync(join(tmpdir(), 'sockeye-connect-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(async () => {
  killAll();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 200 })));
  for (const server of rawServers.splice(0)) server.close();
});

/**
 * A server that records what it sees; `*` echoes unless `routes` replace it.
 * Every route records requests, messages, pings, pongs and closes.
 */
async function startServer(
  routes: Record<string, Partial<Route<UpgradeRequest>>> = {},
  options: { deflate?: boolean } = {},
): Promise<{ url: string; seen: Seen }> {
  const seen: Seen = { requests: [], messages: [], pings: [], pongs: [], closes: [], connections: [] };
  const server = new WebSocketServer({ perMessageDeflate: options.deflate ?? true, heartbeat: false });
  servers.push(server);
  const all: Record<string, Partial<Route<UpgradeRequest>>> = { '*': {}, ...routes };
  for (const [path, route] of Object.entries(all)) {
    server.route<UpgradeRequest>(path, {
      protocols: (offered) => offered[0],
      ...route,
      authenticate: (request) => {
        seen.requests.push(request);
        return route.authenticate === undefined ? request : route.authenticate(request);
      },
      open: (connection) => {
        seen.connections.push(connection);
        connection.on('ping', (payload) => seen.pings.push(payload));
        connection.on('pong', (payload) => seen.pongs.push(payload));
        route.open?.(connection);
      },
      message: (connection, data, isBinary) => {
        seen.messages.push({ data, isBinary });
        if (route.message !== undefined) route.message(connection, data, isBinary);
        else connection.send(data, { binary: isBinary });
      },
      close: (connection, info) => {
        seen.closes.push(info);
        route.close?.(connection, info);
      },
    });
  }
  const address = await server.listen(0, '127.0.0.1');
  return { url: `ws://127.0.0.1:${address.port}`, seen };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function texts(seen: Seen): Array<string | Buffer> {
  return seen.messages.map((m) => m.data);
}

describe('sockeye connect through pipes', () => {
  it('sends piped lines in order, prints each with its echo, and closes with 1000 at the end of input', async () => {
    const { url, seen } = await startServer();
    const run = runCli(['connect', `${url}/chat`, '-w', '0.5']);
    run.child.stdin!.end('first\nsecond line\n\nlast\n');
    expect(await run.exitCode()).toBe(0);
    expect(texts(seen)).toEqual(['first', 'second line', '', 'last']);
    expect(seen.closes).toMatchObject([{ code: 1000, wasClean: true, initiator: 'remote' }]);
    expect(run.stdout()).toBe(
      [
        `* connected to ${url}/chat (extensions permessage-deflate)`,
        '> first',
        '> second line',
        '> ',
        '> last',
        '< first',
        '< second line',
        '< ',
        '< last',
        '* closed: 1000 normal closure',
        '',
      ].join('\n'),
    );
    expect(run.stderr()).toBe('');
  });

  it('--execute sends each message, prints answers that come within --wait, then closes and exits 0', async () => {
    const { url, seen } = await startServer({
      '*': {
        message: (connection, data) => {
          setTimeout(() => connection.send(`soon: ${String(data)}`), 100);
          setTimeout(() => connection.send(`tardy: ${String(data)}`), 8000);
        },
      },
    });
    const started = performance.now();
    const run = runCli(['connect', url, '-x', 'one', '--execute', 'two', '--wait', '0.6'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    const elapsed = performance.now() - started;
    expect(texts(seen)).toEqual(['one', 'two']);
    expect(run.stdout()).toContain('> one\n> two\n< soon: one\n< soon: two\n* closed: 1000 normal closure\n');
    expect(run.stdout()).not.toContain('tardy');
    // It waited the 0.6 s and not for the late answers (8 s; the margin is for
    // starting the CLI on a loaded machine).
    expect(elapsed).toBeGreaterThan(600);
    expect(elapsed).toBeLessThan(7900);
  });

  it('exits 1 with a one-line reason when the port is closed', async () => {
    const port = await closedPort();
    const run = runCli(['connect', `ws://127.0.0.1:${port}/`], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(1);
    expect(run.stderr()).toMatch(new RegExp(`^sockeye: cannot connect to ws://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\n$`));
    expect(run.stdout()).toBe('');
  });

  it("exits 3 with the HTTP status and the server's reason when the upgrade is refused", async () => {
    const { url } = await startServer({ '/private': { authenticate: () => reject(403, 'not on the list') } });
    const run = runCli(['connect', `${url}/private`], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(3);
    expect(run.stderr()).toBe('sockeye: server refused the upgrade with 403 Forbidden: not on the list\n');
  });

  it('exits 1 with code 1006 when the server drops the connection without a close frame', async () => {
    const { url } = await startServer({ '*': { message: (connection) => connection.terminate() } });
    const run = runCli(['connect', url, '-w', '5']);
    run.child.stdin!.end('anything\n');
    expect(await run.exitCode()).toBe(1);
    expect(run.stdout()).toContain('* connection lost: 1006 abnormal closure');
    expect(run.stderr()).toBe('sockeye: connection closed abnormally (1006): the connection ended without a close frame\n');
  });

  it('exits 1 and names the code when the server closes with something other than 1000', async () => {
    const { url } = await startServer({ '*': { message: (connection) => connection.close(4001, 'bye now') } });
    const run = runCli(['connect', url, '-w', '5']);
    run.child.stdin!.end('hello\n');
    expect(await run.exitCode()).toBe(1);
    expect(run.stdout()).toContain('* closed by the server: 4001 "bye now"\n');
    expect(run.stderr()).toBe('sockeye: server closed the connection: 4001 "bye now"\n');
  });

  it('exits 0 when the server closes with 1000 before the input ends', async () => {
    const { url } = await startServer({ '*': { message: (connection) => connection.close(1000, 'done') } });
    const run = runCli(['connect', url]);
    run.write('hello\n'); // standard input stays open: the server's close ends the session
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toContain('* closed by the server: 1000 normal closure "done"\n');
    expect(run.stderr()).toBe('');
  });

  it('/close 4000 bye reaches the server as that close frame, and lines after it are not sent', async () => {
    const { url, seen } = await startServer();
    const run = runCli(['connect', url, '-w', '5']);
    run.child.stdin!.end('before\n/close 4000 bye\nafter\n');
    expect(await run.exitCode()).toBe(0);
    expect(seen.closes).toMatchObject([{ code: 4000, reason: 'bye', wasClean: true, initiator: 'remote' }]);
    expect(texts(seen)).toEqual(['before']);
    expect(run.stdout()).toContain('* closing: 4000 "bye"\n');
    expect(run.stderr()).toBe('sockeye: not sent, the connection is closing: after\n');
  });

  it('refuses a close code that may not be sent and carries on', async () => {
    const { url, seen } = await startServer();
    const run = runCli(['connect', url, '-w', '0.3']);
    run.child.stdin!.end('/close 1006\nstill here\n');
    expect(await run.exitCode()).toBe(0);
    expect(run.stderr()).toBe('sockeye: invalid close code 1006: use 1000-1003, 1007-1011 or 3000-4999\n');
    expect(texts(seen)).toEqual(['still here']);
    expect(seen.closes).toMatchObject([{ code: 1000 }]);
  });

  it('/ping from piped input prints the round-trip time of the matching pong', async () => {
    const { url, seen } = await startServer();
    const run = runCli(['connect', url, '-w', '0.5']);
    run.child.stdin!.end('/ping hello\n/ping\n');
    expect(await run.exitCode()).toBe(0);
    expect(seen.pings.map(String)).toEqual(['hello', '']);
    expect(run.stdout()).toMatch(/^< pong "hello" in \d+\.\d+ ms$/m);
    expect(run.stdout()).toMatch(/^< pong in \d+\.\d+ ms$/m);
  });

  it('//text sends a line that starts with a slash; an unknown /command is reported and not sent', async () => {
    const { url, seen } = await startServer();
    const run = runCli(['connect', url, '-w', '0.3']);
    run.child.stdin!.end('//etc/hosts\n/nope\n');
    expect(await run.exitCode()).toBe(0);
    expect(texts(seen)).toEqual(['/etc/hosts']);
    expect(run.stderr()).toMatch(/^sockeye: unknown command \/nope: /);
  });

  it('/binary FILE sends the file as one binary message; binary answers are shown as length and hex', async () => {
    const { url, seen } = await startServer();
    const file = join(scratch, 'payload.bin');
    const bytes = Buffer.concat([Buffer.from('AB'), randomBytes(40)]);
    writeFileSync(file, bytes);
    const run = runCli(['connect', url, '-w', '0.5']);
    run.child.stdin!.end(`/binary ${file}\n`);
    expect(await run.exitCode()).toBe(0);
    expect(seen.messages).toHaveLength(1);
    expect(seen.messages[0]!.isBinary).toBe(true);
    expect(Buffer.compare(seen.messages[0]!.data as Buffer, bytes)).toBe(0);
    const hex = Array.from(bytes.subarray(0, 32), (b) => b.toString(16).padStart(2, '0')).join(' ');
    expect(run.stdout()).toContain(`> binary 42 bytes: ${hex} |AB`);
    expect(run.stdout()).toContain(`< binary 42 bytes: ${hex} |AB`);
    expect(run.stdout()).toContain(' ... (+10 bytes)\n');
  });

  it('--trace prints one line per frame, both ways, with opcode, FIN, RSV bits, mask and length', async () => {
    const { url } = await startServer({}, { deflate: false });
    const run = runCli(['connect', url, '--trace', '-w', '0.3']);
    run.child.stdin!.end('hello\n');
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe(
      [
        `* connected to ${url}/`,
        '> hello',
        '>> text         fin=1 rsv1=0 rsv2=0 rsv3=0 masked=1 len=5',
        '<< text         fin=1 rsv1=0 rsv2=0 rsv3=0 masked=0 len=5',
        '< hello',
        '>> close        fin=1 rsv1=0 rsv2=0 rsv3=0 masked=1 len=2',
        '<< close        fin=1 rsv1=0 rsv2=0 rsv3=0 masked=0 len=2',
        '* closed: 1000 normal closure',
        '',
      ].join('\n'),
    );
  });

  it('--trace shows RSV1 and the compressed length of a deflated message', async () => {
    const { url, seen } = await startServer({ '*': { message: () => {} } });
    const run = runCli(['connect', url, '--trace', '-w', '0.3']);
    run.child.stdin!.end(`${'a'.repeat(5000)}\n`);
    expect(await run.exitCode()).toBe(0);
    expect(texts(seen)).toEqual(['a'.repeat(5000)]);
    const sent = /^>> text {9}fin=1 rsv1=1 rsv2=0 rsv3=0 masked=1 len=(\d+)$/m.exec(run.stdout());
    expect(sent).not.toBeNull();
    expect(Number(sent![1])).toBeLessThan(100);
  });

  it('--json pretty-prints JSON messages and leaves other text alone', async () => {
    const { url } = await startServer();
    const run = runCli(['connect', url, '--json', '-w', '0.5']);
    run.child.stdin!.end('{"type":"hi","list":[1,2]}\nnot json\n');
    expect(await run.exitCode()).toBe(0);
    const pretty = ['{', '    "type": "hi",', '    "list": [', '      1,', '      2', '    ]', '  }'].join('\n');
    expect(run.stdout()).toContain(`\n< ${pretty}\n`);
    expect(run.stdout()).toContain('\n< not json\n');
  });

  it("--show-ping-pong prints the server's pings and the automatic pongs", async () => {
    const { url, seen } = await startServer({ '*': { open: (connection) => void connection.ping('beat') } });
    const run = runCli(['connect', url, '--show-ping-pong', '-w', '0.3'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toContain('< ping "beat"\n> pong "beat" (automatic answer)\n');
    expect(seen.pongs.map(String)).toEqual(['beat']);
  });

  it('sends headers, subprotocols and Origin as asked, and --no-deflate makes no offer', async () => {
    const { url, seen } = await startServer();
    const run = runCli(
      [
        'connect',
        url,
        '-H',
        'X-Token: abc def',
        '--header',
        'X-Other:2',
        '-s',
        'chat.v2',
        '-s',
        'chat',
        '-o',
        'http://app.test',
        '--no-deflate',
        '-w',
        '0',
      ],
      { stdin: 'ignore' },
    );
    expect(await run.exitCode()).toBe(0);
    const request = seen.requests[0]!;
    expect(request.headers.get('x-token')).toBe('abc def');
    expect(request.headers.get('x-other')).toBe('2');
    expect(request.protocols).toEqual(['chat.v2', 'chat']);
    expect(request.origin).toBe('http://app.test');
    expect(request.extensions).toEqual([]);
    expect(run.stdout()).toContain(`* connected to ${url}/ (subprotocol chat.v2)\n`);
  });

  it('fails with 1009 when a message exceeds --max-message', async () => {
    const { url } = await startServer({ '*': { open: (connection) => void connection.send('x'.repeat(11)) } });
    const run = runCli(['connect', url, '--max-message', '10', '-w', '5'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(1);
    expect(run.stderr()).toBe('sockeye: connection failed: message exceeds 10 bytes (sent close 1009 message too big)\n');
  });

  it('prints a message that arrives in the same TCP segment as the 101 response', async () => {
    // A hand-written server: the upgrade response, a text frame and a close frame in one write.
    const server = createServer((socket) => {
      let head = '';
      socket.on('error', () => {});
      socket.on('data', (chunk) => {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n') || head === 'done') return;
        const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!;
        head = 'done';
        socket.end(
          Buffer.concat([
            Buffer.from(
              `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n\r\n`,
              'latin1',
            ),
            Buffer.from([0x81, 0x07]),
            Buffer.from('welcome'),
            Buffer.from([0x88, 0x02, 0x03, 0xe8]),
          ]),
        );
      });
    });
    rawServers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const run = runCli(['connect', `ws://127.0.0.1:${port}/`], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toBe(`* connected to ws://127.0.0.1:${port}/\n< welcome\n* closed by the server: 1000 normal closure\n`);
  });

  it('--reconnect comes back after the connection drops and sends what was typed meanwhile', async () => {
    let first = true;
    const { url, seen } = await startServer({
      '*': {
        message: (connection, data) => {
          if (first) {
            first = false;
            connection.terminate();
            return;
          }
          connection.send(`got ${String(data)}`);
        },
      },
    });
    const run = runCli(['connect', url, '--reconnect', '-w', '0.3']);
    run.write('one\n');
    await run.waitFor(
      new RegExp(
        `\\* connection closed abnormally \\(1006\\): .*; reconnecting to ${url.replace(/\./g, '\\.')}/ in (0\\.[5-9]|1\\.0) s \\(attempt 1\\)\\n`,
      ),
    );
    run.write('two\n');
    run.child.stdin!.end();
    expect(await run.exitCode()).toBe(0);
    expect(texts(seen)).toEqual(['one', 'two']);
    expect(seen.requests).toHaveLength(2);
    expect(run.stdout().match(/\* connected to /g)).toHaveLength(2);
    // One notice for the drop and the retry, not one for each.
    expect(run.stdout().match(/1006/g)).toHaveLength(1);
    expect(run.stdout()).toContain('< got two\n');
  });

  it('--reconnect does not retry an upgrade refused with 403', async () => {
    const { url, seen } = await startServer({ '/private': { authenticate: () => reject(403, 'no') } });
    const run = runCli(['connect', `${url}/private`, '--reconnect'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(3);
    expect(seen.requests).toHaveLength(1);
    expect(run.stderr()).toBe('sockeye: server refused the upgrade with 403 Forbidden: no\n');
  });

  it('--reconnect to a port nobody listens on prints one notice per attempt, each with the full URL and path', async () => {
    // A port the kernel just handed out and that nothing binds again: every attempt is refused.
    const url = `ws://127.0.0.1:${await freePort()}/echo/ws`;
    const run = runCli(['connect', '--reconnect', url]);
    const notices = (): string[] => run.stdout().match(/^.*\(attempt \d+\)$/gm) ?? [];
    await until(() => notices().length >= 2, 'two reconnect notices');
    run.child.kill('SIGKILL');
    await run.exitCode();
    const lines = notices();
    expect(lines.map((line) => Number(/\(attempt (\d+)\)$/.exec(line)![1]))).toEqual(lines.map((_, i) => i + 1));
    for (const line of lines) expect(line).toContain(`reconnecting to ${url} in `);
    // Nothing else was printed: no second line about the same failure.
    expect(run.stdout()).toBe(lines.map((line) => `${line}\n`).join(''));
    expect(run.stderr()).toBe('');
  });

  it('accepts host:port without a scheme', async () => {
    const { url, seen } = await startServer();
    const run = runCli(['connect', url.replace('ws://', ''), '-x', 'hi', '-w', '0.2'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(texts(seen)).toEqual(['hi']);
  });
});

describe('reconnectDelay', () => {
  it('waits 1 s, then doubles, up to 30 s, less up to half of it at random', () => {
    const attempts = [0, 1, 2, 3, 4, 5, 6, 50];
    expect(attempts.map((n) => reconnectDelay(n, () => 0))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(attempts.map((n) => reconnectDelay(n, () => 1))).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  });
});

describe('sockeye connect arguments and help', () => {
  it('prints its help with examples and exits 0', async () => {
    const run = runCli(['connect', '--help'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toMatch(/^Usage: sockeye connect URL \[options\]/);
    expect(run.stdout()).toMatch(/Examples[^\n]*:\n  sockeye connect ws:\/\//);
    for (const option of [
      '--header',
      '--subprotocol',
      '--origin',
      '--no-deflate',
      '--execute',
      '--wait',
      '--json',
      '--show-ping-pong',
      '--trace',
      '--reconnect',
      '--max-message',
    ]) {
      expect(run.stdout()).toContain(option);
    }
  });

  it('sockeye --help lists every command', async () => {
    const run = runCli(['--help'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toMatch(/^ {2}connect URL /m);
    expect(run.stdout()).toMatch(/^ {2}listen PORT /m);
    expect(run.stdout()).toMatch(/^ {2}serve echo /m);
  });

  it.each([
    [['connect'], 'sockeye: connect needs a URL, e.g. sockeye connect ws://127.0.0.1:8080\n'],
    [['connect', 'ws://127.0.0.1:1', '-H', 'no colon'], 'sockeye: invalid header "no colon": use \'Name: value\'\n'],
    [['connect', 'ws://127.0.0.1:1', '-w', 'soon'], 'sockeye: invalid wait: soon (use seconds, e.g. 2 or 0.5)\n'],
  ])('exits 2 for %j', async (args, message) => {
    const run = runCli(args, { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(2);
    expect(run.stderr()).toBe(message);
  });
});

describe('sockeye connect on a terminal', () => {
  // Python's pty module gives the command a real pseudo-terminal; the bridge copies keystrokes in and output out.
  const python = '/usr/bin/python3';

  it('prompts, prints incoming messages above the line being typed, and closes normally on Ctrl-D', async () => {
    const { url, seen } = await startServer();
    const run = runCli([MAIN, 'connect', url], { command: [python, PTY_BRIDGE, process.execPath] });
    await run.waitFor(/\/help lists the commands; Ctrl-D closes\r\n/);
    await until(() => seen.connections.length === 1, 'the connection at the server', 5000);
    run.write('hel');
    await run.waitFor(/hel$/);
    seen.connections[0]!.send('pushed');
    // The half-typed line is cleared, the message printed, and prompt and typed text redrawn below it.
    await run.waitFor(/\r\x1b\[K< pushed\r\n(\x1b\[\d*[A-Za-z])*> (\x1b\[\d*[A-Za-z])*hel/);
    run.write('lo\r');
    await run.waitFor(/< hello\r\n/);
    run.write('/ping\r');
    await run.waitFor(/< pong in \d+\.\d+ ms\r\n/);
    run.write('\x04');
    expect(await run.exitCode()).toBe(0);
    expect(texts(seen)).toEqual(['hello']);
    expect(seen.closes).toMatchObject([{ code: 1000, wasClean: true }]);
    // The sent line is not printed again with a marker: the prompt line already shows it.
    expect(run.stdout()).not.toMatch(/^> hello/m);
  });

  it('-q on a terminal writes only the payloads to standard output; prompt and notes go to standard error', async () => {
    // Standard input and output on one terminal, standard error on another, so what each carries can be told apart.
    const { url, seen } = await startServer();
    const run = runCli([MAIN, 'connect', url, '-q'], { command: [python, PTY_BRIDGE, '--split-errors', process.execPath] });
    await until(() => /Ctrl-D closes\r\n/.test(run.stderr()), 'the connected notes on standard error', 5000);
    await until(() => seen.connections.length === 1, 'the connection at the server', 5000);
    run.write('hello\r');
    await until(() => texts(seen).length === 1, 'the message at the server', 5000);
    await run.waitFor(/hello\r\n/);
    run.write('\x04');
    expect(await run.exitCode()).toBe(0);
    expect(texts(seen)).toEqual(['hello']);
    // The echo, as received, and nothing else: no "> " prompt, no typed line, no "<" marker, no notes.
    expect(run.stdout()).toBe('hello\r\n');
    expect(run.stderr()).toMatch(/^\* connected to ws:/);
    expect(run.stderr()).toContain('> ');
    expect(run.stderr()).toMatch(/\* closed: 1000 normal closure\r\n/);
  });

  it('closes normally on the first Ctrl-C', async () => {
    const { url, seen } = await startServer();
    const run = runCli([MAIN, 'connect', url], { command: [python, PTY_BRIDGE, process.execPath] });
    await run.waitFor(/Ctrl-D closes\r\n/);
    await until(() => seen.connections.length === 1, 'the connection at the server', 5000);
    run.write('\x03');
    expect(await run.exitCode()).toBe(0);
    expect(run.stdout()).toContain('* closing (press Ctrl-C again to quit at once)');
    expect(seen.closes).toMatchObject([{ code: 1000, wasClean: true }]);
  });
});
