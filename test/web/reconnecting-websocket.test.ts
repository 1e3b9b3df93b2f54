import fc from 'fast-check';
import { WebSocket as UndiciWebSocket } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/node/connection.js';
import { WebSocketServer, type Route } from '../../src/node/server.js';
import {
  backoffDelay,
  ReconnectingWebSocket,
  type OutgoingData,
  type ReconnectingWebSocketEventMap,
  type ReconnectingWebSocketOptions,
  type SocketEvent,
  type Timers,
  type WebSocketConstructor,
  type WebSocketLike,
} from '../../src/web/reconnecting-websocket.js';
import { until } from '../wait.js';

/**
 * The reconnecting client: first against a scripted WebSocket and a manual
 * clock (back-off schedule, attempts, final codes, queue, heartbeat, event
 * order), then against real servers on 127.0.0.1 through undici's WHATWG
 * WebSocket (restart on the same port, a peer that stops answering).
 */

// ---- a manual clock and a scripted WebSocket ----------------------------------------

class ManualClock implements Timers {
  time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  readonly now = (): number => this.time;

  get pending(): number {
    return this.timers.size;
  }

  /** Run the earliest timer (ties in the order they were set); returns its delay from now. */
  runNext(): number {
    let best: [number, { at: number; callback: () => void }] | null = null;
    for (const entry of this.timers) {
      if (best === null || entry[1].at < best[1].at) best = entry;
    }
    if (best === null) throw new Error('no timer pending');
    this.timers.delete(best[0]);
    const waited = best[1].at - this.time;
    this.time = best[1].at;
    best[1].callback();
    return waited;
  }

  /** Move time forward, running every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (let guard = 0; guard < 10_000; guard++) {
      let due = false;
      for (const timer of this.timers.values()) if (timer.at <= end) due = true;
      if (!due) break;
      this.runNext();
    }
    this.time = end;
  }
}

interface ScriptedSocket extends WebSocketLike {
  readonly url: string;
  readonly protocols?: string | string[];
  readonly createdAt: number;
  readonly sent: OutgoingData[];
  closedWith: [number | undefined, string | undefined] | null;
  readyState: number;
  accept(protocol?: string): void;
  receive(data: string): void;
  /** The connection failed (refused, or lost): error, then close 1006. */
  fail(): void;
  /** A clean close started by the server. */
  closeFromServer(code: number, reason?: string): void;
}

/** A WebSocket class whose instances the test drives by hand; `sockets` lists them in order. */
function scripted(clock: ManualClock): { Socket: WebSocketConstructor; sockets: ScriptedSocket[] } {
  const sockets: ScriptedSocket[] = [];
  class Socket implements ScriptedSocket {
    readonly createdAt = clock.time;
    readonly sent: OutgoingData[] = [];
    closedWith: [number | undefined, string | undefined] | null = null;
    readyState = 0;
    protocol = '';
    extensions = '';
    bufferedAmount = 0;
    binaryType: 'blob' | 'arraybuffer' = 'blob';
    private readonly listeners = new Map<string, Array<(event: SocketEvent) => void>>();

    constructor(
      readonly url: string,
      readonly protocols?: string | string[],
    ) {
      if (url.startsWith('bad:')) throw new SyntaxError(`invalid URL ${url}`);
      sockets.push(this);
    }

    addEventListener(type: string, listener: (event: SocketEvent) => void): void {
      const list = this.listeners.get(type) ?? [];
      list.push(listener);
      this.listeners.set(type, list);
    }

    send(data: OutgoingData): void {
      if (this.readyState !== 1) throw new Error('InvalidStateError: send() on a socket that is not open');
      this.sent.push(data);
    }

    close(code?: number, reason?: string): void {
      this.closedWith = [code, reason];
      if (this.readyState < 2) this.readyState = 2;
    }

    accept(protocol = ''): void {
      this.readyState = 1;
      this.protocol = protocol;
      this.fire({ type: 'open' });
    }

    receive(data: string): void {
      this.fire({ type: 'message', data });
    }

    fail(): void {
      this.readyState = 3;
      this.fire({ type: 'error' });
      this.fire({ type: 'close', code: 1006, reason: '', wasClean: false });
    }

    closeFromServer(code: number, reason = ''): void {
      this.readyState = 3;
      this.fire({ type: 'close', code, reason, wasClean: true });
    }

    private fire(event: SocketEvent): void {
      for (const listener of this.listeners.get(event.type) ?? []) listener(event);
    }
  }
  return { Socket, sockets };
}

