import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type CloseInfo, type Connection, type Route, type ServerOptions } from '../../src/index.js';
import { OP, RawClient, closePayload, frame, parseClose, settlesWithin } from './raw-client.js';
import { settle, until } from '../wait.js';
import { ManualClock } from './manual-clock.js';

/**
 * Server-wide behaviour over real sockets: graceful shutdown, heartbeats,
 * idle timeouts, and application exceptions contained to their connection.
 */

const servers: WebSocketServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

interface Harness {
  port: number;
  server: WebSocketServer;
  connections: Connection<unknown>[];
  closes: CloseInfo[];
  errors: Error[];
}

async function start(options: ServerOptions = {}, route: Route<unknown> = {}): Promise<Harness> {
  const server = new WebSocketServer({ heartbeat: false, ...options });
  servers.push(server);
  const harness: Harness = { port: 0, server, connections: [], closes: [], errors: [] };
  server.route('*', {
    message(connection, data, isBinary) {
      connection.send(data, { binary: isBinary });
    },
    ...route,
    open(connection) {
      harness.connections.push(connection);
      route.open?.(connection);
    },
    close(connection, info) {
      harness.closes.push(info);
      route.close?.(connection, info);
    },
    error(connection, error) {
      harness.errors.push(error);
      route.error?.(connection, error);
    },
  });
  harness.port = (await server.listen(0)).port;
  return harness;
}

async function connectRaw(harness: Harness): Promise<RawClient> {
  const { client } = await RawClient.upgrade(harness.port);
  clients.push(client);
  return client;
}

describe('graceful shutdown', () => {
  it('sends 1001 to every peer and resolves once they have all answered', async () => {
    // The shutdown timeout runs on a clock that never moves here: only the peers' answers can end the wait.
    const harness = await start({ closeTimeout: 5000, timers: new ManualClock() });
    const first = await connectRaw(harness);
    const second = await connectRaw(harness);
    let done = false;
    const closing = harness.server.close().then(() => {
      done = true;
    });
    const expected = frame({ opcode: OP.close, payload: closePayload(1001, 'server shutting down'), mask: false });
    expect((await first.readFrame()).bytes).toEqual(expected);
    expect((await second.readFrame()).bytes).toEqual(expected);

    first.send({ opcode: OP.close, payload: closePayload(1001) });
    await first.waitEnd();
    await until(() => harness.closes.length === 1, "the first peer's close event");
    await settle();
    expect(done).toBe(false);

    second.send({ opcode: OP.close, payload: closePayload(1001) });
    await second.waitEnd();
    expect(await settlesWithin(closing, 5000)).toBe(true);
    expect(harness.closes.map((info) => [info.code, info.wasClean, info.initiator])).toEqual([
      [1001, true, 'local'],
      [1001, true, 'local'],
    ]);
    expect(harness.server.connections.size).toBe(0);
  });

  it('resolves at the timeout when peers never answer, and destroys their sockets', async () => {
    const clock = new ManualClock();
    const harness = await start({ timers: clock });
    const silent = [await connectRaw(harness), await connectRaw(harness)];
    let done = false;
    const closing = harness.server.close({ timeout: 150, code: 4001, reason: 'maintenance' }).then(() => {
      done = true;
    });
    for (const client of silent) expect(parseClose(await client.readFrame())).toEqual({ code: 4001, reason: 'maintenance' });
    // A millisecond short of the timeout the server still waits for the answers that will not come.
    clock.advance(149);
    await settle();
    expect(done).toBe(false);
    expect(silent.some((client) => client.ended)).toBe(false);
    clock.advance(1);
    await closing;
    for (const client of silent) await client.waitEnd();
    await until(() => harness.closes.length === 2, 'both close events', 1000);
    for (const info of harness.closes) {
      expect(info).toMatchObject({ code: 1006, wasClean: false, initiator: 'local' });
    }
  });

  it('stops accepting connections and cuts off handshakes in progress', async () => {
    const clock = new ManualClock();
    const harness = await start({ timers: clock });
    const halfway = await RawClient.open(harness.port);
    clients.push(halfway);
    halfway.write('GET / HTTP/1.1\r\n');
    // The handshake deadline's sweep is armed once the server has taken the connection.
    await until(() => clock.pending > 0, 'the server to take the connection');
    await harness.server.close({ timeout: 100 });
    await halfway.waitEnd();
    await expect(RawClient.upgrade(harness.port)).rejects.toThrow();
  });
});

