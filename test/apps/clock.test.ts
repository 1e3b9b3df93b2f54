import { afterEach, describe, expect, it } from 'vitest';
import { createClockApp, type ClockApp, type ClockReply } from '../../src/apps/clock/index.js';
import { AppServer } from '../../src/apps/host/server.js';
import { connect } from '../../src/node/client.js';
import type { Connection } from '../../src/node/connection.js';
import { ManualClock } from './clock/manual-clock.js';
import { until } from '../wait.js';

/**
 * The clock over real sockets on 127.0.0.1: its requests and replies, one
 * rhythm per client, and no schedule outliving its connection. Most tests
 * drive the scheduler with a manual clock; one waits for the real two
 * seconds.
 */

const servers: AppServer[] = [];
const clients: Connection<undefined>[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate('test over');
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** A client that keeps what it receives and lets a test wait for it. */
interface Client {
  connection: Connection<undefined>;
  received: ClockReply[];
  /** Resolve with the first `count` replies, waiting for them if needed. */
  next(count?: number): Promise<ClockReply[]>;
}

const WAIT_MS = 3000;

async function open(port: number): Promise<Client> {
  const connection = await connect(`ws://127.0.0.1:${port}/clock/ws`);
  clients.push(connection);
  const received: ClockReply[] = [];
  let taken = 0;
  let wake: (() => void) | null = null;
  connection.on('message', (data) => {
    received.push(JSON.parse(String(data)) as ClockReply);
    wake?.();
  });
  const next = async (count = 1): Promise<ClockReply[]> => {
    const deadline = Date.now() + WAIT_MS;
    while (received.length < taken + count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`waited ${WAIT_MS} ms for ${count} message(s), have ${received.length - taken}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
    const batch = received.slice(taken, taken + count);
    taken += count;
    return batch;
  };
  return { connection, received, next };
}

interface Harness {
  app: ClockApp;
  clock: ManualClock;
  wall: { now: number };
  port: number;
  server: AppServer;
}

/** A server with a clock on a manual scheduler and a wall clock the test sets. */
async function start(): Promise<Harness> {
  const clock = new ManualClock();
  const wall = { now: Date.UTC(2025, 0, 31, 12, 0, 0) };
  const app = createClockApp({ timers: clock.timers, monotonicNow: clock.read, wallClock: () => wall.now });
  const server = new AppServer({ apps: [app], logLevel: 'silent' });
  servers.push(server);
  const { port } = await server.listen(0);
  return { app, clock, wall, port, server };
}

/** Let replies the server wrote reach the client, for tests that expect none. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100));

/** Advance both clocks. */
function advance(h: Harness, ms: number): void {
  h.wall.now += ms;
  h.clock.advance(ms);
}

describe('clock: date', () => {
  it('answers "date" with started, the time at once, and the time again every two seconds', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('date');
    expect(await client.next(2)).toEqual([
      { type: 'started', intervalMs: 2000 },
      { type: 'time', iso: '2025-01-31T12:00:00.000Z', epochMs: Date.UTC(2025, 0, 31, 12, 0, 0) },
    ]);
    advance(h, 1999);
    await settle();
    expect(client.received).toHaveLength(2);
    advance(h, 1);
    expect(await client.next()).toEqual([{ type: 'time', iso: '2025-01-31T12:00:02.000Z', epochMs: Date.UTC(2025, 0, 31, 12, 0, 2) }]);
    advance(h, 2000);
    expect(await client.next()).toEqual([{ type: 'time', iso: '2025-01-31T12:00:04.000Z', epochMs: Date.UTC(2025, 0, 31, 12, 0, 4) }]);
  });

  it('takes the commands in any letter case, with surrounding white space', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('  DaTe\n');
    expect((await client.next(2)).map((reply) => reply.type)).toEqual(['started', 'time']);
    client.connection.send('STOP ');
    expect(await client.next()).toEqual([{ type: 'stopped' }]);
  });

  it('keeps each client on the rhythm of the moment it asked', async () => {
    const h = await start();
    const a = await open(h.port);
    const b = await open(h.port);
    a.connection.send('date');
    await a.next(2);
    advance(h, 700);
    b.connection.send('date');
    await b.next(2);
    advance(h, 1300);
    expect(await a.next()).toMatchObject([{ type: 'time', epochMs: h.wall.now }]);
    await settle();
    expect(b.received).toHaveLength(2);
    advance(h, 700);
    expect(await b.next()).toMatchObject([{ type: 'time', epochMs: h.wall.now }]);
    await settle();
    expect(a.received).toHaveLength(3);
  });

  it('starts the rhythm afresh when "date" comes again while ticking', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('date');
    await client.next(2);
    advance(h, 1500);
    client.connection.send('date');
    expect((await client.next(2)).map((reply) => reply.type)).toEqual(['started', 'time']);
    advance(h, 500);
    await settle();
    expect(client.received).toHaveLength(4);
    advance(h, 1500);
    expect(await client.next()).toMatchObject([{ type: 'time', epochMs: h.wall.now }]);
    expect(h.app.tickingClients).toBe(1);
  });

  it('serves many clients from one scheduler timer', async () => {
    const h = await start();
    const many = await Promise.all(Array.from({ length: 50 }, () => open(h.port)));
    for (const client of many) client.connection.send('date');
    await Promise.all(many.map((client) => client.next(2)));
    expect(h.app.tickingClients).toBe(50);
    expect(h.app.pendingTimers).toBe(1);
    expect(h.clock.pendingTimers).toBe(1);
    advance(h, 2000);
    const ticks = await Promise.all(many.map((client) => client.next()));
    expect(ticks.every(([reply]) => reply?.type === 'time' && reply.epochMs === h.wall.now)).toBe(true);
  });
});

describe('clock: stop and leaving', () => {
  it('answers "stop" with stopped and sends nothing more', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('date');
    await client.next(2);
    client.connection.send('stop');
    expect(await client.next()).toEqual([{ type: 'stopped' }]);
    expect(h.app.tickingClients).toBe(0);
    expect(h.clock.pendingTimers).toBe(0);
    advance(h, 10_000);
    await settle();
    expect(client.received).toHaveLength(3);
  });

  it('answers "stop" when not ticking too', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('stop');
    expect(await client.next()).toEqual([{ type: 'stopped' }]);
  });

  it('ends the schedule of a client that leaves, and the timer with the last one', async () => {
    const h = await start();
    const staying = await open(h.port);
    const leaving = await open(h.port);
    staying.connection.send('date');
    leaving.connection.send('date');
    await Promise.all([staying.next(2), leaving.next(2)]);
    expect(h.app.tickingClients).toBe(2);

    leaving.connection.close(1000, 'bye');
    await until(() => h.app.tickingClients === 1, 'the leaving client to be forgotten');
    advance(h, 2000);
    await staying.next();
    expect(h.app.pendingTimers).toBe(1);

    staying.connection.terminate('gone without a close frame');
    await until(() => h.app.tickingClients === 0, 'the dropped client to be forgotten');
    expect(h.app.pendingTimers).toBe(0);
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('clears every schedule when the server shuts down', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('date');
    await client.next(2);
    expect(h.app.pendingTimers).toBe(1);
    await h.server.close();
    servers.splice(servers.indexOf(h.server), 1);
    expect(h.app.tickingClients).toBe(0);
    expect(h.app.pendingTimers).toBe(0);
    expect(h.clock.pendingTimers).toBe(0);
  });
});

describe('clock: what it does not understand', () => {
  it('answers an unknown command with an error, and the connection stays usable', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('what time is it?');
    const [reply] = await client.next();
    expect(reply).toMatchObject({ type: 'error', code: 'unknown-command' });
    expect(reply?.type === 'error' && reply.message).toContain('"what time is it?"');
    client.connection.send('date');
    expect((await client.next(2)).map((r) => r.type)).toEqual(['started', 'time']);
  });

  it('quotes at most 40 characters of an unknown command back', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send('x'.repeat(10_000));
    const [reply] = await client.next();
    expect(reply?.type === 'error' && reply.message.length).toBeLessThan(100);
  });

  it('answers a binary message with an error', async () => {
    const h = await start();
    const client = await open(h.port);
    client.connection.send(Buffer.from('date'));
    expect(await client.next()).toMatchObject([{ type: 'error', code: 'binary-not-supported' }]);
    expect(h.app.tickingClients).toBe(0);
  });
});

describe('clock: the real two seconds', () => {
  it('sends the second time two seconds after the first', async () => {
    const app = createClockApp();
    const server = new AppServer({ apps: [app], logLevel: 'silent' });
    servers.push(server);
    const { port } = await server.listen(0);
    const client = await open(port);
    const arrivals: number[] = [];
    client.connection.on('message', () => arrivals.push(performance.now()));
    client.connection.send('date');
    const [, first] = await client.next(2);
    const [second] = await client.next();
    expect(first?.type).toBe('time');
    expect(second?.type).toBe('time');
    if (first?.type !== 'time' || second?.type !== 'time') return;
    expect(second.epochMs - first.epochMs).toBeGreaterThanOrEqual(1990);
    expect(second.epochMs - first.epochMs).toBeLessThan(2300);
    expect(arrivals[2]! - arrivals[1]!).toBeGreaterThanOrEqual(1950);
    expect(arrivals[2]! - arrivals[1]!).toBeLessThan(2400);
    expect(Math.abs(second.epochMs - Date.now())).toBeLessThan(500);
  });
});
