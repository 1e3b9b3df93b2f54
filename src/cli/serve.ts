import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { historyPolicyOf } from '../apps/app.js';
import { allApps, AppServer, DEFAULT_APP_MAX_MESSAGE_BYTES } from '../apps/index.js';
import { normalizeAllowedOrigin } from '../apps/host/origin-policy.js';
import type { LogLevel } from '../apps/host/log.js';
import { WebSocketServer } from '../node/server.js';
import type { HistoryPolicy } from '../pubsub/broker.js';
import { PubSub } from '../pubsub/pubsub.js';
import { RedisBroker } from '../pubsub/redis-broker.js';
import { parsePort, parseSize, UsageFailure } from './args.js';
import { commandVector } from './command-line.js';
import { startCluster } from './serve-cluster.js';
import { startExecServer } from './serve-exec.js';
import { serverTlsOptions } from './tls-files.js';

export const SERVE_HELP = `Usage: sockeye serve [echo | exec 'CMD ARGS'] [options]

Without an application name: the web server with every application, its
pages at http://HOST:PORT/ and each WebSocket endpoint at /<app>/ws.

With "echo": a bare echo server: every text message comes back as text and
every binary message as binary, in order, on any path, from any origin.

With "exec 'CMD ARGS'": one process of the command per connection, on any
path: each line it prints is sent as a text message, each message received
is written to its input followed by a line feed (with --binary: chunks and
bytes as they are). It is stopped when its connection closes; when it exits
the connection is closed (1000 for status 0, 1011 otherwise). Its standard
error is logged, tagged by connection. The command is split into words like
a shell would (quotes, backslashes) but not run by one unless --shell.

Browser pages may open the WebSockets of the apps and of exec only from the
server's own origin (http://HOST:PORT as the browser reached it, or https://
behind a TLS proxy that sends X-Forwarded-Proto: https); other origins, and
"null", get 403. Programs, which send no Origin header, are accepted.

Options:
  --port N              port to listen on (default 8080, or $PORT)
  --host H              address to bind (default 127.0.0.1)
  --no-deflate          do not accept permessage-deflate (accepted by default)
  --max-message BYTES   largest message accepted, e.g. 1048576 or 16MiB (default
                        1MiB; larger ones are closed with 1009). The chat's
                        endpoint keeps its own 6MiB limit for images.
  --allow-origin ORIGIN also accept pages from ORIGIN, e.g. https://example.com
                        (repeatable; "*" accepts any origin; not with echo)
  --redis URL           run the apps on Redis (redis:// or rediss://, password in
                        the URL), so that several processes or machines serve
                        one chat, canvas and dashboard (default: in memory, this
                        process only; or $SOCKEYE_REDIS_URL). See docs/scale-out.md
  --workers N           start N processes sharing the port (needs --redis: each
                        process has its own memory, Redis is what they share)
  --max-processes N     exec: processes running at once (default 16); further
                        connections are refused with 503
  --shell               exec: run the command with /bin/sh -c
  -b, --binary          exec: binary messages, output sent chunk by chunk
  --tls-cert FILE       serve https:// and wss:// with this certificate (PEM, the
                        chain after it); the pages' own origin is then https://.
                        HTTP/2 and HTTP/1.1 on the same port (ALPN); WebSockets
                        over HTTP/2 too (RFC 8441), as current browsers open them
  --tls-key FILE        the certificate's private key (PEM)
  --log-level LEVEL     info (default), debug (also every frame) or silent
  -h, --help            show this help

Examples:
  sockeye serve
  sockeye serve --allow-origin https://example.com --max-message 4MiB
  sockeye serve --redis redis://127.0.0.1:6379 --workers 4
  sockeye serve --port 8443 --tls-cert cert.pem --tls-key key.pem
  sockeye serve echo
  sockeye serve echo --port 9000 --host 0.0.0.0 --max-message 16MiB
  sockeye serve exec 'stdbuf -oL tr a-z A-Z' --port 9001   (stdbuf: a line at a time)
  sockeye serve exec 'wc -c' --port 9002 --binary --max-processes 4
`;

