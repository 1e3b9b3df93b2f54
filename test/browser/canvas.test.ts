import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { canvasApp } from '../../src/apps/canvas/index.js';
import { useBrowser } from './browser.js';

/** The shared canvas page in Chromium: pointers, strokes and departures seen from another page. */

const web = useBrowser({ apps: [canvasApp] });

/** Every wait in this file is bounded by this (ms). */
const WAIT = 5000;
const MAX = 65_535;

interface Point {
  x: number;
  y: number;
}

interface StrokeView {
  id: number;
  visitor: number;
  colour: number;
  width: number;
  open: boolean;
  points: number[];
}

/** What canvas.js exposes as `window.sockeyeCanvas`. */
interface CanvasView {
  me: { id: number; colour: number; name: string } | null;
  connected: boolean;
  lastPointer: Point | null;
  visitors(): Array<{ id: number; colour: number; name: string; pointer: Point | null }>;
  strokes(): StrokeView[];
  pendingStrokes(): number;
}

/**
 * The browser globals used by functions that run in the page. Test files
 * compile without the DOM library, so those functions reach the page's
 * globals through `globalThis` with this type.
 */
interface PageGlobals {
  sockeyeCanvas: CanvasView;
  document: {
    querySelector(selector: string): PageElement | null;
    getElementById(
      id: string,
    ): PageElement & { getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
  };
  getComputedStyle(element: PageElement): { touchAction: string };
}

interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  width: number;
  height: number;
  getBoundingClientRect(): { left: number; top: number; width: number; height: number };
}

const strokesOf = (page: Page): Promise<StrokeView[]> => page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.strokes());
const visitorsOf = (page: Page): Promise<ReturnType<CanvasView['visitors']>> =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.visitors());
const meOf = async (page: Page): Promise<NonNullable<CanvasView['me']>> =>
  (await page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.me))!;
const lastPointerOf = async (page: Page): Promise<Point> =>
  (await page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.lastPointer))!;

async function myId(page: Page): Promise<number> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.me!.id);
}

/** Open the canvas and wait until the page is welcomed and holds its first snapshot. */
async function openCanvas(): Promise<Page> {
  const page = await web.newPage();
  await page.goto(web.url('/canvas/'));
  await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
  await page.waitForFunction(
    () => {
      const canvas = (globalThis as unknown as PageGlobals).sockeyeCanvas;
      return canvas.connected && canvas.visitors().some((visitor) => visitor.id === canvas.me!.id);
    },
    undefined,
    { timeout: WAIT },
  );
  return page;
}

/** Wait until `page` knows visitor `id`. */
async function knows(page: Page, id: number): Promise<void> {
  await page.waitForFunction((wanted) => (globalThis as unknown as PageGlobals).sockeyeCanvas.visitors().some((v) => v.id === wanted), id, {
    timeout: WAIT,
  });
}

/** A spot on the page's board, as fractions of its width and height, in page (CSS pixel) coordinates. */
async function onBoard(page: Page, fx: number, fy: number): Promise<Point> {
  const box = (await page.locator('#board').boundingBox())!;
  return { x: box.x + box.width * fx, y: box.y + box.height * fy };
}

