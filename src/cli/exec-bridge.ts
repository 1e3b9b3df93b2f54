import { spawn } from 'node:child_process';
import type { Connection } from '../node/connection.js';

/**
 * A program wired to a WebSocket connection (`connect --exec`, `serve
 * exec`): what the peer sends goes to the program's standard input, what
 * the program prints goes to the peer. In line mode each output line is a
 * text message and each received message is written followed by a line
 * feed; in binary mode output is sent as binary messages, chunk by chunk,
 * and received messages are written as they are. Backpressure runs both
 * ways: a program that does not read pauses the socket, and a peer that
 * does not read pauses the program's output.
 */

export interface BridgeOptions {
  binary: boolean;
  /** The program's standard error: passed through, or handed over line by line. */
  stderr: 'inherit' | ((line: string) => void);
}

export interface BridgeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The program could not be started (not found, not executable...). */
  error?: Error;
}

/** How long a program has to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 2000;

/**
 * The program leads a process group of its own where there are process
 * groups, so that stopping it reaches what it started too: with `--shell`,
 * the program is /bin/sh, and a signal to the shell alone would leave a
 * pipeline's other commands or a background job running after the client
 * has gone.
 */
const OWN_GROUP = process.platform !== 'win32';

export class ProcessBridge {
  readonly pid: number | undefined;
  /** Resolves once the program has ended and everything it printed was handed to the connection. */
  readonly exited: Promise<BridgeExit>;
  private readonly child: ReturnType<typeof spawn>;
  private ended = false;
  private stopping = false;

  constructor(
    argv: readonly string[],
    private readonly connection: Connection<unknown>,
    private readonly options: BridgeOptions,
  ) {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['pipe', 'pipe', options.stderr === 'inherit' ? 'inherit' : 'pipe'],
      detached: OWN_GROUP,
    });
    this.child = child;
    this.pid = child.pid;
    // Writing to a program that exited (EPIPE) is the end of the bridge, not a crash.
    child.stdin!.on('error', () => undefined);
    child.stdin!.on('drain', () => connection.resume());
    const stderr = options.stderr;
    if (stderr !== 'inherit') splitLines(child.stderr!, (line) => stderr(line.toString('utf8')));

    const output = options.binary ? this.forwardChunks() : this.forwardLines();
    this.exited = new Promise<BridgeExit>((resolve) => {
      let error: Error | undefined;
      child.once('error', (failure) => {
        error = failure;
        // A program that never started emits no 'close' on some paths; settle here too.
        if (child.pid === undefined) finish(null, null);
      });
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.ended) return;
        this.ended = true;
        void output.then(() => resolve(error === undefined ? { code, signal } : { code, signal, error }));
      };
      // 'close' comes after the program's output streams have ended.
      child.once('close', finish);
    });
  }

  /** A message from the peer, for the program's standard input. */
  input(data: string | Buffer, isBinary: boolean): void {
    const stdin = this.child.stdin!;
    if (this.ended || stdin.destroyed || !stdin.writable) return;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const more = this.options.binary || isBinary ? stdin.write(bytes) : stdin.write(Buffer.concat([bytes, NEWLINE]));
    if (!more) this.connection.pause();
  }

  /**
   * The connection is gone: close the program's input, ask it and what it
   * started to stop, and make sure they do. The group is killed even when
   * the program itself obeyed at once: what it started may not have.
   */
  stop(): void {
    if (this.ended || this.stopping) return;
    this.stopping = true;
    this.child.stdin!.end();
    this.signal('SIGTERM');
    const force = setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
    force.unref();
  }

  /**
   * Signal the program's process group, or the program alone where it has
   * none. The kernel keeps a group's number while any member lives and
   * hands out new process IDs in sequence, so within the grace period the
   * number of a group that has ended finds nothing (ESRCH), not a stranger.
   */
  private signal(name: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    if (OWN_GROUP) {
      try {
        process.kill(-pid, name);
      } catch {
        // The whole group has ended already.
      }
      return;
    }
    if (!this.ended) this.child.kill(name);
  }

  private forwardChunks(): Promise<void> {
    const stdout = this.child.stdout!;
    return new Promise((resolve) => {
      stdout.on('data', (chunk: Buffer) => this.send(chunk, true));
      stdout.once('close', resolve);
    });
  }

  private forwardLines(): Promise<void> {
    const stdout = this.child.stdout!;
    return new Promise((resolve) => {
      splitLines(stdout, (line) => this.send(line.toString('utf8'), false));
      stdout.once('close', resolve);
    });
  }

  private send(data: string | Buffer, binary: boolean): void {
    const status = this.connection.send(data, { binary });
    if (status !== 'queued') return;
    const stdout = this.child.stdout!;
    stdout.pause();
    void this.connection.drained().then(
      () => stdout.resume(),
      () => stdout.resume(),
    );
  }
}

const NEWLINE = Buffer.from('\n');

/**
 * The longest line kept whole: a program that prints without line feeds
 * must not grow memory without bound, so a longer run is passed on in
 * pieces of this size (1 MiB, the servers' default message limit).
 */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Call `onLine` for each line of the stream (without its line feed, or CR LF), the unterminated last one included. */
function splitLines(stream: NodeJS.ReadableStream, onLine: (line: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let start = 0;
    for (let end = pending.indexOf(0x0a); end >= 0; end = pending.indexOf(0x0a, start)) {
      const stop = end > start && pending[end - 1] === 0x0d ? end - 1 : end;
      for (; stop - start > MAX_LINE_BYTES; start += MAX_LINE_BYTES) onLine(pending.subarray(start, start + MAX_LINE_BYTES));
      onLine(pending.subarray(start, stop));
      start = end + 1;
    }
    for (; pending.length - start > MAX_LINE_BYTES; start += MAX_LINE_BYTES) onLine(pending.subarray(start, start + MAX_LINE_BYTES));
    pending = pending.subarray(start);
  });
  stream.once('end', () => {
    if (pending.length > 0) onLine(pending);
  });
}
