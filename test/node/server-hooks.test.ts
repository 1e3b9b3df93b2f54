import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reject, WebSocketServer, type Connection, type Route, type ServerOptions } from '../../src/index.js';
import type { HookFailure } from '../../src/node/server.js';
import { OP, RawClient, parseClose, upgradeRequest } from './raw-client.js';
import { until } from '../wait.js';

/**
 * Application hooks that throw or return a rejected promise: the connection
 * fails with 1011 and a generic reason, the failure reaches the error hook
 * and the server's onError with what was thrown, and the process never sees
 * an unhandled rejection (Node 20 exits on one).
 */

const servers: WebSocketServer[] = [];
const clients: RawClient[] = [];
let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  process.off('unhandledRejection', onUnhandled);
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

interface Harness {
  port: number;
  /** What the route's error hook received. */
  errors: Error[];
  /** What the server's onError received. */
  failures: { error: Error; failure: HookFailure }[];
}

async function start(route: Route<unknown>, options: ServerOptions = {}): Promise<Harness> {
  const harness: Harness = { port: 0, errors: [], failures: [] };
  const server = new WebSocketServer({
    heartbeat: false,
    onError: (error, failure) => harness.failures.push({ error, failure }),
    ...options,
  });
  servers.push(server);
  server.route('/hooks', {
    error: (_connection, error) => void harness.errors.push(error),
    ...route,
  });
  harness.port = (await server.listen(0)).port;
  return harness;
}

async function upgrade(harness: Harness): Promise<RawClient> {
  const { client } = await RawClient.upgrade(harness.port, { path: '/hooks' });
  clients.push(client);
  return client;
}