/** Wait until `page` shows visitor `id`'s pointer at the normalised position `at`; returns where it is drawn, as fractions of the board. */
async function pointerShownAt(page: Page, id: number, at: Point): Promise<Point> {
  await page.waitForFunction(
    ([wanted, x, y]) => {
      const element = (globalThis as unknown as PageGlobals).document.querySelector(`.pointer[data-id="${wanted}"]`);
      return element !== null && element.dataset['x'] === String(x) && element.dataset['y'] === String(y);
    },
    [id, at.x, at.y] as const,
    { timeout: WAIT },
  );
  // Where it is drawn, once its short glide (a CSS transition) is over.
  let last: Point = { x: -1, y: -1 };
  for (let i = 0; i < 50; i++) {
    const now = await page.evaluate((wanted) => {
      const scope = globalThis as unknown as PageGlobals;
      const pointer = scope.document.querySelector(`.pointer[data-id="${wanted}"]`)!.getBoundingClientRect();
      const board = scope.document.querySelector('#board')!.getBoundingClientRect();
      // clientLeft/Top of the border: the pointer layer starts inside the board's 1px border.
      return { x: (pointer.left - board.left - 1) / (board.width - 2), y: (pointer.top - board.top - 1) / (board.height - 2) };
    }, id);
    if (Math.abs(now.x - last.x) < 1e-4 && Math.abs(now.y - last.y) < 1e-4) return now;
    last = now;
    await page.waitForTimeout(30);
  }
  return last;
}

