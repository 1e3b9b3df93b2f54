import type { Sample } from '../metrics.js';

/**
 * What the dashboard's socket (`/dashboard/ws`) sends, as JSON text:
 *
 * - `history` first, once per connection: the samples of the last few
 *   minutes, oldest first (empty right after the server started).
 * - `sample` then, once per interval: the newest sample. Its `time` is
 *   later than that of every sample before it on the same server, so a page
 *   can append samples after the history without duplicates.
 * - `error` for anything the client sends: the dashboard only talks.
 */
export type DashboardMessage =
  | { type: 'history'; intervalMs: number; samples: Sample[] }
  | { type: 'sample'; sample: Sample }
  | { type: 'error'; message: string };
