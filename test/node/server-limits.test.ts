import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type Route, type ServerOptions } from '../../src/index.js';
import type { HookFailure, RateLimited } from '../../src/node/server.js';
import { OP, RawClient, parseClose, upgradeRequest } from './raw-client.js';
import { until } from '../wait.js';

/**
 * Limits built into the server: rate limits per connection (token buckets
 * on an injected clock), caps on connections per address and in total, and
 * on handshakes in progress. Each refusal is counted in `counters()`.
 */

const servers: WebSocketServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1_000;
  return { now: () => time, advance: (ms) => void (time += ms) };
}

const echo: Route<unknown> = {
  message: (connection, data, isBinary) => void connection.send(data, { binary: isBinary }),
};

async function start(routes: Record<string, Route<unknown>>, options: ServerOptions = {}): Promise<{ server: WebSocketServer; port: number }> {
  const server = new WebSocketServer({ heartbeat: false, ...options });
  for (const [path, route] of Object.entries(routes)) server.route(path, route);
  servers.push(server);
  return { server, port: (await server.listen(0)).port };
}

async function upgrade(port: number, path = '/'): Promise<RawClient> {
  const { client } = await RawClient.upgrade(port, { path });
  clients.push(client);
  return client;
}

/** Send an upgrade request on a fresh connection and read the status line's code. */
async function status(port: number, path = '/'): Promise<number> {
  const client = await RawClient.open(port);
  clients.push(client);
  client.write(upgradeRequest({ path }));
  return (await client.readHead()).status;
}

async function roundTrip(client: RawClient, text: string): Promise<string> {
  client.send({ opcode: OP.text, payload: text });
  const reply = await client.readFrame();
  if (reply.opcode === OP.close) return `close ${parseClose(reply).code} ${parseClose(reply).reason}`;
  return reply.payload.toString();
}

