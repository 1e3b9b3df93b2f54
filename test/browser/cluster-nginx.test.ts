import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, killAll, runCli, type CliRun } from '../cli/cli-process.js';
import { startNginx, type RunningNginx } from '../deploy/nginx.js';
import { startRedis, type RedisServer } from '../pubsub/redis-server.js';
import { browserTestsUnavailable, CHROMIUM_ARGS, CHROMIUM_PATH } from './browser.js';
import { join, messagesWith, say } from './chat-page.js';
import { drawLine, holds, myId, openCanvas, sees } from './canvas-page.js';
import { until } from '../wait.js';

/**
 * The deployment users run, end to end: two `sockeye serve --redis` nodes
 * (separate processes on one private redis-server) behind Debian's nginx
 * with the documented site (docs/deploy/nginx.conf), and two Chromium pages
 * loaded through nginx. The pages land on different nodes (least_conn) and
 * chat; then the node of one page is SIGKILLed. That page shows
 * "reconnecting", keeps what is typed as pending, reconnects through nginx
 * to the node that is left, resumes from its position and gets exactly what
 * it missed, once; its pending message is delivered, once.
 */

const WAIT = 10_000;
/** The page's back-off (up to 5 s), nginx noticing the dead node, and a loaded machine. */
const RECONNECT_WAIT = 30_000;

let redis: RedisServer;
let nginx: RunningNginx;
let browser: Browser;
const nodes: Array<CliRun & { port: number }> = [];

async function node(): Promise<CliRun & { port: number }> {
  const run = runCli(['serve', '--port', '0', '--log-level', 'silent', '--redis', redis.url], { stdin: 'ignore' });
  const match = await run.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//, 20_000);
  return { ...run, port: Number(match[1]) };
}

/** Open connections of one app on one node, from the node's own /metrics (not through nginx). */
async function appConnections(port: number, app: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^sockeye_connections\\{app="${app}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 'NaN');
}

const chatConnections = (port: number): Promise<number> => appConnections(port, 'chat');

/**
 * Open pages through nginx until one of them has its `app` socket on the
 * node at `port` (least_conn usually sends the next page there; when a tie
 * is broken the other way, the page is closed and another one opened).
 */
async function openOnNode<T extends Page>(open: () => Promise<T>, app: string, port: number): Promise<T> {
  for (let attempt = 0; attempt < 6; attempt++) {
    const before = await appConnections(port, app);
    const page = await open();
    if ((await appConnections(port, app)) > before) return page;
    await page.context().close();
  }
  throw new Error(`no page of ${app} landed on the node at port ${port} in 6 attempts`);
}

async function openChat(): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    throw error;
  });
  await page.goto(`http://127.0.0.1:${nginx.port}/chat/`);
  await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
  return page;
}

beforeAll(async () => {
  const unavailable = browserTestsUnavailable();
  if (unavailable !== null) throw new Error(unavailable);
  assertBuilt();
  redis = await startRedis();
  nodes.push(await node(), await node());
  nginx = await startNginx(nodes.map((n) => n.port));
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await nginx?.stop();
  killAll();
  await redis?.stop();
});

describe('two nodes on Redis behind nginx, in Chromium', () => {
  it('lets canvas pages on different nodes see each other and each other’s strokes', async () => {
    const errors: string[] = [];
    const origin = `http://127.0.0.1:${nginx.port}`;
    const ann = await openCanvas(browser, origin, errors, WAIT);
    const counts = await Promise.all(nodes.map((n) => appConnections(n.port, 'canvas')));
    const annNode = counts.indexOf(1);
    const bob = await openOnNode(() => openCanvas(browser, origin, errors, WAIT), 'canvas', nodes[1 - annNode]!.port);
    // One page on each node.
    expect(await Promise.all(nodes.map((n) => appConnections(n.port, 'canvas')))).toEqual([1, 1]);
    await sees(bob, await myId(ann), WAIT);
    await drawLine(ann, 0.1, 0.2);
    await holds(ann, 1, WAIT);
    await drawLine(bob, 0.1, 0.6);
    const onBob = await holds(bob, 2, WAIT);
    expect(await holds(ann, 2, WAIT)).toEqual(onBob);
    await ann.context().close();
    await bob.context().close();
    await until(
      async () => (await Promise.all(nodes.map((n) => appConnections(n.port, 'canvas')))).every((count) => count === 0),
      'the canvas pages to go',
    );
    expect(errors).toEqual([]);
  });

  it('lets pages on different nodes chat, and a page whose node is killed recovers on the other without loss or duplicate', async () => {
    const ann = await openChat();
    await join(ann, 'ann', 'cluster-room', WAIT);
    const counts = await Promise.all(nodes.map((n) => chatConnections(n.port)));
    const annNode = counts.indexOf(1);
    expect(counts.sort()).toEqual([0, 1]);
    const bob = await openOnNode(openChat, 'chat', nodes[1 - annNode]!.port);
    await join(bob, 'bob', 'cluster-room', WAIT);

    await say(ann, 'hello from ann');
    await say(bob, 'hello from bob');
    for (const page of [ann, bob]) {
      await messagesWith(page, 'hello from ann').waitFor({ timeout: WAIT });
      await messagesWith(page, 'hello from bob').waitFor({ timeout: WAIT });
    }

    // The node ann is on dies without a goodbye.
    const dead = nodes[annNode]!;
    dead.child.kill('SIGKILL');
    await dead.exited;
    await ann.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
    await say(ann, 'typed during the outage');
    const pending = messagesWith(ann, 'typed during the outage');
    await pending.waitFor({ timeout: WAIT });
    expect(await pending.getAttribute('class')).toMatch(/\bpending\b/);
    // Meanwhile bob, on the node that is left, goes on talking.
    await say(bob, 'bob while ann is away');
    await messagesWith(bob, 'bob while ann is away').waitFor({ timeout: WAIT });

    // ann comes back through nginx, on the node that is left, and resumes.
    await ann.locator('#status[data-state="open"]').waitFor({ timeout: RECONNECT_WAIT });
    await ann.locator('#messages li.message.delivered', { hasText: 'typed during the outage' }).waitFor({ timeout: RECONNECT_WAIT });
    await messagesWith(ann, 'bob while ann is away').waitFor({ timeout: WAIT });
    await messagesWith(bob, 'typed during the outage').waitFor({ timeout: WAIT });
    expect(await chatConnections(nodes[1 - annNode]!.port)).toBe(2);
    for (const page of [ann, bob]) {
      for (const text of ['hello from ann', 'hello from bob', 'typed during the outage', 'bob while ann is away']) {
        expect(await messagesWith(page, text).count(), text).toBe(1);
      }
      expect(await page.locator('#messages li.system.missed').count()).toBe(0);
    }
    expect(await ann.locator('#messages li.pending').count()).toBe(0);
  });
});
