import type { Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/apps/app.js';
import { createChatApp } from '../../src/apps/chat/index.js';
import { createDashboardApp } from '../../src/apps/dashboard/index.js';
import type { Route, WebSocketServer } from '../../src/node/server.js';
import { reject } from '../../src/node/upgrade.js';
import { useBrowser } from './browser.js';

/**
 * The dashboard page in Chromium: its uPlot charts advance with every
 * sample, its counters follow a burst of chat messages sent from a chat
 * page, and after a lost connection or a server restart it takes the
 * server's history again without showing any point twice.
 */

/** Samples every 250 ms, so that a test sees several in a second. */
const INTERVAL_MS = 250;

/**
 * While `away` is set, the dashboard's socket refuses every new connection
 * (HTTP 503, before the upgrade): the page cannot reconnect, as if the
 * server were gone, while the server keeps its port (no port is closed and
 * bound again). `refused` counts the refusals.
 */
const gate = { away: false, refused: 0 };

function gated(app: App): App {
  return {
    ...app,
    mount(server, context) {
      const route = <Context>(path: string, handler: Route<Context>): WebSocketServer => {
        const wrapped = Object.create(handler) as Route<Context>;
        wrapped.authenticate = (request) => {
          if (gate.away) {
            gate.refused++;
            return reject(503, 'away for a test');
          }
          return handler.authenticate === undefined ? (undefined as Context) : handler.authenticate(request);
        };
        return server.route(path, wrapped);
      };
      const proxy = new Proxy(server, {
        get(target, key) {
          if (key === 'route') return route;
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      return app.mount(proxy, context);
    },
  };
}

const web = useBrowser({ apps: [createChatApp({ rateLimit: { limit: 100 } }), gated(createDashboardApp({ intervalMs: INTERVAL_MS }))] });

afterEach(() => {
  gate.away = false;
  gate.refused = 0;
});

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
    const first = await eventually(
      () => view(page),
      (v) => v.charts['messages']!.points >= 2,
      'two points',
    );
    expect(Object.keys(first.charts).sort()).toEqual(['bytes', 'connections', 'cpu', 'loop', 'memory', 'messages']);
    // One series per app in the connections chart, the shell's socket included.
    const [all, ...perApp] = first.charts['connections']!.labels;
    expect(all).toBe('all');
    expect(perApp.sort()).toEqual(['chat', 'dashboard', 'home page']);

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
    // The samples' shapes and the total across nodes come from the dashboard's wire modules, compiled.
    expect(web.requests).toEqual(expect.arrayContaining([web.url('/dashboard/wire/protocol.js'), web.url('/dashboard/wire/series.js')]));
    expect(await counter(page, 'connections')).toBeGreaterThanOrEqual(1);
    expect(await counter(page, 'rss')).toBeGreaterThan(0);
  });

  it('counts a burst of chat messages sent from a chat page', async () => {
    const N = 20;
    const dashboard = await openDashboard();
    await eventually(
      () => counter(dashboard, 'messages-in-total'),
      (v) => Number.isFinite(v),
      'a first sample',
    );
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
    await chat
      .locator('#messages li.message')
      .nth(N - 1)
      .waitFor({ timeout: WAIT });

    // The join and N messages went in; each came back out to the chat page at least once.
    const after = await eventually(
      () => counter(dashboard, 'messages-in-total'),
      (v) => v >= before + N + 1,
      `messages in to reach ${before + N + 1}`,
    );
    expect(after).toBeGreaterThanOrEqual(before + N + 1);
    // A sample may fall between a message counted in and its echo counted out: wait for a later one.
    await eventually(
      () => counter(dashboard, 'messages-out-total'),
      (v) => v >= N,
      `messages out to reach ${N}`,
    );
    expect(await counter(dashboard, 'connections')).toBeGreaterThanOrEqual(2);
    const chatRow = dashboard.locator('#apps tbody tr[data-app="chat"]');
    await eventually(
      async () => Number((await chatRow.locator('td').nth(5).textContent())?.replace(/\D/g, '')),
      (v) => v >= N + 1,
      'the chat row',
    );
    // The burst shows as a rate above zero in some point of the messages chart.
    const peak = await dashboard.evaluate(() => {
      const hook = (globalThis as unknown as { sockeyeDashboard: { charts: Map<string, { data: Array<Array<number | null>> }> } }).sockeyeDashboard;
      return Math.max(...(hook.charts.get('messages')!.data[1] as number[]).map((v) => v ?? 0));
    });
    expect(peak).toBeGreaterThan(0);
  });

  it('after a lost connection, takes the history again without showing any point twice', async () => {
    const page = await openDashboard();
    await eventually(
      () => view(page),
      (v) => v.times.length >= 4,
      'four samples',
    );
    const server = web.server!;
    for (const connection of server.websockets.connections) connection.terminate('test: connection lost');
    await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
    await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
    const before = (await view(page)).times.length;
    const after = await eventually(
      () => view(page),
      (v) => v.times.length >= before + 2,
      'two samples after the reconnect',
    );
    expect(strictlyIncreasing(after.times)).toBe(true);
    expect(after.charts['messages']!.increasing).toBe(true);
    // Every sample is one the server produced, each once: the page holds a run of consecutive samples.
    const gaps = after.times.slice(1).map((time, i) => time - after.times[i]!);
    expect(Math.max(...gaps)).toBeLessThan(INTERVAL_MS * 3);
    expect(Math.min(...gaps)).toBeGreaterThan(INTERVAL_MS / 3);
  });

  it('after a server restart, keeps what it had, adds the new server’s samples, and repeats none', async () => {
    const page = await openDashboard();
    const old = await eventually(
      () => view(page),
      (v) => v.times.length >= 3,
      'three samples',
    );
    await web.restartServer();
    await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
    const now = await eventually(
      () => view(page),
      (v) => v.times.length >= old.times.length + 3,
      'three samples from the new server',
    );
    expect(strictlyIncreasing(now.times)).toBe(true);
    for (const time of old.times) expect(now.times).toContain(time);
    expect(now.charts['messages']!.increasing).toBe(true);
  });

  it('keeps each legend to one line, shorter than its chart, and shows or hides a series on a click', async () => {
    const page = await openDashboard();
    await eventually(
      () => view(page),
      (v) => v.charts['messages']!.points >= 2,
      'two points',
    );
    const sizes = await page.evaluate(() => {
      interface Box {
        height: number;
      }
      interface Element {
        getBoundingClientRect(): Box;
        querySelector(selector: string): Element | null;
        querySelectorAll(selector: string): ArrayLike<Element>;
      }
      const document = (globalThis as unknown as { document: Element }).document;
      return Array.from(document.querySelectorAll('figure.chart'), (figure) => ({
        legend: figure.querySelector('.legend')!.getBoundingClientRect().height,
        entry: figure.querySelector('.legend .entry')!.getBoundingClientRect().height,
        plot: figure.querySelector('canvas')!.getBoundingClientRect().height,
        uplotLegends: figure.querySelectorAll('.u-legend').length,
      }));
    });
    expect(sizes).toHaveLength(6);
    for (const size of sizes) {
      expect(size.uplotLegends).toBe(0);
      expect(size.plot).toBeGreaterThan(100);
      // One line of entries (plus room for a thin scrollbar), a small part of the chart's height.
      expect(size.legend).toBeLessThan(size.entry * 2);
      expect(size.legend).toBeLessThan(size.plot / 4);
    }

    const shown = (index: number): Promise<boolean> =>
      page.evaluate((i) => {
        const hook = (globalThis as unknown as { sockeyeDashboard: { charts: Map<string, { series: Array<{ show: boolean }> }> } }).sockeyeDashboard;
        return hook.charts.get('messages')!.series[i]!.show;
      }, index);
    // Series 3 is the first application's "in" line, hidden until asked for.
    const entry = page.locator('#chart-messages').locator('xpath=preceding-sibling::div[@class="legend"]').locator('.entry[data-series="3"]');
    expect(await shown(3)).toBe(false);
    expect(await entry.getAttribute('aria-pressed')).toBe('false');
    await entry.click();
    expect(await shown(3)).toBe(true);
    expect(await entry.getAttribute('aria-pressed')).toBe('true');
    await entry.click();
    expect(await shown(3)).toBe(false);
  });

  it('names the home page’s socket in the per-application table, and says what it is', async () => {
    const page = await openDashboard();
    const row = page.locator('#apps tbody tr[data-app="shell"]');
    await row.waitFor({ timeout: WAIT });
    expect(await row.locator('th').textContent()).toBe('home page (/ws)');
    expect(await row.getAttribute('title')).toMatch(/home page.*\/ws.*reachable/);
    expect(await page.locator('.note').textContent()).toMatch(/"home page" row is the socket the home page opens at \/ws/);
  });

  it('greys the tiles, charts and table while reconnecting, and shows them live again once back', async () => {
    web.allowConsoleErrors(/^WebSocket connection to '.*' failed/);
    const page = await openDashboard();
    await eventually(
      () => counter(page, 'connections'),
      (v) => Number.isFinite(v),
      'a first sample',
    );
    const look = (): Promise<{ stale: boolean; state: string; opacity: number; filter: string }> =>
      page.evaluate(() => {
        interface Element {
          classList: { contains(name: string): boolean };
          dataset: Record<string, string | undefined>;
        }
        const scope = globalThis as unknown as {
          document: { querySelector(selector: string): Element };
          getComputedStyle(element: Element): { opacity: string; filter: string };
        };
        const tile = scope.document.querySelector('.tile');
        const style = scope.getComputedStyle(tile);
        return {
          stale: scope.document.querySelector('main.dashboard').classList.contains('stale'),
          state: scope.document.querySelector('#status').dataset['state'] ?? '',
          opacity: Number(style.opacity),
          filter: style.filter,
        };
      });
    expect(await look()).toEqual({ stale: false, state: 'open', opacity: 1, filter: 'none' });

    gate.away = true;
    for (const connection of web.server!.websockets.connections) connection.terminate('test: server away');
    await page.locator('main.dashboard.stale').waitFor({ timeout: WAIT });
    // Two attempts to come back refused: the page is still away, and still says so.
    await eventually(
      async () => gate.refused,
      (n) => n >= 2,
      'two refused reconnection attempts',
    );
    const away = await look();
    expect(away.state).toBe('reconnecting');
    expect(away.stale).toBe(true);
    expect(away.opacity).toBeLessThan(0.5);
    expect(away.filter).toBe('grayscale(1)');
    expect(await page.locator('main.dashboard').getAttribute('aria-busy')).toBe('true');

    gate.away = false;
    // The back-off between attempts grows up to 5 s: allow for one full wait.
    await page.locator('#status[data-state="open"]').waitFor({ timeout: 3 * WAIT });
    await page.locator('main.dashboard:not(.stale)').waitFor({ timeout: WAIT });
    expect(await look()).toEqual({ stale: false, state: 'open', opacity: 1, filter: 'none' });
  });

  it('shows the total of the samples of several nodes, with a line per node', async () => {
    const page = await openDashboard();
    interface Seen {
      node: string;
      time: number;
      total: { connections: number };
    }
    const latest = (): Promise<Seen | null> =>
      page.evaluate(() => (globalThis as unknown as { sockeyeDashboard: { samples: Seen[] } }).sockeyeDashboard.samples.at(-1) ?? null);
    const real = (await eventually(latest, (sample) => sample !== null, 'a first sample'))!;
    expect(await page.evaluate(() => (globalThis as unknown as { sockeyeDashboard: { nodes: string[] } }).sockeyeDashboard.nodes)).toEqual([]);

    // A second node's samples, as a cluster will deliver them: here the test sends them on the page's own connection.
    const [connection] = web.server!.websockets.connections;
    expect(connection).toBeDefined();
    const other = 'node-b:7';
    let nodes: string[] = [];
    let shown = NaN;
    for (let i = 0; i < 100 && !(nodes.length === 2 && shown === 1001); i++) {
      const time = Date.now();
      connection!.send(JSON.stringify({ type: 'sample', sample: { ...real, node: other, time, total: { ...real.total, connections: 1000 } } }));
      await page.waitForTimeout(100);
      nodes = await page.evaluate(() => (globalThis as unknown as { sockeyeDashboard: { nodes: string[] } }).sockeyeDashboard.nodes);
      shown = await counter(page, 'connections');
    }
    expect(nodes).toEqual([real.node, other]);
    // The tile shows the cluster: this node's one connection and the other's thousand.
    expect(shown).toBe(1001);
    const labels = (await view(page)).charts['connections']!.labels;
    expect(labels.slice(0, 3)).toEqual(['all', `all @ ${real.node}`, `all @ ${other}`]);
    expect((await view(page)).charts['messages']!.labels.slice(0, 6)).toEqual([
      'in',
      `in @ ${real.node}`,
      `in @ ${other}`,
      'out',
      `out @ ${real.node}`,
      `out @ ${other}`,
    ]);

    // The other node stops: a few intervals later it is gone from the tile and its lines from the charts.
    await eventually(
      () => counter(page, 'connections'),
      (v) => v === 1,
      'the tile without the other node',
    );
    await eventually(
      () => page.evaluate(() => (globalThis as unknown as { sockeyeDashboard: { nodes: string[] } }).sockeyeDashboard.nodes),
      (list) => list.length === 0,
      'the per-node lines to go',
    );
    expect((await view(page)).charts['connections']!.labels[1]).not.toContain('@');
  });
});
