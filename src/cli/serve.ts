import { parseArgs } from 'node:util';
import { allApps, AppServer, DEFAULT_APP_MAX_MESSAGE_BYTES } from '../apps/index.js';
import { normalizeAllowedOrigin } from '../apps/origin-policy.js';
import type { LogLevel } from '../apps/log.js';
import { WebSocketServer } from '../node/server.js';
import { parsePort, parseSize, UsageFailure } from './args.js';
import { commandVector } from './command-line.js';
import { startExecServer } from './serve-exec.js';

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
server's own origin (http://HOST:PORT as the browser reached it); other
origins, and "null", get 403. Programs, which send no Origin header, are
accepted.

Options:
  --port N              port to listen on (default 8080, or $PORT)
  --host H              address to bind (default 127.0.0.1)
  --no-deflate          do not accept permessage-deflate (accepted by default)
  --max-message BYTES   largest message accepted, e.g. 1048576 or 16MiB (default
                        1MiB; larger ones are closed with 1009). The chat's
                        endpoint keeps its own 6MiB limit for images.
  --allow-origin ORIGIN also accept pages from ORIGIN, e.g. https://example.com
                        (repeatable; "*" accepts any origin; not with echo)
  --max-processes N     exec: processes running at once (default 16); further
                        connections are refused with 503
  --shell               exec: run the command with /bin/sh -c
  -b, --binary          exec: binary messages, output sent chunk by chunk
  --log-level LEVEL     info (default), debug (also every frame) or silent
  -h, --help            show this help

Examples:
  sockeye serve
  sockeye serve --allow-origin https://example.com --max-message 4MiB
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
      'max-processes': { type: 'string' },
      shell: { type: 'boolean' },
      binary: { type: 'boolean', short: 'b' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    out.write(SERVE_HELP);
    return null;
  }
  const app = positionals[0];
  if (app !== undefined && app !== 'echo' && app !== 'exec') throw new UsageFailure(`unknown application: ${app} (available: echo, exec, or none for every app)`);
  if (app === 'exec' && positionals.length < 2) throw new UsageFailure("serve exec needs a command, e.g. sockeye serve exec 'cat'");
  const extra = positionals[app === 'exec' ? 2 : 1];
  if (extra !== undefined) throw new UsageFailure(`unexpected argument: ${extra}${app === 'exec' ? " (quote the command: serve exec 'CMD ARGS')" : ''}`);
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
  if (app === 'exec') {
    const maxProcesses = Number(values['max-processes'] ?? '16');
    if (!/^\d+$/.test(values['max-processes'] ?? '16') || maxProcesses < 1) throw new UsageFailure(`invalid process count: ${values['max-processes'] ?? ''}`);
    const argv = commandVector(positionals[1]!, values.shell === true);
    const log = logLevel === 'silent' ? () => undefined : (line: string) => void out.write(`${line}\n`);
    const exec = await startExecServer(
      { argv, binary: values.binary === true, maxProcesses, port, host, perMessageDeflate, maxMessageSize, allowedOrigins },
      log,
    );
    const shown = exec.address.family === 'IPv6' ? `[${exec.address.address}]` : exec.address.address;
    out.write(`sockeye exec server listening on ws://${shown}:${exec.address.port} (${argv.join(' ')}, at most ${maxProcesses} at once)\n`);
    return exec;
  }
  if (app === undefined) {
    const apps = new AppServer({ apps: allApps, logLevel: logLevel as LogLevel, allowedOrigins, websocket: { perMessageDeflate, maxMessageSize } });
    const address = await apps.listen(port, host);
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    out.write(`sockeye listening on http://${shown}:${address.port}/ (apps: ${allApps.map((a) => a.name).join(', ')})\n`);
    return apps;
  }
  const server = new WebSocketServer({ perMessageDeflate, maxMessageSize });
  server.route('*', {
    message(connection, data, isBinary) {
      connection.send(data, { binary: isBinary });
    },
  });
  const address = await server.listen(port, host);
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  out.write(`sockeye echo server listening on ws://${shown}:${address.port}\n`);
  return server;
}
