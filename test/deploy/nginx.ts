import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free-port.js';

/**
 * Debian's nginx, started by a test with the documented site configuration
 * (`docs/deploy/nginx.conf`) in front of the nodes the test runs, on a free
 * loopback port. Only the listen address and the upstream's server lines
 * are rewritten; every proxy setting is the one users copy.
 */

export const NGINX = '/usr/sbin/nginx';
export const SITE_CONF = fileURLToPath(new URL('../../docs/deploy/nginx.conf', import.meta.url));

export interface RunningNginx {
  readonly port: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export function assertNginx(): void {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: run scripts/test-deps.sh (installs Debian's nginx)`);
}

/** The documented site with its upstream pointed at `nodes` and its listener at 127.0.0.1:`port`. */
export function siteFor(port: number, nodes: readonly number[]): string {
  const site = readFileSync(SITE_CONF, 'utf8');
  const upstream = /(upstream sockeye_nodes \{[\s\S]*?)((?:\s*server 127\.0\.0\.1:\d+[^\n]*\n)+)/;
  if (!upstream.test(site)) throw new Error('docs/deploy/nginx.conf: no upstream server lines to rewrite');
  const servers = nodes.map((node) => `    server 127.0.0.1:${node} max_fails=1 fail_timeout=5s;\n`).join('');
  const rewritten = site.replace(upstream, (_all, before: string) => `${before}\n${servers}`);
  if (!/^\s*listen 80;$/m.test(rewritten)) throw new Error('docs/deploy/nginx.conf: no "listen 80;" line to rewrite');
  return rewritten.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`);
}

/** A main configuration around the site: foreground, one worker, every path in `dir`. */
function mainConf(dir: string): string {
  return `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`;
}

/**
 * Start nginx in front of `nodes`. The port comes from the kernel; should
 * another process take it before nginx binds it, nginx exits at once and a
 * new port is tried (at most five times).
 */
export async function startNginx(nodes: readonly number[]): Promise<RunningNginx> {
  assertNginx();
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, 'nginx.conf'), mainConf(dir));
  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    writeFileSync(join(dir, 'site.conf'), siteFor(port, nodes));
    const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const listening = await waitForListener(port, exited, 10_000);
    if (listening) {
      return {
        port,
        child,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGQUIT');
            const quit = await Promise.race([exited.then(() => true), delay(5000).then(() => false)]);
            if (!quit) child.kill('SIGKILL');
            await exited;
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    lastError = stderr + readLog(dir);
    if (!/in use/i.test(lastError)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`nginx did not start: ${lastError}`);
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'error.log'), 'utf8');
  } catch {
    return '';
  }
}

/** Poll a TCP connect to the port until it is accepted, nginx exits, or the time is up. */
async function waitForListener(port: number, exited: Promise<void>, ms: number): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = performance.now() + ms;
  while (!gone && performance.now() < deadline) {
    if (await canConnect(port)) return true;
    await delay(20);
  }
  return false;
}

async function canConnect(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
