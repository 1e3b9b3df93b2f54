import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createChatApp } from '../../src/apps/chat/index.js';
import { createDashboardApp } from '../../src/apps/dashboard/index.js';
import { useBrowser } from './browser.js';

/**
 * The dashboard page in Chromium: its uPlot charts advance with every
 * sample, its counters follow a burst of chat messages sent from a chat
 * page, and after a lost connection or a server restart it takes the
 * server's history again without showing any point twice.
 */

/** Samples every 250 ms, so that a test sees several in a second. */
const INTERVAL_MS = 250;
const web = useBrowser({ apps: [createChatApp({ rateLimit: { limit: 100 } }), createDashboardApp({ intervalMs: INTERVAL_MS })] });

/** Every wait in this file is bounded by this (ms). */
const WAIT = 5000;

/** What the page exposes as `globalThis.sockeyeDashboard`, as far as these tests read it. */
interface ChartView {
  /** Points of the x series (a gap adds one). */
  points: number;
  xMin: number | null;
  xMax: number | null;
  /** x values strictly increasing. */
  increasing: boolean;
  /** Series labels, x excluded. */
  labels: string[];
}

interface PageView {
  charts: Record<string, ChartView>;
  times: number[];
}

async function view(page: Page): Promise<PageView> {
  return page.evaluate(() => {
    interface Plot {
      data: Array<Array<number | null>>;
      scales: { x: { min?: number | null; max?: number | null } };
      series: Array<{ label?: string }>;
    }
    const hook = (globalThis as unknown as { sockeyeDashboard: { charts: Map<string, Plot>; samples: Array<{ time: number }> } }).sockeyeDashboard;
    const charts: Record<string, ChartView> = {};
    for (const [id, plot] of hook.charts) {
      const xs = plot.data[0] as number[];
      charts[id] = {
        points: xs.length,
        xMin: plot.scales.x.min ?? null,
        xMax: plot.scales.x.max ?? null,
        increasing: xs.every((x, i) => i === 0 || x > xs[i - 1]!),
        labels: plot.series.slice(1).map((series) => series.label ?? ''),
      };
    }
    return { charts, times: hook.samples.map((sample) => sample.time) };
  });
}

/** Poll `read` until `accept` holds (every 50 ms, at most WAIT ms); return the accepted value. */
async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function counter(page: Page, id: string): Promise<number> {
  const value = await page.locator(`#${id}`).getAttribute('data-value');
  return value === null || value === '' ? NaN : Number(value);
}

async function openDashboard(): Promise<Page> {
  const page = await web.newPage();
  await page.goto(web.url('/dashboard/'));
  await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
  return page;
}

function strictlyIncreasing(values: readonly number[]): boolean {
  return values.every((value, i) => i === 0 || value > values[i - 1]!);
}

