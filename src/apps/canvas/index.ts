import { ConnectionState, type Connection } from '../../node/connection.js';
import { CloseCode } from '../../protocol/close-code.js';
import { socketPath, type App } from '../app.js';
import { pageDirOf } from '../paths.js';
import { Board, type BoardOptions, type ChangeResult } from './board.js';
import { decodeClientMessage, encodeServerMessage, type CanvasError, type CanvasErrorCode, type ClientMessage } from '../../web/canvas-codec.js';
import { DEFAULT_MAX_BUFFERED, Fanout, type FanoutStats } from './fanout.js';
import { InputGuard, type InputGuardOptions } from './input-guard.js';

/**
 * The shared canvas's socket glue: one route at /canvas/ws. Messages are
 * decoded by src/web/canvas-codec.ts, applied to the state in board.ts, and the board's
 * merged batches go out once per tick through fanout.ts, which also looks
 * after clients that read slowly. input-guard.ts bounds what one client may
 * send. PROTOCOL.md describes all of it for people.
 */
export interface CanvasOptions extends BoardOptions, InputGuardOptions {
  /** Milliseconds between two batches. Default 33: about 30 updates a second. */
  tickMs?: number;
  /** A client with more than this many bytes waiting is skipped at a tick (see fanout.ts). Default 64 KiB. */
  maxBuffered?: number;
}

export interface CanvasStats extends FanoutStats {
  visitors: number;
  strokes: number;
  points: number;
}

/** The canvas application, plus figures for tests and the dashboard, summed over every server it is mounted on. */
export interface CanvasApp extends App {
  readonly stats: CanvasStats;
}

/**
 * The largest message a client may send: stroke-points with 256 points is
 * 1025 bytes, a hello with the longest name 99. Anything bigger is refused
 * by the protocol layer with 1009 before it is buffered whole.
 */
export const MAX_CLIENT_MESSAGE_BYTES = 2048;

/** Close reasons (sent with 1003 or 1008). */
export const TEXT_CLOSE_REASON = 'canvas messages are binary; see PROTOCOL.md';
export const FLOOD_CLOSE_REASON = 'too many messages per second';
export const ERRORS_CLOSE_REASON = 'too many bad messages';
export const FULL_CLOSE_REASON = 'the canvas is full; try again later';

/** The text probe of the reconnecting client's heartbeat, and its answer: the only text messages. */
export const HEARTBEAT_PROBE = 'ping';
export const HEARTBEAT_REPLY = 'pong';

interface Client {
  readonly guard: InputGuard;
  /** The visitor id once the hello was accepted. */
  id: number | null;
}

