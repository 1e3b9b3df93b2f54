import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { App } from '../../src/apps/app.js';
import { allApps, AppServer, type AppServerOptions } from '../../src/apps/index.js';
import { PROJECT_ROOT, WEB_MODULES_DIR, WIRE_FOLDER, wireModulesDirOf } from '../../src/apps/host/paths.js';

/**
 * Shared harness of the browser tests: Debian's Chromium driven by
 * playwright-core, one browser per test file, a fresh context (cookies,
 * storage, cache) and a fresh AppServer on 127.0.0.1 for every test.
 *
 * Every test fails when a page logs a console error or throws, and when a
 * page requests anything from another origin than the test server: the
 * pages must work offline.
 *
 * Usage, at the top level of a test file:
 *
 *   const web = useBrowser();
 *   it('...', async () => {
 *     const page = await web.newPage();
 *     await page.goto(web.url('/clock/'));
 *   });
 */

/** Where Debian's `chromium` package puts the browser; `SOCKEYE_CHROMIUM` overrides it. */
export const CHROMIUM_PATH = process.env['SOCKEYE_CHROMIUM'] ?? '/usr/bin/chromium';

/** Headless, no sandbox (containers, root), and nothing that talks to Google's servers. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Console errors the browser itself prints when a connection attempt fails
 * (a page retrying while the test server is down), as opposed to errors of
 * the page's own code.
 */
const NETWORK_FAILURE_PATTERNS: readonly RegExp[] = [
  /^WebSocket connection to '.*' failed/,
  /^Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|CONNECTION_CLOSED|EMPTY_RESPONSE)/,
];

/** Why the browser tests cannot run here, or null when they can. */
export function browserTestsUnavailable(): string | null {
  if (!existsSync(CHROMIUM_PATH)) {
    return (
      `BROWSER TESTS CANNOT RUN: no Chromium at ${CHROMIUM_PATH}. ` +
      'Install it with `bash scripts/test-deps.sh` (Debian package "chromium"), or point SOCKEYE_CHROMIUM at a Chromium binary.'
    );
  }
  const stale = staleWebModules();
  if (stale !== null) {
    return `BROWSER TESTS CANNOT RUN: the browser modules in dist/ are ${stale}. Run \`npx tsc -p .\` first (\`npm test\` does).`;
  }
  return null;
}

/**
 * The pages load src/web/*.ts compiled into dist/src/web, and each app's
 * src/apps/<app>/wire/*.ts compiled into dist/src/apps/<app>/wire: say so
 * when one of them is missing or older than its source.
 */
function staleWebModules(): string | null {
  const appsDir = join(PROJECT_ROOT, 'src', 'apps');
  const folders: Array<[source: string, compiled: string]> = [[join(PROJECT_ROOT, 'src', 'web'), WEB_MODULES_DIR]];
  for (const app of readdirSync(appsDir)) {
    const wire = join(appsDir, app, WIRE_FOLDER);
    if (existsSync(wire)) folders.push([wire, wireModulesDirOf(app)]);
  }
  for (const [sourceDir, compiledDir] of folders) {
    for (const name of readdirSync(sourceDir)) {
      if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
      const source = join(sourceDir, name);
      const compiled = join(compiledDir, name.replace(/\.ts$/, '.js'));
      if (!existsSync(compiled)) return `missing (${compiled})`;
      if (statSync(compiled).mtimeMs < statSync(source).mtimeMs) return `older than ${relative(PROJECT_ROOT, source)}`;
    }
  }
  return null;
}

export interface BrowserHarnessOptions {
  /** The applications the test server hosts. Default: all of them, as `sockeye serve` does. */
  apps?: readonly App[];
  /** Further AppServer options. Logs are kept in `serverLog` at info level unless `logLevel` says otherwise. */
  server?: Omit<AppServerOptions, 'apps' | 'logWrite'>;
}

export interface BrowserHarness {
  /** The test file's browser. */
  readonly browser: Browser;
  /** This test's browser context: its own cookies, storage and cache. */
  readonly context: BrowserContext;
  /** The running test server, or null while stopped. */
  readonly server: AppServer | null;
  /** The test server's port: the same across `stopServer()`/`startServer()` within a test. */
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Log lines of the test server(s) of this test. */
  readonly serverLog: readonly string[];
  /** Every URL requested by the pages of this test, WebSockets included. */
  readonly requests: readonly string[];
  /** Console errors and uncaught exceptions seen so far in this test. */
  readonly consoleErrors: readonly string[];
  /** An absolute URL on the test server. */
  url(path: string): string;
  /** A new page in this test's context. */
  newPage(): Promise<Page>;
  /**
   * Stop the test server (its WebSockets are closed with 1001). From then on,
   * the browser's own reports of failed connection attempts are not counted
   * as console errors in this test: pages are expected to retry.
   */
  stopServer(): Promise<void>;
  /** Start a new server on the same port. */
  startServer(): Promise<void>;
  /** `stopServer()` then `startServer()`. */
  restartServer(): Promise<void>;
  /** Do not fail this test for console errors matching `pattern`. */
  allowConsoleErrors(pattern: RegExp): void;
}

