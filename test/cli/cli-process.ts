import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The compiled `sockeye` command as a child process, the way a user runs it,
 * with every wait bounded. Build with `npx tsc -p .` first.
 */

export const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
export const PTY_BRIDGE = fileURLToPath(new URL('./pty-bridge.py', import.meta.url));

export function assertBuilt(): void {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build with "npx tsc -p ." before running the CLI tests`);
}

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  /** Standard output as bytes, for binary output. */
  stdoutBytes: () => Buffer;
  stderr: () => string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Resolves once standard output matches, with the match; rejects after `ms`. */
  waitFor: (pattern: RegExp, ms?: number) => Promise<RegExpExecArray>;
  /** The exit code, failing if the process has not exited within `ms`. */
  exitCode: (ms?: number) => Promise<number | string>;
  write: (text: string) => void;
}

const running: ChildProcess[] = [];

/** Kill whatever a test left running (call from afterEach). */
export function killAll(): void {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export function runCli(
  args: string[],
  options: { stdin?: 'pipe' | 'ignore'; command?: string[]; env?: Readonly<Record<string, string>> } = {},
): CliRun {
  const command = options.command ?? [process.execPath, MAIN];
  const env = options.env === undefined ? undefined : { ...process.env, ...options.env };
  const child = spawn(command[0]!, [...command.slice(1), ...args], { stdio: [options.stdin ?? 'pipe', 'pipe', 'pipe'], env });
  running.push(child);
  const outChunks: Buffer[] = [];
  let outText: string | null = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    outChunks.push(chunk);
    outText = null;
  });
  // Decoded on demand from all the bytes, so a character split across reads stays whole.
  const stdoutBytes = (): Buffer => Buffer.concat(outChunks);
  const stdout = (): string => (outText ??= stdoutBytes().toString('utf8'));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  child.stdin?.on('error', () => {}); // writing after the child exited is the test's business, not a crash
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const waitFor = async (pattern: RegExp, ms = 5000): Promise<RegExpExecArray> => {
    const deadline = performance.now() + ms;
    for (;;) {
      const match = pattern.exec(stdout());
      if (match !== null) return match;
      if (performance.now() > deadline) {
        throw new Error(`no ${pattern} on stdout within ${ms} ms\n--- stdout:\n${stdout()}--- stderr:\n${err}`);
      }
      await sleep(10);
    }
  };
  const exitCode = (ms = 8000): Promise<number | string> =>
    withTimeout(exited, ms, `the command to exit\n--- stdout:\n${stdout()}--- stderr:\n${err}`);
  return { child, stdout, stdoutBytes, stderr: () => err, exited, waitFor, exitCode, write: (text) => child.stdin!.write(text) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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
