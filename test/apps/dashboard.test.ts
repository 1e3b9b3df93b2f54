import { once } from 'node:events';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { App } from '../../src/apps/app.js';
import { createChatApp } from '../../src/apps/chat/index.js';
import { createDashboardApp, defaultNodeName, type DashboardMessage, type NodeSample } from '../../src/apps/dashboard/index.js';
import { echoApp } from '../../src/apps/echo/index.js';
import type { Sample } from '../../src/apps/host/metrics.js';
import { AppServer } from '../../src/apps/host/server.js';
import { parsePrometheusText, type ParsedFamily } from './prometheus-text.js';
import { until } from '../wait.js';
import { get } from './host/http-get.js';

/**
 * The dashboard over real sockets on 127.0.0.1: history then a sample per
 * interval, counters that follow bursts of chat and echo messages exactly,
 * `/metrics` as Prometheus text, the sampler's timer, and `/vendor/`.
 */

let server: AppServer | null = null;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await server?.close();
  server = null;
  vi.restoreAllMocks();
});

async function start(apps: readonly App[]): Promise<number> {
  server = new AppServer({ apps, logLevel: 'silent', websocket: { heartbeat: false } });
  return (await server.listen(0)).port;
}

/** Resolve once `predicate` holds, polling every 5 ms; throw after `timeout` ms. */

/** A `ws` client that keeps every message with the time it arrived. */
class Client {
  readonly received: Array<{ at: number; text: string; bytes: number }> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      expect(isBinary).toBe(false);
      const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      this.received.push({ at: performance.now(), text: buffer.toString('utf8'), bytes: buffer.length });
    });
  }

  static async open(port: number, path: string): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    sockets.push(ws);
    // Listening before the open: the first message may come in the same packet as the handshake.
    const client = new Client(ws);
    await once(ws, 'open');
    return client;
  }

  get messages(): DashboardMessage[] {
    return this.received.map((entry) => JSON.parse(entry.text) as DashboardMessage);
  }

  get samples(): NodeSample[] {
    return this.messages.flatMap((message) => (message.type === 'sample' ? [message.sample] : []));
  }
}

/** The value of one series of a parsed exposition. */
function valueOf(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  return families.get(name)?.samples.find((sample) => JSON.stringify(sample.labels) === JSON.stringify(labels))?.value;
}

