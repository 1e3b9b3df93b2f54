import { hostname } from 'node:os';
import { ConnectionState } from '../../node/connection.js';
import type { HistoryOptions } from '../../pubsub/broker.js';
import { socketPath, type App } from '../app.js';
import { EventLoopDelayWindow, sampleBetween, takeReading } from '../host/metrics.js';
import { pageDirOf } from '../host/paths.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_INTERVAL_MS, TOTAL_NODE, type DashboardMessage, type NodeSample } from './wire/protocol.js';
import { SampleWindow } from './sample-window.js';
import { TopicListener } from '../topic-listener.js';

export type { DashboardMessage, NodeSample } from './wire/protocol.js';

export interface DashboardOptions {
  /** Milliseconds between two samples. Default 1000 (`DEFAULT_INTERVAL_MS`). */
  intervalMs?: number;
  /** Samples kept as history for newly opened pages. Default 300 (`DEFAULT_HISTORY_SIZE`): five minutes at one a second. */
  historySize?: number;
  /**
   * This node's name in its samples: 1 to 64 printable characters, not `*`
   * (`TOTAL_NODE`, the page's name for the total). Default: the host name and process id,
   * `host:pid`, which tells apart the workers of one machine too.
   */
  node?: string;
}

/** The default node name: `host:pid`. */
export function defaultNodeName(): string {
  return `${hostname()}:${process.pid}`;
}

function checkNodeName(node: string): string {
  if (node.length < 1 || node.length > 64 || node === TOTAL_NODE || /\p{C}/u.test(node)) {
    throw new RangeError(`a dashboard node name is 1 to 64 printable characters and not "${TOTAL_NODE}", got ${JSON.stringify(node)}`);
  }
  return node;
}

/**
 * The one topic every node publishes its samples on, as the JSON text pages
 * receive (`{"type":"sample",...}`): a page subscribed on any node gets
 * every node's samples, framed once per node for all its pages. It needs no
 * more history than a new node's catch-up reads (see `catchUp` below).
 */
export const DASHBOARD_TOPIC = 'dashboard/samples';

/**
 * The history the dashboard asks its host to keep for its topic
 * (`App.topicHistory`): five minutes, the page's span, and 1,000 samples,
 * the last five minutes of three nodes sampling every second. With more
 * nodes, a node that starts gets a shorter past of the others (its pages
 * fill in as samples come); the in-memory broker of one process keeps at
 * most about 2,000 of its own samples.
 */
export const DASHBOARD_HISTORY: HistoryOptions = { size: 1000, ttlMs: 5 * 60_000 };

/** How far back a node that starts reads the topic, in messages, largest first: see `catchUp`. */
const CATCH_UP_ATTEMPTS = [1000, 300, 60] as const;

/**
 * The live dashboard: each node samples itself every interval (traffic per
 * application, CPU, memory, event-loop delay; see ../host/metrics.ts) and
 * publishes the sample on `DASHBOARD_TOPIC`. Every node also listens to
 * that topic and keeps the last few minutes of every node's samples
 * (sample-window.ts): a page that connects, to any node, gets that history
 * first, then every new sample of every node. The page shows their total
 * and one line per node (wire/series.ts); a node that stops
 * publishing is left out of the total within a few intervals and forgotten
 * by the servers after `historySize` intervals.
 *
 * `/metrics` is not this: it stays the figures of the one process asked.
 */
