import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import { OP, RawClient, closePayload, deflateMessage, frame } from '../node/raw-client.js';

/**
 * `sockeye serve echo` as a child process, the way a user runs it, driven
 * by the raw test client. Needs the compiled CLI: run `npx tsc -p .` first.
 */

const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

const children: ChildProcess[] = [];
const clients: RawClient[] = [];

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build with "npx tsc -p ." before running the CLI tests`);
});

afterEach(() => {
  for (const client of clients.splice(0)) client.destroy();
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(args: string[]): Run {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Start `sockeye serve echo` on an ephemeral port and return it with the port it printed. */
async function serveEcho(extra: string[] = []): Promise<Run & { port: number }> {
  const server = run(['serve', 'echo', '--port', '0', ...extra]);
  const deadline = performance.now() + 10_000;
  for (;;) {
    const match = /listening on ws:\/\/127\.0\.0\.1:(\d+)\n/.exec(server.stdout());
    if (match !== null) return { ...server, port: Number(match[1]) };
    if (server.child.exitCode !== null) throw new Error(`the server exited: ${server.stderr()}`);
    if (performance.now() > deadline) throw new Error(`no listening line within 10 s; stdout: ${server.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('sockeye serve echo', () => {
  it('prints the bound port for --port 0, and on SIGTERM closes connections with 1001 and exits 0', async () => {
    const server = await serveEcho();
    expect(server.stdout()).toBe(`sockeye echo server listening on ws://127.0.0.1:${server.port}\n`);
    expect(server.port).toBeGreaterThan(0);
    // The upgrade also proves the child is past start-up: main.ts installs its
    // signal handlers only after printing the listening line, so a SIGTERM
    // sent the instant the line appears can still kill it outright.
    const { client } = await RawClient.upgrade(server.port);
    clients.push(client);
    server.child.kill('SIGTERM');
    expect((await client.readFrame(5000)).bytes).toEqual(
      frame({ opcode: OP.close, payload: closePayload(1001, 'server shutting down'), mask: false }),
    );
    client.send({ opcode: OP.close, payload: closePayload(1001) });
    await client.waitEnd();
    expect(await withTimeout(server.exited, 5000, 'the server to exit')).toBe(0);
  });

  it('echoes a 4 MiB message sent in 65,536 fragments of 64 bytes, intact, with --max-message 4MiB', async () => {
    const server = await serveEcho(['--max-message', '4MiB']);
    const { client } = await RawClient.upgrade(server.port);
    clients.push(client);
    const message = randomBytes(4 * 1024 * 1024);
    const fragments: Buffer[] = [];
    for (let i = 0; i < 65_536; i++) {
      fragments.push(
        frame({
          opcode: i === 0 ? OP.binary : OP.continuation,
          fin: i === 65_535,
          payload: message.subarray(i * 64, (i + 1) * 64),
        }),
      );
    }
    client.write(Buffer.concat(fragments));
    const echoed = await client.readFrame(15_000);
    // One unfragmented binary frame with a 64-bit length of 0x400000.
    expect(echoed.bytes.subarray(0, 10)).toEqual(Buffer.from([0x82, 0x7f, 0, 0, 0, 0, 0, 0x40, 0, 0]));
    expect(echoed.payload.length).toBe(message.length);
    expect(echoed.payload.equals(message)).toBe(true);

    client.send({ opcode: OP.close, payload: closePayload(1000) });
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    await client.waitEnd();
  });

  it('echoes text as text and binary as binary, in order', async () => {
    const server = await serveEcho();
    const { client } = await RawClient.upgrade(server.port, { path: '/any/path?x=1' });
    clients.push(client);
    client.write(
      Buffer.concat([
        frame({ opcode: OP.text, payload: 'héllo' }),
        frame({ opcode: OP.binary, payload: Buffer.from([0xff, 0x00]) }),
        frame({ opcode: OP.text, payload: '' }),
      ]),
    );
    expect((await client.readFrame()).bytes).toEqual(frame({ opcode: OP.text, payload: 'héllo', mask: false }));
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x82, 0x02, 0xff, 0x00]));
    expect((await client.readFrame()).bytes).toEqual(Buffer.from([0x81, 0x00]));
  });

  it('accepts permessage-deflate by default and not with --no-deflate', async () => {
    const offer = { extra: ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'] };
    const withDeflate = await serveEcho();
    const accepted = await RawClient.upgrade(withDeflate.port, offer);
    clients.push(accepted.client);
    expect(accepted.response.headers.get('sec-websocket-extensions')).toBe('permessage-deflate');
    accepted.client.send({ opcode: OP.text, payload: deflateMessage('squeezed'), rsv1: true });
    expect((await accepted.client.readFrame()).bytes).toEqual(frame({ opcode: OP.text, payload: 'squeezed', mask: false }));

    const without = await serveEcho(['--no-deflate']);
    const plain = await RawClient.upgrade(without.port, offer);
    clients.push(plain.client);
    expect(plain.response.headers.has('sec-websocket-extensions')).toBe(false);
  });

  it('closes a message over 1 MiB with 1009 when started with no options, and echoes one of 1 MiB', async () => {
    const server = await serveEcho();
    const { client } = await RawClient.upgrade(server.port);
    clients.push(client);
    client.send({ opcode: OP.binary, payload: Buffer.alloc(1024 * 1024, 1) });
    expect((await client.readFrame(10_000)).payload.length).toBe(1024 * 1024);
    client.send({ opcode: OP.binary, payload: Buffer.alloc(1024 * 1024 + 1, 1) });
    const close = await client.readFrame(10_000);
    expect(close.opcode).toBe(OP.close);
    expect(close.payload.readUInt16BE(0)).toBe(1009);
    await client.waitEnd();
  });

  it('closes with 1009 a compressed message that inflates past 1 MiB, with its defaults', async () => {
    const server = await serveEcho();
    const offer = { extra: ['Sec-WebSocket-Extensions: permessage-deflate'] };
    const { client } = await RawClient.upgrade(server.port, offer);
    clients.push(client);
    // About 2 KiB on the wire, 2 MiB once inflated: the bound is on what the server inflates.
    const bomb = deflateMessage(Buffer.alloc(2 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(4096);
    client.send({ opcode: OP.binary, payload: bomb, rsv1: true });
    const close = await client.readFrame(10_000);
    expect(close.opcode).toBe(OP.close);
    expect(close.payload.readUInt16BE(0)).toBe(1009);
    await client.waitEnd();
  });

  it('enforces --max-message with 1009', async () => {
    const server = await serveEcho(['--max-message', '1KiB']);
    const { client } = await RawClient.upgrade(server.port);
    clients.push(client);
    client.send({ opcode: OP.binary, payload: Buffer.alloc(1025) });
    expect((await client.readFrame()).payload.readUInt16BE(0)).toBe(1009);
    await client.waitEnd();
  });

  it('prints its help and exits 0 for --help, saying how to raise the message limit and allow origins', async () => {
    const help = run(['serve', '--help']);
    expect(await withTimeout(help.exited, 10_000, 'the command to exit')).toBe(0);
    expect(help.stdout()).toContain("Usage: sockeye serve [echo | exec 'CMD ARGS'] [options]");
    expect(help.stdout()).toMatch(/--max-message BYTES +largest message accepted[^(]*\(default\s+1MiB; larger ones are closed\s+with 1009\)/);
    expect(help.stdout()).toContain('--allow-origin ORIGIN');
  });

  it('exits 2 with a message for an unknown application', async () => {
    const unknown = run(['serve', 'chatroom']);
    expect(await withTimeout(unknown.exited, 10_000, 'the command to exit')).toBe(2);
    expect(unknown.stderr()).toBe('sockeye: unknown application: chatroom (available: echo, exec, or none for every app)\n');
  });

  it('exits 2 for an --allow-origin that is not an origin, and for --allow-origin with echo', async () => {
    const bad = run(['serve', '--port', '0', '--allow-origin', 'example.com']);
    expect(await withTimeout(bad.exited, 10_000, 'the command to exit')).toBe(2);
    expect(bad.stderr()).toContain('sockeye: invalid origin: example.com');
    const echo = run(['serve', 'echo', '--port', '0', '--allow-origin', '*']);
    expect(await withTimeout(echo.exited, 10_000, 'the command to exit')).toBe(2);
    expect(echo.stderr()).toContain('--allow-origin is for the apps server');
  });

  it('exits 2 for an invalid port', async () => {
    const bad = run(['serve', 'echo', '--port', '70000']);
    expect(await withTimeout(bad.exited, 10_000, 'the command to exit')).toBe(2);
    expect(bad.stderr()).toBe('sockeye: invalid port: 70000\n');
  });
});

/** Start `sockeye serve` (every app) on an ephemeral port. */
async function serveApps(extra: string[] = []): Promise<Run & { port: number }> {
  const server = run(['serve', '--port', '0', '--log-level', 'silent', ...extra]);
  const deadline = performance.now() + 10_000;
  for (;;) {
    const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(server.stdout());
    if (match !== null) return { ...server, port: Number(match[1]) };
    if (server.child.exitCode !== null) throw new Error(`the server exited: ${server.stderr()}`);
    if (performance.now() > deadline) throw new Error(`no listening line within 10 s; stdout: ${server.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The status of an upgrade to `path` with this Origin header (none when undefined). */
async function upgradeStatus(port: number, path: string, origin: string | undefined): Promise<number> {
  const client = await RawClient.open(port);
  clients.push(client);
  const lines = [
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
  ];
  if (origin !== undefined) lines.push(`Origin: ${origin}`);
  client.write(`GET ${path} HTTP/1.1\r\n${lines.map((line) => `${line}\r\n`).join('')}\r\n`);
  return (await client.readHead(5000)).status;
}

describe('sockeye serve (the applications)', () => {
  it('accepts its own origin and no Origin, refuses others and null with 403, on every app', async () => {
    const server = await serveApps();
    for (const path of ['/chat/ws', '/clock/ws', '/dashboard/ws', '/canvas/ws', '/echo/ws', '/ws']) {
      expect(await upgradeStatus(server.port, path, `http://127.0.0.1:${server.port}`), path).toBe(101);
      expect(await upgradeStatus(server.port, path, undefined), path).toBe(101);
      expect(await upgradeStatus(server.port, path, 'https://evil.example'), path).toBe(403);
      expect(await upgradeStatus(server.port, path, 'null'), path).toBe(403);
    }
  });

  it('adds the origins given with --allow-origin, and any with --allow-origin "*"', async () => {
    const listed = await serveApps(['--allow-origin', 'https://example.com', '--allow-origin', 'http://localhost:3000']);
    expect(await upgradeStatus(listed.port, '/chat/ws', 'https://example.com')).toBe(101);
    expect(await upgradeStatus(listed.port, '/chat/ws', 'http://localhost:3000')).toBe(101);
    expect(await upgradeStatus(listed.port, '/chat/ws', 'https://evil.example')).toBe(403);
    const any = await serveApps(['--allow-origin', '*']);
    expect(await upgradeStatus(any.port, '/chat/ws', 'https://evil.example')).toBe(101);
  });

  it("on SIGTERM (the systemd unit's stop signal) closes an app's WebSockets with 1001 and exits 0", async () => {
    // The unit runs `sockeye serve --host ... --port ... --log-level ...`: one process, every app.
    const server = await serveApps(['--log-level', 'info']);
    const connection = await connect(`ws://127.0.0.1:${server.port}/clock/ws`);
    const closed = new Promise<{ code: number; wasClean: boolean }>((resolve) => connection.once('close', resolve));
    // The upgrade has completed, so the process is past start-up and its signal handlers are in.
    server.child.kill('SIGTERM');
    const info = await withTimeout(closed, 5000, 'the close');
    expect(info.code).toBe(1001);
    expect(info.wasClean).toBe(true);
    expect(await withTimeout(server.exited, 5000, 'the server to exit')).toBe(0);
  });

  it('answers a malformed request with 400 rather than a reset', async () => {
    const server = await serveApps();
    const client = await RawClient.open(server.port);
    clients.push(client);
    client.write('NOT HTTP AT ALL\r\n\r\n');
    expect((await client.readHead(5000)).statusLine).toBe('HTTP/1.1 400 Bad Request');
    await client.waitEnd(5000);
  });
});
