import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { historyPolicyOf } from '../../src/apps/app.js';
import { createCanvasApp } from '../../src/apps/canvas/index.js';
import { AppServer } from '../../src/apps/host/server.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import { startRedis, type RedisServer } from '../pubsub/redis-server.js';
import { browserTestsUnavailable, CHROMIUM_ARGS, CHROMIUM_PATH } from './browser.js';
import { drawLine, holds as holdsStrokes, myId, openCanvas as openCanvasPage, sees, type StrokeView } from './canvas-page.js';

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

const openCanvas = (origin: string): Promise<Page> => openCanvasPage(browser!, origin, pageErrors, WAIT);
const holds = (page: Page, count: number): Promise<StrokeView[]> => holdsStrokes(page, count, WAIT);

describe('canvas pages on two nodes', () => {
  it('see each other’s strokes and undos, and a page opened later on the other node gets the whole board', async () => {
    const a = await startNode();
    const b = await startNode();
    const ann = await openCanvas(a);
    const bob = await openCanvas(b);
    const annId = await myId(ann);
    await sees(bob, annId, WAIT);

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