describe('heartbeat', () => {
  const PING = Buffer.from([0x89, 0x00]);

  /** A server pinging every 100 ms of a manual clock, with connections whose pongs are counted. */
  async function startBeating(): Promise<{ harness: Harness; clock: ManualClock; pongs: Map<Connection<unknown>, number> }> {
    const clock = new ManualClock();
    const pongs = new Map<Connection<unknown>, number>();
    const harness = await start(
      { heartbeat: 100, timers: clock },
      { open: (connection) => void connection.on('pong', () => pongs.set(connection, (pongs.get(connection) ?? 0) + 1)) },
    );
    return { harness, clock, pongs };
  }

  it('keeps a client that answers pings and drops one that ignores them at the next tick, saying why', async () => {
    const { harness, clock, pongs } = await startBeating();
    const lively = await connectRaw(harness);
    const silent = await connectRaw(harness);
    await until(() => harness.connections.length === 2, 'both connections to open');
    const [livelyConnection, silentConnection] = harness.connections as [Connection<unknown>, Connection<unknown>];

    // Tick 1: both are pinged; only the lively one answers.
    clock.advance(100);
    expect((await lively.readFrame()).bytes).toEqual(PING);
    expect((await silent.readFrame()).bytes).toEqual(PING);
    lively.send({ opcode: OP.pong, payload: Buffer.alloc(0) });
    await until(() => pongs.get(livelyConnection) === 1, 'the first pong');

    // Tick 2: the lively one is pinged again; the silent one, still owing its pong, is dropped.
    clock.advance(100);
    expect((await lively.readFrame()).bytes).toEqual(PING);
    expect((await silent.readFrame()).bytes).toEqual(frame({ opcode: OP.close, payload: closePayload(1001, 'no pong within 100 ms'), mask: false }));
    await silent.waitEnd();

    // Tick 3: answering keeps it going.
    lively.send({ opcode: OP.pong, payload: Buffer.alloc(0) });
    await until(() => pongs.get(livelyConnection) === 2, 'the second pong');
    clock.advance(100);
    expect((await lively.readFrame()).bytes).toEqual(PING);
    expect(lively.ended).toBe(false);
    expect(livelyConnection.state).toBe('open');

    await until(() => harness.closes.length === 1, 'the close event', 1000);
    const info = harness.closes[0]!;
    expect(silentConnection.state).toBe('closed');
    expect(info).toMatchObject({ code: 1006, reason: 'no pong within 100 ms', wasClean: false, initiator: 'local' });
    expect(info.error).toMatchObject({ name: 'ConnectionError', code: 'WS_ERR_HEARTBEAT_TIMEOUT' });
  });

  it('counts any received frame as a sign of life', async () => {
    const { harness, clock } = await startBeating();
    const chatty = await connectRaw(harness);
    // Never answers a ping, but sends a message (echoed) between ticks, for four ticks.
    for (let i = 0; i < 4; i++) {
      chatty.send({ opcode: OP.text, payload: `m${i}` });
      expect((await chatty.readFrame()).payload.toString()).toBe(`m${i}`);
      clock.advance(100);
      // A ping, not a close: the message counted as the answer to the previous ping.
      expect((await chatty.readFrame()).bytes).toEqual(PING);
    }
    expect(chatty.ended).toBe(false);
    expect(harness.closes).toEqual([]);
  });
});

