import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect } from '../../src/node/client.js';
import type { CloseInfo, Connection } from '../../src/node/connection.js';
import { assertBuilt, killAll, runCli, withTimeout, type CliRun } from './cli-process.js';
import { until } from '../wait.js';

/**
 * `sockeye listen` as a child process on an ephemeral port, with `ws` and
 * Sockeye clients connecting to it over 127.0.0.1.
 */

const sockets: WebSocket[] = [];
const connections: Connection<undefined>[] = [];

beforeAll(assertBuilt);
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.terminate();
  for (const connection of connections.splice(0)) connection.terminate();
  killAll();
});

async function listen(extra: string[] = []): Promise<CliRun & { port: number }> {
  const run = runCli(['listen', '0', ...extra]);
  const match = await run.waitFor(/^\* listening on ws:\/\/127\.0\.0\.1:(\d+) \(any path\)\n/m);
  return { ...run, port: Number(match[1]) };
}

/** A `ws` client that records what it receives and how it was closed. */
async function wsClient(
  port: number,
  path = '/',
  protocols: string[] = [],
): Promise<{ socket: WebSocket; received: string[]; closed: Promise<{ code: number; reason: string }>; localPort: number }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols);
  sockets.push(socket);
  const received: string[] = [];
  socket.on('message', (data, isBinary) => received.push(isBinary ? `binary:${(data as Buffer).toString('hex')}` : String(data)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await withTimeout(new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)), 5000, 'the ws client to open');
  return { socket, received, closed, localPort: (socket as unknown as { _socket: { localPort: number } })._socket.localPort };
}

