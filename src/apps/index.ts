import type { App } from './app.js';
import { canvasApp } from './canvas/index.js';
import { chatApp } from './chat/index.js';
import { clockApp } from './clock/index.js';
import { dashboardApp } from './dashboard/index.js';
import { echoApp } from './echo/index.js';

/** Every application `sockeye serve` hosts, in home-page order. */
export const allApps: readonly App[] = [chatApp, clockApp, dashboardApp, canvasApp, echoApp];

export {
  AppServer,
  DEFAULT_APP_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_APP_LIMITS,
  DEFAULT_APP_MAX_MESSAGE_BYTES,
  type AppServerOptions,
} from './host/server.js';
export { normalizeAllowedOrigin, originPolicy, type OriginPredicate } from './host/origin-policy.js';
export type { App, AppContext } from './app.js';