interface Rig {
  clock: ManualClock;
  sockets: ScriptedSocket[];
  client: ReconnectingWebSocket;
  log: string[];
  last(): ScriptedSocket;
}

/** A client on a scripted socket and a manual clock, with no jitter unless asked, logging every event. */
function rig(options: ReconnectingWebSocketOptions = {}, url: string | (() => string) = 'ws://example.test/feed'): Rig {
  const clock = new ManualClock();
  const { Socket, sockets } = scripted(clock);
  const client = new ReconnectingWebSocket(url, { WebSocket: Socket, timers: clock, now: clock.now, random: () => 0, ...options });
  const log: string[] = [];
  client.on('statechange', (e) => log.push(`state ${e.previous}->${e.state}`));
  client.on('open', (e) => log.push(`open${e.reconnected ? ' again' : ''}`));
  client.on('message', (e) => log.push(`message ${String(e.data)}`));
  client.on('close', (e) => log.push(`close ${e.code}${e.willReconnect ? ` retry in ${e.delay}` : ' final'}`));
  client.on('error', (e) => log.push(`error ${e.error.code}`));
  client.on('dropped', (e) => log.push(`dropped ${String(e.data)} ${e.reason}`));
  return { clock, sockets, client, log, last: () => sockets[sockets.length - 1]! };
}

// ---- back-off -------------------------------------------------------------------------------------

describe('backoffDelay', () => {
  it('starts at 1 s and doubles up to a 30 s cap by default', () => {
    const none = (): number => 0;
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelay(n, {}, none))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('takes a random share of up to `jitter` off each delay, never more, never past the cap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (attempt, random, jitter) => {
          const options = { initialDelay: 100, factor: 3, maxDelay: 20_000, jitter };
          const nominal = Math.min(20_000, 100 * 3 ** (attempt - 1));
          const delay = backoffDelay(attempt, options, () => random);
          return delay <= nominal && delay >= Math.floor(nominal * (1 - jitter));
        },
      ),
    );
  });

  it('spreads delays with the default jitter of 0.5', () => {
    expect(backoffDelay(1, {}, () => 0.5)).toBe(750);
    expect(backoffDelay(2, {}, () => 0.999)).toBe(1001);
  });
});

// ---- scripted: connecting, reconnecting, giving up --------------------------------------------

