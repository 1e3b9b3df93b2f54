import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer as WsServer, type ClientOptions } from 'ws';
import { connect, type Connection } from '../../src/index.js';
import { AsyncQueue, EchoServer, FRAGMENTS, Inbox, MATRIX, payload, sha256, splitPieces, WAIT_MS, withTimeout } from './helpers.js';

/**
 * Interoperability with the `ws` package, both directions: `ws`'s client
 * against Sockeye's server, and Sockeye's client against `ws`'s server, with
 * and without permessage-deflate, over the whole message matrix.
 */

interface WsMessage {
  data: Buffer;
  isBinary: boolean;
}

/** Messages a `ws` socket receives, in order, awaited one at a time. */
class WsInbox {
  private readonly queue = new AsyncQueue<WsMessage>();
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(socket: WebSocket) {
    socket.on('message', (data, isBinary) => this.queue.push({ data: toBuffer(data), isBinary }));
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  next(): Promise<WsMessage> {
    return this.queue.next('a message at the ws client');
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

async function openWs(url: string, protocols: string[], options: ClientOptions): Promise<{ socket: WebSocket; inbox: WsInbox }> {
  const socket = new WebSocket(url, protocols, { maxPayload: 64 * 1024 * 1024, ...options });
  const inbox = new WsInbox(socket);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    }),
    WAIT_MS,
    `ws to open ${url}`,
  );
  return { socket, inbox };
}

/** One connection of the in-process `ws` server, as the tests see it. */
interface WsPeer {
  socket: WebSocket;
  request: IncomingMessage;
  closed: Promise<{ code: number; reason: string }>;
}

/**
 * A `ws` server with the same paths as the Sockeye echo server: `/echo`,
 * `/fragment` (echo in FRAGMENTS frames via `fin: false`), and
 * `/close?code=&reason=`. It speaks the subprotocol chat.v1.
 */
async function startWsServer(perMessageDeflate: boolean): Promise<{ server: WsServer; port: number; peers: WsPeer[] }> {
  const server = new WsServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (offered) => (offered.has('chat.v1') ? 'chat.v1' : false),
  });
  const peers: WsPeer[] = [];
  server.on('connection', (socket, request) => {
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    peers.push({ socket, request, closed });
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/close') {
      socket.close(Number(url.searchParams.get('code')), url.searchParams.get('reason') ?? '');
      return;
    }
    socket.on('message', (data, isBinary) => {
      const bytes = toBuffer(data);
      if (url.pathname !== '/fragment') {
        socket.send(bytes, { binary: isBinary });
        return;
      }
      const pieces = splitPieces(bytes);
      pieces.forEach((piece, i) => socket.send(piece, { binary: isBinary, fin: i === pieces.length - 1 }));
    });
  });
  await withTimeout(new Promise((resolve) => server.once('listening', resolve)), WAIT_MS, 'the ws server to listen');
  return { server, port: (server.address() as AddressInfo).port, peers };
}

function stopWsServer(server: WsServer): Promise<void> {
  for (const client of server.clients) client.terminate();
  return new Promise((resolve) => server.close(() => resolve()));
}

const BIG = 65536;