describe('dashboard page', () => {
  it('draws charts that advance with every sample, from the locally served uPlot', async () => {
    const page = await openDashboard();
    const first = await eventually(() => view(page), (v) => v.charts['messages']!.points >= 2, 'two points');
    expect(Object.keys(first.charts).sort()).toEqual(['bytes', 'connections', 'cpu', 'loop', 'memory', 'messages']);
    // One series per app in the connections chart, the shell's socket included.
    const [all, ...perApp] = first.charts['connections']!.labels;
    expect(all).toBe('all');
    expect(perApp.sort()).toEqual(['chat', 'dashboard', 'shell']);

    const later = await eventually(
      () => view(page),
      (v) => v.charts['messages']!.points >= first.charts['messages']!.points + 3,
      'three more points',
    );
    for (const [id, chart] of Object.entries(later.charts)) {
      expect(chart.points, id).toBeGreaterThan(first.charts[id]!.points);
      expect(chart.xMax, id).toBeGreaterThan(first.charts[id]!.xMax!);
      expect(chart.increasing, id).toBe(true);
    }
    expect(await page.locator('canvas').count()).toBe(6);
    expect(web.requests.some((url) => url.endsWith('/vendor/uplot/uPlot.esm.js'))).toBe(true);
    expect(web.requests.some((url) => url.endsWith('/vendor/uplot/uPlot.min.css'))).toBe(true);
    expect(await counter(page, 'connections')).toBeGreaterThanOrEqual(1);
    expect(await counter(page, 'rss')).toBeGreaterThan(0);
  });

  it('counts a burst of chat messages sent from a chat page', async () => {
    const N = 20;
    const dashboard = await openDashboard();
    await eventually(() => counter(dashboard, 'messages-in-total'), (v) => Number.isFinite(v), 'a first sample');
    const before = await counter(dashboard, 'messages-in-total');

    const chat = await web.newPage();
    await chat.goto(web.url('/chat/'));
    await chat.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
    await chat.locator('#nick').fill('burst');
    await chat.locator('#join-button').click();
    await chat.locator('#room-view').waitFor({ state: 'visible', timeout: WAIT });
    for (let i = 0; i < N; i++) {
      await chat.locator('#text').fill(`message ${i}`);
      await chat.locator('#text').press('Enter');
    }
    await chat.locator('#messages li.message').nth(N - 1).waitFor({ timeout: WAIT });

    // The join and N messages went in; each came back out to the chat page at least once.
    const after = await eventually(() => counter(dashboard, 'messages-in-total'), (v) => v >= before + N + 1, `messages in to reach ${before + N + 1}`);
    expect(after).toBeGreaterThanOrEqual(before + N + 1);
    expect(await counter(dashboard, 'messages-out-total')).toBeGreaterThanOrEqual(N);
    expect(await counter(dashboard, 'connections')).toBeGreaterThanOrEqual(2);
    const chatRow = dashboard.locator('#apps tbody tr[data-app="chat"]');
    await eventually(async () => Number((await chatRow.locator('td').nth(5).textContent())?.replace(/\D/g, '')), (v) => v >= N + 1, 'the chat row');
    // The burst shows as a rate above zero in some point of the messages chart.
    const peak = await dashboard.evaluate(() => {
      const hook = (globalThis as unknown as { sockeyeDashboard: { charts: Map<string, { data: Array<Array<number | null>> }> } }).sockeyeDashboard;
      return Math.max(...(hook.charts.get('messages')!.data[1] as number[]).map((v) => v ?? 0));
    });
    expect(peak).toBeGreaterThan(0);
  });

  it('after a lost connection, takes the history again without showing any point twice', async () => {
    const page = await openDashboard();
    await eventually(() => view(page), (v) => v.times.length >= 4, 'four samples');
    const server = web.server!;
    for (const connection of server.websockets.connections) connection.terminate('test: connection lost');
    await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
    await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
    const before = (await view(page)).times.length;
    const after = await eventually(() => view(page), (v) => v.times.length >= before + 2, 'two samples after the reconnect');
    expect(strictlyIncreasing(after.times)).toBe(true);
    expect(after.charts['messages']!.increasing).toBe(true);
    // Every sample is one the server produced, each once: the page holds a run of consecutive samples.
    const gaps = after.times.slice(1).map((time, i) => time - after.times[i]!);
    expect(Math.max(...gaps)).toBeLessThan(INTERVAL_MS * 3);
    expect(Math.min(...gaps)).toBeGreaterThan(INTERVAL_MS / 3);
  });

  it('after a server restart, keeps what it had, adds the new server’s samples, and repeats none', async () => {
    const page = await openDashboard();
    const old = await eventually(() => view(page), (v) => v.times.length >= 3, 'three samples');
    await web.restartServer();
    await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
    const now = await eventually(() => view(page), (v) => v.times.length >= old.times.length + 3, 'three samples from the new server');
    expect(strictlyIncreasing(now.times)).toBe(true);
    for (const time of old.times) expect(now.times).toContain(time);
    expect(now.charts['messages']!.increasing).toBe(true);
  });
});
