/**
 * The dashboard's messages: what its socket (`/dashboard/ws`) sends, the
 * shape of one node's sample, and the defaults both sides assume. Types and
 * constants only: no sockets, no clock, no Node modules, imports nothing.
 * The server publishes these shapes; the page loads this module compiled
 * (/dashboard/wire/protocol.js) and series.ts, beside it, reads them.
 *
 * The server computes a sample in src/apps/host/metrics.ts (`Sample`, a
 * host module, which this folder may not import); test/apps/dashboard/wire
 * checks that its shape and `NodeSample` stay the same.
 */

/** Milliseconds between two samples of a node, unless the server is told otherwise (`DashboardOptions.intervalMs`). */
export const DEFAULT_INTERVAL_MS = 1000;

/**
 * Samples kept per node, by the server for newly opened pages
 * (`DashboardOptions.historySize`) and by the page on screen: five minutes
 * at one a second.
 */
export const DEFAULT_HISTORY_SIZE = 300;

/**
 * The `node` of a total the page makes from several nodes' samples. No
 * server may take it as its node name, so a total is never mistaken for a
 * node's own sample.
 */
export const TOTAL_NODE = '*';

/** One application, or all of them, in a sample: rates per second over the interval, then counts at its end. */
export interface TrafficFigures {
  /** Connections open at the end of the interval. */
  connections: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Cumulative since the server started, at the end of the interval. */
  messagesInTotal: number;
  messagesOutTotal: number;
  bytesInTotal: number;
  bytesOutTotal: number;
}

/** Event-loop delay over the interval, milliseconds. */
export interface LoopFigures {
  mean: number;
  p99: number;
  max: number;
}

/** What one node (process) measured over one interval, as published. */
export interface NodeSample {
  /**
   * The node that measured it: `DashboardOptions.node`, by default the host
   * name and process id (`web-1:4242`). Pages that receive samples of
   * several nodes show their total and one line per node.
   */
  node: string;
  /** End of the interval, wall-clock milliseconds since the epoch. */
  time: number;
  /** Length of the interval, milliseconds (measured, not nominal). */
  intervalMs: number;
  /** Per application, by name. */
  apps: Record<string, TrafficFigures>;
  /** Every application together. */
  total: TrafficFigures;
  /** Process CPU over the interval, percent of one core (100: one core busy throughout). */
  cpu: number;
  /** Resident set size, bytes. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  loop: LoopFigures;
}

/**
 * What the dashboard's socket (`/dashboard/ws`) sends, as JSON text:
 *
 * - `history` first, once per connection: the samples of the last few
 *   minutes of every node publishing them, oldest first (empty right after
 *   the first node started).
 * - `sample` then, once per interval per node: a node's newest sample.
 *   Its `time` is later than that of every sample before it from the same
 *   node, so a page can append samples after the history without
 *   duplicates. Whichever node the page is connected to, it receives every
 *   node's samples (they share one topic, `DASHBOARD_TOPIC`).
 * - `error` for anything the client sends: the dashboard only talks.
 */
export type DashboardMessage =
  { type: 'history'; intervalMs: number; samples: NodeSample[] } | { type: 'sample'; sample: NodeSample } | { type: 'error'; message: string };
