import { parseArgs } from 'node:util';
import { allApps, AppServer, DEFAULT_APP_MAX_MESSAGE_BYTES } from '../apps/index.js';
import { normalizeAllowedOrigin } from '../apps/origin-policy.js';
import type { LogLevel } from '../apps/log.js';
import { WebSocketServer } from '../node/server.js';
import { parsePort, parseSize, UsageFailure } from './args.js';

export const SERVE_HELP = `Usage: sockeye serve [echo] [options]

Without an application name: the web server with every application, its
pages at http://HOST:PORT/ and each WebSocket endpoint at /<app>/ws.

With "echo": a bare echo server: every text message comes back as text and
every binary message as binary, in order, on any path, from any origin.

Browser pages may open the apps' WebSockets only from the server's own
origin (http://HOST:PORT as the browser reached it); other origins, and
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
  --log-level LEVEL     info (default), debug (also every frame) or silent
  -h, --help            show this help

Examples:
  sockeye serve
  sockeye serve --allow-origin https://example.com --max-message 4MiB
  sockeye serve echo
  sockeye serve echo --port 9000 --host 0.0.0.0 --max-message 16MiB
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
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    out.write(SERVE_HELP);
    return null;
  }
  const app = positionals[0];
  if (app !== undefined && app !== 'echo') throw new UsageFailure(`unknown application: ${app} (available: echo, or none for every app)`);
  if (positionals.length > 1) throw new UsageFailure(`unexpected argument: ${positionals[1]}`);

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
