import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, WebSocketServer, type UpgradeRequest } from '../../src/index.js';
import { routeParams } from '../../src/node/server.js';
import { parseClose, RawClient, upgradeRequest } from './raw-client.js';
import { until } from '../wait.js';

/** Route paths: exact, with parameters, prefixes; mistakes refused when mounting; listen() after a failure. */

const servers: WebSocketServer[] = [];
const blockers: NetServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  await Promise.all(blockers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function makeServer(): WebSocketServer {
  const server = new WebSocketServer({ heartbeat: false });
  servers.push(server);
  return server;
}

async function statusOf(port: number, path: string): Promise<number> {
  const client = await RawClient.open(port);
  client.write(upgradeRequest({ path }));
  const status = (await client.readHead()).status;
  client.destroy();
  return status;
}

describe('route()', () => {
  it('refuses a path without a leading slash with a UsageError that says what to write', () => {
    const server = makeServer();
    expect(() => server.route('chat', {})).toThrow(expect.objectContaining({ name: 'UsageError', code: 'WS_ERR_INVALID_ARGUMENT' }));
    expect(() => server.route('chat', {})).toThrow(/did you mean "\/chat"/);
    expect(() => server.route('', {})).toThrow(expect.objectContaining({ name: 'UsageError' }));
    expect(() => server.route('*', {})).not.toThrow();
  });

  it('refuses a malformed pattern when mounting', () => {
    expect(() => makeServer().route('/a/*/b', {})).toThrow(expect.objectContaining({ name: 'UsageError' }));
  });

  it('hands pattern parameters to authenticate (request.params) and to later hooks (routeParams)', async () => {
    const server = makeServer();
    const seen: { request: Readonly<Record<string, string>>; open: Readonly<Record<string, string>> }[] = [];
    let requestParams: Readonly<Record<string, string>> = {};
    server.route('/room/:id', {
      authenticate: (request: UpgradeRequest) => {
        requestParams = request.params;
        return { room: request.params.id };
      },
      open: (connection) => void seen.push({ request: requestParams, open: routeParams(connection) }),
      message: (connection, data) => void connection.send(`${(connection.context as { room: string }).room}:${String(data)}`),
    });
    const { port } = await server.listen(0);
    const connection = await connect(`ws://127.0.0.1:${port}/room/caf%C3%A9?x=1`);
    const reply = new Promise((resolve) => connection.once('message', resolve));
    connection.send('hi');
    expect(await reply).toBe('café:hi');
    expect(seen).toEqual([{ request: { id: 'café' }, open: { id: 'café' } }]);
    connection.close(1000);
  });

  it('prefix routes take everything under them; exact paths win, then patterns in mount order, then *', async () => {
    const server = makeServer();
    const hits: string[] = [];
    const mount = (path: string): void =>
      void server.route(path, { open: (connection) => void hits.push(`${path} ${JSON.stringify(routeParams(connection))}`) });
    mount('/files/*');
    mount('/files/:name');
    mount('/files/readme');
    mount('*');
    const { port } = await server.listen(0);
    for (const path of ['/files/readme', '/files/a.txt', '/files/dir/b.txt', '/files', '/other']) {
      expect(await statusOf(port, path)).toBe(101);
    }
    await until(() => hits.length === 5, 'five open hooks', 2000);
    expect(hits).toEqual([
      '/files/readme {}',
      // Mounted first, the prefix wins over /files/:name.
      '/files/* {"*":"a.txt"}',
      '/files/* {"*":"dir/b.txt"}',
      '* {}',
      '* {}',
    ]);
  });

  it('a request path spelled like a pattern does not reach the pattern route by its key', async () => {
    const server = makeServer();
    server.route('/room/:id', {});
    const { port } = await server.listen(0);
    // "/room/:id" as a literal path is still matched as the pattern, with id ":id".
    expect(await statusOf(port, '/room/:id')).toBe(101);
    expect(await statusOf(port, '/room')).toBe(404);
  });

  it('keeps traffic per mounted route, patterns under their pattern', async () => {
    const server = makeServer();
    server.route('/room/:id', {});
    const { port } = await server.listen(0);
    expect(await statusOf(port, '/room/1')).toBe(101);
    expect(await statusOf(port, '/room/2')).toBe(101);
    expect(server.traffic().map((entry) => [entry.path, entry.opened])).toEqual([['/room/:id', 2]]);
  });
});

describe('listen()', () => {
  it('may be tried again after it failed with EADDRINUSE', async () => {
    const blocker = createNetServer();
    blockers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as AddressInfo).port;
    const server = makeServer();
    server.route('/', {});
    await expect(server.listen(taken)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const { port } = await server.listen(0);
    expect(port).not.toBe(taken);
    expect(await statusOf(port, '/')).toBe(101);
  });

  it('binds 127.0.0.1 by default', async () => {
    const server = makeServer();
    expect((await server.listen(0)).address).toBe('127.0.0.1');
  });
});

describe('decodeText: false', () => {
  it('hands text to the message hook as its validated UTF-8 bytes, and sending them back answers with the same text', async () => {
    const server = makeServer();
    const seen: Array<[string | Buffer, boolean]> = [];
    server.route('/raw', {
      decodeText: false,
      message: (connection, data, isBinary) => {
        seen.push([data, isBinary]);
        connection.send(data, { binary: isBinary });
      },
    });
    server.route('/decoded', { message: (_connection, data, isBinary) => void seen.push([data, isBinary]) });
    const { port } = await server.listen(0);
    const raw = await connect(`ws://127.0.0.1:${port}/raw`);
    const replies: Array<[string | Buffer, boolean]> = [];
    raw.on('message', (data, isBinary) => replies.push([data, isBinary]));
    raw.send('héllo ✓');
    raw.send(Buffer.from([0xff, 0x00]));
    await until(() => replies.length === 2, 'both echoes');
    expect(seen[0]![0]).toBeInstanceOf(Buffer);
    expect((seen[0]![0] as Buffer).equals(Buffer.from('héllo ✓'))).toBe(true);
    expect(seen[0]![1]).toBe(false);
    expect(seen[1]![1]).toBe(true);
    // The client decodes as usual: the text came back as text, byte for byte.
    expect(replies).toEqual([
      ['héllo ✓', false],
      [Buffer.from([0xff, 0x00]), true],
    ]);
    const decoded = await connect(`ws://127.0.0.1:${port}/decoded`);
    decoded.send('héllo');
    await until(() => seen.length === 3, 'the decoded message');
    expect(seen[2]).toEqual(['héllo', false]);
    raw.close();
    decoded.close();
  });

  it('still fails invalid UTF-8 in a text message with 1007', async () => {
    const server = makeServer();
    const messages: unknown[] = [];
    server.route('/raw', { decodeText: false, message: (_connection, data) => void messages.push(data) });
    const { port } = await server.listen(0);
    const client = await RawClient.open(port);
    client.write(upgradeRequest({ path: '/raw' }));
    expect((await client.readHead()).status).toBe(101);
    client.send({ opcode: 1, payload: Buffer.from([0x61, 0xc0, 0xaf]) });
    expect(parseClose(await client.readFrame()).code).toBe(1007);
    expect(messages).toEqual([]);
    client.destroy();
  });
});