export function createDashboardApp(options: DashboardOptions = {}): App {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const historySize = options.historySize ?? DEFAULT_HISTORY_SIZE;
  const node = checkNodeName(options.node ?? defaultNodeName());

  const app: App = {
    name: 'dashboard',
    title: 'Dashboard',
    summary: 'The server measures itself every second: connections, messages and bytes per application, CPU, memory, event-loop delay.',
    pageDir: pageDirOf('dashboard'),
    topicHistory: (topic) => (topic === DASHBOARD_TOPIC ? DASHBOARD_HISTORY : undefined),
    mount(server, { pubsub, log }) {
      const loop = new EventLoopDelayWindow();
      const window = new SampleWindow(historySize, historySize * intervalMs);
      /** The history message, encoded once per change however many pages connect. */
      let historyText: string | null = null;
      let previous = takeReading(server);
      let stopped = false;

      const receive = (data: Uint8Array): void => {
        const sample = parseSample(data);
        if (sample === null) {
          log.info('dashboard: a message on the samples topic that is not a sample; ignored');
          return;
        }
        if (window.add(sample)) historyText = null;
      };
      const listener = new TopicListener(pubsub, receive, (error) => {
        log.info(`dashboard: a sample could not be taken: ${error instanceof Error ? error.message : String(error)}`);
      });

      /**
       * A node that starts reads the last samples of the others from the
       * topic's history, so its first pages do not start empty. It does not
       * know how much history the broker keeps (a deployment setting), so it
       * asks for less each time the history is too short; the last attempt
       * that fails still leaves it listening live. Retrying loses nothing:
       * each attempt replays from further back than the live messages missed
       * between two attempts.
       */
      const catchUp = async (): Promise<void> => {
        // The topic's end now: at mount nothing of this hub subscribes to it yet, so `live()` asks the broker.
        const now = await pubsub.live(DASHBOARD_TOPIC);
        for (const back of CATCH_UP_ATTEMPTS) {
          if (stopped) return;
          const since = { epoch: now.epoch, offset: Math.max(0, now.offset - back) };
          const result = await listener.listenSince(DASHBOARD_TOPIC, since);
          if (result === null || result.recovered || back === CATCH_UP_ATTEMPTS.at(-1)) return;
          listener.unlisten(DASHBOARD_TOPIC);
        }
      };
      /** Settles once the catch-up is over (whatever its outcome): pages that come earlier wait for it. */
      let caughtUp = false;
      const catchingUp = catchUp()
        .catch((error: unknown) => {
          log.info(`dashboard: reading other nodes' recent samples failed: ${error instanceof Error ? error.message : String(error)}`);
          if (!stopped) listener.listen(DASHBOARD_TOPIC);
        })
        .finally(() => {
          caughtUp = true;
        });

      const tick = (): void => {
        try {
          const reading = takeReading(server);
          const sample: NodeSample = { ...sampleBetween(previous, reading, loop.take()), node };
          previous = reading;
          if (window.prune(sample.time)) historyText = null;
          // Back through the topic (synchronously with the in-memory broker) into `window`, like every node's.
          pubsub.publish(DASHBOARD_TOPIC, encode({ type: 'sample', sample })).catch((error: unknown) => {
            log.info(`dashboard: publishing a sample failed: ${error instanceof Error ? error.message : String(error)}`);
          });
        } catch (error) {
          log.info(`dashboard: sampling failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
      const timer = setInterval(tick, intervalMs);
      // Sampling alone must not keep a process alive.
      timer.unref();

      server.route(socketPath(app), {
        open(connection) {
          const start = (): void => {
            if (connection.state !== ConnectionState.Open) return;
            historyText ??= encode({ type: 'history', intervalMs, samples: window.all() });
            // History and subscription in the same turn as every delivery to the
            // listener: no sample is both in the history and sent after it, none is missed.
            connection.send(historyText);
            pubsub.subscribe(connection, DASHBOARD_TOPIC);
          };
          if (caughtUp) start();
          else void catchingUp.then(start);
        },
        message(connection) {
          connection.send(encode({ type: 'error', message: 'The dashboard only sends; it does not take messages.' }));
        },
      });

      return () => {
        stopped = true;
        clearInterval(timer);
        loop.close();
        listener.close();
      };
    },
  };
  return app;
}

/** A sample message from the topic, or null if it is not one (the topic is the deployment's own: checked loosely). */
function parseSample(data: Uint8Array): NodeSample | null {
  let message: unknown;
  try {
    message = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof message !== 'object' || message === null || (message as { type?: unknown }).type !== 'sample') return null;
  const sample = (message as { sample?: unknown }).sample;
  if (typeof sample !== 'object' || sample === null) return null;
  const { node, time } = sample as { node?: unknown; time?: unknown };
  if (typeof node !== 'string' || typeof time !== 'number' || !Number.isFinite(time)) return null;
  return sample as NodeSample;
}

function encode(message: DashboardMessage): string {
  return JSON.stringify(message);
}

/** The dashboard with a sample every second and five minutes of history. */
export const dashboardApp: App = createDashboardApp();
