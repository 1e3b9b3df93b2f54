#!/usr/bin/env node
import { serve, SERVE_HELP } from './serve.js';
import { UsageFailure } from './args.js';
import { connectCommand } from './connect.js';
import { listenCommand } from './listen.js';
import { versionText } from './version.js';

const HELP = `Usage: sockeye <command> [options]

Commands:
  connect URL   talk to a WebSocket server: send typed or piped lines, print what comes back
  listen PORT   run a small server that prints what clients send and sends them what you type
  serve         run the web server with every application: pages at /, WebSockets at /<app>/ws
  serve echo    run a bare WebSocket echo server (any path)
  serve exec 'CMD ARGS'
                run CMD once per connection, its input and output bridged to the socket
  version       print the version (also --version, -V)

Run "sockeye <command> --help" for a command's options and examples.

Exit status of connect: 0 clean close, 1 failure or timeout, 2 invalid
arguments, 3 upgrade refused with an HTTP status, 130 interrupted.

Examples (the first two talk to "npm start", that is sockeye serve on port 8080):
  sockeye connect ws://127.0.0.1:8080/echo/ws
  printf 'hello\\n/ping\\n' | sockeye connect ws://127.0.0.1:8080/echo/ws -w 1
  sockeye listen 9000
  sockeye serve --port 8080
  sockeye serve echo --port 9000
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === 'version' || command === '--version' || command === '-V') {
    if (rest.length > 0) throw new UsageFailure(`unexpected argument: ${rest[0]}`);
    process.stdout.write(versionText());
    return 0;
  }
  if (command === 'serve') {
    // Signal handlers go in before the "listening" line is printed, so a
    // signal sent as soon as it appears still shuts down gracefully.
    let running: Awaited<ReturnType<typeof serve>> | undefined = undefined;
    const stop = (): void => {
      if (running === undefined || running === null) process.exit(0);
      void running.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    running = await serve(rest, process.stdout);
    if (running === null) {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      return 0;
    }
    return -1; // keep running
  }
  const streams = { input: process.stdin, output: process.stdout, errors: process.stderr };
  // `sockeye connect ... | head -3`: a reader that went away ends the session quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
  if (command === 'connect') return settle(await connectCommand(rest, streams));
  if (command === 'listen') return settle(await listenCommand(rest, streams));
  throw new UsageFailure(`unknown command: ${command}\n\n${HELP}`);
}

/**
 * An interactive command is over: everything it opened is closed, so the
 * process ends by itself. Should a handle linger anyway, do not hang.
 */
function settle(code: number): number {
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageFailure || (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`sockeye: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`sockeye: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);

export { SERVE_HELP };
