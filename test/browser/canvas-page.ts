import type { Browser, Page } from 'playwright-core';

/**
 * The canvas page as the browser tests drive it: open one and wait until it
 * is connected and sees itself, read its strokes through the test hook it
 * exposes (`window.sockeyeCanvas`), draw with the mouse.
 */

export interface StrokeView {
  id: number;
  visitor: number;
  open: boolean;
  points: number[];
}

/** What canvas.js exposes as `window.sockeyeCanvas`, as far as the tests read it. */
export interface PageGlobals {
  sockeyeCanvas: {
    me: { id: number } | null;
    connected: boolean;
    visitors(): Array<{ id: number }>;
    strokes(): StrokeView[];
    pendingStrokes(): number;
  };
}

/** Open `<origin>/canvas/` in a fresh context; console errors and uncaught exceptions go to `errors`. */
export async function openCanvas(browser: Browser, origin: string, errors: string[], timeout: number): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  await page.goto(`${origin}/canvas/`);
  await page.waitForFunction(
    () => {
      const canvas = (globalThis as unknown as PageGlobals).sockeyeCanvas;
      return canvas.connected && canvas.me !== null && canvas.visitors().some((visitor) => visitor.id === canvas.me!.id);
    },
    undefined,
    { timeout },
  );
  return page;
}

export function strokesOf(page: Page): Promise<StrokeView[]> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.strokes());
}

export function myId(page: Page): Promise<number> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.me!.id);
}

/** Wait until the page holds `count` strokes, all finished, none of its own pending. */
export async function holds(page: Page, count: number, timeout: number): Promise<StrokeView[]> {
  await page.waitForFunction(
    (wanted) => {
      const canvas = (globalThis as unknown as PageGlobals).sockeyeCanvas;
      const strokes = canvas.strokes();
      return strokes.length === wanted && strokes.every((stroke) => !stroke.open) && canvas.pendingStrokes() === 0;
    },
    count,
    { timeout },
  );
  return strokesOf(page);
}

/** Wait until the page lists the visitor `id`. */
export async function sees(page: Page, id: number, timeout: number): Promise<void> {
  await page.waitForFunction((wanted) => (globalThis as unknown as PageGlobals).sockeyeCanvas.visitors().some((v) => v.id === wanted), id, {
    timeout,
  });
}

/** Draw a line with the mouse from (fx, fy) a fifth of the board to the right, as fractions of the board. */
export async function drawLine(page: Page, fx: number, fy: number): Promise<void> {
  const box = (await page.locator('#board').boundingBox())!;
  await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * (fx + 0.2), box.y + box.height * fy, { steps: 8 });
  await page.mouse.up();
}