/** What serve started: either server type stops the same way. */
export interface Running {
  close(): Promise<void>;
}

export async function serve(argv: string[], out: NodeJS.WritableStream): Promise<Running | null> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'no-deflate': { type: 'boolean' },
      'max-message': { type: 'string' },
      'allow-origin': { type: 'string', multiple: true },
      redis: { type: 'string' },
      workers: { type: 'string' },
      'max-processes': { type: 'string' },
      shell: { type: 'boolean' },
      binary: { type: 'boolean', short: 'b' },
      'log-level': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    out.write(SERVE_HELP);
    return null;
  }
  const app = positionals[0];
  if (app !== undefined && app !== 'echo' && app !== 'exec')
    throw new UsageFailure(`unknown application: ${app} (available: echo, exec, or none for every app)`);
  if (app === 'exec' && positionals.length < 2) throw new UsageFailure("serve exec needs a command, e.g. sockeye serve exec 'cat'");
  const extra = positionals[app === 'exec' ? 2 : 1];
  if (extra !== undefined)
    throw new UsageFailure(`unexpected argument: ${extra}${app === 'exec' ? " (quote the command: serve exec 'CMD ARGS')" : ''}`);
  if (app !== 'exec') {
    for (const option of ['max-processes', 'shell', 'binary'] as const) {
      if (values[option] !== undefined) throw new UsageFailure(`--${option} goes with serve exec`);
    }
  }

  const port = parsePort(values.port ?? process.env['PORT'], 8080);
  const host = values.host ?? '127.0.0.1';
  const perMessageDeflate = values['no-deflate'] !== true;
  const maxMessageSize = parseSize(values['max-message'], DEFAULT_APP_MAX_MESSAGE_BYTES, 'message size');
  const allowedOrigins = (values['allow-origin'] ?? []).map((entry) => {
    const origin = normalizeAllowedOrigin(entry);
    if (origin === null) throw new UsageFailure(`invalid origin: ${entry} (use scheme://host[:port], e.g. https://example.com, or null, or *)`);
    return origin;
  });
  if (app === 'echo' && allowedOrigins.length > 0) throw new UsageFailure('--allow-origin is for the apps server; serve echo accepts every origin');
  const logLevel = values['log-level'] ?? 'info';
  if (logLevel !== 'info' && logLevel !== 'debug' && logLevel !== 'silent') {
    throw new UsageFailure(`invalid log level: ${logLevel} (info, debug or silent)`);
  }
  const tls = serverTlsOptions(values['tls-cert'], values['tls-key']);
  const scheme = tls === undefined ? { http: 'http', ws: 'ws' } : { http: 'https', ws: 'wss' };
  const redisUrl = parseRedisUrl(values.redis ?? nonEmpty(process.env['SOCKEYE_REDIS_URL']));
  const workers = parseWorkers(values.workers);
  if (app !== undefined && values.redis !== undefined) throw new UsageFailure(`--redis is for the apps server; serve ${app} keeps no state to share`);
  if (app !== undefined && workers !== null) throw new UsageFailure(`--workers is for the apps server, not serve ${app}`);
  if (workers !== null && redisUrl === null) {
    throw new UsageFailure(
      '--workers needs --redis URL (or SOCKEYE_REDIS_URL): each worker is a process with its own memory, so without a shared broker ' +
        'their chat rooms, nicknames, history and canvas would be split between them. Start Redis and add --redis redis://127.0.0.1:6379',
    );
  }
  if (app === 'exec') {
    const maxProcesses = Number(values['max-processes'] ?? '16');
    if (!/^\d+$/.test(values['max-processes'] ?? '16') || maxProcesses < 1)
      throw new UsageFailure(`invalid process count: ${values['max-processes'] ?? ''}`);
    const argv = commandVector(positionals[1]!, values.shell === true);
    const log = logLevel === 'silent' ? () => undefined : (line: string) => void out.write(`${line}\n`);
    const exec = await startExecServer(
      { argv, binary: values.binary === true, maxProcesses, port, host, perMessageDeflate, maxMessageSize, allowedOrigins, tls },
      log,
    );
    const shown = exec.address.family === 'IPv6' ? `[${exec.address.address}]` : exec.address.address;
    out.write(`sockeye exec server listening on ${scheme.ws}://${shown}:${exec.address.port} (${argv.join(' ')}, at most ${maxProcesses} at once)\n`);
    return exec;
  }
  if (app === undefined) {
    const names = allApps.map((a) => a.name).join(', ');
    const where = redisUrl === null ? '' : `, on Redis ${displayUrl(redisUrl)}`;
    if (workers !== null && cluster.isPrimary) {
      // The primary only forks and reports; each worker runs this same command.
      const running = await startCluster({ workers, log: (line) => void out.write(`sockeye: ${line}\n`) });
      const shown = running.address.family === 'IPv6' ? `[${running.address.address}]` : running.address.address;
      out.write(`sockeye listening on ${scheme.http}://${shown}:${running.address.port}/ (apps: ${names}; ${workers} workers${where})\n`);
      return running;
    }
    const pubsub = redisUrl === null ? undefined : new PubSub({ broker: await connectRedis(redisUrl, historyPolicyOf(allApps)) });
    const apps = new AppServer({
      apps: allApps,
      logLevel: logLevel as LogLevel,
      allowedOrigins,
      pubsub,
      websocket: { perMessageDeflate, maxMessageSize },
      tls,
    });
    const address = await apps.listen(port, host);
    // A worker's listening line would repeat the primary's; it only logs.
    if (cluster.isWorker) return apps;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    out.write(`sockeye listening on ${scheme.http}://${shown}:${address.port}/ (apps: ${names}${where})\n`);
    return apps;
  }
  // With TLS, h2 and http/1.1 by ALPN, WebSockets over either (RFC 8441).
  const server = new WebSocketServer({ perMessageDeflate, maxMessageSize, tls, http2: tls !== undefined });
  server.route('*', {
    // Text is echoed as the bytes it came in (validated UTF-8): no decode, no encode.
    decodeText: false,
    message(connection, data, isBinary) {
      connection.send(data, { binary: isBinary });
    },
  });
  const address = await server.listen(port, host);
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  out.write(`sockeye echo server listening on ${scheme.ws}://${shown}:${address.port}\n`);
  return server;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** A redis:// or rediss:// URL, checked here so a typo is an argument error (2), not a connection failure. */
function parseRedisUrl(value: string | undefined): URL | null {
  if (value === undefined) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageFailure(`invalid Redis URL: ${value} (e.g. redis://127.0.0.1:6379 or rediss://:password@host:6380)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new UsageFailure(`invalid Redis URL: ${displayUrl(url)} (the scheme must be redis:// or rediss://)`);
  }
  return url;
}

function parseWorkers(value: string | undefined): number | null {
  if (value === undefined) return null;
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 256) throw new UsageFailure(`invalid worker count: ${value} (1 to 256)`);
  return count;
}

/** The URL without its password, for messages and logs. */
function displayUrl(url: URL): string {
  if (url.password === '') return url.href;
  const shown = new URL(url.href);
  shown.password = '***';
  return shown.href;
}

/** Connect to Redis before listening: a node that cannot reach it says so and exits rather than serve a split cluster. */
async function connectRedis(url: URL, history: HistoryPolicy): Promise<RedisBroker> {
  try {
    return await RedisBroker.connect({ url: url.href, history, timeoutMs: 10_000 });
  } catch (error) {
    throw new Error(`cannot use Redis at ${displayUrl(url)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
