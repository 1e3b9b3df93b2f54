import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type Route, type ServerOptions } from '../../src/index.js';
import { OP, RawClient, closePayload, parseClose, upgradeRequest } from './raw-client.js';
import { until } from '../wait.js';
import { ManualClock } from './manual-clock.js';

/** `server.counters()`: what the server did since it started, each event counted where it happens. */

const servers: WebSocketServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

async function start(route: Route<unknown>, options: ServerOptions = {}): Promise<{ server: WebSocketServer; port: number }> {
  const server = new WebSocketServer({ heartbeat: false, ...options });
  server.route('/', route);
  servers.push(server);
  return { server, port: (await server.listen(0)).port };
}

async function upgrade(port: number): Promise<RawClient> {
  const { client } = await RawClient.upgrade(port);
  clients.push(client);
  return client;
}

async function refusedWith(port: number, request: string): Promise<number> {
  const client = await RawClient.open(port);
  clients.push(client);
  client.write(request);
  return (await client.readHead()).status;
}

describe('server.counters()', () => {
  it('starts at zero', () => {
    const server = new WebSocketServer({ heartbeat: false });
    expect(server.counters()).toEqual({
      opened: 0,
      refused: {},
      closed: {},
      heartbeatDrops: 0,
      backpressureCloses: 0,
      backpressureDrops: 0,
      rateLimited: 0,
      rateLimitCloses: 0,
      hookFailures: 0,
    });
  });

  it('counts opened connections, refusals by status and closes by code', async () => {
    const { server, port } = await start({
      message: (_connection, data) => {
        if (data === 'throw') throw new Error('hook failure');
      },
    });
    expect(await refusedWith(port, upgradeRequest({ path: '/nowhere' }))).toBe(404);
    expect(await refusedWith(port, upgradeRequest({ path: '/nowhere' }))).toBe(404);
    expect(await refusedWith(port, upgradeRequest({ omit: ['Sec-WebSocket-Key'] }))).toBe(400);

    const polite = await upgrade(port);
    polite.send({ opcode: OP.close, payload: closePayload(1000) });
    await polite.waitEnd();
    const rude = await upgrade(port);
    rude.destroy();
    const failing = await upgrade(port);
    failing.send({ opcode: OP.text, payload: 'throw' });
    expect(parseClose(await failing.readFrame()).code).toBe(1011);
    await failing.waitEnd();
    await until(() => server.connections.size === 0, 'every close', 2000);

    const counters = server.counters();
    expect(counters.opened).toBe(3);
    expect(counters.refused).toEqual({ 400: 1, 404: 2 });
    // The close event's code: 1000 from the polite peer; no close frame from the other two (1006).
    expect(counters.closed).toEqual({ 1000: 1, 1006: 2 });
    expect(counters.hookFailures).toBe(1);
  });

  it('returns a copy: changing it changes nothing in the server', async () => {
    const { server, port } = await start({});
    expect(await refusedWith(port, upgradeRequest({ path: '/x' }))).toBe(404);
    const copy = server.counters();
    copy.refused[404] = 99;
    copy.opened = 42;
    expect(server.counters().refused[404]).toBe(1);
    expect(server.counters().opened).toBe(0);
  });

  it('counts heartbeat drops', async () => {
    const clock = new ManualClock();
    const { server, port } = await start({}, { heartbeat: 40, timers: clock });
    // A raw client answers no ping: pinged at the first tick, dropped at the second.
    const silent = await upgrade(port);
    clock.advance(40);
    expect((await silent.readFrame()).opcode).toBe(OP.ping);
    expect(server.counters().heartbeatDrops).toBe(0);
    clock.advance(40);
    expect(parseClose(await silent.readFrame())).toEqual({ code: 1001, reason: 'no pong within 40 ms' });
    await silent.waitEnd();
    // Counted with the close event, once the socket is gone.
    await until(() => server.counters().heartbeatDrops === 1, 'the heartbeat drop');
  });

  it('counts messages dropped for a slow reader, open connections included, and keeps them after the close', async () => {
    const chunk = Buffer.alloc(16 * 1024);
    const { server, port } = await start(
      {
        open(connection) {
          for (let i = 0; i < 200; i++) connection.send(chunk);
        },
      },
      { backpressurePolicy: 'drop', maxBufferedAmount: 256 * 1024 },
    );
    const slow = await upgrade(port);
    slow.pause();
    await until(() => server.counters().backpressureDrops > 0, 'dropped messages', 2000);
    const whileOpen = server.counters().backpressureDrops;
    // At most 256 KiB of the 3.2 MB fit: most of the 200 are dropped.
    expect(whileOpen).toBeGreaterThan(100);
    expect(whileOpen).toBeLessThan(200);
    slow.destroy();
    await until(() => server.connections.size === 0, 'the close', 2000);
    expect(server.counters().backpressureDrops).toBe(whileOpen);
  });

  it('counts connections closed for a slow reader', async () => {
    const chunk = Buffer.alloc(16 * 1024);
    const { server, port } = await start(
      {
        open(connection) {
          for (let i = 0; i < 200; i++) connection.send(chunk);
        },
      },
      { backpressurePolicy: 'close', maxBufferedAmount: 256 * 1024 },
    );
    const slow = await upgrade(port);
    slow.pause();
    await until(() => server.counters().backpressureCloses === 1, 'the backpressure close', 3000);
  });
});
