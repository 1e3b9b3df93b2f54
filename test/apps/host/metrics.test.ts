import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appOfRoute,
  cpuPercent,
  EventLoopDelayWindow,
  formatPrometheus,
  metricFamilies,
  ratesBetween,
  sampleBetween,
  trafficByApp,
  type AppTraffic,
  type MetricFamily,
  type Reading,
} from '../../../src/apps/host/metrics.js';
import type { RouteTraffic } from '../../../src/node/server.js';
import { parsePrometheusText } from '../prometheus-text.js';

/** The server's self-measurement as pure computations: grouping, rates from counter deltas, samples, Prometheus text. */

function route(path: string, figures: Partial<RouteTraffic> = {}): RouteTraffic {
  return { path, connections: 0, opened: 0, messagesReceived: 0, bytesReceived: 0, messagesSent: 0, bytesSent: 0, ...figures };
}

function app(name: string, figures: Partial<AppTraffic> = {}): AppTraffic {
  return { app: name, connections: 0, opened: 0, messagesReceived: 0, bytesReceived: 0, messagesSent: 0, bytesSent: 0, ...figures };
}

function reading(at: number, apps: AppTraffic[], cpu = { user: 0, system: 0 }): Reading {
  return { at, time: 1_700_000_000_000 + at, apps, cpu, memory: { rss: 50e6, heapUsed: 10e6, heapTotal: 20e6, external: 1e6 } };
}

const NO_DELAY = { mean: 0, p99: 0, max: 0 };

describe('appOfRoute', () => {
  it('names an app by its /<name>/ws socket, the shell by /ws, anything else by its path', () => {
    expect(appOfRoute('/chat/ws')).toBe('chat');
    expect(appOfRoute('/dashboard/ws')).toBe('dashboard');
    expect(appOfRoute('/ws')).toBe('shell');
    expect(appOfRoute('*')).toBe('*');
    expect(appOfRoute('/a/b/ws')).toBe('/a/b/ws');
  });
});

describe('trafficByApp', () => {
  it('sums the routes of one app and keeps the order of first appearance', () => {
    const apps = trafficByApp([
      route('/chat/ws', { connections: 2, opened: 5, messagesReceived: 10, bytesReceived: 100, messagesSent: 20, bytesSent: 200 }),
      route('/ws', { connections: 1, opened: 1 }),
      route('/x/ws', { connections: 1, opened: 2, messagesReceived: 3, bytesReceived: 4, messagesSent: 5, bytesSent: 6 }),
      route('/x/ws', { connections: 1, opened: 1, messagesReceived: 1, bytesReceived: 1, messagesSent: 1, bytesSent: 1 }),
    ]);
    expect(apps).toEqual([
      app('chat', { connections: 2, opened: 5, messagesReceived: 10, bytesReceived: 100, messagesSent: 20, bytesSent: 200 }),
      app('shell', { connections: 1, opened: 1 }),
      app('x', { connections: 2, opened: 3, messagesReceived: 4, bytesReceived: 5, messagesSent: 6, bytesSent: 7 }),
    ]);
  });
});

describe('ratesBetween', () => {
  it('divides each counter delta by the elapsed time, per second', () => {
    const before = { messagesReceived: 10, bytesReceived: 1000, messagesSent: 5, bytesSent: 50 };
    const after = { messagesReceived: 40, bytesReceived: 4000, messagesSent: 5, bytesSent: 80 };
    expect(ratesBetween(before, after, 500)).toEqual({ messagesIn: 60, bytesIn: 6000, messagesOut: 0, bytesOut: 60 });
    expect(ratesBetween(before, after, 2000)).toEqual({ messagesIn: 15, bytesIn: 1500, messagesOut: 0, bytesOut: 15 });
  });

  it('reads 0 for an empty interval and for a counter that went backwards', () => {
    const before = { messagesReceived: 10, bytesReceived: 10, messagesSent: 10, bytesSent: 10 };
    const after = { messagesReceived: 20, bytesReceived: 5, messagesSent: 10, bytesSent: 10 };
    expect(ratesBetween(before, after, 0)).toEqual({ messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 });
    expect(ratesBetween(before, after, 1000).bytesIn).toBe(0);
  });

  it('integrates back to the delta: rate times elapsed seconds is the number of messages (property)', () => {
    fc.assert(
      fc.property(fc.nat(1e9), fc.nat(1e6), fc.integer({ min: 1, max: 60_000 }), (start, delta, elapsedMs) => {
        const before = { messagesReceived: start, bytesReceived: 0, messagesSent: 0, bytesSent: 0 };
        const after = { ...before, messagesReceived: start + delta };
        const rate = ratesBetween(before, after, elapsedMs).messagesIn;
        expect((rate * elapsedMs) / 1000).toBeCloseTo(delta, 6);
      }),
    );
  });
});

