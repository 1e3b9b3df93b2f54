import { ConnectionState, type Connection } from '../../node/connection.js';
import { CloseCode } from '../../protocol/close-code.js';
import { socketPath, type App } from '../app.js';
import { pageDirOf } from '../host/paths.js';
import { Board, type BoardOptions, type ChangeResult } from './board.js';
import { decodeClientMessage, encodeServerMessage, type CanvasError, type CanvasErrorCode, type ClientMessage } from './wire/codec.js';
import { DEFAULT_MAX_BUFFERED, Fanout, type FanoutStats } from './fanout.js';
import { InputGuard, type InputGuardOptions } from './input-guard.js';
import { CANVAS_HISTORY, CanvasCluster, type ClusterOptions } from './cluster.js';
import { checkName } from './names.js';

/**
 * The shared canvas's socket glue: one route at /canvas/ws. Messages are
 * decoded by wire/codec.ts, applied to the state in board.ts, and the board's
 * merged batches go out once per tick through fanout.ts, which also looks
 * after clients that read slowly. input-guard.ts bounds what one client may
 * send. PROTOCOL.md describes all of it for people.
 */
export interface CanvasOptions extends BoardOptions, InputGuardOptions, ClusterOptions {
  /** Milliseconds between two batches. Default 33: about 30 updates a second. */
  tickMs?: number;
  /** A client with more than this many bytes waiting is skipped at a tick (see fanout.ts). Default 64 KiB. */
  maxBuffered?: number;
}

