import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  createCanvasApp,
  ERRORS_CLOSE_REASON,
  FLOOD_CLOSE_REASON,
  FULL_CLOSE_REASON,
  MAX_CLIENT_MESSAGE_BYTES,
  TEXT_CLOSE_REASON,
  type CanvasApp,
  type CanvasOptions,
} from '../../src/apps/canvas/index.js';
import {
  decodeServerMessage,
  encodeClientMessage,
  PROTOCOL_VERSION,
  type ClientMessage,
  type ServerMessage,
  type StrokeInfo,
} from '../../src/apps/canvas/wire/codec.js';
import { applyOperation, drawingFrom, isDrawingOperation } from '../../src/apps/canvas/operations.js';
import { AppServer } from '../../src/apps/host/server.js';
import { MemoryBroker } from '../../src/pubsub/memory-broker.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import type { Connection } from '../../src/node/connection.js';
import { OP, RawClient, frame } from '../node/raw-client.js';
import { until } from '../wait.js';

/** The shared canvas over real sockets on 127.0.0.1: `ws` clients, and a raw TCP client for the slow reader. */

const WAIT_MS = 3000;

let server: AppServer | null = null;
let app: CanvasApp | null = null;
const clients: CanvasClient[] = [];
const raws: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  for (const raw of raws.splice(0)) raw.destroy();
  await server?.close();
  server = null;
  app = null;
});

async function start(options: CanvasOptions = {}): Promise<number> {
  app = createCanvasApp(options);
  server = new AppServer({ apps: [app], logLevel: 'silent', websocket: { heartbeat: false, perMessageDeflate: false } });
  return (await server.listen(0)).port;
}

type Of<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

/** A `ws` client that decodes every binary message and keeps them, read in order through a cursor. */
class CanvasClient {
  readonly received: ServerMessage[] = [];
  readonly texts: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  id = 0;
  private cursor = 0;
  private wake: (() => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) {
        this.texts.push(String(data));
      } else {
        const decoded = decodeServerMessage(data);
        if (!decoded.ok) throw new Error(`the server sent an undecodable message: ${decoded.error.message}`);
        this.received.push(decoded.message);
      }
      this.wake?.();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  static async open(port: number): Promise<CanvasClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/canvas/ws`);
    const client = new CanvasClient(ws);
    clients.push(client);
    await once(ws, 'open');
    return client;
  }

  /** Open, say hello (in this protocol version unless told), and read the welcome and the first snapshot. */
  static async join(port: number, name = '', version = PROTOCOL_VERSION): Promise<CanvasClient & { snapshot: Of<'snapshot'> }> {
    const client = await CanvasClient.open(port);
    client.send({ type: 'hello', version, name });
    const welcome = await client.nextOf('welcome');
    client.id = welcome.id;
    const snapshot = await client.nextOf('snapshot');
    return Object.assign(client, { snapshot });
  }

  send(message: ClientMessage): void {
    this.ws.send(encodeClientMessage(message));
  }

  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  async nextWhere<M extends ServerMessage>(predicate: (message: ServerMessage) => message is M, what: string): Promise<M>;
  async nextWhere(predicate: (message: ServerMessage) => boolean, what: string): Promise<ServerMessage>;
  async nextWhere(predicate: (message: ServerMessage) => boolean, what: string): Promise<ServerMessage> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      while (this.cursor < this.received.length) {
        const message = this.received[this.cursor++]!;
        if (predicate(message)) return message;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.received.slice(-10))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  nextOf<T extends ServerMessage['type']>(type: T): Promise<Of<T>> {
    return this.nextWhere((message): message is Of<T> => message.type === type, `a "${type}" message`);
  }

  /** The drawing as this client holds it: its latest snapshot with every drawing operation received after it applied. */
  drawing(): StrokeInfo[] {
    let start = this.received.length - 1;
    while (start >= 0 && this.received[start]!.type !== 'snapshot') start--;
    const snapshot = this.received[start];
    if (snapshot?.type !== 'snapshot') throw new Error('no snapshot received yet');
    const state = drawingFrom(snapshot.strokes);
    for (const message of this.received.slice(start + 1)) if (isDrawingOperation(message)) applyOperation(state, message);
    return [...state.values()];
  }

  /** Wait until a pointers batch puts visitor `id` at (x, y). */
  pointerAt(id: number, x: number, y: number): Promise<ServerMessage> {
    return this.nextWhere(
      (message) => message.type === 'pointers' && message.pointers.some((p) => p.id === id && p.x === x && p.y === y),
      `visitor ${id}'s pointer at (${x}, ${y})`,
    );
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every point of stroke `id` in what `client` received, in order, from its begin to its end. */
async function collectStroke(client: CanvasClient, id: number): Promise<number[]> {
  const begin = await client.nextWhere((m): m is Of<'stroke-begin'> => m.type === 'stroke-begin' && m.id === id, `stroke ${id} to begin`);
  const points = [begin.x, begin.y];
  for (;;) {
    const next = await client.nextWhere((m) => (m.type === 'stroke-points' || m.type === 'stroke-end') && m.id === id, `more of stroke ${id}`);
    if (next.type === 'stroke-end') return points;
    if (next.type === 'stroke-points') points.push(...next.points);
  }
}

