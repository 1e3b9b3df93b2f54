import { afterAll, beforeAll } from 'vitest';
/**
 * Starts a private redis-server for one test file: a free port on
 * 127.0.0.1, no persistence (`--save '' --appendonly no`), stopped after.
 * It can be SIGKILLed and restarted on the same port (the clients under
 * test must find it again there), paused, and asked commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from '../free-port.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const START_TIMEOUT_MS = 10_000;

export interface RedisServer {
  readonly port: number;
  /** `redis://` URL, with the password when there is one. */
  readonly url: string;
  /** Run one command on a short-lived connection. */
  command(...args: (string | number)[]): Promise<unknown>;
  /** SIGKILL: no shutdown, no data kept. */
  kill(): Promise<void>;
  /** Start again on the same port (after `kill`). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisTls {
  readonly certFile: string;
  readonly keyFile: string;
}

function launch(port: number, password: string | undefined, extra: readonly string[], tls: RedisTls | undefined): Promise<ChildProcess> {
  // With TLS the plain port is closed (0) and the TLS port takes its place.
  const ports =
    tls === undefined ?
      ['--port', String(port)]
    : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-auth-clients', 'no'];
  const args = [...ports, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...extra];
  if (password !== undefined) args.push('--requirepass', password);
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        child.stderr!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startRedis(options: { password?: string; args?: readonly string[]; tls?: RedisTls } = {}): Promise<RedisServer> {
  const password = options.password;
  const tls = options.tls;
  const extra = options.args ?? [];
  let child: ChildProcess | null = null;
  let port = 0;
  // A free port may be taken between the probe and redis-server's bind: try a few.
  for (let attempt = 0; attempt < 5 && child === null; attempt++) {
    port = await freePort();
    child = await launch(port, password, extra, tls).catch(() => null);
  }
  if (child === null) throw new Error('could not start redis-server on a free port');
  let current: ChildProcess = child;
  const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
  const url = `${tls === undefined ? 'redis' : 'rediss'}://${auth}127.0.0.1:${port}`;
  return {
    port,
    url,
    async command(...args) {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        ...(tls === undefined ? {} : { tls: { rejectUnauthorized: false } }),
      });
      try {
        await client.connect();
        return await client.call(String(args[0]), ...args.slice(1));
      } finally {
        client.disconnect();
      }
    },
    async kill() {
      current.kill('SIGKILL');
      await exited(current);
    },
    async restart() {
      // Same port: the brokers under test reconnect to where Redis was.
      let lastError: unknown = null;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          current = await launch(port, password, extra, tls);
          return;
        } catch (error) {
          lastError = error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      throw lastError;
    },
    async stop() {
      current.kill('SIGKILL');
      await exited(current);
    },
  };
}

/**
 * A private redis-server for the tests of one file: started before them,
 * stopped after them. The object stands for the server once it runs (in
 * tests and in hooks registered after this call).
 */
export function useRedis(): RedisServer {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const started = (): RedisServer => {
    if (server === undefined) throw new Error('redis-server is not running yet: use it in a test or a later hook');
    return server;
  };
  return {
    get port() {
      return started().port;
    },
    get url() {
      return started().url;
    },
    command: (...args) => started().command(...args),
    kill: () => started().kill(),
    restart: () => started().restart(),
    stop: () => started().stop(),
  };
}
