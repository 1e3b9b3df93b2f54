import type { Connection } from '../../node/connection.js';
import { socketPath, type App } from '../app.js';
import { pageDirOf } from '../host/paths.js';
import { parseRequest, timeReply, type ClockReply } from './protocol.js';
import { Ticker, type Subscription, type TickerTimers } from './ticker.js';

export type { ClockReply, ClockCommand, ClockErrorCode } from './protocol.js';

export interface ClockOptions {
  /** Milliseconds between two time messages to a client. Default 2000, the exercise's two seconds. */
  intervalMs?: number;
  /** Timer functions for the shared scheduler; default the global ones. */
  timers?: TickerTimers;
  /** Monotonic clock (ms) the scheduler runs on; default `performance.now()`. */
  monotonicNow?: () => number;
  /** The date and time sent to clients (ms since the epoch); default `Date.now`. */
  wallClock?: () => number;
}

/** The clock application, plus what tests need to see that no timer outlives its connection. */
export interface ClockApp extends App {
  /** Clients currently receiving ticks, over every server the app is mounted on. */
  readonly tickingClients: number;
  /** Scheduler timers pending, over every server the app is mounted on: 0 when nobody ticks. */
  readonly pendingTimers: number;
}

/**
 * The classic exercise: a client sends `date` and receives the current date
 * and time at once and then every two seconds, until it sends `stop` or
 * leaves (see ./protocol.ts for the messages). All clients of a server share
 * one scheduler (./ticker.ts) with one timer, yet each client's ticks keep the
 * rhythm of the moment it asked; a client's schedule ends with its connection.
 */
export function createClockApp(options: ClockOptions = {}): ClockApp {
  const intervalMs = options.intervalMs ?? 2000;
  const wallClock = options.wallClock ?? Date.now;
  const tickers = new Set<Ticker>();

  const app: ClockApp = {
    name: 'clock',
    title: 'Clock',
    summary: 'Send "date" and the server sends you the date and time every two seconds, until you send "stop".',
    pageDir: pageDirOf('clock'),

    get tickingClients() {
      let count = 0;
      for (const ticker of tickers) count += ticker.size;
      return count;
    },

    get pendingTimers() {
      let count = 0;
      for (const ticker of tickers) if (ticker.armed) count++;
      return count;
    },

    mount(server, { log }) {
      const ticker = new Ticker({
        period: intervalMs,
        timers: options.timers,
        now: options.monotonicNow,
        onError: (error) => log.info(`clock: tick failed: ${error instanceof Error ? error.message : String(error)}`),
      });
      tickers.add(ticker);
      const schedules = new Map<Connection<unknown>, Subscription>();
      /** Set once the server shuts down: connections still closing get no new schedule. */
      let unmounted = false;

      // Clients due in the same millisecond get the same text: format it once.
      let lastEpochMs = NaN;
      let lastText = '';
      const sendTime = (connection: Connection<unknown>): void => {
        const epochMs = wallClock();
        if (epochMs !== lastEpochMs) {
          lastEpochMs = epochMs;
          lastText = JSON.stringify(timeReply(epochMs));
        }
        connection.send(lastText);
      };
      const reply = (connection: Connection<unknown>, message: ClockReply): void => {
        connection.send(JSON.stringify(message));
      };
      const stop = (connection: Connection<unknown>): void => {
        const schedule = schedules.get(connection);
        if (schedule === undefined) return;
        schedules.delete(connection);
        ticker.remove(schedule);
      };

      server.route(socketPath(app), {
        message(connection, data, isBinary) {
          const request = parseRequest(data, isBinary);
          if (!request.ok) {
            reply(connection, { type: 'error', code: request.code, message: request.message });
            return;
          }
          stop(connection);
          if (request.command === 'stop') {
            reply(connection, { type: 'stopped' });
            return;
          }
          if (unmounted) return;
          reply(connection, { type: 'started', intervalMs });
          sendTime(connection);
          schedules.set(
            connection,
            ticker.add(() => sendTime(connection)),
          );
        },
        close(connection) {
          stop(connection);
        },
      });

      return () => {
        unmounted = true;
        ticker.dispose();
        schedules.clear();
        tickers.delete(ticker);
      };
    },
  };
  return app;
}

/** The clock with the exercise's two-second interval. */
export const clockApp: ClockApp = createClockApp();