describe.each([false, true])('permessage-deflate %s', (deflate) => {
  describe('ws client -> Sockeye server', () => {
    let sockeye: EchoServer;
    let plain: { socket: WebSocket; inbox: WsInbox };
    let fragmenting: { socket: WebSocket; inbox: WsInbox };

    beforeAll(async () => {
      sockeye = await new EchoServer(deflate).start();
      plain = await openWs(sockeye.url('/echo'), [], { perMessageDeflate: deflate });
      fragmenting = await openWs(sockeye.url('/fragment'), [], { perMessageDeflate: deflate });
    });

    afterAll(async () => {
      plain?.socket.terminate();
      fragmenting?.socket.terminate();
      await sockeye?.stop();
    });

    it(`negotiates permessage-deflate ${deflate ? 'on' : 'off'} on both ends`, () => {
      expect(plain.socket.extensions).toBe(deflate ? 'permessage-deflate' : '');
      for (const connection of sockeye.opened) {
        if (deflate) expect(connection.extensions).toMatch(/^permessage-deflate\b/);
        else expect(connection.extensions).toBe('');
      }
      expect(sockeye.opened).toHaveLength(2);
    });

    it.each(MATRIX)('$name: ws sends, Sockeye decodes and echoes it back intact', async (c) => {
      const peer = c.fragmented ? fragmenting : plain;
      const bytes = payload(c.kind, c.size);
      const binary = c.kind === 'binary';
      if (c.fragmented) {
        const pieces = splitPieces(bytes);
        pieces.forEach((piece, i) => peer.socket.send(piece, { binary, fin: i === pieces.length - 1 }));
      } else {
        peer.socket.send(binary ? bytes : bytes.toString('utf8'), { binary });
      }
      const echo = await peer.inbox.next();

      const record = sockeye.last();
      expect(record).toMatchObject({ isBinary: binary, size: c.size, sha: sha256(bytes) });
      expect(record.frames).toBe(c.fragmented ? FRAGMENTS : 1);
      if (!deflate) expect(record.compressed).toBe(false);
      else if (c.size >= BIG) expect(record.compressed).toBe(true);

      expect(echo.isBinary).toBe(binary);
      expect(echo.data.length).toBe(c.size);
      expect(sha256(echo.data)).toBe(sha256(bytes));
    });

    it('keeps 1000 messages of mixed sizes in order, both ways', async () => {
      const count = 1000;
      const sent = Array.from({ length: count }, (_, i) => `#${i} ` + 'é'.repeat((i * 37) % 700));
      for (const text of sent) plain.socket.send(text);
      const echoes: string[] = [];
      for (let i = 0; i < count; i++) echoes.push((await plain.inbox.next()).data.toString('utf8'));
      expect(echoes).toEqual(sent);
      expect(sockeye.received.slice(-count).map((r) => r.sha)).toEqual(sent.map((text) => sha256(text)));
    });

    it('Sockeye answers ws pings with the same payload', async () => {
      const pong = new Promise<Buffer>((resolve) => plain.socket.once('pong', resolve));
      plain.socket.ping('are you there');
      expect((await withTimeout(pong, WAIT_MS, 'the pong')).toString()).toBe('are you there');
    });

    it('Sockeye measures the round trip of a ping to ws', async () => {
      const server = sockeye.opened[0]!;
      const rtt = await withTimeout(server.ping('rtt'), WAIT_MS, 'the pong');
      expect(rtt).toBeGreaterThanOrEqual(0);
      expect(rtt).toBeLessThan(WAIT_MS);
    });

    it('Sockeye server close code and reason reach ws (4001 custom)', async () => {
      const { inbox } = await openWs(sockeye.url('/close?code=4001&reason=custom'), [], { perMessageDeflate: deflate });
      expect(await withTimeout(inbox.closed, WAIT_MS, 'ws close')).toEqual({ code: 4001, reason: 'custom' });
      const close = await sockeye.nextClose();
      expect(close.path).toBe('/close');
      expect(close.info).toMatchObject({ code: 4001, initiator: 'local', wasClean: true });
    });

    it('ws close code and reason reach Sockeye (4002 bye)', async () => {
      const { socket, inbox } = await openWs(sockeye.url('/echo'), [], { perMessageDeflate: deflate });
      socket.close(4002, 'bye');
      const close = await sockeye.nextClose();
      expect(close.info).toMatchObject({ code: 4002, reason: 'bye', initiator: 'remote', wasClean: true });
      // RFC 6455 §5.5.1: the answering close frame echoes the status code.
      expect((await withTimeout(inbox.closed, WAIT_MS, 'ws close')).code).toBe(4002);
    });

    it("Sockeye picks its preferred subprotocol among ws's offers", async () => {
      const { socket } = await openWs(sockeye.url('/echo'), ['chat.v1', 'chat.v2'], { perMessageDeflate: deflate });
      expect(socket.protocol).toBe('chat.v2');
      socket.close(1000);
      expect(await sockeye.nextClose()).toMatchObject({ protocol: 'chat.v2', info: { code: 1000 } });
    });
  });

  describe('Sockeye client -> ws server', () => {
    let ws: Awaited<ReturnType<typeof startWsServer>>;
    let plain: { connection: Connection<undefined>; inbox: Inbox };
    let fragmenting: { connection: Connection<undefined>; inbox: Inbox };

    const open = async (path: string, protocols: string[] = []): Promise<{ connection: Connection<undefined>; inbox: Inbox }> => {
      const connection = await connect(`ws://127.0.0.1:${ws.port}${path}`, { perMessageDeflate: deflate, protocols, handshakeTimeout: WAIT_MS });
      return { connection, inbox: new Inbox(connection) };
    };

    beforeAll(async () => {
      ws = await startWsServer(deflate);
      plain = await open('/echo');
      fragmenting = await open('/fragment');
    });

    afterAll(async () => {
      plain?.connection.terminate();
      fragmenting?.connection.terminate();
      if (ws !== undefined) await stopWsServer(ws.server);
    });

    it(`negotiates permessage-deflate ${deflate ? 'on' : 'off'} on both ends`, () => {
      if (deflate) expect(plain.connection.extensions).toMatch(/^permessage-deflate\b/);
      else expect(plain.connection.extensions).toBe('');
      expect(ws.peers[0]!.socket.extensions).toBe(deflate ? 'permessage-deflate' : '');
    });

    it.each(MATRIX)('$name: Sockeye sends, ws echoes it back intact', async (c) => {
      const peer = c.fragmented ? fragmenting : plain;
      const bytes = payload(c.kind, c.size);
      const binary = c.kind === 'binary';
      if (c.fragmented) {
        // Sockeye's own fragmentSize for the big ones, single fragments otherwise (splitting text mid-character).
        if (c.size >= BIG) peer.connection.send(binary ? bytes : bytes.toString('utf8'), { fragmentSize: Math.ceil(c.size / FRAGMENTS) });
        else splitPieces(bytes).forEach((piece, i, all) => peer.connection.sendFragment(piece, i === all.length - 1, { binary }));
      } else {
        peer.connection.send(binary ? bytes : bytes.toString('utf8'));
      }
      const echo = await peer.inbox.next();
      expect(echo.isBinary).toBe(binary);
      expect(echo.frames).toBe(c.fragmented ? FRAGMENTS : 1);
      if (!deflate) expect(echo.compressed).toBe(false);
      else if (c.size >= BIG) expect(echo.compressed).toBe(true);
      const data = typeof echo.data === 'string' ? Buffer.from(echo.data, 'utf8') : echo.data;
      expect(typeof echo.data).toBe(binary ? 'object' : 'string');
      expect(data.length).toBe(c.size);
      expect(sha256(data)).toBe(sha256(bytes));
    });

    it('keeps 1000 messages of mixed sizes in order', async () => {
      const count = 1000;
      const sent = Array.from({ length: count }, (_, i) => `#${i} ` + 'ü'.repeat((i * 37) % 700));
      for (const text of sent) plain.connection.send(text);
      const echoes: string[] = [];
      for (let i = 0; i < count; i++) echoes.push((await plain.inbox.next()).data as string);
      expect(echoes).toEqual(sent);
    });

    it('Sockeye measures the round trip of a ping to ws', async () => {
      const rtts = [];
      for (let i = 0; i < 3; i++) rtts.push(await withTimeout(plain.connection.ping(`rtt ${i}`), WAIT_MS, 'the pong'));
      for (const rtt of rtts) {
        expect(rtt).toBeGreaterThanOrEqual(0);
        expect(rtt).toBeLessThan(WAIT_MS);
      }
    });

    it('Sockeye client answers ws pings with the same payload', async () => {
      const server = ws.peers[0]!.socket;
      const pong = new Promise<Buffer>((resolve) => server.once('pong', resolve));
      server.ping('hello client');
      expect((await withTimeout(pong, WAIT_MS, 'the pong')).toString()).toBe('hello client');
    });

    it('ws server close code and reason reach Sockeye (4001 custom)', async () => {
      const { inbox } = await open('/close?code=4001&reason=custom');
      const info = await withTimeout(inbox.closed, WAIT_MS, 'the close');
      expect(info).toMatchObject({ code: 4001, reason: 'custom', initiator: 'remote', wasClean: true });
    });

    it('Sockeye close code and reason reach ws (4002 bye)', async () => {
      const { connection, inbox } = await open('/echo');
      connection.close(4002, 'bye');
      const info = await withTimeout(inbox.closed, WAIT_MS, 'the close');
      expect(info).toMatchObject({ code: 4002, initiator: 'local', wasClean: true });
      expect(await withTimeout(ws.peers.at(-1)!.closed, WAIT_MS, 'ws close')).toEqual({ code: 4002, reason: 'bye' });
    });

    it('negotiates the one subprotocol ws speaks among those Sockeye offers', async () => {
      const { connection } = await open('/echo', ['nope', 'chat.v1']);
      expect(connection.protocol).toBe('chat.v1');
      expect(ws.peers.at(-1)!.socket.protocol).toBe('chat.v1');
      expect(ws.peers.at(-1)!.request.headers['sec-websocket-protocol']).toBe('nope, chat.v1');
      connection.close(1000);
    });
  });
});