describe('ReconnectingWebSocket reconnects', () => {
  it('waits 1, 2, 4, 8, 16, 30, 30 s between failed attempts', () => {
    const { clock, sockets, last } = rig();
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      last().fail();
      waits.push(clock.runNext());
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(sockets.map((s) => s.createdAt)).toEqual([0, 1000, 3000, 7000, 15000, 31000, 61000, 91000]);
  });

  it('uses the configured back-off and jitter', () => {
    const { clock, last, log } = rig({ backoff: { initialDelay: 100, factor: 3, maxDelay: 500, jitter: 0.5 }, random: () => 0.5 });
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      last().fail();
      waits.push(clock.runNext());
    }
    expect(waits).toEqual([75, 225, 375, 375]);
    expect(log.filter((line) => line.startsWith('close'))).toEqual([
      'close 1006 retry in 75',
      'close 1006 retry in 225',
      'close 1006 retry in 375',
      'close 1006 retry in 375',
    ]);
  });

  it('starts the back-off over after a connection opened', () => {
    const { clock, last } = rig();
    last().fail();
    clock.runNext();
    last().fail();
    expect(clock.runNext()).toBe(2000);
    last().accept();
    last().closeFromServer(1001, 'restarting');
    expect(clock.runNext()).toBe(1000);
  });

  it('reports states and events in order across a drop and a reconnect', () => {
    const { clock, last, log, client } = rig();
    expect(client.state).toBe('connecting');
    last().accept();
    last().receive('hi');
    last().closeFromServer(1001, 'going away');
    clock.runNext();
    last().fail();
    clock.runNext();
    last().accept();
    expect(log).toEqual([
      'state connecting->open',
      'open',
      'message hi',
      'state open->reconnecting',
      'close 1001 retry in 1000',
      'error WS_ERR_SOCKET',
      'close 1006 retry in 2000',
      'state reconnecting->open',
      'open again',
    ]);
  });

  it('gives up after maxAttempts attempts in a row, the first included', () => {
    const { clock, sockets, last, log, client } = rig({ maxAttempts: 3 });
    last().fail();
    clock.runNext();
    last().fail();
    clock.runNext();
    last().fail();
    expect(sockets).toHaveLength(3);
    expect(client.state).toBe('closed');
    expect(clock.pending).toBe(0);
    expect(log.slice(-3)).toEqual(['error WS_ERR_GAVE_UP', 'state reconnecting->closed', 'close 1006 final']);
  });

  it('counts attempts afresh after an open connection dropped', () => {
    const { clock, sockets, last, client } = rig({ maxAttempts: 2 });
    last().fail();
    clock.runNext();
    last().accept();
    last().fail();
    clock.runNext();
    last().fail();
    clock.runNext();
    last().fail();
    expect(sockets).toHaveLength(4);
    expect(client.state).toBe('closed');
  });

  it('does not reconnect after 1008 policy violation by default', () => {
    const { clock, sockets, last, log, client } = rig();
    last().accept();
    last().closeFromServer(1008, 'banned');
    expect(client.state).toBe('closed');
    expect(clock.pending).toBe(0);
    expect(sockets).toHaveLength(1);
    expect(log.slice(-2)).toEqual(['state open->closed', 'close 1008 final']);
  });

  it('takes the final close codes from the options', () => {
    const { clock, last, client } = rig({ finalCloseCodes: [4001] });
    last().accept();
    last().closeFromServer(1008, 'not final here');
    expect(client.state).toBe('reconnecting');
    clock.runNext();
    last().accept();
    last().closeFromServer(4001, 'account deleted');
    expect(client.state).toBe('closed');
    expect(clock.pending).toBe(0);
  });

  it('does not reconnect after close(), whether open, waiting or connecting', () => {
    const open = rig();
    open.last().accept();
    open.client.close(4000, 'bye');
    expect(open.last().closedWith).toEqual([4000, 'bye']);
    expect(open.client.state).toBe('closing');
    open.last().closeFromServer(4000, 'bye');
    expect(open.client.state).toBe('closed');
    expect(open.clock.pending).toBe(0);
    expect(open.log.slice(-2)).toEqual(['state closing->closed', 'close 4000 final']);

    const waiting = rig();
    waiting.last().fail();
    waiting.client.close();
    expect(waiting.client.state).toBe('closed');
    expect(waiting.clock.pending).toBe(0);

    const connecting = rig();
    connecting.client.close();
    expect(connecting.last().closedWith).toEqual([1000, '']);
    connecting.last().fail();
    expect(connecting.client.state).toBe('closed');
    expect(connecting.clock.pending).toBe(0);
    // The error a socket reports when closed before it opened is not news.
    expect(connecting.log).toEqual(['state connecting->closing', 'state closing->closed', 'close 1006 final']);
  });

  it('abandons an attempt that does not open within connectTimeout', () => {
    const { clock, sockets, log } = rig({ connectTimeout: 5000 });
    clock.advance(5000);
    expect(sockets[0]!.closedWith).not.toBeNull();
    expect(log).toEqual(['error WS_ERR_CONNECT_TIMEOUT', 'state connecting->reconnecting', 'close 1006 retry in 1000']);
    clock.advance(1000);
    expect(sockets).toHaveLength(2);
    // The abandoned socket's late events change nothing.
    sockets[0]!.accept();
    expect(log).toHaveLength(3);
  });

  it('open() starts again after giving up, counting attempts from zero', () => {
    const { clock, sockets, last, client, log } = rig({ maxAttempts: 1 });
    last().fail();
    expect(client.state).toBe('closed');
    client.open();
    expect(client.state).toBe('connecting');
    expect(sockets).toHaveLength(2);
    last().accept();
    expect(log.slice(-2)).toEqual(['state connecting->open', 'open']);
    expect(clock.pending).toBe(0);
  });

  it('throws for a URL the WebSocket class refuses; a later refused URL closes the client with an error', () => {
    expect(() => rig({}, 'bad:url')).toThrow(SyntaxError);
    let url = 'ws://example.test/';
    const { clock, last, client, log } = rig({}, () => url);
    last().fail();
    url = 'bad:url';
    clock.runNext();
    expect(client.state).toBe('closed');
    expect(log.slice(-2)).toEqual(['error WS_ERR_INVALID_URL', 'state reconnecting->closed']);
  });

  it('passes protocols and binaryType to every socket', () => {
    const { clock, sockets, last } = rig({ protocols: ['chat.v2', 'chat.v1'], binaryType: 'arraybuffer' });
    last().fail();
    clock.runNext();
    expect(sockets.map((s) => [s.url, s.protocols, s.binaryType])).toEqual([
      ['ws://example.test/feed', ['chat.v2', 'chat.v1'], 'arraybuffer'],
      ['ws://example.test/feed', ['chat.v2', 'chat.v1'], 'arraybuffer'],
    ]);
  });

  it('uses globalThis.WebSocket when none is given, and says so when there is none', () => {
    const clock = new ManualClock();
    const { Socket, sockets } = scripted(clock);
    const scope = globalThis as { WebSocket?: unknown };
    const saved = scope.WebSocket;
    try {
      scope.WebSocket = Socket;
      new ReconnectingWebSocket('ws://example.test/', { timers: clock });
      expect(sockets).toHaveLength(1);
      delete scope.WebSocket;
      expect(() => new ReconnectingWebSocket('ws://example.test/', { timers: clock })).toThrow(/no WebSocket class/);
    } finally {
      if (saved === undefined) delete scope.WebSocket;
      else scope.WebSocket = saved;
    }
  });

  it('keeps going when a listener throws, and rethrows its exception from a fresh task', () => {
    const { clock, last, client } = rig();
    const heard: string[] = [];
    client.on('open', () => {
      throw new Error('listener bug');
    });
    client.on('open', () => heard.push('second listener'));
    last().accept();
    expect(heard).toEqual(['second listener']);
    expect(client.state).toBe('open');
    expect(() => clock.runNext()).toThrow('listener bug');
  });

  it('stops calling a listener once its off function was called', () => {
    const { last, client } = rig();
    const heard: string[] = [];
    const off = client.on('message', (e) => heard.push(String(e.data)));
    last().accept();
    last().receive('one');
    off();
    last().receive('two');
    expect(heard).toEqual(['one']);
  });
});

