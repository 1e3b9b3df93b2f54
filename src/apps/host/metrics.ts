import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { RouteTraffic, TrafficCounts, WebSocketServer } from '../../node/server.js';
import type { ServerCounters } from '../../node/server-counters.js';
import type { BrokerState } from '../../pubsub/broker.js';
import type { HubStats } from '../../pubsub/pubsub.js';

/**
 * The server measuring itself: what it reads at one instant (cumulative
 * traffic counters per application, process CPU time and memory), how two
 * readings become a one-second sample for the dashboard (rates from counter
 * deltas), and the same figures as Prometheus text for `/metrics`.
 *
 * Nothing here touches the per-message path: connections keep plain integer
 * counters, and this module reads them when asked.
 */

// ---- readings -----------------------------------------------------------------

/** One application's traffic since the server started, all its routes together. */
export interface AppTraffic extends TrafficCounts {
  app: string;
  /** Connections open now. */
  connections: number;
  /** Connections accepted since the server started. */
  opened: number;
}

export interface MemoryFigures {
  /** Resident set size, bytes. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Memory of C++ objects bound to JavaScript ones (Buffers among them), bytes. */
  external: number;
}

/** Everything read at one instant: counters are cumulative, memory is a gauge. */
export interface Reading {
  /** Monotonic milliseconds (`performance.now()`): elapsed time between readings comes from here. */
  at: number;
  /** Wall-clock milliseconds since the epoch, for the samples' time axis. */
  time: number;
  apps: AppTraffic[];
  /** CPU time of the whole process (every thread), microseconds, as `process.cpuUsage()` reports it. */
  cpu: { user: number; system: number };
  memory: MemoryFigures;
}

/** The name the shell's own socket (`/ws`, the home page's reachability check) is reported under. */
export const SHELL_APP = 'shell';

/**
 * The application a route belongs to. Apps mount their socket at
 * `/<name>/ws` (`socketPath` in app.ts), which gives the name back; the
 * shell's `/ws` is `shell`; any other route is reported under its path.
 */
export function appOfRoute(path: string): string {
  if (path === '/ws') return SHELL_APP;
  const match = /^\/([^/]+)\/ws$/.exec(path);
  return match !== null ? match[1]! : path;
}

/** Routes grouped by application (first appearance decides the order), their figures summed. */
export function trafficByApp(routes: readonly RouteTraffic[]): AppTraffic[] {
  const byApp = new Map<string, AppTraffic>();
  for (const route of routes) {
    const app = appOfRoute(route.path);
    const entry = byApp.get(app);
    if (entry === undefined) {
      byApp.set(app, {
        app,
        connections: route.connections,
        opened: route.opened,
        messagesReceived: route.messagesReceived,
        bytesReceived: route.bytesReceived,
        messagesSent: route.messagesSent,
        bytesSent: route.bytesSent,
      });
      continue;
    }
    entry.connections += route.connections;
    entry.opened += route.opened;
    entry.messagesReceived += route.messagesReceived;
    entry.bytesReceived += route.bytesReceived;
    entry.messagesSent += route.messagesSent;
    entry.bytesSent += route.bytesSent;
  }
  return [...byApp.values()];
}

/** Read the server's counters and the process's CPU time and memory now. */
export function takeReading(server: WebSocketServer): Reading {
  const memory = process.memoryUsage();
  return {
    at: performance.now(),
    time: Date.now(),
    apps: trafficByApp(server.traffic()),
    cpu: process.cpuUsage(),
    memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external },
  };
}

// ---- event-loop delay -----------------------------------------------------------

/** Event-loop delay over a window, milliseconds. */
export interface LoopDelay {
  mean: number;
  p99: number;
  max: number;
}

export interface EventLoopDelayOptions {
  /** How often the loop is probed, ms. Default 10. */
  resolutionMs?: number;
  /** Monotonic clock, ms. Default `performance.now`. */
  now?: () => number;
  /** Timer functions (tests drive the probe by hand). Default the global ones. */
  timers?: {
    setInterval(callback: () => void, ms: number): unknown;
    clearInterval(handle: unknown): void;
  };
}

