import type { Sample } from '../host/metrics.js';

/** A sample as published: the figures of one node (process), named by `node`. */
export interface NodeSample extends Sample {
  /**
   * The node that measured it: `DashboardOptions.node`, by default the host
   * name and process id (`web-1:4242`). Pages that receive samples of
   * several nodes show their total and one line per node.
   */
  node: string;
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