describe('cpuPercent', () => {
  it('is user plus system CPU time over the elapsed time, in percent of one core', () => {
    expect(cpuPercent({ user: 1_000_000, system: 500_000 }, { user: 1_250_000, system: 750_000 }, 1000)).toBe(50);
    // Two threads busy for the whole interval: 200 %.
    expect(cpuPercent({ user: 0, system: 0 }, { user: 1_600_000, system: 400_000 }, 1000)).toBe(200);
    expect(cpuPercent({ user: 0, system: 0 }, { user: 5, system: 5 }, 0)).toBe(0);
  });
});

describe('sampleBetween', () => {
  it('gives per-app and total rates, cumulative counts at the end, CPU, memory and the loop delay', () => {
    const before = reading(1000, [app('chat', { messagesReceived: 100, bytesReceived: 1000, messagesSent: 300, bytesSent: 3000 }), app('echo')], {
      user: 0,
      system: 0,
    });
    const after = reading(
      2000,
      [
        app('chat', { connections: 3, messagesReceived: 110, bytesReceived: 1500, messagesSent: 330, bytesSent: 4500 }),
        app('echo', { connections: 1, messagesReceived: 7, bytesReceived: 70, messagesSent: 7, bytesSent: 70 }),
      ],
      { user: 100_000, system: 25_000 },
    );
    const sample = sampleBetween(before, after, { mean: 0.5, p99: 2.25, max: 3.0004 });
    expect(sample.time).toBe(after.time);
    expect(sample.intervalMs).toBe(1000);
    expect(sample.apps['chat']).toEqual({
      connections: 3,
      messagesIn: 10,
      messagesOut: 30,
      bytesIn: 500,
      bytesOut: 1500,
      messagesInTotal: 110,
      messagesOutTotal: 330,
      bytesInTotal: 1500,
      bytesOutTotal: 4500,
    });
    expect(sample.apps['echo']?.messagesIn).toBe(7);
    expect(sample.total).toEqual({
      connections: 4,
      messagesIn: 17,
      messagesOut: 37,
      bytesIn: 570,
      bytesOut: 1570,
      messagesInTotal: 117,
      messagesOutTotal: 337,
      bytesInTotal: 1570,
      bytesOutTotal: 4570,
    });
    expect(sample.cpu).toBe(12.5);
    expect([sample.rss, sample.heapUsed, sample.heapTotal]).toEqual([50e6, 10e6, 20e6]);
    expect(sample.loop).toEqual({ mean: 0.5, p99: 2.25, max: 3 });
  });

  it('counts an app that appeared during the interval from zero', () => {
    const sample = sampleBetween(reading(0, []), reading(500, [app('new', { messagesReceived: 4 })]), NO_DELAY);
    expect(sample.apps['new']?.messagesIn).toBe(8);
    expect(sample.total.messagesIn).toBe(8);
  });

  it('rounds rates to two decimals', () => {
    const sample = sampleBetween(reading(0, [app('a')]), reading(3000, [app('a', { messagesReceived: 1 })]), NO_DELAY);
    expect(sample.apps['a']?.messagesIn).toBe(0.33);
  });
});

describe('EventLoopDelayWindow', () => {
  /** A window on a hand-moved clock whose probe timer the test fires. */
  function manualWindow(resolutionMs = 10) {
    let now = 0;
    let probe: (() => void) | null = null;
    let cleared = false;
    const window = new EventLoopDelayWindow({
      resolutionMs,
      now: () => now,
      timers: {
        setInterval(callback) {
          probe = callback;
          return 'timer';
        },
        clearInterval(handle) {
          expect(handle).toBe('timer');
          cleared = true;
        },
      },
    });
    return {
      window,
      /** The probe fires `afterMs` after the previous one. */
      fire(afterMs: number) {
        now += afterMs;
        probe!();
      },
      get cleared() {
        return cleared;
      },
    };
  }

  it('records how much later than due each probe fired, in ms: mean, p99 and max of the window', () => {
    const m = manualWindow(10);
    for (let i = 0; i < 99; i++) m.fire(11);
    m.fire(60);
    const delay = m.window.take();
    expect(delay.max).toBeCloseTo(50, 1);
    expect(delay.mean).toBeCloseTo((99 * 1 + 50) / 100, 2);
    expect(delay.p99).toBeCloseTo(1, 1);
  });

  it('starts a new window at each take(), without losing the interval that spans the boundary', () => {
    const m = manualWindow(10);
    m.fire(10);
    expect(m.window.take().max).toBeLessThan(0.001);
    // The stall begins right after the boundary: the first probe of the next window sees it.
    m.fire(210);
    expect(m.window.take().max).toBeCloseTo(200, 1);
    m.fire(10);
    expect(m.window.take().max).toBeLessThan(0.001);
  });

  it('reads 0 for a window without a single probe, and for a loop never late', () => {
    const m = manualWindow(10);
    expect(m.window.take()).toEqual(NO_DELAY);
    m.fire(9);
    expect(m.window.take().max).toBeLessThan(0.001);
  });

  it('close() stops its timer', () => {
    const m = manualWindow();
    m.window.close();
    expect(m.cleared).toBe(true);
  });

  it('sees a blocked event loop (real timers)', async () => {
    const window = new EventLoopDelayWindow({ resolutionMs: 5 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 30));
      window.take();
      const until = performance.now() + 80;
      while (performance.now() < until) {
        // Keep the loop busy: the probe cannot fire meanwhile.
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
      const delay = window.take();
      expect(delay.max).toBeGreaterThanOrEqual(60);
      expect(delay.max).toBeLessThan(5000);
      expect(delay.p99).toBeLessThanOrEqual(delay.max);
    } finally {
      window.close();
    }
  });
});