describe('dashboard socket', () => {
  it('sends the history first, then one sample per second', async () => {
    const port = await start([createDashboardApp(), echoApp]);
    const client = await Client.open(port, '/dashboard/ws');
    await until(() => client.samples.length >= 2, 'two samples', 3500);
    const [first, ...rest] = client.messages;
    expect(first?.type).toBe('history');
    if (first?.type !== 'history') return;
    expect(first.intervalMs).toBe(1000);
    expect(Array.isArray(first.samples)).toBe(true);
    expect(rest.every((message) => message.type === 'sample')).toBe(true);

    const [a, b] = client.samples as [NodeSample, NodeSample];
    expect(b.time - a.time).toBeGreaterThanOrEqual(500);
    expect(b.time - a.time).toBeLessThanOrEqual(2500);
    expect(a.intervalMs).toBeGreaterThanOrEqual(500);
    expect(a.intervalMs).toBeLessThanOrEqual(2500);
    // The sample counts the page itself, and every mounted app, with the shell.
    expect(Object.keys(b.apps).sort()).toEqual(['dashboard', 'echo', 'shell']);
    expect(b.apps['dashboard']?.connections).toBe(1);
    expect(b.total.connections).toBe(1);
    expect(b.rss).toBeGreaterThan(0);
    expect(b.heapUsed).toBeGreaterThan(0);
    expect(b.heapTotal).toBeGreaterThanOrEqual(b.heapUsed);
    expect(b.cpu).toBeGreaterThanOrEqual(0);
    expect(b.loop.max).toBeGreaterThanOrEqual(b.loop.mean);
    // Each sample names its node: by default this host and process.
    expect(defaultNodeName()).toBe(`${hostname()}:${process.pid}`);
    expect(a.node).toBe(defaultNodeName());
    expect(b.node).toBe(defaultNodeName());
  });

  it('names its samples, in the history and live, after the configured node, and refuses names that cannot be one', async () => {
    const port = await start([createDashboardApp({ intervalMs: 25, node: 'edge-2' })]);
    const first = await Client.open(port, '/dashboard/ws');
    await until(() => first.samples.length >= 2, 'two samples');
    const second = await Client.open(port, '/dashboard/ws');
    await until(() => second.samples.length >= 1, 'a sample after the history');
    const history = second.messages[0];
    expect(history?.type === 'history' && history.samples.length).toBeGreaterThan(0);
    if (history?.type !== 'history') return;
    for (const sample of [...history.samples, ...first.samples, ...second.samples]) expect(sample.node).toBe('edge-2');
    for (const node of ['', '*', 'x'.repeat(65), 'tab\there']) expect(() => createDashboardApp({ node })).toThrow(RangeError);
  });

  it('keeps the last `historySize` samples, and none is both in a history and published after it', async () => {
    const port = await start([createDashboardApp({ intervalMs: 25, historySize: 5 })]);
    const watcher = await Client.open(port, '/dashboard/ws');
    await until(() => watcher.samples.length >= 8, 'eight samples');
    const newcomer = await Client.open(port, '/dashboard/ws');
    await until(() => newcomer.samples.length >= 1, 'a sample after the history');
    const history = newcomer.messages[0];
    expect(history?.type).toBe('history');
    if (history?.type !== 'history') return;
    expect(history.samples).toHaveLength(5);
    const times = history.samples.map((sample) => sample.time);
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    expect(new Set(times).size).toBe(5);

    // Whatever the watcher saw, the newcomer's history is a run of it, and its first sample the next one.
    const seen = watcher.samples;
    const lastInHistory = history.samples.at(-1)!;
    const index = seen.findIndex((sample) => sample.time === lastInHistory.time);
    expect(index).toBeGreaterThanOrEqual(4);
    expect(seen.slice(index - 4, index + 1)).toEqual(history.samples);
    await until(() => watcher.samples.length > index + 1, 'the watcher to get the next sample');
    expect(newcomer.samples[0]).toEqual(watcher.samples[index + 1]);
  });

  it('answers a message with an error and stays open', async () => {
    const port = await start([createDashboardApp({ intervalMs: 50 })]);
    const client = await Client.open(port, '/dashboard/ws');
    client.ws.send('hello');
    await until(() => client.messages.some((message) => message.type === 'error'), 'an error');
    await until(() => client.samples.length >= 1, 'a sample after the error');
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('counters', () => {
  it('follow a burst of N chat messages exactly, published copies included', async () => {
    const N = 40;
    const port = await start([createChatApp({ rateLimit: { limit: 1000 } }), createDashboardApp({ intervalMs: 50 })]);
    const dashboard = await Client.open(port, '/dashboard/ws');
    await until(() => dashboard.samples.length >= 1, 'a first sample');
    const base = dashboard.samples.at(-1)!.apps['chat']!;
    expect(base.messagesInTotal).toBe(0);

    const chat = await Client.open(port, '/chat/ws');
    const sent: string[] = [JSON.stringify({ type: 'join', nick: 'counter', room: 'metrics' })];
    chat.ws.send(sent[0]!);
    await until(() => chat.received.some((entry) => entry.text.includes('"presence"')), 'the join');
    for (let i = 0; i < N; i++) {
      const text = JSON.stringify({ type: 'message', text: `burst ${i}` });
      sent.push(text);
      chat.ws.send(text);
    }
    await until(() => chat.received.filter((entry) => entry.text.includes('"type":"message"')).length === N, `${N} messages back`);

    const expected = {
      messagesInTotal: sent.length,
      bytesInTotal: sent.reduce((sum, text) => sum + Buffer.byteLength(text), 0),
      messagesOutTotal: chat.received.length,
      bytesOutTotal: chat.received.reduce((sum, entry) => sum + entry.bytes, 0),
    };
    const matches = (sample: Sample): boolean => {
      const figures = sample.apps['chat']!;
      return (
        figures.messagesInTotal === expected.messagesInTotal &&
        figures.bytesInTotal === expected.bytesInTotal &&
        figures.messagesOutTotal === expected.messagesOutTotal &&
        figures.bytesOutTotal === expected.bytesOutTotal
      );
    };
    await until(() => dashboard.samples.some(matches), `a sample with the chat totals ${JSON.stringify(expected)}`);
    const at = dashboard.samples.findIndex(matches);
    // Nothing more is counted afterwards: the figures are exact, not a lower bound.
    await until(() => dashboard.samples.length >= at + 3, 'two more samples');
    for (const sample of dashboard.samples.slice(at)) expect(matches(sample)).toBe(true);
    expect(dashboard.samples.at(-1)!.apps['chat']!.connections).toBe(1);

    // The rates integrate back to the counts: rate × interval, summed over the samples.
    const integrated = dashboard.samples.reduce((sum, sample) => sum + (sample.apps['chat']!.messagesIn * sample.intervalMs) / 1000, 0);
    expect(integrated).toBeCloseTo(sent.length, 0);
    const total = dashboard.samples.at(-1)!.total;
    expect(total.messagesInTotal).toBe(sent.length);
  });

  it('at /metrics, follow a burst of N echo messages exactly', async () => {
    const N = 100;
    const port = await start([echoApp, createDashboardApp()]);
    const client = await Client.open(port, '/echo/ws');
    let bytes = 0;
    for (let i = 0; i < N; i++) {
      const text = `echo number ${i}`;
      bytes += Buffer.byteLength(text);
      client.ws.send(text);
    }
    await until(() => client.received.length === N, `${N} echoes`);
    const response = await get(port, '/metrics');
    const families = parsePrometheusText(response.body);
    const echo = { app: 'echo' };
    expect(valueOf(families, 'sockeye_messages_received_total', echo)).toBe(N);
    expect(valueOf(families, 'sockeye_messages_sent_total', echo)).toBe(N);
    expect(valueOf(families, 'sockeye_received_bytes_total', echo)).toBe(bytes);
    expect(valueOf(families, 'sockeye_sent_bytes_total', echo)).toBe(bytes);
    expect(valueOf(families, 'sockeye_connections', echo)).toBe(1);
    expect(valueOf(families, 'sockeye_connections_opened_total', echo)).toBe(1);

    client.ws.close(1000);
    await until(() => server!.websockets.connections.size === 0, 'the close');
    const after = parsePrometheusText((await get(port, '/metrics')).body);
    // Closed connections' counts are carried over; the gauge falls.
    expect(valueOf(after, 'sockeye_messages_received_total', echo)).toBe(N);
    expect(valueOf(after, 'sockeye_connections', echo)).toBe(0);
  });
});

describe('/metrics', () => {
  it('is Prometheus text 0.0.4: content type, HELP and TYPE for every metric, well-formed samples, a series per app', async () => {
    const port = await start([createChatApp(), createDashboardApp(), echoApp]);
    const response = await get(port, '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-store');
    const families = parsePrometheusText(response.body);
    expect(families.get('sockeye_connections')?.type).toBe('gauge');
    expect(
      families
        .get('sockeye_connections')
        ?.samples.map((sample) => sample.labels['app'])
        .sort(),
    ).toEqual(['chat', 'dashboard', 'echo', 'shell']);
    for (const [name, family] of families) {
      if (family.type === 'counter') expect(name).toMatch(/_total$/);
      expect(family.samples.length, name).toBeGreaterThan(0);
    }
    expect(valueOf(families, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(families, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(families, 'sockeye_event_loop_delay_max_seconds')).toBeGreaterThanOrEqual(0);

    const head = await get(port, '/metrics', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect((await get(port, '/metrics', { method: 'POST' })).status).toBe(405);
  });
});

describe('sampler timer', () => {
  it('is unref’d, and AppServer.close() stops it', async () => {
    const intervalMs = 37;
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    await start([createDashboardApp({ intervalMs })]);
    const call = setIntervalSpy.mock.calls.findIndex((args) => args[1] === intervalMs);
    expect(call).toBeGreaterThanOrEqual(0);
    const timer = setIntervalSpy.mock.results[call]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);

    const readings = vi.spyOn(server!.websockets, 'traffic');
    await until(() => readings.mock.calls.length >= 2, 'two ticks');
    await server!.close();
    server = null;
    const count = readings.mock.calls.length;
    await new Promise((resolve) => setTimeout(resolve, intervalMs * 4));
    expect(readings.mock.calls.length).toBe(count);
  });
});

describe('/vendor/', () => {
  it('serves the whitelisted uPlot files with their types and a max-age, and answers 304 to a matching ETag', async () => {
    const port = await start([createDashboardApp()]);
    const script = await get(port, '/vendor/uplot/uPlot.esm.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['cache-control']).toBe('public, max-age=86400');
    expect(script.body).toContain('export { uPlot as default }');
    const style = await get(port, '/vendor/uplot/uPlot.min.css');
    expect(style.status).toBe(200);
    expect(style.headers['content-type']).toBe('text/css; charset=utf-8');
    const again = await get(port, '/vendor/uplot/uPlot.esm.js', { headers: { 'If-None-Match': String(script.headers['etag']) } });
    expect(again.status).toBe(304);
  });

  it('serves nothing else from node_modules', async () => {
    const port = await start([createDashboardApp()]);
    for (const path of [
      '/vendor/uplot/package.json',
      '/vendor/uplot/dist/uPlot.cjs.js',
      '/vendor/ws/index.js',
      '/vendor/',
      '/vendor/../package.json',
      '/vendor/uplot/../../package.json',
      '/vendor/uplot%2F..%2F..%2Fpackage.json',
      '/vendor/constructor',
      '/vendor/__proto__',
    ]) {
      const response = await get(port, path);
      expect(response.status, path).toBe(404);
    }
  });
});

describe('page', () => {
  it('is served at /dashboard/ and loads only local scripts and styles', async () => {
    const port = await start([createDashboardApp()]);
    const page = await get(port, '/dashboard/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const references = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(references).toContain('/vendor/uplot/uPlot.min.css');
    expect(references.every((ref) => !/^[a-z]+:\/\//i.test(ref) && !ref.startsWith('//'))).toBe(true);
    const script = await get(port, '/dashboard/dashboard.js');
    expect(script.body).toContain("from '/vendor/uplot/uPlot.esm.js'");
  });
});