describe('canvas: joining and leaving', () => {
  it('welcomes a visitor with its id, colour and name, and shows it to the others', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    expect(ann.received[0]).toMatchObject({ type: 'welcome', version: PROTOCOL_VERSION, id: ann.id, name: 'Ann' });
    expect(ann.snapshot.visitors).toEqual([{ id: ann.id, colour: expect.any(Number), name: 'Ann', pointer: null }]);

    const anonymous = await CanvasClient.join(port);
    const welcome = anonymous.received[0] as Of<'welcome'>;
    expect(welcome.name).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+ \d+$/);
    expect(welcome.colour).not.toBe((ann.received[0] as Of<'welcome'>).colour);
    expect(anonymous.snapshot.visitors.map((v) => v.id)).toEqual([ann.id, anonymous.id]);
    expect(await ann.nextOf('join')).toEqual({ type: 'join', id: anonymous.id, colour: welcome.colour, name: welcome.name });
  });

  it('makes the pointer of a visitor who leaves disappear for everyone, newcomers included', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    ann.send({ type: 'move', x: 10, y: 20 });
    await bob.pointerAt(ann.id, 10, 20);
    ann.ws.close();
    expect(await bob.nextOf('leave')).toEqual({ type: 'leave', id: ann.id });
    const cid = await CanvasClient.join(port, 'Cid');
    expect(cid.snapshot.visitors.map((v) => v.name)).toEqual(['Bob', 'Cid']);
    expect(app!.stats.visitors).toBe(2);
  });

  it('gives a newcomer the current drawing and every pointer where it is', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    ann.send({ type: 'stroke-begin', colour: 0x336699, width: 5, x: 100, y: 100 });
    ann.send({ type: 'stroke-points', points: [200, 200, 300, 300] });
    ann.send({ type: 'stroke-end' });
    ann.send({ type: 'stroke-begin', colour: 0x000000, width: 1, x: 7, y: 7 });
    ann.send({ type: 'stroke-points', points: [8, 8] });
    ann.send({ type: 'move', x: 40_000, y: 30_000 });
    await ann.pointerAt(ann.id, 40_000, 30_000);

    const bob = await CanvasClient.join(port, 'Bob');
    expect(bob.snapshot.visitors).toEqual([
      { id: ann.id, colour: expect.any(Number), name: 'Ann', pointer: { x: 40_000, y: 30_000 } },
      { id: bob.id, colour: expect.any(Number), name: 'Bob', pointer: null },
    ]);
    expect(bob.snapshot.strokes).toEqual([
      { id: 1, visitor: ann.id, colour: 0x336699, width: 5, open: false, points: [100, 100, 200, 200, 300, 300] },
      { id: 2, visitor: ann.id, colour: 0, width: 1, open: true, points: [7, 7, 8, 8] },
    ]);
    // The open stroke goes on for the newcomer from where its snapshot left it.
    ann.send({ type: 'stroke-points', points: [9, 9] });
    ann.send({ type: 'stroke-end' });
    expect(await bob.nextOf('stroke-points')).toEqual({ type: 'stroke-points', id: 2, points: [9, 9] });
    expect(await bob.nextOf('stroke-end')).toEqual({ type: 'stroke-end', id: 2 });
  });

  it('announces a rename to everyone and refuses an invalid name with an error', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    ann.send({ type: 'rename', name: 'Annie' });
    expect(await bob.nextOf('renamed')).toEqual({ type: 'renamed', id: ann.id, name: 'Annie' });
    expect(await ann.nextOf('renamed')).toEqual({ type: 'renamed', id: ann.id, name: 'Annie' });
    ann.send({ type: 'rename', name: 'x'.repeat(30) });
    expect(await ann.nextOf('error')).toMatchObject({ code: 'invalid_name', about: 0x02 });
  });

  it('refuses a visitor past the limit with `full` and closes with 1008', async () => {
    const port = await start({ maxVisitors: 1 });
    await CanvasClient.join(port, 'Ann');
    const late = await CanvasClient.open(port);
    late.send({ type: 'hello', version: 1, name: 'Bob' });
    expect(await late.nextOf('error')).toMatchObject({ code: 'full' });
    expect(await late.closed).toEqual({ code: 1008, reason: FULL_CLOSE_REASON });
  });
});