/** Register the hooks of a browser test file and return the harness its tests use. */
export function useBrowser(options: BrowserHarnessOptions = {}): BrowserHarness {
  const apps = options.apps ?? allApps;
  let browser: Browser | null = null;
  let context: BrowserContext | null = null;
  let server: AppServer | null = null;
  let port = 0;
  let serverLog: string[] = [];
  let requests: string[] = [];
  let consoleErrors: string[] = [];
  let allowed: RegExp[] = [];

  const startServer = async (): Promise<void> => {
    if (server !== null) throw new Error('the test server is already running');
    const started = new AppServer({
      logLevel: 'info',
      ...options.server,
      apps,
      logWrite: (line) => serverLog.push(line.trimEnd()),
    });
    const address = await started.listen(port, '127.0.0.1');
    port = address.port;
    server = started;
  };

  const stopServer = async (): Promise<void> => {
    const running = server;
    if (running === null) return;
    server = null;
    allowed.push(...NETWORK_FAILURE_PATTERNS);
    await running.close();
  };

  const recordConsole = (message: ConsoleMessage): void => {
    if (message.type() !== 'error') return;
    const location = message.location();
    consoleErrors.push(`${message.text()}${location.url ? ` (${location.url}:${location.lineNumber})` : ''}`);
  };

  beforeAll(async () => {
    const problem = browserTestsUnavailable();
    if (problem !== null) {
      // Also straight to stderr, as a banner that stands out of a long run's output.
      const rule = '='.repeat(78);
      process.stderr.write(`\n${rule}\n${problem}\n${rule}\n\n`);
      throw new Error(problem);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    browser = null;
  });

  beforeEach(async () => {
    serverLog = [];
    requests = [];
    consoleErrors = [];
    allowed = [];
    port = 0;
    await startServer();
    const fresh = await harness.browser.newContext();
    fresh.on('console', recordConsole);
    fresh.on('weberror', (error) => consoleErrors.push(`uncaught: ${error.error().stack ?? error.error().message}`));
    fresh.on('request', (request) => requests.push(request.url()));
    fresh.on('page', (page) => page.on('websocket', (socket) => requests.push(socket.url())));
    context = fresh;
  });

  afterEach(async () => {
    const finished = context;
    context = null;
    const problems: string[] = [];
    try {
      const errors = consoleErrors.filter((text) => !allowed.some((pattern) => pattern.test(text)));
      if (errors.length > 0) problems.push(`the page logged errors:\n  ${errors.join('\n  ')}`);
      const origin = `127.0.0.1:${port}`;
      const foreign = requests.filter((url) => !isLocal(url, origin));
      if (foreign.length > 0) problems.push(`the page requested resources from elsewhere than ${origin}:\n  ${foreign.join('\n  ')}`);
    } finally {
      await finished?.close();
      await stopServer();
    }
    if (problems.length > 0) throw new Error(problems.join('\n'));
  });

  const harness: BrowserHarness = {
    get browser() {
      if (browser === null) throw new Error('no browser: use the harness inside a test');
      return browser;
    },
    get context() {
      if (context === null) throw new Error('no browser context: use the harness inside a test');
      return context;
    },
    get server() {
      return server;
    },
    get port() {
      return port;
    },
    get origin() {
      return `http://127.0.0.1:${port}`;
    },
    get serverLog() {
      return serverLog;
    },
    get requests() {
      return requests;
    },
    get consoleErrors() {
      return consoleErrors;
    },
    url(path) {
      return new URL(path, `http://127.0.0.1:${port}`).href;
    },
    newPage() {
      return harness.context.newPage();
    },
    stopServer,
    startServer,
    async restartServer() {
      await stopServer();
      await startServer();
    },
    allowConsoleErrors(pattern) {
      allowed.push(pattern);
    },
  };
  return harness;
}

/** A URL on the test server (http or ws), or one that never leaves the page (data:, blob:, about:). */
function isLocal(url: string, host: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === 'data:' || parsed.protocol === 'blob:' || parsed.protocol === 'about:') return true;
  return (parsed.protocol === 'http:' || parsed.protocol === 'ws:') && parsed.host === host;
}