describe('canvas page', () => {
  it('shows a pointer moved in one page at the same place in the other', async () => {
    const ann = await openCanvas();
    const bob = await openCanvas();
    const annId = await myId(ann);
    await knows(bob, annId);
    expect(
      await ann.evaluate(() => {
        const scope = globalThis as unknown as PageGlobals;
        return scope.getComputedStyle(scope.document.querySelector('#board')!).touchAction;
      }),
    ).toBe('none');

    for (const [fx, fy] of [
      [0.3, 0.4],
      [0.75, 0.2],
      [0.05, 0.95],
    ] as const) {
      const target = await onBoard(ann, fx, fy);
      await ann.mouse.move(target.x, target.y, { steps: 4 });
      await ann.waitForFunction(
        ([x, y]) => {
          const sent = (globalThis as unknown as PageGlobals).sockeyeCanvas.lastPointer;
          return sent !== null && Math.abs(sent.x / 65_535 - x!) < 0.01 && Math.abs(sent.y / 65_535 - y!) < 0.01;
        },
        [fx, fy] as const,
        { timeout: WAIT },
      );
      const sent = await lastPointerOf(ann);
      const shown = await pointerShownAt(bob, annId, sent);
      // The same normalised spot, so the same place on the other board whatever its size.
      expect(Math.abs(shown.x - sent.x / MAX)).toBeLessThan(0.005);
      expect(Math.abs(shown.y - sent.y / MAX)).toBeLessThan(0.005);
      expect(Math.abs(shown.x - fx)).toBeLessThan(0.01);
      expect(Math.abs(shown.y - fy)).toBeLessThan(0.01);
    }
    // The pointer carries the visitor's name; a page does not show its own pointer.
    const annName = (await meOf(ann)).name;
    expect(await bob.locator(`.pointer[data-id="${annId}"] .label`).textContent()).toBe(annName);
    expect(await ann.locator(`.pointer[data-id="${annId}"]`).count()).toBe(0);
    // The pages spoke through the server's own codec, compiled.
    expect(web.requests).toContain(web.url('/canvas/wire/codec.js'));
  });

  it('shows a stroke drawn in one page in the other, and to a page opened afterwards', async () => {
    const ann = await openCanvas();
    const bob = await openCanvas();
    const annId = await myId(ann);
    await knows(bob, annId);

    const start = await onBoard(ann, 0.2, 0.3);
    const middle = await onBoard(ann, 0.5, 0.3);
    const end = await onBoard(ann, 0.5, 0.7);
    await ann.mouse.move(start.x, start.y);
    await ann.mouse.down();
    await ann.mouse.move(middle.x, middle.y, { steps: 8 });
    await ann.mouse.move(end.x, end.y, { steps: 8 });
    await ann.mouse.up();

    // The drawer's own copy comes back from the server complete.
    await ann.waitForFunction(
      () => {
        const canvas = (globalThis as unknown as PageGlobals).sockeyeCanvas;
        return canvas.strokes().length === 1 && !canvas.strokes()[0]!.open && canvas.pendingStrokes() === 0;
      },
      undefined,
      { timeout: WAIT },
    );
    await bob.waitForFunction(
      () => {
        const strokes = (globalThis as unknown as PageGlobals).sockeyeCanvas.strokes();
        return strokes.length === 1 && !strokes[0]!.open;
      },
      undefined,
      { timeout: WAIT },
    );
    const [drawn] = await strokesOf(ann);
    const [seen] = await strokesOf(bob);
    expect(seen).toEqual(drawn);
    expect(seen!.visitor).toBe(annId);
    expect(seen!.colour).toBe((await meOf(ann)).colour);
    // From where the mouse went down to where it came up, through the corner.
    const points = seen!.points;
    expect(points.length).toBeGreaterThanOrEqual(2 * 10);
    const near = (x: number, y: number, fx: number, fy: number): boolean => Math.abs(x / MAX - fx) < 0.01 && Math.abs(y / MAX - fy) < 0.01;
    expect(near(points[0]!, points[1]!, 0.2, 0.3)).toBe(true);
    expect(near(points.at(-2)!, points.at(-1)!, 0.5, 0.7)).toBe(true);
    expect(points.some((_, i) => i % 2 === 0 && near(points[i]!, points[i + 1]!, 0.5, 0.3))).toBe(true);

    // And it is painted: the stroke's colour on the line in the other page, nothing far from it.
    const pixel = (page: Page, fx: number, fy: number): Promise<number[]> =>
      page.evaluate(
        ([x, y]) => {
          const canvas = (globalThis as unknown as PageGlobals).document.getElementById('drawing');
          const data = canvas.getContext('2d').getImageData(Math.round(x! * canvas.width), Math.round(y! * canvas.height), 1, 1).data;
          return [data[0]!, data[1]!, data[2]!, data[3]!];
        },
        [fx, fy] as const,
      );
    const colour = seen!.colour;
    const expected = [(colour >> 16) & 0xff, (colour >> 8) & 0xff, colour & 0xff, 255];
    const deadline = Date.now() + WAIT;
    let onLine = await pixel(bob, 0.35, 0.3);
    while (onLine[3] !== 255 && Date.now() < deadline) {
      await bob.waitForTimeout(25);
      onLine = await pixel(bob, 0.35, 0.3);
    }
    expect(onLine).toEqual(expected);
    expect(await pixel(bob, 0.5, 0.5)).toEqual(expected);
    expect(await pixel(bob, 0.8, 0.8)).toEqual([0, 0, 0, 0]);

    const cid = await openCanvas();
    await cid.waitForFunction(() => (globalThis as unknown as PageGlobals).sockeyeCanvas.strokes().length === 1, undefined, { timeout: WAIT });
    expect(await strokesOf(cid)).toEqual([drawn]);
  });

  it('removes the pointer of a page that leaves from the other page', async () => {
    const ann = await openCanvas();
    const bob = await openCanvas();
    const annId = await myId(ann);
    await knows(bob, annId);
    const spot = await onBoard(ann, 0.6, 0.6);
    await ann.mouse.move(spot.x, spot.y, { steps: 3 });
    await bob.locator(`.pointer[data-id="${annId}"]`).waitFor({ state: 'attached', timeout: WAIT });
    expect(await bob.locator(`#people li[data-id="${annId}"]`).count()).toBe(1);

    await ann.close();
    await bob.locator(`.pointer[data-id="${annId}"]`).waitFor({ state: 'detached', timeout: WAIT });
    await bob.locator(`#people li[data-id="${annId}"]`).waitFor({ state: 'detached', timeout: WAIT });
    expect((await visitorsOf(bob)).map((v) => v.id)).toEqual([await myId(bob)]);
  });

  it('draws with a finger too: touch input becomes pointer events on the board', async () => {
    const ann = await openCanvas();
    const bob = await openCanvas();
    const annId = await myId(ann);
    await knows(bob, annId);
    const session = await ann.context().newCDPSession(ann);
    await session.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 1 });
    const from = await onBoard(ann, 0.1, 0.1);
    const to = await onBoard(ann, 0.4, 0.2);
    await session.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: from.x, y: from.y }] });
    for (let step = 1; step <= 6; step++) {
      const x = from.x + ((to.x - from.x) * step) / 6;
      const y = from.y + ((to.y - from.y) * step) / 6;
      await session.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x, y }] });
    }
    await session.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await bob.waitForFunction(
      () => {
        const strokes = (globalThis as unknown as PageGlobals).sockeyeCanvas.strokes();
        return strokes.length === 1 && !strokes[0]!.open;
      },
      undefined,
      { timeout: WAIT },
    );
    const [stroke] = await strokesOf(bob);
    expect(stroke!.visitor).toBe(annId);
    expect(Math.abs(stroke!.points[0]! / MAX - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(stroke!.points.at(-2)! / MAX - 0.4)).toBeLessThan(0.01);
  });

  it('shows a new name on the other page’s pointer and list', async () => {
    const ann = await openCanvas();
    const bob = await openCanvas();
    const annId = await myId(ann);
    await knows(bob, annId);
    const spot = await onBoard(ann, 0.5, 0.5);
    await ann.mouse.move(spot.x, spot.y, { steps: 2 });
    await bob.locator(`.pointer[data-id="${annId}"]`).waitFor({ state: 'attached', timeout: WAIT });
    await ann.locator('#name').fill('Ann <b>the</b> artist');
    await ann.locator('#name').press('Enter');
    await bob.locator(`.pointer[data-id="${annId}"] .label`, { hasText: 'Ann <b>the</b> artist' }).waitFor({ state: 'attached', timeout: WAIT });
    expect(await bob.locator(`#people li[data-id="${annId}"]`).textContent()).toBe('Ann <b>the</b> artist');
    expect(await bob.locator('.pointer b, #people b').count()).toBe(0);
  });
});

