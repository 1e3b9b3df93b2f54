import type { WebSocketServer } from '../node/server.js';
import { DEFAULT_HISTORY, type HistoryOptions, type HistoryPolicy } from '../pubsub/broker.js';
import type { PubSub } from '../pubsub/pubsub.js';
import type { Logger } from './host/log.js';

/** What every application gets from the server that hosts it. */
export interface AppContext {
  pubsub: PubSub;
  log: Logger;
}

/**
 * One real-time application: its page(s) are served under `/<name>/` and
 * its WebSocket endpoint lives at `/<name>/ws`.
 */
export interface App {
  name: string;
  title: string;
  /** One line for the home page. */
  summary: string;
  /** Absolute directory of the app's static page files, if it has a page. */
  pageDir?: string;
  /**
   * How much of each of the app's topics the broker should keep (their
   * history size and age); undefined for topics that are not the app's. A
   * host gives it to the broker it builds: see `historyPolicyOf`.
   */
  topicHistory?: (topic: string) => HistoryOptions | undefined;
  /** Register the app's WebSocket route(s); the returned function (if any) stops its timers. */
  mount(server: WebSocketServer, context: AppContext): void | (() => void);
}

/**
 * The history policy for a broker hosting these apps: each topic gets what
 * the first app that claims it asks for (`App.topicHistory`), other topics
 * the broker's default. E.g. `new MemoryBroker({ history: historyPolicyOf(apps) })`.
 */
export function historyPolicyOf(apps: readonly App[], fallback: HistoryOptions = DEFAULT_HISTORY): HistoryPolicy {
  return (topic) => {
    for (const app of apps) {
      const wanted = app.topicHistory?.(topic);
      if (wanted !== undefined) return wanted;
    }
    return fallback;
  };
}

/** The WebSocket path of an app. */
export function socketPath(app: Pick<App, 'name'>): string {
  return `/${app.name}/ws`;
}