// ---- scripted: the offline queue -------------------------------------------------------------

describe('ReconnectingWebSocket offline queue', () => {
  it('keeps messages sent before the first open and sends them in order after the open listeners', () => {
    const { last, client } = rig();
    expect(client.send('a')).toBe(true);
    expect(client.send('b')).toBe(true);
    expect(client.queuedMessages).toBe(2);
    client.on('open', () => client.send('login'));
    last().accept();
    expect(last().sent).toEqual(['login', 'a', 'b']);
    expect(client.queuedMessages).toBe(0);
    client.send('c');
    expect(last().sent).toEqual(['login', 'a', 'b', 'c']);
  });

  it('sends what was queued during a reconnect exactly once, on the new socket', () => {
    const { clock, sockets, last, client } = rig();
    last().accept();
    client.send('1');
    last().closeFromServer(1001);
    client.send('2');
    client.send('3');
    clock.runNext();
    last().fail();
    client.send('4');
    clock.runNext();
    last().accept();
    expect(sockets.map((s) => s.sent)).toEqual([['1'], [], ['2', '3', '4']]);
  });

  it('queues instead of sending into a socket that is already closing', () => {
    const { clock, last, client } = rig();
    last().accept();
    last().readyState = 2; // the server's close frame arrived; the close event has not yet
    client.send('late');
    expect(last().sent).toEqual([]);
    last().closeFromServer(1001);
    clock.runNext();
    last().accept();
    expect(last().sent).toEqual(['late']);
  });

  it('refuses a message past maxQueuedMessages: send() answers false and `dropped` reports it', () => {
    const { client, log } = rig({ maxQueuedMessages: 2 });
    expect(client.send('a')).toBe(true);
    expect(client.send('b')).toBe(true);
    expect(client.send('c')).toBe(false);
    expect(log).toEqual(['dropped c overflow']);
    expect(client.queuedMessages).toBe(2);
  });

  it('counts maxQueuedBytes in UTF-8 bytes, and bytes of binary data', () => {
    const { client, log } = rig({ maxQueuedBytes: 10 });
    expect(client.send('€😀')).toBe(true); // 3 + 4 bytes
    expect(client.send('é')).toBe(true); // 2: 9 in all
    expect(client.send(new Uint8Array(2))).toBe(false); // 11 > 10
    expect(client.send('x')).toBe(true); // 10
    expect(log).toEqual(['dropped 0,0 overflow']);
  });

  it('reports what is still queued when closed, and refuses sends after close', () => {
    const { client, log } = rig();
    client.send('a');
    client.send('b');
    client.close();
    expect(client.send('c')).toBe(false);
    expect(log).toEqual(['state connecting->closing', 'dropped a closed', 'dropped b closed', 'dropped c closed']);
  });

  it('reports what is still queued when it gives up or gets a final close code', () => {
    const gaveUp = rig({ maxAttempts: 1 });
    gaveUp.client.send('x');
    gaveUp.last().fail();
    expect(gaveUp.log.slice(-1)).toEqual(['dropped x closed']);

    const banned = rig();
    banned.last().accept();
    banned.last().closeFromServer(1008);
    banned.client.send('y');
    expect(banned.log.slice(-1)).toEqual(['dropped y closed']);
  });
});