describe('formatPrometheus', () => {
  it('writes HELP and TYPE before the samples of each metric, labels in braces, and ends with a line feed', () => {
    const text = formatPrometheus([
      {
        name: 'a_total',
        help: 'Things.',
        type: 'counter',
        samples: [
          { labels: { app: 'chat' }, value: 3 },
          { labels: { app: 'echo' }, value: 0 },
        ],
      },
      { name: 'b', help: 'Level.', type: 'gauge', samples: [{ value: 1.5 }] },
    ]);
    expect(text).toBe(
      '# HELP a_total Things.\n# TYPE a_total counter\na_total{app="chat"} 3\na_total{app="echo"} 0\n' + '# HELP b Level.\n# TYPE b gauge\nb 1.5\n',
    );
  });

  it('escapes backslash and line feed in HELP, and the double quote too in label values', () => {
    const text = formatPrometheus([{ name: 'x', help: 'a\\b\nc "d"', type: 'gauge', samples: [{ labels: { l: 'q"\\\n' }, value: 1 }] }]);
    expect(text).toContain('# HELP x a\\\\b\\nc "d"\n');
    expect(text).toContain('x{l="q\\"\\\\\\n"} 1\n');
  });

  it('spells NaN and infinities the way Go parses them', () => {
    const text = formatPrometheus([
      {
        name: 'g',
        help: 'h',
        type: 'gauge',
        samples: [
          { labels: { k: '1' }, value: NaN },
          { labels: { k: '2' }, value: Infinity },
          { labels: { k: '3' }, value: -Infinity },
        ],
      },
    ]);
    expect(text.split('\n').slice(2, 5)).toEqual(['g{k="1"} NaN', 'g{k="2"} +Inf', 'g{k="3"} -Inf']);
  });

  it('round-trips any help text, label values and values through a strict parser (property)', () => {
    const family = fc.record({
      help: fc.string(),
      gauge: fc.boolean(),
      samples: fc.uniqueArray(fc.record({ app: fc.string({ unit: 'binary' }), value: fc.double({ noNaN: true, min: 0 }) }), {
        selector: (sample) => sample.app,
        maxLength: 5,
      }),
    });
    fc.assert(
      fc.property(fc.array(family, { minLength: 1, maxLength: 4 }), (specs) => {
        const families: MetricFamily[] = specs.map((spec, i) => ({
          name: spec.gauge ? `m${i}` : `m${i}_total`,
          help: spec.help,
          type: spec.gauge ? 'gauge' : 'counter',
          // -0 prints as 0: compare with +0.
          samples: spec.samples.map((s) => ({ labels: { app: s.app }, value: s.value === 0 ? 0 : s.value })),
        }));
        const parsed = parsePrometheusText(formatPrometheus(families));
        for (const family of families) {
          const read = parsed.get(family.name);
          expect(read?.help).toBe(family.help);
          expect(read?.type).toBe(family.type);
          expect(read?.samples).toEqual(family.samples.map((s) => ({ labels: s.labels, value: s.value })));
        }
      }),
    );
  });
});