describe('canvas: pointers and strokes', () => {
  it('shows a pointer moving to the others', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    for (const [x, y] of [
      [0, 0],
      [65_535, 65_535],
      [1234, 54_321],
    ] as const) {
      ann.send({ type: 'move', x, y });
      await bob.pointerAt(ann.id, x, y);
    }
  });

  it('forwards at most one position per visitor per tick: a burst of moves is merged, ending at the last', async () => {
    const tickMs = 33;
    const port = await start({ tickMs });
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    const from = bob.received.length;
    const started = performance.now();
    // 150 moves in bursts of ten, each burst sent once the one before has
    // reached Bob: ten moves a tick, several times the rate a page sends,
    // and the moves spread over fifteen ticks at least however slow the machine.
    for (let round = 0; round < 15; round++) {
      for (let i = 0; i < 10; i++) ann.send({ type: 'move', x: round * 10 + i, y: 500 });
      await bob.pointerAt(ann.id, round * 10 + 9, 500);
    }
    const elapsed = performance.now() - started;
    const updates = bob.received.slice(from).flatMap((m) => (m.type === 'pointers' ? m.pointers.filter((p) => p.id === ann.id) : []));
    expect(updates.length).toBeGreaterThan(1);
    expect(updates.length).toBeLessThanOrEqual(Math.ceil(elapsed / tickMs) + 2);
    expect(updates.length).toBeLessThan(50);
    // Positions only ever move forward: merging keeps the latest, never an older one.
    const xs = updates.map((p) => p.x);
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
  });

  it('relays a stroke to everyone without losing a point, merging points that arrive between ticks', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    const sent = [500, 600];
    // Points Bob has of the stroke, read from all he received (his cursor stays for collectStroke).
    const pointsAtBob = (): number => bob.received.reduce((sum, m) => sum + (m.type === 'stroke-points' && m.id === 1 ? m.points.length / 2 : 0), 0);
    const from = bob.received.length;
    ann.send({ type: 'stroke-begin', colour: 0xff8800, width: 3, x: 500, y: 600 });
    for (let i = 1; i <= 60; i++) {
      ann.send({ type: 'stroke-points', points: [500 + i, 600 + i * 2] });
      sent.push(500 + i, 600 + i * 2);
      // Three bursts of twenty, each sent once the one before has reached Bob: the stroke spans several ticks.
      if (i % 20 === 0) await until(() => pointsAtBob() === i, `Bob to have the stroke's first ${i} points`, WAIT_MS);
    }
    ann.send({ type: 'stroke-end' });
    expect(await collectStroke(bob, 1)).toEqual(sent);
    const pointMessages = bob.received.slice(from).filter((m) => m.type === 'stroke-points').length;
    expect(pointMessages).toBeLessThan(20);
    // The drawer gets its own stroke back, the same.
    expect(await collectStroke(ann, 1)).toEqual(sent);
  });

  it('trims the oldest strokes past the drawing’s limit, for everyone alike, so a snapshot stays bounded', async () => {
    const port = await start({ limits: { maxStrokePoints: 10, maxPoints: 30 } });
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    for (let stroke = 0; stroke < 5; stroke++) {
      ann.send({ type: 'stroke-begin', colour: 0, width: 1, x: stroke, y: 0 });
      ann.send({ type: 'stroke-points', points: Array.from({ length: 18 }, (_, i) => i) });
      ann.send({ type: 'stroke-end' });
    }
    await bob.nextWhere((m) => m.type === 'stroke-end' && m.id === 5, 'the last stroke');
    const trims = bob.received.filter((m): m is Of<'trim'> => m.type === 'trim');
    expect(trims.at(-1)).toEqual({ type: 'trim', before: 3 });
    const cid = await CanvasClient.join(port, 'Cid');
    expect(cid.snapshot.strokes.map((s) => s.id)).toEqual([3, 4, 5]);
    expect(cid.snapshot.strokes.reduce((sum, s) => sum + s.points.length / 2, 0)).toBe(30);
  });
});

