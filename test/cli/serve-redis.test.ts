import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import type { CloseInfo, Connection } from '../../src/node/connection.js';
import { startRedis, type RedisServer } from '../pubsub/redis-server.js';
import { assertBuilt, killAll, runCli, withTimeout, type CliRun } from './cli-process.js';
import { until } from '../wait.js';

/**
 * `sockeye serve --redis URL` and `--workers N`, run as users run them:
 * separate processes on one private redis-server. Two nodes serve one chat;
 * the workers of one node share its port; the refusals are argument errors.
 */

let redis: RedisServer;
const connections: Connection<undefined>[] = [];

beforeAll(async () => {
  assertBuilt();
  redis = await startRedis();
});

afterAll(async () => {
  await redis.stop();
});

afterEach(() => {
  for (const connection of connections.splice(0)) connection.terminate();
  killAll();
});

async function serveApps(args: string[]): Promise<CliRun & { port: number }> {
  const run = runCli(['serve', '--port', '0', '--log-level', 'silent', ...args], { stdin: 'ignore' });
  const match = await run.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\/ \(apps: [^)]*\)\n/, 20_000);
  return { ...run, port: Number(match[1]) };
}

/** A chat client that has joined `room` as `nick`, collecting the messages it receives. */
async function chatter(port: number, nick: string, room: string): Promise<{ connection: Connection<undefined>; received: unknown[] }> {
  const connection = await connect(`ws://127.0.0.1:${port}/chat/ws`);
  connections.push(connection);
  const received: unknown[] = [];
  connection.on('message', (data, isBinary) => {
    if (!isBinary) received.push(JSON.parse(data as string));
  });
  connection.send(JSON.stringify({ type: 'join', nick, room }));
  await until(() => received.some((m) => isType(m, 'joined')), `${nick} to join`);
  return { connection, received };
}

function isType(message: unknown, type: string): boolean {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

function textOf(message: unknown): string | undefined {
  return isType(message, 'message') ? String((message as { text?: unknown }).text) : undefined;
}

/**
 * The chat texts a member has seen, live or in the history it got on joining:
 * a message posted right after the other member's `joined` may reach the
 * room before that member's history is read, and then comes in the history.
 */
function textsSeen(received: unknown[]): string[] {
  return received
    .flatMap((m) => {
      if (isType(m, 'history')) return ((m as { messages?: unknown[] }).messages ?? []).map(textOf);
      return [textOf(m)];
    })
    .filter((text): text is string => text !== undefined);
}

/** The pids of a process's children, from /proc (Linux). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('sockeye serve --redis', () => {
  it('lets two nodes serve one chat room: a message posted on one reaches a member on the other', async () => {
    const [a, b] = await Promise.all([serveApps(['--redis', redis.url]), serveApps(['--redis', redis.url])]);
    expect(a.stdout()).toContain(`on Redis ${redis.url}`);
    const ann = await chatter(a.port, 'ann', 'cluster');
    const bob = await chatter(b.port, 'bob', 'cluster');
    ann.connection.send(JSON.stringify({ type: 'message', text: 'from node a' }));
    bob.connection.send(JSON.stringify({ type: 'message', text: 'from node b' }));
    await until(() => textsSeen(bob.received).includes('from node a'), 'node b to deliver node a’s message');
    await until(() => textsSeen(ann.received).includes('from node b'), 'node a to deliver node b’s message');

    // Each node reports its broker on /metrics.
    const metrics = await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text();
    expect(metrics).toMatch(/^sockeye_broker_state\{state="ready"\} 1$/m);
    expect(Number(/^sockeye_broker_published_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
  });

  it('reads the URL from SOCKEYE_REDIS_URL too', async () => {
    const run = runCli(['serve', '--port', '0', '--log-level', 'silent'], { stdin: 'ignore', env: { SOCKEYE_REDIS_URL: redis.url } });
    await run.waitFor(new RegExp(`on Redis ${redis.url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)\\n`), 20_000);
  });

  it('exits 1 with the reason when Redis cannot be reached at start, and never listens', async () => {
    // Port 1 (tcpmux): nothing listens there, and no test binds it.
    const run = runCli(['serve', '--port', '0', '--redis', 'redis://127.0.0.1:1/'], { stdin: 'ignore' });
    expect(await run.exitCode(30_000)).toBe(1);
    expect(run.stderr()).toMatch(/cannot use Redis at redis:\/\/127\.0\.0\.1:1\//);
    expect(run.stdout()).not.toMatch(/listening/);
  });

  it('refuses what it cannot do with argument errors (status 2)', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['serve', '--workers', '2'], /--workers needs --redis URL/],
      [['serve', 'echo', '--redis', redis.url], /--redis is for the apps server/],
      [['serve', 'echo', '--workers', '2', '--redis', redis.url], /--redis is for the apps server/],
      [['serve', '--redis', 'http://127.0.0.1:6379'], /scheme must be redis:\/\/ or rediss:\/\//],
      [['serve', '--redis', 'not a url'], /invalid Redis URL/],
      [['serve', '--redis', redis.url, '--workers', '0'], /invalid worker count/],
    ];
    for (const [args, message] of cases) {
      const run = runCli(args, { stdin: 'ignore' });
      expect(await run.exitCode(), args.join(' ')).toBe(2);
      expect(run.stderr(), args.join(' ')).toMatch(message);
    }
  });
});

describe('sockeye serve --redis --workers', () => {
  it('starts N workers on one port, and on SIGTERM every worker closes its WebSockets with 1001 and the command exits 0', async () => {
    const node = await serveApps(['--redis', redis.url, '--workers', '2']);
    expect(node.stdout()).toContain('2 workers');
    expect(childrenOf(node.child.pid!)).toHaveLength(2);
    // Connections on the shared port; the primary hands them to the workers.
    const clients = await Promise.all([0, 1, 2, 3].map(() => connect(`ws://127.0.0.1:${node.port}/clock/ws`)));
    connections.push(...clients);
    const closes = clients.map((client) => withTimeout(new Promise<CloseInfo>((resolve) => client.once('close', resolve)), 20_000, 'a close'));
    node.child.kill('SIGTERM');
    for (const info of await Promise.all(closes)) expect(info.code).toBe(1001);
    expect(await node.exitCode(20_000)).toBe(0);
  });

  it('replaces a worker that dies', async () => {
    const node = await serveApps(['--redis', redis.url, '--workers', '2']);
    const [first] = childrenOf(node.child.pid!);
    process.kill(first!, 'SIGKILL');
    await node.waitFor(/worker \d+ replaced the one that exited/, 20_000);
    await until(() => childrenOf(node.child.pid!).length === 2 && !childrenOf(node.child.pid!).includes(first!), 'two workers again');
    const client = await connect(`ws://127.0.0.1:${node.port}/ws`);
    connections.push(client);
    const pong = new Promise<string | Buffer>((resolve) => client.once('message', resolve));
    client.send('ping');
    expect(await withTimeout(pong, 10_000, 'pong')).toBe('pong');
  });
});