describe('canvas page: undo, clear and the pen width', () => {
  /**
   * Pages in the background get few animation frames, and Playwright's
   * clicks wait for frames (to see the element stable): a page is brought to
   * the front before its buttons are used.
   */
  async function front(page: Page): Promise<Page> {
    await page.bringToFront();
    return page;
  }

  /** Wait until the canvas of `page` has paint on it (`painted`) or none at all. */
  async function paintIs(page: Page, painted: boolean): Promise<void> {
    await front(page);
    await page.waitForFunction(
      (wanted) => {
        const canvas = (globalThis as unknown as PageGlobals).document.getElementById('drawing');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let alpha = 0;
        for (let i = 3; i < data.length; i += 4) alpha += data[i]!;
        return alpha > 0 === wanted;
      },
      painted,
      { timeout: WAIT },
    );
  }

  /** Draw a short horizontal line with the mouse from (fx, fy), and wait until the page holds it back from the server. */
  async function drawLine(page: Page, fx: number, fy: number): Promise<void> {
    await front(page);
    const before = (await strokesOf(page)).length;
    const from = await onBoard(page, fx, fy);
    const to = await onBoard(page, fx + 0.1, fy);
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(to.x, to.y, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(
      (count) => {
        const canvas = (globalThis as unknown as PageGlobals).sockeyeCanvas;
        const strokes = canvas.strokes();
        return strokes.length === count && strokes.every((stroke) => !stroke.open) && canvas.pendingStrokes() === 0;
      },
      before + 1,
      { timeout: WAIT },
    );
  }

  /** Wait until `page` holds exactly the strokes `ids`, in that order. */
  async function holds(page: Page, ids: readonly number[]): Promise<void> {
    await page.waitForFunction(
      (wanted) =>
        JSON.stringify((globalThis as unknown as PageGlobals).sockeyeCanvas.strokes().map((stroke) => stroke.id)) === JSON.stringify(wanted),
      ids,
      { timeout: WAIT },
    );
  }

  it('undoes my own last stroke for everyone with the button or Ctrl+Z, and leaves the others’ strokes alone', async () => {
    const ann = await openCanvas();
    const bob = await openCanvas();
    await knows(bob, await myId(ann));
    // Nothing of mine on the board: nothing to undo.
    expect(await ann.locator('#undo').isDisabled()).toBe(true);

    await drawLine(ann, 0.1, 0.2);
    await drawLine(ann, 0.1, 0.4);
    await holds(bob, [1, 2]);
    await drawLine(bob, 0.5, 0.6);
    await holds(ann, [1, 2, 3]);
    const [first, second] = await strokesOf(ann);
    expect(first!.visitor).toBe(await myId(ann));
    expect(second!.visitor).toBe(await myId(ann));

    await front(ann);
    await ann.locator('#undo').click();
    await holds(ann, [1, 3]);
    await holds(bob, [1, 3]);
    // Bob undoes with the keyboard: his own stroke goes, not Ann's newer-looking one.
    await front(bob);
    await bob.keyboard.press('Control+z');
    await holds(bob, [1]);
    await holds(ann, [1]);
    expect((await strokesOf(bob))[0]!.visitor).toBe(await myId(ann));
    await bob.locator('#undo:disabled').waitFor({ timeout: WAIT });
    expect(await ann.locator('#undo').isDisabled()).toBe(false);

    // And a newcomer sees the board as it is now.
    const cid = await openCanvas();
    await holds(cid, [1]);
  });

  it('clears the board for everyone only after an inline confirmation', async () => {
    const ann = await openCanvas();
    const bob = await openCanvas();
    await knows(bob, await myId(ann));
    await drawLine(ann, 0.2, 0.2);
    await drawLine(bob, 0.2, 0.5);
    await holds(ann, [1, 2]);
    await holds(bob, [1, 2]);

    await paintIs(bob, true);
    // The first click only asks; "No" leaves everything as it was.
    await front(ann);
    await ann.locator('#clear').click();
    await ann.locator('#clear-confirm').waitFor({ state: 'visible', timeout: WAIT });
    expect(await ann.locator('#clear-confirm').textContent()).toContain('Clear for everyone?');
    expect(await ann.locator('#clear').isHidden()).toBe(true);
    await ann.locator('#clear-no').click();
    await ann.locator('#clear-confirm').waitFor({ state: 'hidden', timeout: WAIT });
    expect(await ann.locator('#clear').isVisible()).toBe(true);
    // Escape says no too.
    await ann.locator('#clear').click();
    await ann.keyboard.press('Escape');
    await ann.locator('#clear-confirm').waitFor({ state: 'hidden', timeout: WAIT });
    expect((await strokesOf(ann)).length).toBe(2);
    expect((await strokesOf(bob)).length).toBe(2);

    await front(ann);
    await ann.locator('#clear').click();
    await ann.locator('#clear-yes').click();
    await holds(ann, []);
    await holds(bob, []);
    const annName = (await meOf(ann)).name;
    await bob.locator('#notice', { hasText: `${annName} cleared the board.` }).waitFor({ timeout: WAIT });
    expect(await ann.locator('#clear-confirm').isHidden()).toBe(true);
    await ann.locator('#undo:disabled').waitFor({ timeout: WAIT });

    // The board is blank in the other page too, not only in its model.
    await paintIs(bob, false);
    const cid = await openCanvas();
    expect(await strokesOf(cid)).toEqual([]);
  });

  it('shows the pen width next to its slider, and draws with it', async () => {
    const ann = await openCanvas();
    expect(await ann.locator('#pen-width-value').textContent()).toBe('4');
    await ann.locator('#pen-width').fill('11');
    expect(await ann.locator('#pen-width-value').textContent()).toBe('11');
    await drawLine(ann, 0.3, 0.3);
    expect((await strokesOf(ann))[0]!.width).toBe(11);
  });
});