describe('sockeye listen', () => {
  it('prints connections, tagged messages and disconnections', async () => {
    const server = await listen();
    const a = await wsClient(server.port, '/room?x=1', ['chat']);
    const tag = `[#1 127.0.0.1:${a.localPort}]`;
    await server.waitFor(new RegExp(`^${escape(tag)} \\* connected: /room\\?x=1 \\(subprotocol chat; extensions permessage-deflate\\)\\n`, 'm'));
    a.socket.send('hello there');
    a.socket.send(Buffer.from([0, 1, 0xfe]));
    a.socket.send('two\nlines');
    await server.waitFor(/two\n/);
    a.socket.close(1000, 'done');
    await server.waitFor(/disconnected/);
    expect(server.stdout().split('\n').slice(1).join('\n')).toBe(
      [
        `${tag} * connected: /room?x=1 (subprotocol chat; extensions permessage-deflate)`,
        `${tag} < hello there`,
        `${tag} < binary 3 bytes: 00 01 fe |...|`,
        `${tag} < two`,
        `${' '.repeat(tag.length + 3)}lines`,
        `${tag} * disconnected, closed by the client: 1000 normal closure "done"`,
        '',
      ].join('\n'),
    );
  });

  it('sends a typed line to every client, ws and Sockeye alike', async () => {
    const server = await listen();
    const a = await wsClient(server.port);
    const b = await connect(`ws://127.0.0.1:${server.port}/b`);
    connections.push(b);
    const bReceived: string[] = [];
    b.on('message', (data) => bReceived.push(String(data)));
    await server.waitFor(/\[#2 [^\]]+\] \* connected: \/b/);
    server.write('hi all\n');
    await until(() => a.received.length === 1 && bReceived.length === 1, 'both clients to get the line', 5000);
    expect(a.received).toEqual(['hi all']);
    expect(bReceived).toEqual(['hi all']);
    expect(server.stdout()).toContain('\n[all 2] > hi all\n');
  });

  it('says so when a line is typed with no client connected', async () => {
    const server = await listen();
    server.write('anyone?\n');
    await server.waitFor(/^\* no clients connected; nothing sent\n/m);
  });

  it('/clients lists clients; /to sends to one; /kick closes one with the given code', async () => {
    const server = await listen();
    const a = await wsClient(server.port, '/a');
    const b = await wsClient(server.port, '/b');
    await server.waitFor(/\[#2 [^\]]+\] \* connected/);
    server.write('/clients\n');
    await server.waitFor(
      /^\* 2 connected:\n\* {3}\[#1 127\.0\.0\.1:\d+\] \/a, connected \d+ s ago, 0 received, 0 sent\n\* {3}\[#2 127\.0\.0\.1:\d+\] \/b, /m,
    );
    server.write('/to 2 only for b\n/to #1 only for a\n');
    await until(() => a.received.length === 1 && b.received.length === 1, 'the direct messages', 5000);
    expect(a.received).toEqual(['only for a']);
    expect(b.received).toEqual(['only for b']);
    server.write('/kick 1 4002 out you go\n');
    expect(await withTimeout(a.closed, 5000, 'the kick')).toEqual({ code: 4002, reason: 'out you go' });
    await server.waitFor(/\[#1 [^\]]+\] \* disconnected, closed by us: 4002 "out you go"\n/);
    server.write('/kick 9\n');
    await until(() => server.stderr().includes('no client #9'), 'the complaint', 5000);
    expect(server.stderr()).toBe('sockeye: no client #9 (see /clients)\n');
  });

  it('/drop cuts the TCP connection: the client sees 1006', async () => {
    const server = await listen();
    const a = await wsClient(server.port);
    await server.waitFor(/\* connected/);
    server.write('/drop 1\n');
    expect((await withTimeout(a.closed, 5000, 'the drop')).code).toBe(1006);
  });

  it("/ping prints each client's round-trip time", async () => {
    const server = await listen();
    await wsClient(server.port);
    await wsClient(server.port);
    await server.waitFor(/\[#2 [^\]]+\] \* connected/);
    server.write('/ping\n');
    await server.waitFor(/^\[#1 [^\]]+\] < pong in \d+\.\d+ ms\n/m);
    await server.waitFor(/^\[#2 [^\]]+\] < pong in \d+\.\d+ ms\n/m);
  });

  it('--trace shows frames both ways per client', async () => {
    const server = await listen(['--trace', '--no-deflate']);
    const a = await wsClient(server.port);
    a.socket.send('abc');
    await server.waitFor(/< abc\n/);
    server.write('xy\n');
    await until(() => a.received.length === 1, 'the line', 5000);
    expect(server.stdout()).toMatch(/^\[#1 [^\]]+\] << text {9}fin=1 rsv1=0 rsv2=0 rsv3=0 masked=1 len=3\n\[#1 [^\]]+\] < abc\n/m);
    await server.waitFor(/^\[#1 [^\]]+\] >> text {9}fin=1 rsv1=0 rsv2=0 rsv3=0 masked=0 len=2\n/m);
  });

  it("accepts the subprotocol listed with -s rather than the client's first choice", async () => {
    const server = await listen(['-s', 'v2', '-s', 'v1']);
    const a = await wsClient(server.port, '/', ['v1', 'v2']);
    expect(a.socket.protocol).toBe('v2');
  });

  it('keeps serving after piped input ends, and on SIGTERM closes clients with 1001 and exits 0', async () => {
    const server = await listen();
    server.child.stdin!.end();
    const a = await wsClient(server.port);
    a.socket.send('still here');
    await server.waitFor(/< still here\n/);
    server.child.kill('SIGTERM');
    expect((await withTimeout(a.closed, 5000, 'the close')).code).toBe(1001);
    expect(await server.exitCode()).toBe(0);
  });

  it('/quit closes every client with 1001 and exits 0', async () => {
    const server = await listen();
    const a = await wsClient(server.port);
    const b = await connect(`ws://127.0.0.1:${server.port}/`);
    connections.push(b);
    const bClosed = new Promise<CloseInfo>((resolve) => b.once('close', resolve));
    await server.waitFor(/\[#2 [^\]]+\] \* connected/);
    server.write('/quit\n');
    expect((await withTimeout(a.closed, 5000, 'the ws close')).code).toBe(1001);
    expect(await withTimeout(bClosed, 5000, 'the Sockeye close')).toMatchObject({ code: 1001, wasClean: true });
    expect(await server.exitCode()).toBe(0);
  });

  it('prints its help with examples; exits 2 without a port', async () => {
    const help = runCli(['listen', '--help'], { stdin: 'ignore' });
    expect(await help.exitCode()).toBe(0);
    expect(help.stdout()).toMatch(/^Usage: sockeye listen PORT \[options\]/);
    expect(help.stdout()).toContain('Examples:\n  sockeye listen 9000\n');
    for (const command of ['/clients', '/kick N', '/to N', '/drop N', '/ping', '/binary FILE', '/quit']) expect(help.stdout()).toContain(command);
    const bad = runCli(['listen'], { stdin: 'ignore' });
    expect(await bad.exitCode()).toBe(2);
    expect(bad.stderr()).toBe('sockeye: listen needs a PORT, e.g. sockeye listen 9000 (0 picks a free port)\n');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
