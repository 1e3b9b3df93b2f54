#!/usr/bin/env node
import { serve, SERVE_HELP } from './serve.js';
import { UsageFailure } from './args.js';

const HELP = `Usage: sockeye <command> [options]

Commands:
  serve echo    run a WebSocket echo server

Run "sockeye <command> --help" for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') {
    const server = await serve(rest, process.stdout);
    if (server === null) return 0;
    const stop = (): void => {
      void server.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return -1; // keep running
  }
  throw new UsageFailure(`unknown command: ${command}\n\n${HELP}`);
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
