import { parseArgs } from 'node:util';
import { WebSocketServer } from '../node/server.js';
import { parsePort, parseSize, UsageFailure } from './args.js';

export const SERVE_HELP = `Usage: sockeye serve echo [options]

Run an echo server: every text message comes back as text and every binary
message as binary, in order, on any path.

Options:
  --port N              port to listen on (default 8080, or $PORT)
  --host H              address to bind (default 127.0.0.1)
  --no-deflate          do not accept permessage-deflate (accepted by default)
  --max-message BYTES   largest message accepted, e.g. 1048576 or 16MiB (default 64MiB)
  -h, --help            show this help

Examples:
  sockeye serve echo
  sockeye serve echo --port 9000 --host 0.0.0.0 --max-message 1MiB
`;

export async function serve(argv: string[], out: NodeJS.WritableStream): Promise<WebSocketServer | null> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'no-deflate': { type: 'boolean' },
      'max-message': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    out.write(SERVE_HELP);
    return null;
  }
  const app = positionals[0];
  if (app !== 'echo') throw new UsageFailure(app === undefined ? 'serve needs an application name: echo' : `unknown application: ${app} (available: echo)`);
  if (positionals.length > 1) throw new UsageFailure(`unexpected argument: ${positionals[1]}`);

  const port = parsePort(values.port ?? process.env['PORT'], 8080);
  const host = values.host ?? '127.0.0.1';
  const server = new WebSocketServer({
    perMessageDeflate: values['no-deflate'] !== true,
    maxMessageSize: parseSize(values['max-message'], 64 * 1024 * 1024, 'message size'),
  });
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
