import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import type { CloseInfo, Connection } from '../../src/node/connection.js';
import { assertBuilt, killAll, runCli, withTimeout, type CliRun } from '../cli/cli-process.js';
import { siteFor, startNginx, type RunningNginx } from './nginx.js';

/**
 * The documented nginx site (docs/deploy/nginx.conf) in front of two
 * `sockeye serve echo` nodes, as users deploy it: upgrades pass through,
 * messages flow both ways, and when a node dies its clients see the
 * connection end while new connections reach the node that is left.
 */

const proxies: RunningNginx[] = [];
const connections: Connection<undefined>[] = [];

beforeAll(() => assertBuilt());

afterEach(async () => {
  for (const connection of connections.splice(0)) connection.terminate();
  for (const proxy of proxies.splice(0)) await proxy.stop();
  killAll();
});

async function echoNode(): Promise<CliRun & { port: number }> {
  const run = runCli(['serve', 'echo', '--port', '0'], { stdin: 'ignore' });
  const match = await run.waitFor(/listening on ws:\/\/127\.0\.0\.1:(\d+)\n/, 10_000);
  return { ...run, port: Number(match[1]) };
}

function nextMessage(connection: Connection<undefined>): Promise<string | Buffer> {
  return withTimeout(new Promise((resolve) => connection.once('message', (data) => resolve(data))), 5000, 'a message');
}

function closed(connection: Connection<undefined>): Promise<CloseInfo> {
  return withTimeout(new Promise((resolve) => connection.once('close', resolve)), 10_000, 'the connection to close');
}

describe('docs/deploy/nginx.conf', () => {
  it('is rewritten for a test only in its listen line and upstream servers', () => {
    const site = siteFor(18080, [18081, 18082, 18083]);
    expect(site).toMatch(/listen 127\.0\.0\.1:18080;/);
    expect(site.match(/server 127\.0\.0\.1:\d+/g)).toEqual(['server 127.0.0.1:18081', 'server 127.0.0.1:18082', 'server 127.0.0.1:18083']);
    for (const directive of ['proxy_http_version 1.1;', 'proxy_set_header Upgrade $http_upgrade;', 'proxy_read_timeout 75s;']) {
      expect(site).toContain(directive);
    }
  });

  it('carries WebSocket upgrades and messages to the nodes behind it, and fails over when a node dies', async () => {
    const [a, b] = await Promise.all([echoNode(), echoNode()]);
    const proxy = await startNginx([a.port, b.port]);
    proxies.push(proxy);

    // Two connections open at once: least_conn puts them on different nodes.
    const first = await connect(`ws://127.0.0.1:${proxy.port}/`);
    const second = await connect(`ws://127.0.0.1:${proxy.port}/`);
    connections.push(first, second);
    for (const [connection, text] of [
      [first, 'through nginx, one'],
      [second, 'through nginx, two'],
    ] as const) {
      const echoed = nextMessage(connection);
      connection.send(text);
      expect(await echoed).toBe(text);
    }
    const big = Buffer.alloc(256 * 1024, 7);
    const echoedBig = nextMessage(first);
    first.send(big);
    expect(Buffer.compare(big, (await echoedBig) as Buffer)).toBe(0);

    // Kill node a without a goodbye: the connection it held ends without a close frame.
    const firstClosed = closed(first);
    const secondClosed = closed(second);
    a.child.kill('SIGKILL');
    await a.exited;
    const ended = await Promise.race([firstClosed.then(() => first), secondClosed.then(() => second)]);
    expect((await (ended === first ? firstClosed : secondClosed)).code).toBe(1006);
    const survivor = ended === first ? second : first;
    const stillEchoes = nextMessage(survivor);
    survivor.send('still here');
    expect(await stillEchoes).toBe('still here');

    // New connections go to the node that is left (nginx marks a dead one failed and moves on).
    for (let i = 0; i < 3; i++) {
      const fresh = await connect(`ws://127.0.0.1:${proxy.port}/`);
      connections.push(fresh);
      const echoed = nextMessage(fresh);
      fresh.send(`after the failure ${i}`);
      expect(await echoed).toBe(`after the failure ${i}`);
    }
  });
});
