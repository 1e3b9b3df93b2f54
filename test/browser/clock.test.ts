import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { clockApp } from '../../src/apps/clock/index.js';
import { useBrowser } from './browser.js';

/** The clock page in Chromium, against the real two-second clock. */

const web = useBrowser();

interface SeenTick {
  /** The server's time in the message. */
  epochMs: number;
  /** When the page showed it, by the page's monotonic clock. */
  at: number;
}

/**
 * The few browser globals the recorder uses. Test files compile without the
 * DOM library (Node code must not see browser globals), so functions that
 * run in the page reach them through `globalThis` with this type.
 */
interface PageGlobals {
  document: { getElementById(id: string): { dataset: Record<string, string | undefined> } | null };
  performance: { now(): number };
  MutationObserver: new (callback: () => void) => { observe(target: unknown, options: { attributes: boolean; attributeFilter: string[] }): void };
  seenTicks: SeenTick[];
}

/** Record every time the page shows, from now on. */
async function recordTicks(page: Page): Promise<void> {
  await page.evaluate(() => {
    const scope = globalThis as unknown as PageGlobals;
    const view = scope.document.getElementById('time')!;
    const seen: SeenTick[] = [];
    scope.seenTicks = seen;
    new scope.MutationObserver(() => seen.push({ epochMs: Number(view.dataset['epochMs']), at: scope.performance.now() })).observe(view, {
      attributes: true,
      attributeFilter: ['data-epoch-ms'],
    });
  });
}

function seenTicks(page: Page): Promise<SeenTick[]> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).seenTicks);
}

async function waitForTicks(page: Page, count: number, timeout: number): Promise<SeenTick[]> {
  await page.waitForFunction((n) => (globalThis as unknown as PageGlobals).seenTicks.length >= n, count, { timeout });
  return seenTicks(page);
}

async function openClock(): Promise<Page> {
  const page = await web.newPage();
  await page.goto(web.url('/clock/'));
  await page.locator('#status[data-state="open"]').waitFor();
  await recordTicks(page);
  return page;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('clock page', () => {
  it('shows the time at once on Start, then a new time every two seconds, and stops on Stop', async () => {
    const page = await openClock();
    expect(await page.locator('#state').getAttribute('data-state')).toBe('stopped');
    expect(await page.locator('#stop').isDisabled()).toBe(true);

    await page.locator('#start').click();
    const ticks = await waitForTicks(page, 3, 10_000);
    expect(await page.locator('#state').getAttribute('data-state')).toBe('ticking');
    // The interval shown is the one the server announced in `started`.
    expect(await page.locator('#state').textContent()).toBe('Ticking: a new time every 2 s.');
    expect(await page.locator('#start').isDisabled()).toBe(true);
    expect(await page.locator('#time').textContent()).toMatch(/^\d{2}:\d{2}:\d{2}$/);
    expect(await page.locator('#time').getAttribute('datetime')).toBe(new Date(ticks[2]!.epochMs).toISOString());

    // Two consecutive intervals, by the server's stamps and by arrival in the page.
    for (const [earlier, later] of [
      [ticks[0]!, ticks[1]!],
      [ticks[1]!, ticks[2]!],
    ] as const) {
      expect(later.epochMs - earlier.epochMs).toBeGreaterThanOrEqual(1850);
      expect(later.epochMs - earlier.epochMs).toBeLessThanOrEqual(2250);
      expect(later.at - earlier.at).toBeGreaterThanOrEqual(1500);
      expect(later.at - earlier.at).toBeLessThanOrEqual(2600);
    }
    // The server's clock and this machine's agree (same machine).
    expect(Math.abs(ticks[2]!.epochMs - Date.now())).toBeLessThan(2500);

    await page.locator('#stop').click();
    await page.locator('#state[data-state="stopped"]').waitFor();
    const stoppedAt = (await seenTicks(page)).length;
    await sleep(2600);
    expect((await seenTicks(page)).length).toBe(stoppedAt);
    expect(clockApp.tickingClients).toBe(0);
    expect(await page.locator('#start').isEnabled()).toBe(true);
  });

  it('starts again after a stop', async () => {
    const page = await openClock();
    await page.locator('#start').click();
    await waitForTicks(page, 1, 5000);
    await page.locator('#stop').click();
    await page.locator('#state[data-state="stopped"]').waitFor();
    const before = (await seenTicks(page)).length;
    await page.locator('#start').click();
    await waitForTicks(page, before + 2, 5000);
    expect(await page.locator('#state').getAttribute('data-state')).toBe('ticking');
  });

  it('keeps ticking across a server restart: the page reconnects and asks again', async () => {
    const page = await openClock();
    await page.locator('#start').click();
    await waitForTicks(page, 1, 5000);

    await web.stopServer();
    await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: 5000 });
    expect(await page.locator('#state').getAttribute('data-state')).toBe('starting');
    const before = (await seenTicks(page)).length;

    await web.startServer();
    await page.locator('#status[data-state="open"]').waitFor({ timeout: 10_000 });
    await waitForTicks(page, before + 2, 6000);
    expect(await page.locator('#state').getAttribute('data-state')).toBe('ticking');
  });

  it('leaves no timer on the server once the page is gone', async () => {
    const page = await openClock();
    await page.locator('#start').click();
    await waitForTicks(page, 1, 5000);
    expect(clockApp.tickingClients).toBe(1);
    expect(clockApp.pendingTimers).toBe(1);
    await page.close();
    await expect.poll(() => clockApp.tickingClients, { timeout: 5000 }).toBe(0);
    expect(clockApp.pendingTimers).toBe(0);
  });
});