describe('rate limits per connection', () => {
  it('drop: over the limit the message is not delivered, limited() answers in-band, sustained abuse closes with 1008', async () => {
    const clock = manualClock();
    const seen: RateLimited[] = [];
    const { server, port } = await start(
      {
        '/': {
          ...echo,
          rateLimit: { messagesPerSecond: 2, abuseLimit: 3, abuseWindowMs: 10_000 },
          limited(connection, info) {
            seen.push(info);
            connection.send(`limited ${info.limit}${info.closing ? ', closing' : ''}`);
          },
        },
      },
      { now: clock.now },
    );
    const client = await upgrade(port);
    expect(await roundTrip(client, 'a')).toBe('a');
    expect(await roundTrip(client, 'b')).toBe('b');
    expect(await roundTrip(client, 'c')).toBe('limited messages');
    // Half a second brings one message back at 2 per second.
    clock.advance(500);
    expect(await roundTrip(client, 'd')).toBe('d');
    expect(await roundTrip(client, 'e')).toBe('limited messages');
    // The third refusal within 10 s: answered, then closed.
    expect(await roundTrip(client, 'f')).toBe('limited messages, closing');
    expect(parseClose(await client.readFrame())).toEqual({ code: 1008, reason: 'rate limit exceeded' });
    expect(seen.map((info) => [info.data, info.isBinary, info.closing])).toEqual([
      ['c', false, false],
      ['e', false, false],
      ['f', false, true],
    ]);
    const counters = server.counters();
    expect(counters.rateLimited).toBe(3);
    expect(counters.rateLimitCloses).toBe(1);
  });

  it('close: the first message over the byte allowance closes with 1008; a message may overdraw it once', async () => {
    const clock = manualClock();
    const { server, port } = await start({ '/': { ...echo, rateLimit: { bytesPerSecond: 100, onExceeded: 'close' } } }, { now: clock.now });
    const client = await upgrade(port);
    const sixty = 'x'.repeat(60);
    expect(await roundTrip(client, sixty)).toBe(sixty);
    // 40 bytes left: not in debt, so 60 more pass and leave it at -20.
    expect(await roundTrip(client, sixty)).toBe(sixty);
    expect(await roundTrip(client, 'y')).toBe('close 1008 rate limit exceeded');
    expect(server.counters()).toMatchObject({ rateLimited: 1, rateLimitCloses: 1 });
  });

  it('counts bytes after decoding: multi-byte text is counted in UTF-8 bytes', async () => {
    const clock = manualClock();
    const { port } = await start({ '/': { ...echo, rateLimit: { bytesPerSecond: 10, byteBurst: 10, onExceeded: 'close' } } }, { now: clock.now });
    const client = await upgrade(port);
    // Five characters, ten bytes: takes the whole allowance.
    expect(await roundTrip(client, 'ééééé')).toBe('ééééé');
    expect(await roundTrip(client, 'z')).toBe('close 1008 rate limit exceeded');
  });

  it('the server default applies to routes without their own; rateLimit: false turns it off', async () => {
    const clock = manualClock();
    const { port } = await start(
      { '/limited': echo, '/free': { ...echo, rateLimit: false }, '/own': { ...echo, rateLimit: { messagesPerSecond: 3 } } },
      { now: clock.now, rateLimit: { messagesPerSecond: 1, onExceeded: 'close' } },
    );
    const limited = await upgrade(port, '/limited');
    expect(await roundTrip(limited, '1')).toBe('1');
    expect(await roundTrip(limited, '2')).toBe('close 1008 rate limit exceeded');
    const free = await upgrade(port, '/free');
    for (let i = 0; i < 20; i++) expect(await roundTrip(free, String(i))).toBe(String(i));
    const own = await upgrade(port, '/own');
    for (let i = 0; i < 3; i++) expect(await roundTrip(own, String(i))).toBe(String(i));
    // Its own limit, with the default onExceeded ('drop') and no limited hook: nothing comes back.
    own.send({ opcode: OP.text, payload: 'dropped' });
    // Frames are handled in order: once the pong is back, the message was handled.
    own.send({ opcode: OP.ping, payload: 'p' });
    const pong = await own.readFrame();
    expect([pong.opcode, pong.payload.toString()]).toEqual([OP.pong, 'p']);
    clock.advance(1000);
    expect(await roundTrip(own, 'after')).toBe('after');
  });

  it('a limited hook that throws fails its connection with 1011', async () => {
    const clock = manualClock();
    const { server, port } = await start(
      {
        '/': {
          ...echo,
          rateLimit: { messagesPerSecond: 1 },
          limited() {
            throw new Error('broken limited hook');
          },
        },
      },
      { now: clock.now },
    );
    const client = await upgrade(port);
    expect(await roundTrip(client, 'a')).toBe('a');
    expect(await roundTrip(client, 'b')).toBe('close 1011 internal error');
    expect(server.counters().hookFailures).toBe(1);
  });

  it('an async limited hook that rejects: 1011 "internal error", the error to the hooks, no unhandled rejection', async () => {
    const clock = manualClock();
    const secret = new Error('limiter store is down');
    const errors: Error[] = [];
    const failures: { error: Error; failure: HookFailure }[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { server, port } = await start(
        {
          '/': {
            ...echo,
            rateLimit: { messagesPerSecond: 1 },
            async limited() {
              // Rejects on a later turn, as a hook that awaited something would.
              await new Promise((resolve) => setImmediate(resolve));
              throw secret;
            },
            error: (_connection, error) => void errors.push(error),
          },
        },
        { now: clock.now, onError: (error, failure) => failures.push({ error, failure }) },
      );
      const client = await upgrade(port);
      expect(await roundTrip(client, 'a')).toBe('a');
      client.send({ opcode: OP.text, payload: 'b' });
      const close = await client.readFrame();
      expect(parseClose(close)).toEqual({ code: 1011, reason: 'internal error' });
      expect(close.payload.toString('latin1')).not.toContain('limiter store');
      await until(() => errors.length === 1, 'the error hook', 2000);
      expect(errors[0]).toMatchObject({ name: 'ConnectionError', code: 'WS_ERR_HANDLER_FAILED' });
      expect(errors[0]!.cause).toBe(secret);
      expect(failures).toHaveLength(1);
      expect(failures[0]!.error).toBe(secret);
      expect(failures[0]!.failure).toMatchObject({ path: '/', hook: 'limited' });
      expect(server.counters().hookFailures).toBe(1);
      // The unhandled-rejection check runs after the microtasks of a turn: let one pass.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('checks its options when mounted', () => {
    const server = new WebSocketServer({ heartbeat: false });
    expect(() => server.route('/', { rateLimit: { messagesPerSecond: -5 } })).toThrow(/messagesPerSecond/);
    expect(() => new WebSocketServer({ rateLimit: { bytesPerSecond: 0 } })).toThrow(/bytesPerSecond/);
  });
});

describe('connection caps', () => {
  it('maxConnectionsPerAddress: one more from the same address gets 429, and a slot frees when one closes', async () => {
    const { server, port } = await start({ '/': echo }, { maxConnectionsPerAddress: 2 });
    const first = await upgrade(port);
    await upgrade(port);
    expect(await status(port)).toBe(429);
    first.send({ opcode: OP.close, payload: Buffer.from([0x03, 0xe8]) });
    await first.waitEnd();
    await until(() => server.connections.size === 1, 'the server to see the close', 2000);
    expect(await status(port)).toBe(101);
    expect(server.counters().refused[429]).toBe(1);
  });

  it('maxConnections: one more gets 503', async () => {
    const { server, port } = await start({ '/': echo }, { maxConnections: 2 });
    await upgrade(port);
    await upgrade(port);
    expect(await status(port)).toBe(503);
    expect(server.counters().refused[503]).toBe(1);
  });

  it('maxConnections counts upgrades still in their hooks, so concurrent handshakes cannot slip past it', async () => {
    const waiting: (() => void)[] = [];
    const { port } = await start(
      { '/': { ...echo, authenticate: () => new Promise<undefined>((resolve) => waiting.push(() => resolve(undefined))) } },
      { maxConnections: 2 },
    );
    const pending = [RawClient.open(port), RawClient.open(port)];
    const sockets = await Promise.all(pending);
    clients.push(...sockets);
    for (const client of sockets) client.write(upgradeRequest());
    await until(() => waiting.length === 2, 'two pending authentications', 2000);
    expect(await status(port)).toBe(503);
    for (const release of waiting) release();
    for (const client of sockets) expect((await client.readHead()).status).toBe(101);
  });

  it('a refused or failed upgrade gives its slot back', async () => {
    const { port } = await start(
      { '/': { ...echo, authenticate: (request) => (request.query.get('ok') === '1' ? undefined : Promise.reject(new Error('no'))) } },
      { maxConnections: 1, maxConnectionsPerAddress: 1 },
    );
    for (let i = 0; i < 3; i++) expect(await status(port, '/?ok=0')).toBe(500);
    expect(await status(port, '/?ok=1')).toBe(101);
  });

  it('maxHandshakes: connections beyond it in their opening handshake get 503 at once', async () => {
    const waiting: (() => void)[] = [];
    const { server, port } = await start(
      {
        '/': {
          ...echo,
          authenticate: (request) =>
            request.query.has('wait') ? new Promise<undefined>((resolve) => waiting.push(() => resolve(undefined))) : undefined,
        },
      },
      { maxHandshakes: 1 },
    );
    // Request sent, authentication pending: in its handshake.
    const slow = await RawClient.open(port);
    clients.push(slow);
    slow.write(upgradeRequest({ path: '/?wait' }));
    await until(() => waiting.length === 1, 'the pending authentication', 2000);
    const turnedAway = await RawClient.open(port);
    clients.push(turnedAway);
    expect((await turnedAway.readHead()).status).toBe(503);
    await turnedAway.waitEnd();
    // Once the slow one is through, the next one gets in.
    waiting[0]!();
    expect((await slow.readHead()).status).toBe(101);
    expect(await status(port)).toBe(101);
    expect(server.counters().refused[503]).toBe(1);
  });

  it('refuses nonsense caps with a UsageError', () => {
    expect(() => new WebSocketServer({ maxConnections: 0 })).toThrow(expect.objectContaining({ name: 'UsageError' }));
    expect(() => new WebSocketServer({ maxConnectionsPerAddress: 1.5 })).toThrow(expect.objectContaining({ name: 'UsageError' }));
    expect(() => new WebSocketServer({ maxHandshakes: -1 })).toThrow(expect.objectContaining({ name: 'UsageError' }));
  });
});

describe('rateViolation(): refusals by a limit of the application', () => {
  it('count toward sustained abuse together with the route limit, and in rateLimited', async () => {
    const clock = manualClock();
    let verdicts: boolean[] = [];
    const { server, port } = await start(
      {
        '/': {
          rateLimit: { messagesPerSecond: 1000, abuseLimit: 3 },
          message: (connection, data) => {
            // The application refuses every "big" message under a rule of its own.
            if (data === 'big') verdicts.push(server.rateViolation(connection));
            connection.send(`seen ${String(data)}`);
          },
        },
        '/free': { rateLimit: false, message: (connection) => void verdicts.push(server.rateViolation(connection)) },
      },
      { now: clock.now },
    );
    const client = await upgrade(port);
    for (let i = 0; i < 3; i++) expect(await roundTrip(client, 'big')).toBe('seen big');
    expect(verdicts).toEqual([false, false, true]);
    expect(server.counters().rateLimited).toBe(3);
    // A route without limits counts nothing.
    verdicts = [];
    const free = await upgrade(port, '/free');
    free.send({ opcode: OP.text, payload: 'x' });
    await until(() => verdicts.length === 1, 'the message hook', 2000);
    expect(verdicts).toEqual([false]);
    expect(server.counters().rateLimited).toBe(3);
  });
});
