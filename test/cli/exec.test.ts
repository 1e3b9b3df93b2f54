import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { commandVector, splitCommand } from '../../src/cli/command-line.js';
import { MAX_LINE_BYTES } from '../../src/cli/exec-bridge.js';
import { connect } from '../../src/node/client.js';
import type { CloseInfo, Connection } from '../../src/node/connection.js';
import { HandshakeError } from '../../src/node/errors.js';
import { WebSocketServer, type Route } from '../../src/node/server.js';
import { until } from '../wait.js';
import { assertBuilt, killAll, runCli, type CliRun } from './cli-process.js';

/**
 * Programs bridged to WebSockets: `connect --exec` and `serve exec`, as
 * child processes, with real programs (cat, printf, sh) on 127.0.0.1.
 */

const servers: WebSocketServer[] = [];
const sockets: Connection<undefined>[] = [];

beforeAll(() => assertBuilt());
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate('test over');
  killAll();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 200 })));
});

describe('splitCommand', () => {
  it('splits words like a POSIX shell, without expanding anything', () => {
    expect(splitCommand('cat')).toEqual(['cat']);
    expect(splitCommand('  printf \'a b\\n\'  "x \\"y\\" \\$HOME" z\\ w $HOME *')).toEqual(['printf', 'a b\\n', 'x "y" $HOME', 'z w', '$HOME', '*']);
    expect(splitCommand('a\'\'b ""')).toEqual(['ab', '']);
  });

  it('refuses unclosed quotes and empty commands', () => {
    expect(() => splitCommand("echo 'oops")).toThrow(/unclosed '/);
    expect(() => splitCommand('echo "oops')).toThrow(/unclosed "/);
    expect(() => splitCommand('   ')).toThrow(/empty/);
  });

  it('hands the text to /bin/sh -c only with --shell', () => {
    expect(commandVector('echo $HOME | wc', true)).toEqual(['/bin/sh', '-c', 'echo $HOME | wc']);
    expect(commandVector('echo $HOME | wc', false)).toEqual(['echo', '$HOME', '|', 'wc']);
  });
});

interface Recorder {
  url: string;
  messages: Array<string | Buffer>;
  closes: CloseInfo[];
  closed: Promise<CloseInfo>;
}

async function startServer(route: Route): Promise<Recorder> {
  const server = new WebSocketServer({ heartbeat: false });
  servers.push(server);
  const messages: Array<string | Buffer> = [];
  const closes: CloseInfo[] = [];
  let onClose!: (info: CloseInfo) => void;
  const closed = new Promise<CloseInfo>((resolve) => (onClose = resolve));
  server.route('*', {
    ...route,
    message(connection, data, isBinary) {
      messages.push(data);
      route.message?.(connection, data, isBinary);
    },
    close(connection, info) {
      closes.push(info);
      onClose(info);
      route.close?.(connection, info);
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { url: `ws://127.0.0.1:${port}`, messages, closes, closed };
}

describe('sockeye connect --exec', () => {
  it("connects cat's input and output to the socket, and stops it when the server closes", async () => {
    const server = await startServer({
      open: (connection) => connection.send('hello from the server'),
      message: (connection) => connection.close(1000, 'thanks'),
    });
    const run = runCli(['connect', server.url, '--exec', 'cat'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(server.messages).toEqual(['hello from the server']);
    expect(run.stdout()).toContain('* closed by the server: 1000 normal closure "thanks"');
  });

  it('sends each line a program prints, closes with 1000 when it exits early, and exits 0', async () => {
    const server = await startServer({});
    const run = runCli(['connect', server.url, '--exec', "printf 'one\\ntwo words\\nlast'"], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(server.messages).toEqual(['one', 'two words', 'last']);
    expect((await server.closed).code).toBe(1000);
  });

  it('exits 1 saying so when the program fails, and when it cannot be started', async () => {
    const server = await startServer({});
    const failing = runCli(['connect', server.url, '--shell', '--exec', 'echo partial; exit 3'], { stdin: 'ignore' });
    expect(await failing.exitCode()).toBe(1);
    expect(failing.stderr()).toBe('sockeye: /bin/sh exited with status 3\n');
    expect(server.messages).toEqual(['partial']);

    const missing = runCli(['connect', server.url, '--exec', 'no-such-program-sockeye'], { stdin: 'ignore' });
    expect(await missing.exitCode()).toBe(1);
    expect(missing.stderr()).toMatch(/^sockeye: cannot run no-such-program-sockeye: .*ENOENT/);
  });

  it('with --binary forwards bytes both ways', async () => {
    const server = await startServer({
      open: (connection) => connection.send(Buffer.from([0, 1, 2, 0xff]), { binary: true }),
      message: (connection) => connection.close(1000),
    });
    // head passes the four bytes on and exits; sockeye then closes normally.
    const run = runCli(['connect', server.url, '-b', '--exec', 'head -c 4'], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(0);
    expect(server.messages).toEqual([Buffer.from([0, 1, 2, 0xff])]);
  });

  it('refuses --exec with --reconnect, and --shell without --exec (exit 2)', async () => {
    const both = runCli(['connect', 'ws://127.0.0.1:1', '--exec', 'cat', '--reconnect'], { stdin: 'ignore' });
    expect(await both.exitCode()).toBe(2);
    expect(both.stderr()).toBe('sockeye: --exec does not go with --reconnect\n');
    const shell = runCli(['connect', 'ws://127.0.0.1:1', '--shell'], { stdin: 'ignore' });
    expect(await shell.exitCode()).toBe(2);
  });
});

async function serveExec(args: string[]): Promise<CliRun & { port: number }> {
  const run = runCli(['serve', 'exec', ...args, '--port', '0'], { stdin: 'ignore' });
  const match = await run.waitFor(/exec server listening on ws:\/\/127\.0\.0\.1:(\d+) /, 10_000);
  return { ...run, port: Number(match[1]) };
}

async function open(port: number, path = '/'): Promise<Connection<undefined>> {
  const socket = await connect(`ws://127.0.0.1:${port}${path}`);
  sockets.push(socket);
  return socket;
}

function nextMessage(socket: Connection<undefined>): Promise<string | Buffer> {
  return new Promise((resolve) => socket.once('message', (data) => resolve(data)));
}

function closeOf(socket: Connection<undefined>): Promise<CloseInfo> {
  return new Promise((resolve) => socket.once('close', resolve));
}

/** Alive and not a zombie: an orphan's exit status waits for whichever process adopted it, which may never collect it. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // The state is the first field after the command name in parentheses (proc(5)).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('sockeye serve exec', () => {
  it('runs one process per client, at most --max-processes, refuses more with 503, and stops each when its client leaves', async () => {
    const server = await serveExec(['cat', '--max-processes', '2']);
    const first = await open(server.port);
    const second = await open(server.port, '/any/path');
    const pids = [...(await server.waitFor(/#2 [^\n]* started cat \(pid (\d+)\)[\s\S]*$/)).input.matchAll(/started cat \(pid (\d+)\)/g)].map((m) =>
      Number(m[1]),
    );
    expect(pids).toHaveLength(2);

    // Each client talks to its own cat.
    const one = nextMessage(first);
    const two = nextMessage(second);
    first.send('to the first');
    second.send('to the second');
    expect(await one).toBe('to the first');
    expect(await two).toBe('to the second');

    const refused = await connect(`ws://127.0.0.1:${server.port}/`).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(HandshakeError);
    expect((refused as HandshakeError).status).toBe(503);

    // The first client leaves: its cat is stopped, and a place is free again.
    first.close(1000);
    await server.waitFor(new RegExp(`pid ${pids[0]} (exited|ended)`));
    expect(isRunning(pids[0]!)).toBe(false);
    expect(isRunning(pids[1]!)).toBe(true);
    const third = await open(server.port);
    const three = nextMessage(third);
    third.send('third');
    expect(await three).toBe('third');
  });

  it('closes with 1000 when the program exits with 0, and 1011 with its stderr logged when it fails', async () => {
    const ok = await serveExec(["printf 'bye\\n'"]);
    const socket = await open(ok.port);
    const message = nextMessage(socket);
    const closed = closeOf(socket);
    expect(await message).toBe('bye');
    expect((await closed).code).toBe(1000);

    const failing = await serveExec(['--shell', 'echo oops >&2; exit 2']);
    const other = await open(failing.port);
    expect((await closeOf(other)).code).toBe(1011);
    await failing.waitFor(/\[#1 127\.0\.0\.1:\d+\] stderr: oops\n/);
    await failing.waitFor(/exited with status 2\n/);
  });

  it('with --shell, stops what the shell started too when the client leaves', async () => {
    // The shell starts a background job and waits for it: a signal to the
    // shell alone would leave the job running.
    const server = await serveExec(['--shell', 'sleep 300 & echo $!; wait']);
    const socket = await open(server.port);
    const job = Number(await nextMessage(socket));
    const shell = Number((await server.waitFor(/started \/bin\/sh \(pid (\d+)\)/))[1]);
    expect(isRunning(job)).toBe(true);
    socket.close(1000);
    await server.waitFor(new RegExp(`pid ${shell} (exited|ended)`));
    await until(() => !isRunning(job), `the background job (pid ${job}) to end`);
  });

  it('stops every process when the server is stopped with SIGTERM', async () => {
    const server = await serveExec(['cat']);
    await open(server.port);
    const pid = Number((await server.waitFor(/started cat \(pid (\d+)\)/))[1]);
    server.child.kill('SIGTERM');
    expect(await server.exitCode()).toBe(0);
    expect(isRunning(pid)).toBe(false);
  });

  it('refuses pages of other origins with 403', async () => {
    const server = await serveExec(['cat']);
    const error = await connect(`ws://127.0.0.1:${server.port}/`, { origin: 'https://evil.example' }).then(
      () => null,
      (failure: unknown) => failure,
    );
    expect((error as HandshakeError).status).toBe(403);
  });
});

describe('long output lines', () => {
  it('passes a line longer than 1 MiB on in 1 MiB pieces rather than holding it whole', async () => {
    const server = await startServer({});
    // 2.5 MiB of "a" and no line feed, from head: three messages, 1 MiB, 1 MiB, the rest.
    const size = MAX_LINE_BYTES * 2 + MAX_LINE_BYTES / 2;
    const run = runCli(['connect', server.url, '--max-message', '4MiB', '--shell', '--exec', `head -c ${size} /dev/zero | tr '\\0' a`], {
      stdin: 'ignore',
    });
    expect(await run.exitCode(15_000)).toBe(0);
    expect(server.messages.map((m) => m.length)).toEqual([MAX_LINE_BYTES, MAX_LINE_BYTES, MAX_LINE_BYTES / 2]);
    expect(server.messages.every((m) => typeof m === 'string' && /^a+$/.test(m))).toBe(true);
  });
});
