import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type CloseInfo, type Connection, type Route, type ServerOptions } from '../../src/index.js';
import { OP, RawClient, closePayload, frame, parseClose, settlesWithin, type RawFrame } from './raw-client.js';
import { until } from '../wait.js';

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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('graceful shutdown', () => {
  it('sends 1001 to every peer and resolves once they have all answered', async () => {
    const harness = await start({ closeTimeout: 5000 });
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
    expect(await settlesWithin(closing, 50)).toBe(false);
    expect(done).toBe(false);

    second.send({ opcode: OP.close, payload: closePayload(1001) });
    await second.waitEnd();
    expect(await settlesWithin(closing, 1000)).toBe(true);
    expect(harness.closes.map((info) => [info.code, info.wasClean, info.initiator])).toEqual([
      [1001, true, 'local'],
      [1001, true, 'local'],
    ]);
    expect(harness.server.connections.size).toBe(0);
  });

  it('resolves within the timeout when peers never answer, and destroys their sockets', async () => {
    const harness = await start();
    const silent = [await connectRaw(harness), await connectRaw(harness)];
    const started = performance.now();
    await harness.server.close({ timeout: 150, code: 4001, reason: 'maintenance' });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1000);
    for (const client of silent) {
      expect(parseClose(await client.readFrame())).toEqual({ code: 4001, reason: 'maintenance' });
      await client.waitEnd();
    }
    await until(() => harness.closes.length === 2, 'both close events', 1000);
    for (const info of harness.closes) {
      expect(info).toMatchObject({ code: 1006, wasClean: false, initiator: 'local' });
    }
  });

  it('stops accepting connections and cuts off handshakes in progress', async () => {
    const harness = await start();
    const halfway = await RawClient.open(harness.port);
    clients.push(halfway);
    halfway.write('GET / HTTP/1.1\r\n');
    await sleep(20);
    await harness.server.close({ timeout: 100 });
    await halfway.waitEnd();
    await expect(RawClient.upgrade(harness.port)).rejects.toThrow();
  });
});

describe('heartbeat', () => {
  /** Read frames for `ms`, answering every ping with its pong; returns what came. */
  async function answerPings(client: RawClient, ms: number): Promise<RawFrame[]> {
    const seen: RawFrame[] = [];
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      let received: RawFrame;
      try {
        received = await client.readFrame(Math.max(1, deadline - performance.now()));
      } catch {
        break; // nothing more within the time
      }
      seen.push(received);
      if (received.opcode === OP.ping) client.send({ opcode: OP.pong, payload: received.payload });
      if (received.opcode === OP.close) break;
    }
    return seen;
  }

  it('keeps a client that answers pings and drops one that ignores them, saying why', async () => {
    const harness = await start({ heartbeat: 100 });
    const lively = await connectRaw(harness);
    const silent = await connectRaw(harness);
    const silentConnection = harness.connections[1]!;

    const [livelySeen] = await Promise.all([
      answerPings(lively, 450),
      (async () => {
        // The silent client gets a ping, says nothing, and is dropped at the next tick.
        const ping = await silent.readFrame(1000);
        expect(ping.bytes).toEqual(Buffer.from([0x89, 0x00]));
        const close = await silent.readFrame(1000);
        expect(close.bytes).toEqual(
          frame({ opcode: OP.close, payload: closePayload(1001, 'no pong within 100 ms'), mask: false }),
        );
        await silent.waitEnd();
      })(),
    ]);

    expect(livelySeen.length).toBeGreaterThanOrEqual(3);
    expect(livelySeen.every((seen) => seen.opcode === OP.ping)).toBe(true);
    expect(lively.ended).toBe(false);
    expect(harness.connections[0]!.state).toBe('open');

    await until(() => harness.closes.length === 1, 'the close event', 1000);
    const info = harness.closes[0]!;
    expect(silentConnection.state).toBe('closed');
    expect(info).toMatchObject({ code: 1006, reason: 'no pong within 100 ms', wasClean: false, initiator: 'local' });
    expect(info.error).toMatchObject({ name: 'ConnectionError', code: 'WS_ERR_HEARTBEAT_TIMEOUT' });
  });

  it('counts any received frame as a sign of life', async () => {
    const harness = await start({ heartbeat: 100 });
    const chatty = await connectRaw(harness);
    // Never answers a ping, but sends a message every 20 ms, for four heartbeat intervals.
    for (let i = 0; i < 20; i++) {
      chatty.send({ opcode: OP.text, payload: `m${i}` });
      await sleep(20);
    }
    const frames: RawFrame[] = [];
    while (chatty.buffered > 0) frames.push(await chatty.readFrame());
    expect(frames.filter((f) => f.opcode === OP.ping).length).toBeGreaterThanOrEqual(2);
    expect(chatty.ended).toBe(false);
    expect(harness.closes).toEqual([]);
  });
});

describe('idle timeout', () => {
  it('closes a connection with no traffic with 1001 and reports why', async () => {
    const harness = await start({ idleTimeout: 100 });
    const client = await connectRaw(harness);
    const started = performance.now();
    const close = await client.readFrame(1000);
    expect(close.bytes).toEqual(frame({ opcode: OP.close, payload: closePayload(1001, 'no traffic for 100 ms'), mask: false }));
    await client.waitEnd();
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    await until(() => harness.closes.length === 1, 'the close event', 1000);
    expect(harness.closes[0]!.error).toMatchObject({ code: 'WS_ERR_IDLE_TIMEOUT' });
  });

  it('keeps a connection with traffic open past the idle timeout', async () => {
    const harness = await start({ idleTimeout: 150 });
    const client = await connectRaw(harness);
    // Eight round trips 40 ms apart: over twice the idle timeout in all.
    for (let i = 0; i < 8; i++) {
      client.send({ opcode: OP.text, payload: `tick ${i}` });
      expect((await client.readFrame()).payload.toString()).toBe(`tick ${i}`);
      await sleep(40);
    }
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
    expect(close.bytes).toEqual(
      frame({ opcode: OP.close, payload: closePayload(1011, 'internal error'), mask: false }),
    );
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