// ---- scripted: heartbeat -------------------------------------------------------------------

describe('ReconnectingWebSocket heartbeat', () => {
  it('probes after `interval` of silence, swallows the reply, and drops a connection that does not answer in `timeout`', () => {
    const { clock, sockets, last, log } = rig({ heartbeat: { interval: 1000, timeout: 500, message: 'ping', reply: 'pong' } });
    last().accept();
    clock.advance(999);
    expect(last().sent).toEqual([]);
    clock.advance(1);
    expect(last().sent).toEqual(['ping']);
    clock.advance(200);
    last().receive('pong');
    clock.advance(999);
    expect(last().sent).toEqual(['ping']);
    clock.advance(1); // 1000 ms after the pong
    expect(last().sent).toEqual(['ping', 'ping']);
    clock.advance(499);
    expect(log.filter((line) => line.startsWith('error'))).toEqual([]);
    clock.advance(1);
    expect(sockets[0]!.closedWith).toEqual([1000, 'no answer to the heartbeat within 500 ms']);
    expect(log.slice(-3)).toEqual(['error WS_ERR_HEARTBEAT_TIMEOUT', 'state open->reconnecting', 'close 1006 retry in 1000']);
    expect(log).not.toContain('message pong');
    clock.advance(1000);
    expect(sockets).toHaveLength(2);
  });

  it('does not probe a connection that keeps talking; any message proves it alive', () => {
    const { clock, last } = rig({ heartbeat: { interval: 1000, timeout: 500, message: 'ping' } });
    last().accept();
    for (let i = 0; i < 20; i++) {
      clock.advance(900);
      last().receive(`tick ${i}`);
    }
    expect(last().sent).toEqual([]);
  });

  it('without a probe message, drops a connection silent for `timeout`', () => {
    const { clock, last, log, client } = rig({ heartbeat: { timeout: 1000 } });
    last().accept();
    clock.advance(900);
    last().receive('tick');
    clock.advance(999);
    expect(client.state).toBe('open');
    clock.advance(1);
    expect(client.state).toBe('reconnecting');
    expect(log).toContain('error WS_ERR_HEARTBEAT_TIMEOUT');
  });

  it('ignores what an abandoned socket does afterwards', () => {
    const { clock, sockets, log } = rig({ heartbeat: { timeout: 1000 } });
    sockets[0]!.accept();
    clock.advance(1000);
    const before = log.length;
    sockets[0]!.receive('too late');
    sockets[0]!.closeFromServer(1000);
    expect(log).toHaveLength(before);
  });
});

