import type { WireFrame } from '../../node/connection.js';
import type { ServerLogEntry } from '../../node/server.js';
import { Opcode } from '../../protocol/opcode.js';

export type LogLevel = 'silent' | 'info' | 'debug';

export interface Logger {
  readonly level: LogLevel;
  info(message: string): void;
  debug(message: string): void;
}

/** Line-oriented logs: one line per event, with an ISO timestamp. */
export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const emit = (message: string): void => write(`${new Date().toISOString()} ${message}\n`);
  return {
    level,
    info: level === 'silent' ? () => {} : emit,
    debug: level === 'debug' ? emit : () => {},
  };
}

/** The server's connection events as log lines: open, close, refused handshakes, errors. */
export function logServerEntry(log: Logger, entry: ServerLogEntry): void {
  const who = entry.remoteAddress ?? '-';
  switch (entry.event) {
    case 'open':
      log.info(
        `open ${entry.path} ${who}${entry.protocol ? ` protocol=${entry.protocol}` : ''}${entry.extensions ? ` extensions=${entry.extensions}` : ''}`,
      );
      return;
    case 'close':
      log.info(
        `close ${entry.path} ${who} code=${entry.code}${entry.reason ? ` reason=${JSON.stringify(entry.reason)}` : ''} clean=${entry.wasClean}`,
      );
      return;
    case 'refused':
      log.info(`refused ${entry.path || '-'} ${who} status=${entry.status} reason=${JSON.stringify(entry.reason)}`);
      return;
    case 'error':
      log.info(`error ${entry.path} ${who} ${entry.error.message}`);
      return;
    case 'frame':
      log.debug(`frame ${entry.frame.direction} ${entry.path} ${who} ${describeFrame(entry.frame)}`);
      return;
  }
}

/** A frame header as a debug line (payloads are not logged: they may be large or private). */
function describeFrame(frame: WireFrame): string {
  const name = Opcode[frame.opcode]?.toLowerCase() ?? `opcode-${frame.opcode}`;
  return `${name} fin=${frame.fin ? 1 : 0}${frame.rsv1 ? ' rsv1' : ''} masked=${frame.masked ? 1 : 0} length=${frame.length}`;
}