describe('canvas: undo and clear', () => {
  /** Draw a finished stroke of two points from `client`, and wait until `client` has it back complete; its id. */
  async function draw(client: CanvasClient, x: number): Promise<number> {
    client.send({ type: 'stroke-begin', colour: 0x102030, width: 3, x, y: x });
    client.send({ type: 'stroke-points', points: [x + 1, x + 1] });
    client.send({ type: 'stroke-end' });
    const begin = await client.nextWhere(
      (m): m is Of<'stroke-begin'> => m.type === 'stroke-begin' && m.visitor === client.id && m.x === x,
      `the stroke drawn at ${x} to come back`,
    );
    await client.nextWhere((m) => m.type === 'stroke-end' && m.id === begin.id, `stroke ${begin.id} to end`);
    return begin.id;
  }

  const ids = (strokes: readonly StrokeInfo[]): number[] => strokes.map((stroke) => stroke.id);

  it('undoes only the asker’s latest stroke and clears the board, the same for everyone and for a newcomer', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    const annFirst = await draw(ann, 100);
    const annSecond = await draw(ann, 200);
    const bobStroke = await draw(bob, 300);
    await ann.nextWhere((m) => m.type === 'stroke-end' && m.id === bobStroke, 'Bob’s stroke at Ann');

    ann.send({ type: 'undo' });
    expect(await ann.nextOf('stroke-undone')).toEqual({ type: 'stroke-undone', id: annSecond });
    expect(await bob.nextOf('stroke-undone')).toEqual({ type: 'stroke-undone', id: annSecond });
    expect(ids(ann.drawing())).toEqual([annFirst, bobStroke]);
    expect(bob.drawing()).toEqual(ann.drawing());
    const cid = await CanvasClient.join(port, 'Cid');
    expect(cid.snapshot.strokes).toEqual(ann.drawing());
    expect(cid.snapshot.strokes.find((stroke) => stroke.id === bobStroke)).toMatchObject({ visitor: bob.id, points: [300, 300, 301, 301] });

    ann.send({ type: 'clear' });
    expect(await ann.nextOf('cleared')).toEqual({ type: 'cleared', by: ann.id });
    expect(await bob.nextOf('cleared')).toEqual({ type: 'cleared', by: ann.id });
    expect(await cid.nextOf('cleared')).toEqual({ type: 'cleared', by: ann.id });
    expect(ann.drawing()).toEqual([]);
    expect(bob.drawing()).toEqual([]);
    const dee = await CanvasClient.join(port, 'Dee');
    expect(dee.snapshot.strokes).toEqual([]);
    expect(app!.stats.strokes).toBe(0);
    expect(app!.stats.points).toBe(0);

    // With nothing of its own left, an undo is refused; Bob's strokes after the clear are his own to undo.
    ann.send({ type: 'undo' });
    expect(await ann.nextOf('error')).toMatchObject({ code: 'nothing_to_undo', about: 0x13 });
    const bobAgain = await draw(bob, 400);
    expect(bobAgain).toBeGreaterThan(bobStroke);
    bob.send({ type: 'undo' });
    expect(await dee.nextOf('stroke-undone')).toEqual({ type: 'stroke-undone', id: bobAgain });
  });

  it('limits clears and undos per visitor with `rate_limited`, without closing the connection', async () => {
    const port = await start({ clearIntervalMs: 60_000, maxUndosPerSecond: 2, maxErrors: 3 });
    const ann = await CanvasClient.join(port, 'Ann');
    for (let i = 0; i < 3; i++) await draw(ann, i * 10);
    ann.send({ type: 'clear' });
    await ann.nextOf('cleared');
    for (let i = 0; i < 3; i++) {
      ann.send({ type: 'clear' });
      expect(await ann.nextOf('error')).toMatchObject({ code: 'rate_limited', about: 0x14 });
    }
    for (let i = 0; i < 3; i++) await draw(ann, 100 + i * 10);
    // Three undos at once: two pass, the third is refused. (Errors are answered at once, undos go out with the
    // next batch, so the order of the answers says nothing.) The server counts in one-second windows: if the
    // three answers took a second or more to come, the third may have fallen in a new window, and is not judged.
    const started = performance.now();
    for (let i = 0; i < 3; i++) ann.send({ type: 'undo' });
    const answers: ServerMessage[] = [];
    for (let i = 0; i < 3; i++) answers.push(await ann.nextWhere((m) => m.type === 'stroke-undone' || m.type === 'error', `answer ${i + 1}`));
    const undone = answers.filter((m) => m.type === 'stroke-undone');
    expect(undone.length).toBeGreaterThanOrEqual(2);
    if (performance.now() - started < 1000) {
      expect(undone).toHaveLength(2);
      expect(answers.find((m) => m.type === 'error')).toMatchObject({ code: 'rate_limited', about: 0x13 });
    }
    // Six refusals and more than `maxErrors`: the connection stays, refusals of this kind are not mistakes.
    ann.send({ type: 'move', x: 9, y: 9 });
    await ann.pointerAt(ann.id, 9, 9);
    expect(ann.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('serves a version 1 client in version 1: a welcome in version 1, and snapshots in place of undo and clear', async () => {
    const port = await start();
    const old = await CanvasClient.join(port, 'Old', 1);
    expect(old.received[0]).toMatchObject({ type: 'welcome', version: 1 });
    const ann = await CanvasClient.join(port, 'Ann');
    await draw(ann, 10);
    const second = await draw(ann, 20);
    await old.nextWhere((m) => m.type === 'stroke-end' && m.id === second, 'the second stroke at the old client');
    ann.send({ type: 'undo' });
    await ann.nextOf('stroke-undone');
    const snapshot = await old.nextOf('snapshot');
    expect(ids(snapshot.strokes)).toEqual([second - 1]);
    expect(old.drawing()).toEqual(ann.drawing());
    ann.send({ type: 'clear' });
    await ann.nextOf('cleared');
    expect((await old.nextOf('snapshot')).strokes).toEqual([]);
    expect(old.received.some((m) => m.type === 'stroke-undone' || m.type === 'cleared')).toBe(false);
  });
});

describe('canvas: malformed and hostile input', () => {
  it('answers malformed messages with an error naming the problem, and the connection stays up', async () => {
    const port = await start();
    const ann = await CanvasClient.open(port);
    ann.send({ type: 'move', x: 1, y: 1 });
    expect(await ann.nextOf('error')).toMatchObject({ code: 'not_joined', about: 0x03 });
    ann.send({ type: 'hello', version: 1, name: 'Ann' });
    ann.id = (await ann.nextOf('welcome')).id;
    await ann.nextOf('snapshot');

    const cases: Array<[Uint8Array, string, number]> = [
      [Uint8Array.of(0x03, 1, 2, 3), 'malformed', 0x03],
      [Uint8Array.of(0x7e), 'unknown_type', 0x7e],
      [Uint8Array.of(0x10, 0, 0, 0, 0, 0, 0, 0, 0), 'out_of_range', 0x10],
      [Uint8Array.of(0x02, 2, 0xff, 0xfe), 'invalid_utf8', 0x02],
      [Uint8Array.of(0x01, 9, 0), 'unsupported_version', 0x01],
      [encodeClientMessage({ type: 'hello', version: 1, name: 'again' }), 'already_joined', 0x01],
      [encodeClientMessage({ type: 'stroke-points', points: [1, 1] }), 'no_stroke', 0x11],
    ];
    for (const [bytes, code, about] of cases) {
      ann.sendRaw(bytes);
      const error = await ann.nextOf('error');
      expect(error).toMatchObject({ code, about });
      expect(error.message.length).toBeGreaterThan(5);
    }
    ann.send({ type: 'move', x: 77, y: 88 });
    await ann.pointerAt(ann.id, 77, 88);
  });

  it('answers the heartbeat probe, and closes with 1003 on any other text message', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    ann.sendRaw('ping');
    const deadline = Date.now() + WAIT_MS;
    while (ann.texts.length === 0 && Date.now() < deadline) await sleep(5);
    expect(ann.texts).toEqual(['pong']);
    ann.sendRaw('{"type":"move","x":1,"y":2}');
    expect(await ann.closed).toEqual({ code: 1003, reason: TEXT_CLOSE_REASON });
  });

  it('closes with 1008 after ten bad messages within ten seconds', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    for (let i = 0; i < 10; i++) ann.sendRaw(Uint8Array.of(0x7e));
    expect(await ann.closed).toEqual({ code: 1008, reason: ERRORS_CLOSE_REASON });
    expect(ann.received.filter((m) => m.type === 'error').length).toBe(10);
  });

  it('closes with 1008 a client that floods, and the others stay', async () => {
    const port = await start({ maxMessagesPerSecond: 100 });
    const ann = await CanvasClient.join(port, 'Ann');
    const bob = await CanvasClient.join(port, 'Bob');
    for (let i = 0; i < 150; i++) ann.send({ type: 'move', x: i, y: i });
    expect(await ann.closed).toEqual({ code: 1008, reason: FLOOD_CLOSE_REASON });
    expect(await bob.nextOf('leave')).toEqual({ type: 'leave', id: ann.id });
    expect(bob.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('refuses a message over the size limit with 1009 before reading it whole', async () => {
    const port = await start();
    const ann = await CanvasClient.join(port, 'Ann');
    ann.sendRaw(new Uint8Array(MAX_CLIENT_MESSAGE_BYTES + 1).fill(0x11));
    expect((await ann.closed).code).toBe(1009);
  });
});

describe('canvas: a client that stops reading', () => {
  /** The server's side of the raw client's connection: the one that is not one of the `ws` clients'. */
  function serverSide(count: number): Connection<unknown> {
    const all = [...server!.websockets.connections];
    expect(all.length).toBe(count);
    return all[0]!;
  }

  it('keeps what waits for it bounded while others get every update, and resyncs it with the latest state once it reads again', async () => {
    const maxBuffered = 16 * 1024;
    const port = await start({
      tickMs: 10,
      maxBuffered,
      maxMessagesPerSecond: 100_000,
      limits: { maxStrokePoints: 4096, maxPoints: 8192 },
    });
    const { client: slow } = await RawClient.upgrade(port, { path: '/canvas/ws' });
    raws.push(slow);
    slow.send({ opcode: OP.binary, payload: Buffer.from(encodeClientMessage({ type: 'hello', version: 1, name: 'Slow' })) });
    const welcome = decodeServerMessage((await slow.readFrame()).payload);
    expect(welcome.ok && welcome.message.type).toBe('welcome');
    expect(decodeServerMessage((await slow.readFrame()).payload)).toMatchObject({ ok: true, message: { type: 'snapshot' } });
    const slowSide = serverSide(1);
    slow.pause();

    const drawer = await CanvasClient.join(port, 'Drawer');
    const watcher = await CanvasClient.join(port, 'Watcher');

    // Strokes of 2049 points (8 KB each way) until the slow client has been skipped a while.
    const points = Array.from({ length: 512 }, (_, i) => (i * 37) % 65_536);
    const strokePoints = 1 + 8 * 256;
    let maxWaiting = 0;
    let strokes = 0;
    let skippedSince = 0;
    for (let round = 0; round < 600; round++) {
      drawer.send({ type: 'stroke-begin', colour: 0x2040ff, width: 2, x: round, y: round });
      for (let i = 0; i < 8; i++) drawer.send({ type: 'stroke-points', points });
      drawer.send({ type: 'stroke-end' });
      drawer.send({ type: 'move', x: round, y: 1000 + round });
      strokes++;
      // Everyone else keeps up: the watcher sees each stroke end before the next begins.
      await watcher.nextWhere((m) => m.type === 'stroke-end' && m.id === strokes, `stroke ${strokes} to end`);
      maxWaiting = Math.max(maxWaiting, slowSide.bufferedAmount);
      if (app!.stats.skipped > 0 && skippedSince === 0) skippedSince = round;
      if (skippedSince > 0 && round - skippedSince >= 20) break;
    }
    expect(app!.stats.skipped).toBeGreaterThan(0);
    // What waits for it: the limit, one snapshot (at most 8192 points), one tick's batch. Never the megabytes sent to the others.
    expect(maxWaiting).toBeLessThan(128 * 1024);
    const sentToWatcher = watcher.received.reduce((sum, m) => sum + (m.type === 'stroke-points' ? m.points.length * 2 : 0), 0);
    expect(sentToWatcher).toBeGreaterThan(10 * maxWaiting);

    // The final state, which the slow client must end up with.
    drawer.send({ type: 'move', x: 12_345, y: 54_321 });
    await watcher.pointerAt(drawer.id, 12_345, 54_321);
    const resyncsBefore = app!.stats.resyncs;

    slow.resume();
    let latest: Of<'snapshot'> | null = null;
    for (let i = 0; i < 100_000 && latest === null; i++) {
      const next = await slow.readFrame(WAIT_MS);
      if (next.opcode !== OP.binary) continue;
      const decoded = decodeServerMessage(next.payload);
      expect(decoded.ok).toBe(true);
      if (decoded.ok && decoded.message.type === 'snapshot' && app!.stats.resyncs > resyncsBefore) {
        const drawerNow = decoded.message.visitors.find((v) => v.id === drawer.id);
        if (drawerNow?.pointer?.x === 12_345) latest = decoded.message;
      }
    }
    expect(latest).not.toBeNull();
    expect(latest!.visitors.find((v) => v.id === drawer.id)!.pointer).toEqual({ x: 12_345, y: 54_321 });
    // The whole drawing as it is now: the latest strokes, as many as the limit of 8192 points holds.
    const kept = Math.floor(8192 / strokePoints);
    expect(latest!.strokes.map((s) => s.id)).toEqual(Array.from({ length: kept }, (_, i) => strokes - kept + 1 + i));
    expect(latest!.strokes.every((s) => s.points.length === strokePoints * 2 && !s.open)).toBe(true);
    // And it is current again: the next move reaches it like everyone else.
    drawer.send({ type: 'move', x: 1, y: 2 });
    for (let i = 0; i < 1000; i++) {
      const decoded = decodeServerMessage((await slow.readFrame(WAIT_MS)).payload);
      if (decoded.ok && decoded.message.type === 'pointers' && decoded.message.pointers.some((p) => p.id === drawer.id && p.x === 1 && p.y === 2))
        break;
      if (i === 999) throw new Error('the slow client never got the move after its resync');
    }
  }, 30_000);

  it('hands a move to each visitor exactly once: one frame per client per batch, not one per message received', async () => {
    const port = await start({ tickMs: 10 });
    const ann = await CanvasClient.join(port, 'Ann');
    const others = [await CanvasClient.join(port, 'B'), await CanvasClient.join(port, 'C')];
    // The last frames the joins set off: C's join, announced to Ann and B.
    for (const client of [ann, others[0]!]) {
      await client.nextWhere((m) => m.type === 'join' && m.id === others[1]!.id, "C's join");
    }
    const before = app!.stats.frames;
    ann.send({ type: 'move', x: 5, y: 5 });
    for (const client of [ann, ...others]) await client.pointerAt(ann.id, 5, 5);
    expect(app!.stats.frames - before).toBe(3);
  });
});

describe('canvas: the raw bytes on the wire', () => {
  it('sends binary frames, a pointers batch of 8 bytes per pointer', async () => {
    const port = await start();
    const { client: raw } = await RawClient.upgrade(port, { path: '/canvas/ws' });
    raws.push(raw);
    raw.write(frame({ opcode: OP.binary, payload: Buffer.from([0x01, 0x01, 0x00]) }));
    const welcome = await raw.readFrame();
    expect(welcome.opcode).toBe(OP.binary);
    expect(welcome.payload[0]).toBe(0x81);
    const id = welcome.payload.readUInt32LE(2);
    await raw.readFrame();
    raw.write(frame({ opcode: OP.binary, payload: Buffer.from([0x03, 0x34, 0x12, 0x78, 0x56]) }));
    const batch = await raw.readFrame();
    expect(batch.opcode).toBe(OP.binary);
    const expected = Buffer.alloc(9);
    expected[0] = 0x86;
    expected.writeUInt32LE(id, 1);
    expected.writeUInt16LE(0x1234, 5);
    expected.writeUInt16LE(0x5678, 7);
    expect(batch.payload).toEqual(expected);
  });
});

describe('canvas: a hello that takes time (the broker is slow to answer)', () => {
  /** The in-memory broker, holding every publish until `release()`. */
  class HeldBroker extends MemoryBroker {
    private held: Array<() => void> | null = [];
    override publish(...args: Parameters<MemoryBroker['publish']>): ReturnType<MemoryBroker['publish']> {
      if (this.held === null) return super.publish(...args);
      return new Promise((resolve, reject) =>
        this.held!.push(() => {
          super.publish(...args).then(resolve, reject);
        }),
      );
    }
    release(): void {
      const held = this.held ?? [];
      this.held = null;
      for (const run of held) run();
    }
  }

  it('keeps the messages sent after a hello for after the welcome, in order, and refuses those past its bound', async () => {
    const broker = new HeldBroker();
    app = createCanvasApp({ maxMessagesPerSecond: 10_000, maxErrors: 1000 });
    server = new AppServer({
      apps: [app],
      logLevel: 'silent',
      pubsub: new PubSub({ broker }),
      websocket: { heartbeat: false, perMessageDeflate: false },
    });
    const port = (await server.listen(0)).port;
    const ann = await CanvasClient.open(port);
    ann.send({ type: 'hello', version: PROTOCOL_VERSION, name: 'Ann' });
    ann.send({ type: 'stroke-begin', colour: 0x123456, width: 2, x: 0, y: 0 });
    const extra = 300;
    for (let i = 1; i <= extra; i++) ann.send({ type: 'stroke-points', points: [i, i] });
    ann.send({ type: 'stroke-end' });
    // 256 wait (the begin and 255 points); the other 46 are refused while the hello is still answered.
    const refused = extra + 2 - 256;
    for (let i = 0; i < refused; i++) await ann.nextWhere((m) => m.type === 'error' && m.code === 'not_joined', `refusal ${i + 1}`);
    expect(ann.received.some((m) => m.type === 'welcome')).toBe(false);

    broker.release();
    const welcome = await ann.nextOf('welcome');
    expect(welcome.name).toBe('Ann');
    // The waiting messages were handled after the welcome, in order: the stroke holds the first 255 points. Its end was refused.
    await ann.nextWhere((m) => m.type === 'snapshot', 'the first snapshot');
    const expected = [
      {
        id: 1,
        visitor: welcome.id,
        colour: 0x123456,
        width: 2,
        open: true,
        points: [0, 0, ...Array.from({ length: 255 }, (_, i) => [i + 1, i + 1]).flat()],
      },
    ];
    const deadline = Date.now() + WAIT_MS;
    while (JSON.stringify(ann.drawing()) !== JSON.stringify(expected) && Date.now() < deadline) await sleep(10);
    expect(ann.drawing()).toEqual(expected);
  });
});
