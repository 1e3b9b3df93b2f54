import type { TlsOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { originPolicy } from '../apps/host/origin-policy.js';
import type { Connection } from '../node/connection.js';
import { WebSocketServer } from '../node/server.js';
import { reject } from '../node/upgrade.js';
import { CloseCode } from '../protocol/close-code.js';
import { ProcessBridge } from './exec-bridge.js';

/**
 * `sockeye serve exec 'CMD ARGS'`: one process per WebSocket connection,
 * on any path, wired by `ProcessBridge`. At most `maxProcesses` run at
 * once; a connection past that is refused with 503 (or, when several
 * pass that check together, closed with 1013 "try again later", from the
 * IANA close code registry). A process is stopped when its connection closes, and
 * its connection closed when it exits: 1000 for status 0, 1011 otherwise.
 * Pages of other origins are refused (a program is at least as sensitive
 * as any app), unless allowed.
 */

export interface ExecServerSettings {
  argv: string[];
  binary: boolean;
  maxProcesses: number;
  port: number;
  host: string;
  perMessageDeflate: boolean;
  maxMessageSize: number;
  allowedOrigins: string[];
  /** Serve wss:// with this certificate and key. */
  tls?: TlsOptions;
}

export interface ExecServer {
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startExecServer(settings: ExecServerSettings, log: (line: string) => void): Promise<ExecServer> {
  const running = new Map<Connection<unknown>, ProcessBridge>();
  let sequence = 0;
  const server = new WebSocketServer({
    perMessageDeflate: settings.perMessageDeflate,
    maxMessageSize: settings.maxMessageSize,
    tls: settings.tls,
    http2: settings.tls !== undefined,
  });
  const tags = new WeakMap<Connection<unknown>, string>();
  server.route('*', {
    origins: originPolicy(settings.allowedOrigins, settings.tls !== undefined),
    authenticate: () =>
      running.size >= settings.maxProcesses ? reject(503, `all ${settings.maxProcesses} processes are busy; try again later`) : undefined,
    open(connection) {
      if (running.size >= settings.maxProcesses) {
        connection.close(CloseCode.TryAgainLater, 'all processes are busy');
        return;
      }
      const tag = `[#${++sequence} ${connection.remoteAddress ?? '-'}:${connection.remotePort ?? '-'}]`;
      tags.set(connection, tag);
      const bridge = new ProcessBridge(settings.argv, connection, {
        binary: settings.binary,
        stderr: (line) => log(`${tag} stderr: ${line}`),
      });
      running.set(connection, bridge);
      log(`${tag} started ${settings.argv[0]!} (pid ${bridge.pid ?? '-'})`);
      void bridge.exited.then(({ code, signal, error }) => {
        running.delete(connection);
        const how =
          error !== undefined ? `could not start: ${error.message}`
          : code === null ? `ended by signal ${signal ?? '?'}`
          : `exited with status ${code}`;
        log(`${tag} pid ${bridge.pid ?? '-'} ${how}`);
        if (code === 0) connection.close(CloseCode.Normal);
        else connection.close(CloseCode.InternalError, 'the program failed');
      });
    },
    message(connection, data, isBinary) {
      running.get(connection)?.input(data, isBinary);
    },
    close(connection, info) {
      log(`${tags.get(connection) ?? '[-]'} closed: ${info.code}`);
      running.get(connection)?.stop();
    },
  });
  const address = await server.listen(settings.port, settings.host);
  return {
    address,
    async close() {
      await server.close();
      const left = [...running.values()];
      for (const bridge of left) bridge.stop();
      await Promise.all(left.map((bridge) => bridge.exited));
    },
  };
}