// ---- real servers, undici's WHATWG WebSocket ---------------------------------------------------

const servers: WebSocketServer[] = [];
const clients: ReconnectingWebSocket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

async function serve(route: Route<unknown>, port = 0): Promise<{ server: WebSocketServer; port: number }> {
  const server = new WebSocketServer({ heartbeat: false });
  servers.push(server);
  server.route('*', route);
  const address = await server.listen(port);
  return { server, port: address.port };
}

function connectReal(port: number, options: ReconnectingWebSocketOptions = {}): ReconnectingWebSocket {
  const client = new ReconnectingWebSocket(`ws://127.0.0.1:${port}/`, {
    WebSocket: UndiciWebSocket,
    backoff: { initialDelay: 20, maxDelay: 100 },
    ...options,
  });
  clients.push(client);
  return client;
}

function nextEvent<K extends keyof ReconnectingWebSocketEventMap>(
  client: ReconnectingWebSocket,
  type: K,
  accept: (event: ReconnectingWebSocketEventMap[K]) => boolean = () => true,
): Promise<ReconnectingWebSocketEventMap[K]> {
  return new Promise((resolve) => {
    const off = client.on(type, (event) => {
      if (!accept(event)) return;
      off();
      resolve(event);
    });
  });
}

describe('ReconnectingWebSocket against a real server (undici WebSocket)', () => {
  it('sends what was queued while the server was down exactly once, in order, after it restarts on the same port', async () => {
    const firstReceived: string[] = [];
    const first = await serve({ message: (_c, data) => firstReceived.push(String(data)) });
    const client = connectReal(first.port);
    await nextEvent(client, 'open');
    client.send('before');
    await until(() => firstReceived.length === 1, 'the first server to receive');

    const dropped = nextEvent(client, 'close');
    await first.server.close();
    servers.splice(servers.indexOf(first.server), 1);
    expect((await dropped).code).toBe(1001);
    for (let i = 1; i <= 5; i++) expect(client.send(`queued ${i}`)).toBe(true);
    // Let a few attempts fail against the closed port.
    let refused = 0;
    client.on('close', (event) => event.willReconnect && refused++);
    await until(() => refused >= 2, 'failed attempts while the server is down');
    expect(client.state).toBe('reconnecting');

    const secondReceived: string[] = [];
    const second = await serve({ message: (_c, data) => secondReceived.push(String(data)) }, first.port);
    const reopened = await nextEvent(client, 'open');
    expect(reopened.reconnected).toBe(true);
    client.send('after');
    await until(() => secondReceived.length >= 6, 'the queued messages');
    // The client answers a ping at once (RFC 6455 §5.5.2), on the same
    // ordered stream as its messages: once the pong is back, whatever it
    // sent before, a duplicate included, has been received.
    const [connection] = [...second.server.connections];
    await connection!.ping();
    expect(secondReceived).toEqual(['queued 1', 'queued 2', 'queued 3', 'queued 4', 'queued 5', 'after']);
    expect(firstReceived).toEqual(['before']);
  });

  it('notices a peer that stops answering without closing TCP, and reconnects', async () => {
    // The heartbeat and the back-off run on a manual clock: a deadline
    // passes when the test says so, never because the machine was slow.
    const clock = new ManualClock();
    const frozen = new Set<Connection<unknown>>();
    let probes = 0;
    const { server, port } = await serve({
      message(connection, data) {
        if (data !== 'ping') return;
        probes++;
        if (!frozen.has(connection)) connection.send('pong');
      },
    });
    const client = connectReal(port, {
      heartbeat: { interval: 50, timeout: 250, message: 'ping', reply: 'pong' },
      timers: clock,
      now: clock.now,
    });
    const messages: string[] = [];
    client.on('message', (event) => messages.push(String(event.data)));
    await nextEvent(client, 'open');
    const [stuck] = [...server.connections];

    // Several probes, all answered.
    clock.advance(50); // the interval's silence: the first probe goes out
    for (let probe = 1; probe <= 3; probe++) {
      await until(() => probes === probe, `probe ${probe} at the server`);
      // The server's ping follows its "pong" on the stream and the client
      // answers it once read (RFC 6455 §5.5.2): once the pong is back, the
      // client has taken the reply.
      await stuck!.ping();
      clock.advance(250); // the probe's deadline, answered: the next probe goes out
      expect(client.state).toBe('open');
    }
    expect(messages).toEqual([]);

    // The peer stops reading before it sees the probe that just went out.
    frozen.add(stuck!);
    stuck!.pause();
    const error = nextEvent(client, 'error');
    clock.advance(250);
    expect((await error).error.code).toBe('WS_ERR_HEARTBEAT_TIMEOUT');
    // The dead connection's TCP connection is still there: only the heartbeat could tell.
    expect(server.connections.has(stuck!)).toBe(true);
    const reopened = nextEvent(client, 'open');
    clock.advance(100); // past the longest back-off delay
    expect((await reopened).reconnected).toBe(true);
    stuck!.terminate();
  });

  it('stops for good when the server closes with 1008', async () => {
    let accepted = 0;
    const { port } = await serve({
      open(connection) {
        accepted++;
        connection.close(1008, 'not allowed');
      },
    });
    // Attempts are counted as sockets made, and the back-off runs on a
    // manual clock: a reconnect would make a socket inside advance().
    const clock = new ManualClock();
    let sockets = 0;
    class CountedWebSocket extends UndiciWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets++;
      }
    }
    const client = connectReal(port, { WebSocket: CountedWebSocket, timers: clock, now: clock.now });
    const closed = await nextEvent(client, 'close');
    expect(closed).toMatchObject({ code: 1008, reason: 'not allowed', willReconnect: false });
    expect(clock.pending).toBe(0);
    clock.advance(60_000); // far past the longest back-off delay and the connect timeout
    expect(sockets).toBe(1);
    expect(accepted).toBe(1);
    expect(client.state).toBe('closed');
  });

  it('gives up after maxAttempts refused connections', async () => {
    const { server, port } = await serve({});
    await server.close();
    servers.splice(0);
    const client = connectReal(port, { maxAttempts: 3, backoff: { initialDelay: 10 } });
    const closes: boolean[] = [];
    client.on('close', (event) => closes.push(event.willReconnect));
    const gaveUp = await nextEvent(client, 'error', (event) => event.error.code === 'WS_ERR_GAVE_UP');
    expect(gaveUp.error.message).toMatch(/3 failed attempts/);
    expect(closes).toEqual([true, true, false]);
    expect(client.state).toBe('closed');
  });
});