describe('idle timeout', () => {
  it('closes a connection with no traffic with 1001 and reports why', async () => {
    const harness = await start({ idleTimeout: 100 });
    // Taken before the upgrade: the server's idle timer cannot start earlier, so the bound holds however slow the upgrade is.
    const started = performance.now();
    const client = await connectRaw(harness);
    const close = await client.readFrame(5000);
    expect(close.bytes).toEqual(frame({ opcode: OP.close, payload: closePayload(1001, 'no traffic for 100 ms'), mask: false }));
    await client.waitEnd();
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    expect(harness.closes[0]!.error).toMatchObject({ code: 'WS_ERR_IDLE_TIMEOUT' });
  });

  it('keeps a connection with traffic open past the idle timeout', async () => {
    // The idle timer is the socket's own (node:net), not the server's clock, so real time has
    // to pass. Round trips back to back keep each gap to one round trip, however loaded the
    // machine, and go on until twice the idle timeout has passed: a timer that traffic did not
    // reset would have closed the connection half way, and a later echo could not come back.
    const idleTimeout = 500;
    const harness = await start({ idleTimeout });
    const client = await connectRaw(harness);
    const started = performance.now();
    for (let i = 0; i < 100_000 && performance.now() - started <= 2 * idleTimeout; i++) {
      client.send({ opcode: OP.text, payload: `tick ${i}` });
      expect((await client.readFrame()).payload.toString()).toBe(`tick ${i}`);
    }
    expect(performance.now() - started).toBeGreaterThan(2 * idleTimeout);
    expect(client.ended).toBe(false);
    expect(harness.closes).toEqual([]);
  });
});

describe('exceptions in application hooks', () => {
  it('closes the connection with 1011 when the message hook throws, calls the error hook, and keeps serving', async () => {
    const harness = await start(
      {},
      {
        message(connection, data) {
          if (data === 'boom') throw new Error('handler exploded');
          connection.send(data);
        },
      },
    );
    const victim = await connectRaw(harness);
    victim.send({ opcode: OP.text, payload: 'boom' });
    const close = await victim.readFrame();
    expect(close.bytes).toEqual(frame({ opcode: OP.close, payload: closePayload(1011, 'internal error'), mask: false }));
    await victim.waitEnd();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    // Reported once, as a ConnectionError carrying what was thrown; the close event has the same error.
    expect(harness.errors).toHaveLength(1);
    const reported = harness.errors[0]!;
    expect(reported).toMatchObject({ name: 'ConnectionError', code: 'WS_ERR_HANDLER_FAILED' });
    expect((reported.cause as Error).message).toBe('handler exploded');
    expect(harness.closes[0]).toMatchObject({ code: 1006, wasClean: false, initiator: 'local' });
    expect(harness.closes[0]!.error).toBe(reported);

    const other = await connectRaw(harness);
    other.send({ opcode: OP.text, payload: 'still here' });
    expect((await other.readFrame()).payload.toString()).toBe('still here');
  });

  it('closes the connection with 1011 when the open hook throws', async () => {
    const harness = await start(
      {},
      {
        open() {
          throw new Error('bad open');
        },
      },
    );
    const client = await connectRaw(harness);
    expect(parseClose(await client.readFrame())).toEqual({ code: 1011, reason: 'internal error' });
    await client.waitEnd();
  });

  it('survives throwing message, error and close hooks, reporting each failure once', async () => {
    const logged: string[] = [];
    const harness = await start(
      { log: (entry) => entry.event === 'error' && logged.push(entry.error.message) },
      {
        message() {
          throw new Error('first');
        },
        error() {
          throw new Error('second');
        },
        close() {
          throw new Error('third');
        },
      },
    );
    const client = await connectRaw(harness);
    client.send({ opcode: OP.text, payload: 'x' });
    expect(parseClose(await client.readFrame()).code).toBe(1011);
    await client.waitEnd();
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    // The error hook throws both times it is called.
    expect(logged).toEqual(['first', 'second', 'third', 'second']);
    // The message hook's failure, then the close hook's, which can only be reported directly.
    expect(harness.errors.map((error) => (error.cause as Error | undefined)?.message ?? error.message)).toEqual(['first', 'third']);
    const next = await connectRaw(harness);
    next.send({ opcode: OP.ping, payload: 'alive' });
    expect((await next.readFrame()).payload.toString()).toBe('alive');
  });
});
