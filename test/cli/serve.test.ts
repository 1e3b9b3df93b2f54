import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
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

  it('echoes a 4 MiB message sent in 65,536 fragments of 64 bytes, intact, with its defaults', async () => {
    const server = await serveEcho();
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

  it('enforces --max-message with 1009', async () => {
    const server = await serveEcho(['--max-message', '1KiB']);
    const { client } = await RawClient.upgrade(server.port);
    clients.push(client);
    client.send({ opcode: OP.binary, payload: Buffer.alloc(1025) });
    expect((await client.readFrame()).payload.readUInt16BE(0)).toBe(1009);
    await client.waitEnd();
  });

  it('prints its help and exits 0 for --help', async () => {
    const help = run(['serve', '--help']);
    expect(await withTimeout(help.exited, 10_000, 'the command to exit')).toBe(0);
    expect(help.stdout()).toContain('Usage: sockeye serve [echo] [options]');
  });

  it('exits 2 with a message for an unknown application', async () => {
    const unknown = run(['serve', 'chatroom']);
    expect(await withTimeout(unknown.exited, 10_000, 'the command to exit')).toBe(2);
    expect(unknown.stderr()).toBe('sockeye: unknown application: chatroom (available: echo, or none for every app)\n');
  });

  it('exits 2 for an invalid port', async () => {
    const bad = run(['serve', 'echo', '--port', '70000']);
    expect(await withTimeout(bad.exited, 10_000, 'the command to exit')).toBe(2);
    expect(bad.stderr()).toBe('sockeye: invalid port: 70000\n');
  });
});