describe('metricFamilies', () => {
  const input = {
    reading: reading(
      0,
      [app('chat', { connections: 2, opened: 3, messagesReceived: 4, bytesReceived: 5, messagesSent: 6, bytesSent: 7 }), app('shell')],
      {
        user: 1_500_000,
        system: 500_000,
      },
    ),
    loop: { mean: 1, p99: 20, max: 250 },
    pubsub: {
      published: 1,
      delivered: 2,
      dropped: 3,
      closedSlow: 4,
      recovered: 5,
      recoveryFailed: 6,
      broker: {
        published: 7,
        received: 8,
        duplicates: 9,
        gapsCaughtUp: 10,
        gapsLost: 11,
        queueDepth: 12,
        publishFailed: 13,
        state: 'reconnecting' as const,
      },
    },
    server: {
      opened: 14,
      refused: { 404: 2, 403: 1 },
      closed: { 1006: 3, 1000: 5 },
      heartbeatDrops: 15,
      backpressureCloses: 16,
      backpressureDrops: 17,
      rateLimited: 18,
      rateLimitCloses: 19,
      hookFailures: 20,
    },
    startTimeSeconds: 1_700_000_000.5,
  };

  it('is valid exposition text: every sample well-formed, every metric with HELP and TYPE, counters as *_total', () => {
    const parsed = parsePrometheusText(formatPrometheus(metricFamilies(input)));
    for (const [name, family] of parsed) {
      expect(family.help.length, name).toBeGreaterThan(0);
      expect(family.samples.length, name).toBeGreaterThan(0);
    }
  });

  it('reports traffic per app label, seconds for CPU time and delays, bytes for memory', () => {
    const parsed = parsePrometheusText(formatPrometheus(metricFamilies(input)));
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      parsed.get(name)?.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    expect(parsed.get('sockeye_connections')?.type).toBe('gauge');
    expect(value('sockeye_connections', { app: 'chat' })).toBe(2);
    expect(value('sockeye_connections', { app: 'shell' })).toBe(0);
    expect(parsed.get('sockeye_messages_received_total')?.type).toBe('counter');
    expect(value('sockeye_connections_opened_total', { app: 'chat' })).toBe(3);
    expect(value('sockeye_messages_received_total', { app: 'chat' })).toBe(4);
    expect(value('sockeye_received_bytes_total', { app: 'chat' })).toBe(5);
    expect(value('sockeye_messages_sent_total', { app: 'chat' })).toBe(6);
    expect(value('sockeye_sent_bytes_total', { app: 'chat' })).toBe(7);
    expect(value('sockeye_pubsub_closed_slow_total')).toBe(4);
    expect(value('sockeye_pubsub_recovered_total')).toBe(5);
    expect(value('sockeye_pubsub_recovery_failed_total')).toBe(6);
    expect(value('sockeye_broker_published_total')).toBe(7);
    expect(value('sockeye_broker_received_total')).toBe(8);
    expect(value('sockeye_broker_duplicates_total')).toBe(9);
    expect(value('sockeye_broker_gaps_caught_up_total')).toBe(10);
    expect(value('sockeye_broker_gaps_lost_total')).toBe(11);
    expect(value('sockeye_broker_queue_depth')).toBe(12);
    expect(value('sockeye_broker_publish_failed_total')).toBe(13);
    expect(value('sockeye_upgrades_accepted_total')).toBe(14);
    expect(parsed.get('sockeye_upgrades_refused_total')?.samples).toEqual([
      { labels: { status: '403' }, value: 1 },
      { labels: { status: '404' }, value: 2 },
    ]);
    expect(value('sockeye_closes_total', { code: '1000' })).toBe(5);
    expect(value('sockeye_closes_total', { code: '1006' })).toBe(3);
    expect(value('sockeye_heartbeat_drops_total')).toBe(15);
    expect(value('sockeye_backpressure_closes_total')).toBe(16);
    expect(value('sockeye_backpressure_drops_total')).toBe(17);
    expect(value('sockeye_rate_limited_total')).toBe(18);
    expect(value('sockeye_rate_limit_closes_total')).toBe(19);
    expect(value('sockeye_hook_failures_total')).toBe(20);
    expect(parsed.get('sockeye_broker_state')?.samples).toEqual([
      { labels: { state: 'connecting' }, value: 0 },
      { labels: { state: 'ready' }, value: 0 },
      { labels: { state: 'reconnecting' }, value: 1 },
      { labels: { state: 'closed' }, value: 0 },
    ]);
    expect(value('process_cpu_seconds_total')).toBe(2);
    expect(value('process_cpu_user_seconds_total')).toBe(1.5);
    expect(value('sockeye_event_loop_delay_p99_seconds')).toBe(0.02);
    expect(value('sockeye_event_loop_delay_max_seconds')).toBe(0.25);
    expect(value('process_resident_memory_bytes')).toBe(50e6);
    expect(value('nodejs_heap_size_used_bytes')).toBe(10e6);
    expect(value('process_start_time_seconds')).toBe(1_700_000_000.5);
  });
});
