import { hostname } from 'node:os';
import { socketPath, type App } from '../app.js';
import { EventLoopDelayWindow, sampleBetween, takeReading } from '../metrics.js';
import { pageDirOf } from '../paths.js';
import type { DashboardMessage, NodeSample } from './protocol.js';

export type { DashboardMessage, NodeSample } from './protocol.js';

export interface DashboardOptions {
  /** Milliseconds between two samples. Default 1000. */
  intervalMs?: number;
  /** Samples kept as history for newly opened pages. Default 300: five minutes at one a second. */
  historySize?: number;
  /**
   * This node's name in its samples: 1 to 64 printable characters, not `*`
   * (the page's name for the total). Default: the host name and process id,
   * `host:pid`, which tells apart the workers of one machine too.
   */
  node?: string;
}

/** The default node name: `host:pid`. */
export function defaultNodeName(): string {
  return `${hostname()}:${process.pid}`;
}

function checkNodeName(node: string): string {
  if (node.length < 1 || node.length > 64 || node === '*' || /\p{C}/u.test(node)) {
    throw new RangeError(`a dashboard node name is 1 to 64 printable characters and not "*", got ${JSON.stringify(node)}`);
  }
  return node;
}

/** Topics of the dashboard's samples start with this; the rest names the server instance. */
export const DASHBOARD_TOPIC_PREFIX = 'dashboard/';

/**
 * The live dashboard: the server samples itself every interval (traffic per
 * application, CPU, memory, event-loop delay; see ../metrics.ts), keeps the
 * last few minutes, and publishes each sample to the pages that subscribed.
 * A page that connects gets the history first, then every new sample.
 *
 * Samples are figures of this process, named by its `node`. The topic is
 * still this server instance's own: behind a broker shared by several
 * processes, a page sees the figures of the process it is connected to.
 * The page already sums samples of several nodes and draws a line per node
 * (src/web/dashboard-series.ts); publishing every node's samples to every
 * page is for the cluster change.
 */
export function createDashboardApp(options: DashboardOptions = {}): App {
  const intervalMs = options.intervalMs ?? 1000;
  const historySize = options.historySize ?? 300;
  const node = checkNodeName(options.node ?? defaultNodeName());

  const app: App = {
    name: 'dashboard',
    title: 'Dashboard',
    summary: 'The server measures itself every second: connections, messages and bytes per application, CPU, memory, event-loop delay.',
    pageDir: pageDirOf('dashboard'),
    mount(server, { pubsub, log }) {
      const topic = `${DASHBOARD_TOPIC_PREFIX}${globalThis.crypto.randomUUID()}`;
      const loop = new EventLoopDelayWindow();
      const history: NodeSample[] = [];
      /** The history message, encoded once per interval however many pages connect. */
      let historyText: string | null = null;
      let previous = takeReading(server);

      const tick = (): void => {
        try {
          const reading = takeReading(server);
          const sample: NodeSample = { ...sampleBetween(previous, reading, loop.take()), node };
          previous = reading;
          history.push(sample);
          if (history.length > historySize) history.shift();
          historyText = null;
          if (pubsub.subscriberCount(topic) > 0) pubsub.publish(topic, encode({ type: 'sample', sample }));
        } catch (error) {
          log.info(`dashboard: sampling failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
      const timer = setInterval(tick, intervalMs);
      // Sampling alone must not keep a process alive.
      timer.unref();

      server.route(socketPath(app), {
        open(connection) {
          historyText ??= encode({ type: 'history', intervalMs, samples: history });
          // History and subscription in the same turn as every tick: no sample
          // is both in the history and published to this page, none is missed.
          connection.send(historyText);
          pubsub.subscribe(connection, topic);
        },
        message(connection) {
          connection.send(encode({ type: 'error', message: 'The dashboard only sends; it does not take messages.' }));
        },
      });

      return () => {
        clearInterval(timer);
        loop.close();
      };
    },
  };
  return app;
}

function encode(message: DashboardMessage): string {
  return JSON.stringify(message);
}

/** The dashboard with a sample every second and five minutes of history. */
export const dashboardApp: App = createDashboardApp();