export interface CanvasStats extends FanoutStats {
  /** Visitors on the board, every node's (as this node knows them from the presence). */
  visitors: number;
  /** The drawing's strokes and points: the same on every node. */
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
export const UNAVAILABLE_CLOSE_REASON = 'the canvas cannot reach its other nodes; try again later';

/** Messages kept per client while its hello is answered; past it they are refused with `not_joined`. */
const MAX_WAITING_MESSAGES = 256;

/** Milliseconds between two attempts to join the other nodes when the broker could not be read. */
const START_RETRY_MS = 2000;

/** The text probe of the reconnecting client's heartbeat, and its answer: the only text messages. */
export const HEARTBEAT_PROBE = 'ping';
export const HEARTBEAT_REPLY = 'pong';

interface Client {
  readonly guard: InputGuard;
  /** The visitor id once the hello was accepted. */
  id: number | null;
  /** While a hello is being answered: the messages that came after it, in order. */
  waiting: Buffer[] | null;
}

export function createCanvasApp(options: CanvasOptions = {}): CanvasApp {
  const tickMs = options.tickMs ?? 33;
  const mounts = new Set<{ board: Board; fanout: Fanout<Connection<unknown>> }>();

  const app: CanvasApp = {
    name: 'canvas',
    title: 'Canvas',
    summary: 'A shared drawing board: everyone’s pointer with their name, live, and strokes everyone sees.',
    pageDir: pageDirOf('canvas'),
    topicHistory: (topic) => CANVAS_HISTORY[topic],

    get stats() {
      const total: CanvasStats = {
        ticks: 0,
        frames: 0,
        skipped: 0,
        snapshots: 0,
        resyncs: 0,
        catchUps: 0,
        versionResyncs: 0,
        visitors: 0,
        strokes: 0,
        points: 0,
      };
      for (const { board, fanout } of mounts) {
        for (const key of Object.keys(fanout.stats) as Array<keyof FanoutStats>) total[key] += fanout.stats[key];
        total.visitors += board.visitorCount;
        total.strokes += board.drawing.strokeCount;
        total.points += board.drawing.pointCount;
      }
      return total;
    },

    mount(server, { pubsub, log }) {
      const board = new Board(options);
      const fanout = new Fanout<Connection<unknown>>(options.maxBuffered ?? DEFAULT_MAX_BUFFERED);
      const mounted = { board, fanout };
      mounts.add(mounted);
      const clients = new Map<Connection<unknown>, Client>();
      const cluster = new CanvasCluster(pubsub, board, log, () => fanout.size === 0, options);
      const outbox = cluster.outbox;
      let timer: NodeJS.Timeout | null = null;
      let unmounted = false;
      /** Hellos wait for this: the board holds the cluster's drawing (or the start failed, logged). */
      let synced = false;
      let retry: NodeJS.Timeout | null = null;
      /**
       * Join the other nodes; if the broker cannot be read (Redis down at
       * start), try again every START_RETRY_MS. Hellos wait for the first
       * attempt only; clients that came meanwhile are resynced (a snapshot)
       * once an attempt succeeds.
       */
      const sync = (): Promise<void> =>
        cluster.start().then(
          () => fanout.resyncAll(),
          (error: unknown) => {
            log.info(`canvas: joining the other nodes failed (trying again): ${error instanceof Error ? error.message : String(error)}`);
            if (unmounted) return;
            retry = setTimeout(() => void sync(), START_RETRY_MS);
            retry.unref();
          },
        );
      const ready = sync().finally(() => {
        synced = true;
      });
      /** A rebuild asked for by a hole in the log; one at a time. */
      let rebuilding = false;
      cluster.onGap = () => {
        if (rebuilding || !synced || unmounted) return;
        rebuilding = true;
        void sync().finally(() => {
          rebuilding = false;
        });
      };

      const tick = (): void => {
        try {
          // With the in-memory broker the batch is applied to the board during this call: it goes out below.
          cluster.publish();
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
          log.info(
            `canvas closing ${connection.remoteAddress ?? '-'}: ${client.guard.maxErrors} bad messages within ${client.guard.errorWindowMs} ms`,
          );
          // RFC 6455 §7.4.1: 1008, the peer keeps violating the endpoint's policy.
          connection.close(CloseCode.PolicyViolation, ERRORS_CLOSE_REASON);
        }
      };

      /**
       * A hello: wait until this node holds the drawing, take a visitor id
       * unique across nodes, then welcome. Messages the client sends
       * meanwhile wait in `client.waiting` and are handled after.
       */
      const hello = async (connection: Connection<unknown>, client: Client, name: string, version: number, about: number): Promise<void> => {
        if (!synced) await ready;
        if (connection.state !== ConnectionState.Open) return;
        if (board.visitorCount >= board.maxVisitors) {
          fail(connection, client, { code: 'full', message: `The canvas is full (${board.maxVisitors} visitors); try again later.` }, about);
          connection.close(CloseCode.PolicyViolation, FULL_CLOSE_REASON);
          return;
        }
        let chosen = '';
        if (name !== '') {
          const checked = checkName(name);
          if (!checked.ok) {
            fail(connection, client, checked.error, about);
            return;
          }
          chosen = checked.name;
        }
        let id: number;
        try {
          id = await cluster.allocateId();
        } catch (error) {
          log.info(`canvas: no visitor id for ${connection.remoteAddress ?? '-'}: ${error instanceof Error ? error.message : String(error)}`);
          // RFC 6455 §7.4.1 and the IANA registry (§11.7): 1013, try again later; the broker is unreachable.
          connection.close(CloseCode.TryAgainLater, UNAVAILABLE_CLOSE_REASON);
          return;
        }
        if (connection.state !== ConnectionState.Open) return;
        const joined = board.join(chosen, id);
        if (!joined.ok) {
          fail(connection, client, joined.error, about);
          if (joined.error.code === 'full') connection.close(CloseCode.PolicyViolation, FULL_CLOSE_REASON);
          return;
        }
        client.id = id;
        cluster.joined(id, joined.visitor.name);
        // The server speaks the client's version (the codec accepted it): see PROTOCOL.md, "Version".
        connection.send(encodeServerMessage({ type: 'welcome', version, id, colour: joined.visitor.colour, name: joined.visitor.name }));
        fanout.add(connection, version);
        startTicking();
        log.debug(`canvas join ${id} ${joined.visitor.name}`);
      };

      const apply = (id: number, guard: InputGuard, message: Exclude<ClientMessage, { type: 'hello' }>): ChangeResult => {
        switch (message.type) {
          case 'rename': {
            const result = board.rename(id, message.name);
            if (result.ok) cluster.renamed(id, board.nameOf(id)!);
            return result;
          }
          case 'move': {
            const result = board.move(id, message.x, message.y);
            if (result.ok) cluster.move(id, message.x, message.y);
            return result;
          }
          case 'stroke-begin':
            return outbox.begin(id, message.colour, message.width, message.x, message.y);
          case 'stroke-points':
            return outbox.points(id, message.points);
          case 'stroke-end':
            return outbox.end(id);
          case 'undo':
            if (!guard.undo(performance.now())) return rateLimited(`At most ${guard.maxUndosPerSecond} undos a second.`);
            return outbox.undo(id, board.drawing.countOf(id));
          case 'clear':
            if (!guard.clear(performance.now())) return rateLimited(`At most one clear every ${guard.clearIntervalMs / 1000} seconds.`);
            return outbox.clear(id);
        }
      };

      /** One decoded binary message from a client that may have joined. */
      const handle = (connection: Connection<unknown>, client: Client, bytes: Buffer): void => {
        const decoded = decodeClientMessage(bytes);
        if (!decoded.ok) {
          fail(connection, client, decoded.error, decoded.about);
          return;
        }
        const message = decoded.message;
        if (message.type === 'hello') {
          if (client.id !== null || client.waiting !== null) {
            fail(connection, client, { code: 'already_joined', message: 'You already said hello; send rename to change your name.' }, bytes[0]!);
            return;
          }
          client.waiting = [];
          hello(connection, client, message.name, message.version, bytes[0]!)
            .catch((error: unknown) => log.info(`canvas: hello failed: ${error instanceof Error ? error.message : String(error)}`))
            .finally(() => {
              const waiting = client.waiting ?? [];
              client.waiting = null;
              for (const later of waiting) {
                if (connection.state !== ConnectionState.Open) break;
                handle(connection, client, later);
              }
            });
          return;
        }
        if (client.id === null) {
          fail(connection, client, { code: 'not_joined', message: 'Say hello first.' }, bytes[0]!);
          return;
        }
        const result = apply(client.id, client.guard, message);
        if (!result.ok) fail(connection, client, result.error, bytes[0]!);
      };

      server.route(socketPath(app), {
        maxMessageSize: MAX_CLIENT_MESSAGE_BYTES,
        // The canvas applies the rate PROTOCOL.md documents itself (input-guard.ts: 240 a second,
        // closed with its own reason), not the host's default for routes without limits.
        rateLimit: false,
        open(connection) {
          clients.set(connection, { guard: new InputGuard(options), id: null, waiting: null });
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
          if (client.waiting !== null) {
            // The hello is being answered: this waits for it, within a bound (the node may be slow to reach the others).
            if (client.waiting.length < MAX_WAITING_MESSAGES) client.waiting.push(bytes);
            else fail(connection, client, { code: 'not_joined', message: 'Your hello is still being answered; wait for the welcome.' }, bytes[0]!);
            return;
          }
          handle(connection, client, bytes);
        },
        close(connection) {
          const client = clients.get(connection);
          clients.delete(connection);
          if (client === undefined || client.id === null) return;
          fanout.remove(connection);
          cluster.left(client.id);
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
        if (retry !== null) clearTimeout(retry);
        cluster.stop();
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
