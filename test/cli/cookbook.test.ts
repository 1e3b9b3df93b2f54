import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/apps/host/paths.js';
import { assertBuilt, killAll, MAIN, runCli, withTimeout, type CliRun } from './cli-process.js';

/**
 * The README's command-line cookbook, block by block, run by /bin/sh with
 * `sockeye` on the PATH against a real `sockeye serve` on a free port (put
 * in place of 8080). A `sockeye serve ... --port N &` line is started by the
 * test instead, on a free port put in place of N.
 */

let apps: CliRun;
let appsPort = 0;
let work = '';

beforeAll(async () => {
  assertBuilt();
  if (spawnSync('jq', ['--version']).status !== 0) throw new Error('the cookbook test needs jq (apt-get install jq)');
  work = mkdtempSync(join(tmpdir(), 'sockeye-cookbook-'));
  writeFileSync(join(work, 'sockeye'), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
  chmodSync(join(work, 'sockeye'), 0o755);
  apps = runCli(['serve', '--port', '0', '--log-level', 'silent'], { stdin: 'ignore' });
  appsPort = Number((await apps.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//, 10_000))[1]);
});

afterAll(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

/** The sh blocks of the README's "### Cookbook" section, in order. */
function cookbook(): string[] {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('### Cookbook');
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** Run one block: start its servers on free ports, point it at them, and run the rest through /bin/sh. */
async function runBlock(block: string, port8080: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const ports = new Map<string, number>([['8080', port8080]]);
  const lines: string[] = [];
  for (const line of block.split('\n')) {
    const server = /^sockeye (serve .*) --port (\d+) &$/.exec(line);
    if (server === null) {
      lines.push(line);
      continue;
    }
    const args = splitTestArgs(server[1]!);
    const started = runCli([...args, '--port', '0'], { stdin: 'ignore' });
    ports.set(server[2]!, Number((await started.waitFor(/listening on \w+:\/\/127\.0\.0\.1:(\d+)/, 10_000))[1]));
  }
  const script = lines.join('\n').replace(/127\.0\.0\.1:(\d+)/g, (_text, port: string) => `127.0.0.1:${ports.get(port) ?? port}`);
  const child = spawn('/bin/sh', ['-c', script], {
    cwd: work,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${work}:${process.env['PATH'] ?? ''}` },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await withTimeout(new Promise<number | null>((resolve) => child.once('close', resolve)), 20_000, `the block to finish:\n${script}`);
  return { status, stdout, stderr };
}

/** `serve exec 'tr a-z A-Z'` as an argument list (the single-quoted command as one argument). */
function splitTestArgs(text: string): string[] {
  return [...text.matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2]!);
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the README cookbook', () => {
  it('has the four recipes: jq, a file, a program, a health check', () => {
    expect(cookbook()).toHaveLength(4);
  });

  it('pipes chat messages into jq, one JSON value per line', async () => {
    const result = await runBlock(cookbook()[0]!, appsPort);
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n')).toContain('joined');
    expect(result.stderr).toBe('');
  });

  it('sends a file as binary and gets the same bytes back', async () => {
    const result = await runBlock(cookbook()[1]!, appsPort);
    expect(result).toMatchObject({ status: 0, stdout: 'same\n' });
  });

  it('bridges a program with serve exec', async () => {
    const result = await runBlock(cookbook()[2]!, appsPort);
    expect(result).toMatchObject({ status: 0, stdout: 'HELLO\n' });
  });

  it('health check: up against the server, down against a closed port', async () => {
    expect(await runBlock(cookbook()[3]!, appsPort)).toMatchObject({ status: 0, stdout: 'up\n' });
    expect(await runBlock(cookbook()[3]!, await closedPort())).toMatchObject({ status: 0, stdout: 'down\n' });
  });
});
