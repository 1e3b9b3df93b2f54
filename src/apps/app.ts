import type { WebSocketServer } from '../node/server.js';
import type { PubSub } from '../pubsub/pubsub.js';
import type { Logger } from './log.js';

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
  /** Register the app's WebSocket route(s); the returned function (if any) stops its timers. */
  mount(server: WebSocketServer, context: AppContext): void | (() => void);
}

/** The WebSocket path of an app. */
export function socketPath(app: Pick<App, 'name'>): string {
  return `/${app.name}/ws`;
}