export function createCanvasApp(options: CanvasOptions = {}): CanvasApp {
  const tickMs = options.tickMs ?? 33;
  const mounts = new Set<{ board: Board; fanout: Fanout<Connection<unknown>> }>();

  const app: CanvasApp = {
    name: 'canvas',
    title: 'Canvas',
    summary: 'A shared drawing board: everyone’s pointer with their name, live, and strokes everyone sees.',
    pageDir: pageDirOf('canvas'),

    get stats() {
      const total: CanvasStats = { ticks: 0, frames: 0, skipped: 0, snapshots: 0, resyncs: 0, catchUps: 0, versionResyncs: 0, visitors: 0, strokes: 0, points: 0 };
      for (const { board, fanout } of mounts) {
        for (const key of Object.keys(fanout.stats) as Array<keyof FanoutStats>) total[key] += fanout.stats[key];
        total.visitors += board.visitorCount;
        total.strokes += board.drawing.strokeCount;
        total.points += board.drawing.pointCount;
      }
      return total;
    },

    mount(server, { log }) {
      const board = new Board(options);
      const fanout = new Fanout<Connection<unknown>>(options.maxBuffered ?? DEFAULT_MAX_BUFFERED);
      const mounted = { board, fanout };
      mounts.add(mounted);
      const clients = new Map<Connection<unknown>, Client>();
      let timer: NodeJS.Timeout | null = null;
      let unmounted = false;

      const tick = (): void => {
        try {
          fanout.tick(board);
        } catch (error) {
          log.info(`canvas: tick failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
      // The timer runs only while someone is there.
      const startTicking = (): void => {
        if (timer === null && !unmounted) timer = setInterval(tick, tickMs);
      };
      const stopTicking = (): void => {
        if (timer !== null) clearInterval(timer);
        timer = null;
      };

      const fail = (connection: Connection<unknown>, client: Client, error: CanvasError, about: number): void => {
        connection.send(encodeServerMessage({ type: 'error', code: error.code, about, message: error.message }));
        // A refusal that is not the client's mistake (a double-clicked undo, a second clear) is answered but not held against it.
        if (BENIGN_ERRORS.has(error.code)) return;
        if (!client.guard.error(performance.now())) {
          log.info(`canvas closing ${connection.remoteAddress ?? '-'}: ${client.guard.maxErrors} bad messages within ${client.guard.errorWindowMs} ms`);
          // RFC 6455 §7.4.1: 1008, the peer keeps violating the endpoint's policy.
          connection.close(CloseCode.PolicyViolation, ERRORS_CLOSE_REASON);
        }
      };

      const hello = (connection: Connection<unknown>, client: Client, name: string, version: number, about: number): void => {
        if (client.id !== null) {
          fail(connection, client, { code: 'already_joined', message: 'You already said hello; send rename to change your name.' }, about);
          return;
        }
        const joined = board.join(name);
        if (!joined.ok) {
          fail(connection, client, joined.error, about);
          if (joined.error.code === 'full') connection.close(CloseCode.PolicyViolation, FULL_CLOSE_REASON);
          return;
        }
        const { id, colour } = joined.visitor;
        client.id = id;
        // The server speaks the client's version (the codec accepted it): see PROTOCOL.md, "Version".
        connection.send(encodeServerMessage({ type: 'welcome', version, id, colour, name: joined.visitor.name }));
        fanout.add(connection, version);
        startTicking();
        log.debug(`canvas join ${id} ${joined.visitor.name}`);
      };

      const apply = (id: number, guard: InputGuard, message: Exclude<ClientMessage, { type: 'hello' }>): ChangeResult => {
        switch (message.type) {
          case 'rename':
            return board.rename(id, message.name);
          case 'move':
            return board.move(id, message.x, message.y);
          case 'stroke-begin':
            return board.beginStroke(id, message.colour, message.width, message.x, message.y);
          case 'stroke-points':
            return board.addPoints(id, message.points);
          case 'stroke-end':
            return board.endStroke(id);
          case 'undo':
            if (!guard.undo(performance.now())) return rateLimited(`At most ${guard.maxUndosPerSecond} undos a second.`);
            return board.undo(id);
          case 'clear':
            if (!guard.clear(performance.now())) return rateLimited(`At most one clear every ${guard.clearIntervalMs / 1000} seconds.`);
            return board.clear(id);
        }
      };

      server.route(socketPath(app), {
        maxMessageSize: MAX_CLIENT_MESSAGE_BYTES,
        open(connection) {
          clients.set(connection, { guard: new InputGuard(options), id: null });
        },
        message(connection, data, isBinary) {
          // After a close was started (below), what the peer still sends is not read.
          if (connection.state !== ConnectionState.Open) return;
          const client = clients.get(connection);
          if (client === undefined) return;
          if (!client.guard.message(performance.now())) {
            log.info(`canvas closing ${connection.remoteAddress ?? '-'}: more than ${client.guard.maxMessagesPerSecond} messages in a second`);
            connection.close(CloseCode.PolicyViolation, FLOOD_CLOSE_REASON);
            return;
          }
          if (!isBinary) {
            if (data === HEARTBEAT_PROBE) {
              connection.send(HEARTBEAT_REPLY);
              return;
            }
            // RFC 6455 §7.4.1: 1003, a type of data the endpoint cannot accept (an endpoint that understands only binary).
            connection.close(CloseCode.UnsupportedData, TEXT_CLOSE_REASON);
            return;
          }
          const bytes = data as Buffer;
          const decoded = decodeClientMessage(bytes);
          if (!decoded.ok) {
            fail(connection, client, decoded.error, decoded.about);
            return;
          }
          const message = decoded.message;
          if (message.type === 'hello') {
            hello(connection, client, message.name, message.version, bytes[0]!);
            return;
          }
          if (client.id === null) {
            fail(connection, client, { code: 'not_joined', message: 'Say hello first.' }, bytes[0]!);
            return;
          }
          const result = apply(client.id, client.guard, message);
          if (!result.ok) fail(connection, client, result.error, bytes[0]!);
        },
        close(connection) {
          const client = clients.get(connection);
          clients.delete(connection);
          if (client === undefined || client.id === null) return;
          fanout.remove(connection);
          board.leave(client.id);
          log.debug(`canvas leave ${client.id}`);
          if (fanout.size === 0) {
            // Nobody to tell: the batch is dropped, and the timer sleeps until the next visitor.
            stopTicking();
            board.flush();
          }
        },
      });

      return () => {
        unmounted = true;
        stopTicking();
        mounts.delete(mounted);
      };
    },
  };
  return app;
}

/** Errors answered without counting towards the bad-message limit: the client did nothing wrong. */
const BENIGN_ERRORS: ReadonlySet<CanvasErrorCode> = new Set(['nothing_to_undo', 'rate_limited']);

function rateLimited(message: string): ChangeResult {
  return { ok: false, error: { code: 'rate_limited', message } };
}

export const canvasApp: CanvasApp = createCanvasApp();
