import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { historyPolicyOf } from '../../src/apps/app.js';
import { createCanvasApp } from '../../src/apps/canvas/index.js';
import { AppServer } from '../../src/apps/server.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import { startRedis, type RedisServer } from '../pubsub/redis-server.js';
import { browserTestsUnavailable, CHROMIUM_ARGS, CHROMIUM_PATH } from './browser.js';

/**
 * The canvas page in Chromium on two nodes (two AppServers, each with its
 * own hub on its own RedisBroker, one private redis-server): a page on
 * each node, each loaded from its own node. What one draws, the other
 * shows; an undo on one goes on the other; a page opened later on the
 * other node shows the whole board. The pages do not know about nodes.
 */

const WAIT = 8000;

let redis: RedisServer;
let browser: Browser | null = null;
const servers: AppServer[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  const problem = browserTestsUnavailable();
  if (problem !== null) throw new Error(problem);
  redis = await startRedis();
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await redis?.stop();
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  expect(pageErrors.splice(0)).toEqual([]);
});

async function startNode(): Promise<string> {
  const app = createCanvasApp();
  const server = new AppServer({
    apps: [app],
    logLevel: 'silent',
    pubsub: new PubSub({ broker: await RedisBroker.connect({ url: redis.url, history: historyPolicyOf([app]) }) }),
  });
  servers.push(server);
  const { port } = await server.listen(0);
  return `http://127.0.0.1:${port}`;
}

interface StrokeView {
  id: number;
  visitor: number;
  open: boolean;
  points: number[];
}

/** What canvas.js exposes as `window.sockeyeCanvas`, as far as this file reads it. */
interface PageGlobals {
  sockeyeCanvas: {
    me: { id: number } | null;
    connected: boolean;
    visitors(): Array<{ id: number }>;
    strokes(): StrokeView[];
    pendingStrokes(): number;
  };
}

async function openCanvas(origin: string): Promise<Page> {
  const context = await browser!.newContext();
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  page.on('pageerror', (error) => pageErrors.push(`uncaught: ${error.message}`));
  await page.goto(`${origin}/canvas/`);
  await page.waitForFunction(
    () => {
      const canvas = (globalThis as unknown as PageGlobals).sockeyeCanvas;
      return canvas.connected && canvas.me !== null && canvas.visitors().some((visitor) => visitor.id === canvas.me!.id);
    },
    undefined,
    { timeout: WAIT },
  );
  return page;
}

const strokesOf = (page: Page): Promise<StrokeView[]> => page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.strokes());

/** Wait until the page holds `count` strokes, all finished, none of its own pending. */
async function holds(page: Page, count: number): Promise<StrokeView[]> {
  await page.waitForFunction(
    (wanted) => {
      const canvas = (globalThis as unknown as PageGlobals).sockeyeCanvas;
      const strokes = canvas.strokes();
      return strokes.length === wanted && strokes.every((stroke) => !stroke.open) && canvas.pendingStrokes() === 0;
    },
    count,
    { timeout: WAIT },
  );
  return strokesOf(page);
}

/** Draw a line with the mouse from (fx, fy) a fifth of the board to the right, as fractions of the board. */
async function drawLine(page: Page, fx: number, fy: number): Promise<void> {
  const box = (await page.locator('#board').boundingBox())!;
  await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * (fx + 0.2), box.y + box.height * fy, { steps: 8 });
  await page.mouse.up();
}

describe('canvas pages on two nodes', () => {
  it('see each other’s strokes and undos, and a page opened later on the other node gets the whole board', async () => {
    const a = await startNode();
    const b = await startNode();
    const ann = await openCanvas(a);
    const bob = await openCanvas(b);
    const annId = await ann.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.me!.id);
    await bob.waitForFunction((id) => (globalThis as unknown as PageGlobals).sockeyeCanvas.visitors().some((v) => v.id === id), annId, { timeout: WAIT });

    await drawLine(ann, 0.1, 0.2);
    await holds(ann, 1);
    await drawLine(bob, 0.1, 0.6);
    await holds(bob, 2);
    await drawLine(ann, 0.5, 0.4);
    const onA = await holds(ann, 3);
    const onB = await holds(bob, 3);
    expect(onB).toEqual(onA);
    expect(onA.filter((stroke) => stroke.visitor === annId)).toHaveLength(2);

    // Ann's undo button takes her latest stroke on both nodes; Bob's stays.
    await ann.locator('#undo').click();
    const afterUndo = await holds(bob, 2);
    expect(afterUndo.map((stroke) => stroke.id)).toEqual([onA[0]!.id, onA[1]!.id]);
    expect(await holds(ann, 2)).toEqual(afterUndo);

    const cid = await openCanvas(b);
    expect(await holds(cid, 2)).toEqual(afterUndo);
  });
});