describe('permessage-deflate enabled on one side only', () => {
  it('ws client offering it to a Sockeye server without it: not negotiated, messages still flow', async () => {
    const sockeye = await new EchoServer(false).start();
    try {
      const { socket, inbox } = await openWs(sockeye.url('/echo'), [], { perMessageDeflate: true });
      expect(socket.extensions).toBe('');
      socket.send('x'.repeat(5000));
      expect((await inbox.next()).data.toString()).toBe('x'.repeat(5000));
      expect(sockeye.last().compressed).toBe(false);
      socket.terminate();
    } finally {
      await sockeye.stop();
    }
  });

  it('Sockeye client offering it to a ws server without it: not negotiated, messages still flow', async () => {
    const ws = await startWsServer(false);
    try {
      const connection = await connect(`ws://127.0.0.1:${ws.port}/echo`);
      const inbox = new Inbox(connection);
      expect(connection.extensions).toBe('');
      expect(ws.peers[0]!.request.headers['sec-websocket-extensions']).toMatch(/^permessage-deflate/);
      connection.send('y'.repeat(5000));
      const echo = await inbox.next();
      expect(echo).toMatchObject({ data: 'y'.repeat(5000), compressed: false });
      connection.terminate();
    } finally {
      await stopWsServer(ws.server);
    }
  });
});