/** Let every pending microtask and the unhandled-rejection check (run after them) happen. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('a hook that rejects or throws after the upgrade', () => {
  it('an async message hook that rejects: 1011 "internal error" to the peer, the error to the hooks, no unhandled rejection', async () => {
    const secret = new Error('database password is hunter2');
    const harness = await start({
      async message(_connection, data) {
        await settle();
        if (data === 'boom') throw secret;
      },
    });
    const client = await upgrade(harness);
    client.send({ opcode: OP.text, payload: 'fine' });
    client.send({ opcode: OP.text, payload: 'boom' });
    const close = await client.readFrame();
    expect(parseClose(close)).toEqual({ code: 1011, reason: 'internal error' });
    expect(close.payload.toString('latin1')).not.toContain('hunter2');
    await client.waitEnd();
    await until(() => harness.errors.length === 1, 'the error hook', 1000);
    await settle();
    expect(unhandled).toEqual([]);
    // The route's error hook: a ConnectionError carrying the original error.
    expect(harness.errors[0]).toMatchObject({ name: 'ConnectionError', code: 'WS_ERR_HANDLER_FAILED' });
    expect(harness.errors[0]!.cause).toBe(secret);
    // The server-wide channel: the original error, where it happened.
    expect(harness.failures).toHaveLength(1);
    expect(harness.failures[0]!.error).toBe(secret);
    expect(harness.failures[0]!.failure).toMatchObject({ path: '/hooks', hook: 'message' });
    expect(harness.failures[0]!.failure.connection).toBeDefined();
  });

  it('a rejection that is not an Error reaches onError as an Error with its text', async () => {
    const harness = await start({
      open: () => Promise.reject('plain string'),
    });
    const client = await upgrade(harness);
    expect(parseClose(await client.readFrame())).toEqual({ code: 1011, reason: 'internal error' });
    await until(() => harness.failures.length === 1, 'onError', 1000);
    expect(harness.failures[0]!.error.message).toBe('plain string');
    expect(harness.failures[0]!.failure.hook).toBe('open');
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('a thenable whose then() throws counts as a rejection', async () => {
    const harness = await start({
      message: () => ({
        then(): never {
          throw new Error('odd thenable');
        },
      }),
    });
    const client = await upgrade(harness);
    client.send({ opcode: OP.text, payload: 'x' });
    expect(parseClose(await client.readFrame()).code).toBe(1011);
    await until(() => harness.failures.length === 1, 'onError', 1000);
    expect(harness.failures[0]!.error.message).toBe('odd thenable');
  });

  it('an async drain hook that rejects fails its connection', async () => {
    const harness = await start(
      {
        open(connection) {
          // Over the high-water mark: a drain follows once the socket takes it.
          connection.send(Buffer.alloc(64 * 1024));
        },
        drain: async () => {
          throw new Error('drain failed');
        },
      },
      { highWaterMark: 1024 },
    );
    const client = await upgrade(harness);
    const { close } = await client.readUntilClose();
    expect(parseClose(close).code).toBe(1011);
    await until(() => harness.failures.length === 1, 'onError', 1000);
    expect(harness.failures[0]!.failure.hook).toBe('drain');
  });

  it('an async close hook that rejects after the connection closed reaches the error hook directly', async () => {
    const harness = await start({
      close: async () => {
        throw new Error('cleanup failed');
      },
    });
    const client = await upgrade(harness);
    client.send({ opcode: OP.close, payload: Buffer.from([0x03, 0xe8]) });
    await client.waitEnd();
    await until(() => harness.errors.length === 1, 'the error hook', 1000);
    expect(harness.errors[0]).toMatchObject({ code: 'WS_ERR_HANDLER_FAILED' });
    expect((harness.errors[0]!.cause as Error).message).toBe('cleanup failed');
    expect(harness.failures.map((f) => f.failure.hook)).toEqual(['close']);
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('a failing error hook does not replace the original failure in the close frame', async () => {
    const harness = await start({
      error(): void {
        throw new Error('the error hook broke');
      },
    });
    const client = await upgrade(harness);
    // Invalid UTF-8 in a text message: 1007 (RFC 6455 §8.1), whatever the error hook does.
    client.send({ opcode: OP.text, payload: Buffer.from([0xc3, 0x28]) });
    const close = parseClose(await client.readFrame());
    expect(close.code).toBe(1007);
    expect(close.reason).not.toContain('error hook');
    await until(() => harness.failures.length === 1, 'onError', 1000);
    expect(harness.failures[0]!.failure.hook).toBe('error');
    expect(harness.failures[0]!.error.message).toBe('the error hook broke');
  });

  it('an async error hook that rejects is reported once and nothing else changes', async () => {
    const harness = await start({
      message: () => {
        throw new Error('first');
      },
      error: async () => {
        throw new Error('second');
      },
    });
    const client = await upgrade(harness);
    client.send({ opcode: OP.text, payload: 'x' });
    expect(parseClose(await client.readFrame())).toEqual({ code: 1011, reason: 'internal error' });
    await until(() => harness.failures.length === 2, 'two failures', 1000);
    expect(harness.failures.map((f) => [f.failure.hook, f.error.message])).toEqual([
      ['message', 'first'],
      ['error', 'second'],
    ]);
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('an onError that throws is ignored, and the server keeps serving', async () => {
    const harness = await start(
      {
        message: (connection, data) => {
          if (data === 'boom') throw new Error('boom');
          connection.send(data);
        },
      },
      {
        onError: () => {
          throw new Error('onError broke');
        },
      },
    );
    const victim = await upgrade(harness);
    victim.send({ opcode: OP.text, payload: 'boom' });
    expect(parseClose(await victim.readFrame()).code).toBe(1011);
    const other = await upgrade(harness);
    other.send({ opcode: OP.text, payload: 'still here' });
    expect((await other.readFrame()).payload.toString()).toBe('still here');
  });
});

describe('hooks before the upgrade may be async', () => {
  async function handshake(harness: Harness, extra: string[] = []): Promise<{ status: number; headers: Map<string, string>; client: RawClient }> {
    const client = await RawClient.open(harness.port);
    clients.push(client);
    client.write(upgradeRequest({ path: '/hooks', extra }));
    const response = await client.readHead();
    return { status: response.status, headers: response.headers, client };
  }

  it('an authenticate that rejects refuses with 500, reports to onError with the request, and leaks no rejection', async () => {
    const harness = await start({
      authenticate: async () => {
        throw new Error('token service down');
      },
    });
    expect((await handshake(harness)).status).toBe(500);
    expect(harness.failures).toHaveLength(1);
    expect(harness.failures[0]!.error.message).toBe('token service down');
    expect(harness.failures[0]!.failure).toMatchObject({ path: '/hooks', hook: 'authenticate' });
    expect(harness.failures[0]!.failure.request?.path).toBe('/hooks');
    expect(harness.failures[0]!.failure.connection).toBeUndefined();
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('an async authenticate that resolves to a rejection refuses with its status', async () => {
    const harness = await start({ authenticate: async () => reject(401, 'who are you') });
    expect((await handshake(harness)).status).toBe(401);
    expect(harness.failures).toEqual([]);
  });

  it('an async origin predicate decides: false is 403, true is 101', async () => {
    const harness = await start({
      origins: async (origin) => {
        await settle();
        return origin === 'https://good.example';
      },
    });
    expect((await handshake(harness, ['Origin: https://evil.example'])).status).toBe(403);
    expect((await handshake(harness, ['Origin: https://good.example'])).status).toBe(101);
  });

  it('an origin predicate that rejects refuses with 500 and names the hook', async () => {
    const harness = await start({ origins: () => Promise.reject(new Error('lookup failed')) });
    expect((await handshake(harness, ['Origin: https://a.example'])).status).toBe(500);
    expect(harness.failures.map((f) => f.failure.hook)).toEqual(['origins']);
  });

  it('an async protocols function picks the subprotocol', async () => {
    const harness = await start({
      protocols: async (offered) => {
        await settle();
        return offered.includes('b.v1') ? 'b.v1' : undefined;
      },
    });
    const { status, headers } = await handshake(harness, ['Sec-WebSocket-Protocol: a.v1, b.v1']);
    expect(status).toBe(101);
    expect(headers.get('sec-websocket-protocol')).toBe('b.v1');
  });

  it('the open hook of an authenticated connection sees the context the async authenticate resolved', async () => {
    const seen: unknown[] = [];
    const harness = await start({
      authenticate: async (request) => ({ user: request.query.get('user') }),
      open: (connection: Connection<unknown>) => void seen.push(connection.context),
    });
    const client = await RawClient.open(harness.port);
    clients.push(client);
    client.write(upgradeRequest({ path: '/hooks?user=ada' }));
    expect((await client.readHead()).status).toBe(101);
    await until(() => seen.length === 1, 'the open hook', 1000);
    expect(seen).toEqual([{ user: 'ada' }]);
  });
});

describe('a hook value the response cannot carry', () => {
  it('a protocols function that picks something that is not a token gets 500 and onError, not a crash', async () => {
    const harness = await start({ protocols: () => 'bad value\r\nX-Injected: 1' });
    const client = await RawClient.open(harness.port);
    clients.push(client);
    client.write(upgradeRequest({ path: '/hooks', extra: ['Sec-WebSocket-Protocol: chat'] }));
    const response = await client.readResponse();
    expect(response.status).toBe(500);
    expect(response.head).not.toContain('X-Injected');
    expect(harness.failures.map((f) => [f.failure.hook, f.error.name])).toEqual([['protocols', 'UsageError']]);
    await settle();
    expect(unhandled).toEqual([]);
  });
});