/**
 * Event-loop delay in consecutive windows: each `take()` reports the window
 * since the previous one and starts the next.
 *
 * A timer probes the loop every `resolutionMs`; how much later than due it
 * fires is the delay, recorded in a `perf_hooks` histogram (bounded memory,
 * however long a window lasts). `monitorEventLoopDelay` is not used: its
 * `reset()` also forgets when it last fired, so the interval right after
 * each window boundary goes unmeasured, and a stall that begins there is
 * missed entirely. The timer does not keep the process alive; `close()`
 * stops it.
 */
export class EventLoopDelayWindow {
  private readonly histogram: RecordableHistogram = createHistogram();
  private readonly resolutionMs: number;
  private readonly now: () => number;
  private readonly timers: NonNullable<EventLoopDelayOptions['timers']>;
  private readonly timer: unknown;
  private last: number;

  constructor(options: EventLoopDelayOptions = {}) {
    this.resolutionMs = options.resolutionMs ?? 10;
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? {
      setInterval: (callback, ms) => setInterval(callback, ms),
      clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
    };
    this.last = this.now();
    this.timer = this.timers.setInterval(() => this.probe(), this.resolutionMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** @internal One probe: the timer fired; record how late. */
  probe(): void {
    const now = this.now();
    const lateMs = now - this.last - this.resolutionMs;
    this.last = now;
    // The histogram takes integers from 1 up: nanoseconds, an on-time probe as 1 ns.
    this.histogram.record(Math.max(1, Math.round(lateMs * 1e6)));
  }

  take(): LoopDelay {
    const h = this.histogram;
    const ms = (nanoseconds: number): number => (h.count === 0 || !Number.isFinite(nanoseconds) ? 0 : nanoseconds / 1e6);
    const result = { mean: ms(h.mean), p99: ms(h.percentile(99)), max: ms(h.max) };
    h.reset();
    return result;
  }

  close(): void {
    this.timers.clearInterval(this.timer);
  }
}

// ---- samples: rates over one interval ----------------------------------------------

/** Per second, over one sampling interval. */
export interface Rates {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** One application (or the total) in a sample: rates over the interval, then counts at its end. */
export interface AppFigures extends Rates {
  connections: number;
  /** Cumulative since the server started, at the end of the interval. */
  messagesInTotal: number;
  messagesOutTotal: number;
  bytesInTotal: number;
  bytesOutTotal: number;
}

/** What the dashboard plots for one interval (about a second). */
export interface Sample {
  /** End of the interval, wall-clock milliseconds since the epoch. */
  time: number;
  /** Length of the interval, milliseconds (measured, not nominal). */
  intervalMs: number;
  /** Per application, by name. */
  apps: Record<string, AppFigures>;
  /** Every application together. */
  total: AppFigures;
  /** Process CPU over the interval, percent of one core (100: one core busy throughout). */
  cpu: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Event-loop delay over the interval, milliseconds. */
  loop: LoopDelay;
}

/**
 * Per-second rates from two readings of the same counters taken `elapsedMs`
 * apart. A counter that went backwards (it cannot, short of a restart) reads
 * as 0 rather than a negative rate; an empty interval as 0.
 */
export function ratesBetween(before: TrafficCounts, after: TrafficCounts, elapsedMs: number): Rates {
  const perSecond = (from: number, to: number): number => (elapsedMs > 0 && to > from ? ((to - from) * 1000) / elapsedMs : 0);
  return {
    messagesIn: perSecond(before.messagesReceived, after.messagesReceived),
    messagesOut: perSecond(before.messagesSent, after.messagesSent),
    bytesIn: perSecond(before.bytesReceived, after.bytesReceived),
    bytesOut: perSecond(before.bytesSent, after.bytesSent),
  };
}

/** CPU use between two `process.cpuUsage()` readings `elapsedMs` apart, in percent of one core. */
export function cpuPercent(before: Reading['cpu'], after: Reading['cpu'], elapsedMs: number): number {
  if (elapsedMs <= 0) return 0;
  const usedMicros = after.user - before.user + (after.system - before.system);
  return Math.max(0, usedMicros / 1000 / elapsedMs) * 100;
}

/** Rates and percentages carry two decimals on the wire; more is noise. */
function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function figures(before: TrafficCounts | undefined, after: AppTraffic, elapsedMs: number): AppFigures {
  const rates = ratesBetween(before ?? ZERO_TRAFFIC, after, elapsedMs);
  return {
    connections: after.connections,
    messagesIn: round2(rates.messagesIn),
    messagesOut: round2(rates.messagesOut),
    bytesIn: round2(rates.bytesIn),
    bytesOut: round2(rates.bytesOut),
    messagesInTotal: after.messagesReceived,
    messagesOutTotal: after.messagesSent,
    bytesInTotal: after.bytesReceived,
    bytesOutTotal: after.bytesSent,
  };
}

const ZERO_TRAFFIC: TrafficCounts = { messagesReceived: 0, bytesReceived: 0, messagesSent: 0, bytesSent: 0 };

/** The sample for the interval between two readings, with the event-loop delay measured over it. */
export function sampleBetween(before: Reading, after: Reading, loop: LoopDelay): Sample {
  const elapsedMs = after.at - before.at;
  const earlier = new Map(before.apps.map((entry) => [entry.app, entry]));
  const apps: Record<string, AppFigures> = {};
  const sum: AppTraffic = { app: '', connections: 0, opened: 0, ...ZERO_TRAFFIC };
  const sumBefore: TrafficCounts = { ...ZERO_TRAFFIC };
  for (const entry of after.apps) {
    const previous = earlier.get(entry.app);
    apps[entry.app] = figures(previous, entry, elapsedMs);
    sum.connections += entry.connections;
    sum.messagesReceived += entry.messagesReceived;
    sum.bytesReceived += entry.bytesReceived;
    sum.messagesSent += entry.messagesSent;
    sum.bytesSent += entry.bytesSent;
    if (previous !== undefined) {
      sumBefore.messagesReceived += previous.messagesReceived;
      sumBefore.bytesReceived += previous.bytesReceived;
      sumBefore.messagesSent += previous.messagesSent;
      sumBefore.bytesSent += previous.bytesSent;
    }
  }
  const round3 = (value: number): number => Math.round(value * 1000) / 1000;
  return {
    time: after.time,
    intervalMs: round2(elapsedMs),
    apps,
    total: figures(sumBefore, sum, elapsedMs),
    cpu: round2(cpuPercent(before.cpu, after.cpu, elapsedMs)),
    rss: after.memory.rss,
    heapUsed: after.memory.heapUsed,
    heapTotal: after.memory.heapTotal,
    loop: { mean: round3(loop.mean), p99: round3(loop.p99), max: round3(loop.max) },
  };
}

// ---- Prometheus text exposition format 0.0.4 -------------------------------------------

/** The content type of the text exposition format, version 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricFamily {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters end in `_total`. */
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: ReadonlyArray<{ labels?: Readonly<Record<string, string>>; value: number }>;
}

/**
 * Render metric families in the text format: for each, one `# HELP` and one
 * `# TYPE` line, then its samples, grouped (the format requires all lines of
 * a metric to be consecutive); every line ends with `\n`, the last included.
 */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  let text = '';
  for (const family of families) {
    // In HELP, backslash and line feed are escaped; in label values, the double quote too.
    text += `# HELP ${family.name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n`;
    text += `# TYPE ${family.name} ${family.type}\n`;
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const labelText =
        labels.length === 0 ?
          ''
        : `{${labels.map(([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`).join(',')}}`;
      text += `${family.name}${labelText} ${formatValue(sample.value)}\n`;
    }
  }
  return text;
}

/** Values are Go-style floats: `NaN`, `+Inf` and `-Inf` are spelled out. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** What `/metrics` reports: a reading, the event-loop delay since the previous scrape, the pub/sub and broker counters. */
export interface MetricsInput {
  reading: Reading;
  loop: LoopDelay;
  pubsub: HubStats;
  /** The WebSocket server's own counters: opens, refusals, closes, drops. */
  server: ServerCounters;
  /** Process start, seconds since the epoch. */
  startTimeSeconds: number;
}

/**
 * The figures as metric families. Traffic is per application (label `app`);
 * totals are left to the query (`sum(...)`), so summing never counts twice.
 * Process metrics use the names Prometheus client libraries commonly use.
 */
export function metricFamilies({ reading, loop, pubsub, server, startTimeSeconds }: MetricsInput): MetricFamily[] {
  const perApp = (pick: (entry: AppTraffic) => number): MetricFamily['samples'] =>
    reading.apps.map((entry) => ({ labels: { app: entry.app }, value: pick(entry) }));
  const one = (value: number): MetricFamily['samples'] => [{ value }];
  const broker = pubsub.broker;
  return [
    { name: 'sockeye_connections', type: 'gauge', help: 'Open WebSocket connections.', samples: perApp((e) => e.connections) },
    { name: 'sockeye_connections_opened_total', type: 'counter', help: 'WebSocket connections accepted.', samples: perApp((e) => e.opened) },
    { name: 'sockeye_messages_received_total', type: 'counter', help: 'Data messages received.', samples: perApp((e) => e.messagesReceived) },
    {
      name: 'sockeye_messages_sent_total',
      type: 'counter',
      help: 'Data messages sent (each subscriber of a published message counts).',
      samples: perApp((e) => e.messagesSent),
    },
    {
      name: 'sockeye_received_bytes_total',
      type: 'counter',
      help: 'Payload bytes of the data messages received, after decompression.',
      samples: perApp((e) => e.bytesReceived),
    },
    {
      name: 'sockeye_sent_bytes_total',
      type: 'counter',
      help: 'Payload bytes of the data messages sent, before compression.',
      samples: perApp((e) => e.bytesSent),
    },
    { name: 'sockeye_upgrades_accepted_total', type: 'counter', help: 'WebSocket upgrades accepted (101), all routes.', samples: one(server.opened) },
    {
      name: 'sockeye_upgrades_refused_total',
      type: 'counter',
      help: 'WebSocket upgrade requests refused, by HTTP status.',
      samples: byKey(server.refused, 'status'),
    },
    {
      name: 'sockeye_closes_total',
      type: 'counter',
      help: 'WebSocket connections closed, by close code (1006: no close frame).',
      samples: byKey(server.closed, 'code'),
    },
    {
      name: 'sockeye_heartbeat_drops_total',
      type: 'counter',
      help: 'Connections dropped for not answering the heartbeat.',
      samples: one(server.heartbeatDrops),
    },
    {
      name: 'sockeye_backpressure_closes_total',
      type: 'counter',
      help: 'Connections dropped for reading too slowly.',
      samples: one(server.backpressureCloses),
    },
    {
      name: 'sockeye_backpressure_drops_total',
      type: 'counter',
      help: 'Messages not sent because the peer read too slowly (drop policy).',
      samples: one(server.backpressureDrops),
    },
    { name: 'sockeye_rate_limited_total', type: 'counter', help: 'Received messages refused by a rate limit.', samples: one(server.rateLimited) },
    {
      name: 'sockeye_rate_limit_closes_total',
      type: 'counter',
      help: 'Connections closed (1008) for going over a rate limit.',
      samples: one(server.rateLimitCloses),
    },
    { name: 'sockeye_hook_failures_total', type: 'counter', help: 'Application hooks that threw or rejected.', samples: one(server.hookFailures) },
    { name: 'sockeye_pubsub_published_total', type: 'counter', help: 'Messages published.', samples: one(pubsub.published) },
    {
      name: 'sockeye_pubsub_delivered_total',
      type: 'counter',
      help: 'Published messages delivered to a local subscriber, one per subscriber.',
      samples: one(pubsub.delivered),
    },
    {
      name: 'sockeye_pubsub_dropped_total',
      type: 'counter',
      help: 'Deliveries skipped because the subscriber was too slow.',
      samples: one(pubsub.dropped),
    },
    {
      name: 'sockeye_pubsub_closed_slow_total',
      type: 'counter',
      help: 'Subscribers closed because they were too slow.',
      samples: one(pubsub.closedSlow),
    },
    {
      name: 'sockeye_pubsub_recovered_total',
      type: 'counter',
      help: 'Messages replayed from history to subscribers that resumed from a position.',
      samples: one(pubsub.recovered),
    },
    {
      name: 'sockeye_pubsub_recovery_failed_total',
      type: 'counter',
      help: 'Resumptions that could not replay (epoch changed, history too short, broker unavailable).',
      samples: one(pubsub.recoveryFailed),
    },
    { name: 'sockeye_broker_published_total', type: 'counter', help: 'Publishes the broker acknowledged as stored.', samples: one(broker.published) },
    {
      name: 'sockeye_broker_received_total',
      type: 'counter',
      help: 'Messages the broker delivered to this process, once each.',
      samples: one(broker.received),
    },
    {
      name: 'sockeye_broker_duplicates_total',
      type: 'counter',
      help: 'Duplicate messages the broker dropped by offset.',
      samples: one(broker.duplicates),
    },
    {
      name: 'sockeye_broker_gaps_caught_up_total',
      type: 'counter',
      help: "Holes in a topic's live stream filled from history.",
      samples: one(broker.gapsCaughtUp),
    },
    {
      name: 'sockeye_broker_gaps_lost_total',
      type: 'counter',
      help: "Holes in a topic's live stream that history could not fill.",
      samples: one(broker.gapsLost),
    },
    {
      name: 'sockeye_broker_publish_failed_total',
      type: 'counter',
      help: 'Publishes that failed (queue full, broker unreachable past the wait).',
      samples: one(broker.publishFailed),
    },
    { name: 'sockeye_broker_queue_depth', type: 'gauge', help: 'Publishes waiting for the broker to store them.', samples: one(broker.queueDepth) },
    {
      name: 'sockeye_broker_state',
      type: 'gauge',
      help: "The broker connection's state: 1 for the current one, 0 for the others.",
      samples: BROKER_STATES.map((state) => ({ labels: { state }, value: state === broker.state ? 1 : 0 })),
    },
    {
      name: 'sockeye_event_loop_delay_mean_seconds',
      type: 'gauge',
      help: 'Mean event-loop delay since the previous scrape.',
      samples: one(loop.mean / 1000),
    },
    {
      name: 'sockeye_event_loop_delay_p99_seconds',
      type: 'gauge',
      help: '99th percentile of the event-loop delay since the previous scrape.',
      samples: one(loop.p99 / 1000),
    },
    {
      name: 'sockeye_event_loop_delay_max_seconds',
      type: 'gauge',
      help: 'Longest event-loop delay since the previous scrape.',
      samples: one(loop.max / 1000),
    },
    { name: 'process_cpu_user_seconds_total', type: 'counter', help: 'User CPU time of the process, seconds.', samples: one(reading.cpu.user / 1e6) },
    {
      name: 'process_cpu_system_seconds_total',
      type: 'counter',
      help: 'System CPU time of the process, seconds.',
      samples: one(reading.cpu.system / 1e6),
    },
    {
      name: 'process_cpu_seconds_total',
      type: 'counter',
      help: 'User and system CPU time of the process, seconds.',
      samples: one((reading.cpu.user + reading.cpu.system) / 1e6),
    },
    { name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident set size, bytes.', samples: one(reading.memory.rss) },
    {
      name: 'process_start_time_seconds',
      type: 'gauge',
      help: 'Start time of the process, seconds since the Unix epoch.',
      samples: one(startTimeSeconds),
    },
    { name: 'nodejs_heap_size_used_bytes', type: 'gauge', help: 'V8 heap in use, bytes.', samples: one(reading.memory.heapUsed) },
    { name: 'nodejs_heap_size_total_bytes', type: 'gauge', help: 'V8 heap reserved, bytes.', samples: one(reading.memory.heapTotal) },
    {
      name: 'nodejs_external_memory_bytes',
      type: 'gauge',
      help: 'Memory of C++ objects bound to JavaScript objects, bytes.',
      samples: one(reading.memory.external),
    },
  ];
}

/** One sample per key of a counter table (status or close code), in numeric order; a 0 sample when it is empty, so the metric always exists. */
function byKey(table: Readonly<Record<number, number>>, label: string): MetricFamily['samples'] {
  const keys = Object.keys(table).sort((a, b) => Number(a) - Number(b));
  if (keys.length === 0) return [{ labels: { [label]: 'none' }, value: 0 }];
  return keys.map((key) => ({ labels: { [label]: key }, value: table[Number(key)]! }));
}

const BROKER_STATES: readonly BrokerState[] = ['connecting', 'ready', 'reconnecting', 'closed'];

/** Process start, seconds since the epoch (from the time origin of `performance`). */
export function processStartTimeSeconds(): number {
  return Math.round(performance.timeOrigin) / 1000;
}
