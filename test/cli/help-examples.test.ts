import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointsFrom } from '../../src/cli/endpoint-hint.js';
import { assertBuilt, MAIN, runCli, withTimeout, type CliRun } from './cli-process.js';

/**
 * The examples in `--help` that talk to "npm start" (sockeye serve on port
 * 8080), run as written by a shell against a real `sockeye serve` (on a
 * free port put in place of 8080), and the endpoint list a 404 prints.
 */

let server: CliRun;
let port = 0;
let bin = '';

beforeAll(async () => {
  assertBuilt();
  bin = mkdtempSync(join(tmpdir(), 'sockeye-bin-'));
  // `sockeye` on the PATH, as after `npm link`.
  writeFileSync(join(bin, 'sockeye'), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
  chmodSync(join(bin, 'sockeye'), 0o755);
  server = runCli(['serve', '--port', '0', '--log-level', 'silent'], { stdin: 'ignore' });
  port = Number((await server.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//, 10_000))[1]);
});

afterAll(() => {
  if (server.child.exitCode === null) server.child.kill('SIGKILL');
  rmSync(bin, { recursive: true, force: true });
});

/** Run a line through /bin/sh with `sockeye` on the PATH; resolves with its status and output. */
async function shell(line: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn('/bin/sh', ['-c', line], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await withTimeout(new Promise<number | null>((resolve) => child.once('close', resolve)), 20_000, `"${line}" to finish`);
  return { status, stdout, stderr };
}

/** The example lines of a help text that connect to 127.0.0.1:8080. */
async function examples(args: string[]): Promise<string[]> {
  const help = runCli(args, { stdin: 'ignore' });
  expect(await help.exitCode()).toBe(0);
  const section = help.stdout().slice(help.stdout().indexOf('Examples'));
  return section
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.includes('sockeye connect ws://127.0.0.1:8080/'));
}

describe('help examples against npm start', () => {
  it.each([[['--help']], [['connect', '--help']]])(
    'every "sockeye %s" example that talks to port 8080 works as written',
    async (args) => {
      const lines = await examples(args);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const line of lines) {
        const result = await shell(line.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`));
        // No error line; notes go to stdout, or to stderr with --raw.
        expect({ line, status: result.status, errors: result.stderr.match(/^sockeye: .*/gm) }).toEqual({ line, status: 0, errors: null });
        expect(result.stdout + result.stderr).toContain(`* connected to ws://127.0.0.1:${port}/`);
      }
    },
    60_000,
  );
});

describe('a 404 from a Sockeye apps server', () => {
  it("lists the server's WebSocket endpoints, as full URLs, and exits 3", async () => {
    const run = runCli(['connect', `ws://127.0.0.1:${port}/chat`], { stdin: 'ignore' });
    expect(await run.exitCode()).toBe(3);
    const base = `ws://127.0.0.1:${port}`;
    expect(run.stderr()).toBe(
      [
        'sockeye: server refused the upgrade with 404 Not Found: no WebSocket endpoint at /chat',
        "sockeye: this server's WebSocket endpoints:",
        ...['chat', 'clock', 'dashboard', 'canvas', 'echo'].map((app) => `  ${base}/${app}/ws`),
        '',
      ].join('\n'),
    );
  });

  it('reads only a list of apps with socket paths', () => {
    const target = new URL('wss://example.com:8443/x');
    expect(endpointsFrom('[{"socket":"/a/ws"},{"socket":"b"},{"name":"c"}]', target)).toEqual(['wss://example.com:8443/a/ws']);
    expect(endpointsFrom('{"socket":"/a/ws"}', target)).toBeNull();
    expect(endpointsFrom('not json', target)).toBeNull();
    expect(endpointsFrom('[]', target)).toBeNull();
  });
});
