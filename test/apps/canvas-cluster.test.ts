import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createCanvasApp, type CanvasOptions } from '../../src/apps/canvas/index.js';
import { applyOperation, drawingFrom, isDrawingOperation } from '../../src/apps/canvas/operations.js';
import { AppServer } from '../../src/apps/host/server.js';
import type { HistoryOptions } from '../../src/pubsub/broker.js';
import { historyPolicyOf } from '../../src/apps/app.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import {
  decodeServerMessage,
  encodeClientMessage,
  PROTOCOL_VERSION,
  type ClientMessage,
  type ServerMessage,
  type StrokeInfo,
} from '../../src/apps/canvas/wire/codec.js';
import { useRedis } from '../pubsub/redis-server.js';

/**
 * The canvas on several nodes: separate AppServers in this process, each
 * with its own hub on its own RedisBroker, all on one private
 * redis-server. Browsers' clients (here `ws`) speak PROTOCOL.md unchanged;
 * whichever node they reach, they see one board.
 */

const WAIT_MS = 8000;

const redis = useRedis();
const servers: AppServer[] = [];
const clients: CanvasClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await redis.command('FLUSHALL');
});

async function startNode(options: CanvasOptions = {}, history?: HistoryOptions): Promise<number> {
  return (await startNodeWithBroker(options, history)).port;
}

async function startNodeWithBroker(
  options: CanvasOptions = {},
  history?: HistoryOptions,
  presenceTtlMs?: number,
): Promise<{ port: number; broker: RedisBroker }> {
  const app = createCanvasApp(options);
  // By default the history the canvas asks its host for (App.topicHistory): none for pointers and id allocation.
  const policy = history ?? historyPolicyOf([app]);
  const broker = await RedisBroker.connect({ url: redis.url, history: policy, ...(presenceTtlMs === undefined ? {} : { presenceTtlMs }) });
  const server = new AppServer({
    apps: [app],
    logLevel: 'silent',
    pubsub: new PubSub({ broker }),
    websocket: { heartbeat: false, perMessageDeflate: false },
  });
  servers.push(server);
  return { port: (await server.listen(0)).port, broker };
}

type Of<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

class CanvasClient {
  readonly received: ServerMessage[] = [];
  id = 0;
  private wake: (() => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) return;
      const decoded = decodeServerMessage(data);
      if (!decoded.ok) throw new Error(`undecodable: ${decoded.error.message}`);
      this.received.push(decoded.message);
      this.wake?.();
    });
  }

  static async join(port: number, name: string): Promise<CanvasClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/canvas/ws`);
    const client = new CanvasClient(ws);
    clients.push(client);
    await once(ws, 'open');
    client.send({ type: 'hello', version: PROTOCOL_VERSION, name });
    client.id = (await client.until((m): m is Of<'welcome'> => m.type === 'welcome', 'a welcome')).id;
    await client.until((m) => m.type === 'snapshot', 'a snapshot');
    return client;
  }

  send(message: ClientMessage): void {
    this.ws.send(encodeClientMessage(message));
  }

  /** Wait until some message received so far (from the start) satisfies the predicate. */
  async until<M extends ServerMessage>(predicate: (message: ServerMessage) => message is M, what: string): Promise<M>;
  async until(predicate: (message: ServerMessage) => boolean, what: string): Promise<ServerMessage>;
  async until(predicate: (message: ServerMessage) => boolean, what: string): Promise<ServerMessage> {
    return this.waitFor(() => this.received.find(predicate) ?? null, what);
  }

  /** Wait until the drawing this client holds satisfies the predicate; return it. */
  drawingWhere(predicate: (strokes: StrokeInfo[]) => boolean, what: string): Promise<StrokeInfo[]> {
    return this.waitFor(() => {
      const strokes = this.drawing();
      return predicate(strokes) ? strokes : null;
    }, what);
  }

  /** Its latest snapshot with every drawing operation received after it applied. */
  drawing(): StrokeInfo[] {
    let start = this.received.length - 1;
    while (start >= 0 && this.received[start]!.type !== 'snapshot') start--;
    const snapshot = this.received[start] as Of<'snapshot'>;
    const state = drawingFrom(snapshot.strokes);
    for (const message of this.received.slice(start + 1)) if (isDrawingOperation(message)) applyOperation(state, message);
    return [...state.values()];
  }

  /** A one-stroke drawing: begin, points, end, each sent on its own. */
  stroke(x: number, points = 3): void {
    this.send({ type: 'stroke-begin', colour: 0x336699, width: 3, x, y: x });
    this.send({ type: 'stroke-points', points: Array.from({ length: points }, (_, i) => [x + i + 1, x + i + 1]).flat() });
    this.send({ type: 'stroke-end' });
  }

  private async waitFor<T>(probe: () => T | null, what: string): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = probe();
      if (found !== null) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; last received ${JSON.stringify(this.received.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}

const finished = (count: number) => (strokes: StrokeInfo[]) => strokes.length === count && strokes.every((stroke) => !stroke.open);

describe('canvas across nodes on one Redis', () => {
  it('shows a stroke drawn on node A to a client of node B, every point, under the same stroke id; visitors and pointers too', async () => {
    const a = await startNode();
    const b = await startNode();
    const ann = await CanvasClient.join(a, 'Ann');
    const bob = await CanvasClient.join(b, 'Bob');
    // Ids are unique across the nodes.
    expect(ann.id).not.toBe(bob.id);
    await ann.until((m) => m.type === 'join' && m.id === bob.id && m.name === 'Bob', 'Bob arriving, seen on A');

    ann.stroke(100, 50);
    const onB = await bob.drawingWhere(finished(1), 'Ann’s stroke on B');
    const onA = await ann.drawingWhere(finished(1), 'Ann’s stroke echoed on A');
    expect(onB).toEqual(onA);
    expect(onB[0]).toMatchObject({ visitor: ann.id, colour: 0x336699, width: 3 });
    expect(onB[0]!.points).toHaveLength(2 * 51);

    ann.send({ type: 'move', x: 1234, y: 4321 });
    await bob.until((m) => m.type === 'pointers' && m.pointers.some((p) => p.id === ann.id && p.x === 1234 && p.y === 4321), 'Ann’s pointer on B');
    ann.ws.close();
    await bob.until((m) => m.type === 'leave' && m.id === ann.id, 'Ann leaving, seen on B');
  });

  it('undoes the asker’s own latest stroke and clears the board for every node alike, in one order', async () => {
    const a = await startNode();
    const b = await startNode();
    const ann = await CanvasClient.join(a, 'Ann');
    const bob = await CanvasClient.join(b, 'Bob');
    ann.stroke(10);
    await bob.drawingWhere(finished(1), 'the first stroke on B');
    ann.stroke(20);
    await bob.drawingWhere(finished(2), 'the second stroke on B');
    bob.stroke(30);
    await ann.drawingWhere(finished(3), 'Bob’s stroke on A');
    await bob.drawingWhere(finished(3), 'Bob’s stroke on B');

    // Ann's undo, asked on A, takes Ann's latest stroke (x = 20) everywhere; Bob's stays.
    ann.send({ type: 'undo' });
    const afterUndo = await bob.drawingWhere((s) => s.length === 2, 'the undo on B');
    await bob.until((m) => m.type === 'stroke-undone', 'the stroke-undone on B');
    expect(afterUndo.map((stroke) => [stroke.visitor, stroke.points[0]])).toEqual([
      [ann.id, 10],
      [bob.id, 30],
    ]);
    expect(await ann.drawingWhere((s) => s.length === 2, 'the undo on A')).toEqual(afterUndo);

    // Bob clears on B; at the same time Ann draws on A. Whichever the log put first, both nodes agree.
    bob.send({ type: 'clear' });
    ann.stroke(40);
    await bob.until((m) => m.type === 'cleared' && m.by === bob.id, 'the clear on B');
    await ann.until((m) => m.type === 'cleared' && m.by === bob.id, 'the clear on A');
    await ann.drawingWhere((s) => s.every((stroke) => !stroke.open), 'Ann’s stroke ended on A');
    await bob.drawingWhere((s) => s.every((stroke) => !stroke.open), 'Ann’s stroke ended on B');
    // Give the last stroke's end time to reach both (it may have come before or after the clear).
    const settle = Date.now() + WAIT_MS;
    while (JSON.stringify(ann.drawing()) !== JSON.stringify(bob.drawing()) && Date.now() < settle) await new Promise((r) => setTimeout(r, 20));
    expect(ann.drawing()).toEqual(bob.drawing());
    expect(ann.drawing().length).toBeLessThanOrEqual(1);

    // Nothing of Bob's is left to undo, on either node.
    bob.send({ type: 'undo' });
    await bob.until((m) => m.type === 'error' && m.code === 'nothing_to_undo', 'nothing_to_undo for Bob');
  });

  it('makes the visitors of a node cut off from Redis leave on the others once their presence expires, ending their open stroke', async () => {
    const ttl = 1000;
    const a = await startNodeWithBroker({}, undefined, ttl);
    const b = await startNodeWithBroker({}, undefined, ttl);
    const ann = await CanvasClient.join(a.port, 'Ann');
    const bob = await CanvasClient.join(b.port, 'Bob');
    await ann.until((m) => m.type === 'join' && m.id === bob.id, 'Bob on A');
    bob.send({ type: 'stroke-begin', colour: 0xaa0000, width: 2, x: 5, y: 5 });
    bob.send({ type: 'stroke-points', points: [6, 6, 7, 7] });
    await ann.drawingWhere((s) => s.length === 1 && s[0]!.open && s[0]!.points.length === 6, 'Bob’s open stroke on A');

    // No goodbye: B's connections to Redis drop, and its client goes with it.
    b.broker.disconnectAbruptly();
    bob.ws.terminate();
    // Expiry takes the TTL plus one sweep (a third of it): well within the wait's bound.
    await ann.until((m) => m.type === 'leave' && m.id === bob.id, 'Bob leaving A by expiry');
    const board = await ann.drawingWhere((s) => s.length === 1 && !s[0]!.open, 'Bob’s stroke ended on A');
    expect(board[0]).toMatchObject({ visitor: bob.id, points: [5, 5, 6, 6, 7, 7] });
  });

  it('gives a newcomer on a node started after the history aged out the whole board: a node that has it answers its request', async () => {
    const history = { size: 1000, ttlMs: 300 };
    const a = await startNode({}, history);
    const ann = await CanvasClient.join(a, 'Ann');
    for (let i = 0; i < 3; i++) ann.stroke(500 + i * 10);
    const board = await ann.drawingWhere(finished(3), 'three strokes on A');
    // Nothing happens on the board for longer than the history's age: the log holds nothing a node can replay.
    await new Promise((resolve) => setTimeout(resolve, 3 * history.ttlMs));
    const b = await startNode({}, history);
    const bob = await CanvasClient.join(b, 'Bob');
    expect(bob.drawing()).toEqual(board);
  });

  it('gives a newcomer on a third node, started later, the whole board from a checkpoint and the log after it', async () => {
    // A history of 20 messages cannot rebuild 30 strokes: the newcomer's node needs a checkpoint.
    const history = { size: 20, ttlMs: 60_000 };
    const options = { checkpointEvery: 10 };
    const a = await startNode(options, history);
    const b = await startNode(options, history);
    const ann = await CanvasClient.join(a, 'Ann');
    const bob = await CanvasClient.join(b, 'Bob');
    for (let i = 0; i < 15; i++) {
      ann.stroke(1000 + i * 10);
      bob.stroke(2000 + i * 10);
      // One stroke each at a time, so that both keep well under the flood limit.
      await ann.drawingWhere(finished(2 * (i + 1)), `stroke pair ${i + 1} on A`);
      await bob.drawingWhere(finished(2 * (i + 1)), `stroke pair ${i + 1} on B`);
    }
    ann.send({ type: 'undo' });
    await bob.until((m) => m.type === 'stroke-undone', 'the undo on B');
    const board = await bob.drawingWhere(finished(29), 'the undo on B');
    expect(await ann.drawingWhere(finished(29), 'the undo on A')).toEqual(board);

    // The log itself no longer reaches back to its start: only a checkpoint can give the whole board.
    const logLength = Number(await redis.command('HGET', 'sockeye:{canvas/drawing}:meta', 'o'));
    expect(await redis.command('XLEN', 'sockeye:{canvas/drawing}:history')).toBe(20);
    expect(logLength).toBeGreaterThan(20);
    // Checkpoints live in the log itself (first byte 0x03), so they share its bounded history.
    const entries = (await redis.command('XRANGE', 'sockeye:{canvas/drawing}:history', '-', '+')) as [string, string[]][];
    const payloads = entries.map(([, fields]) => fields[fields.indexOf('d') + 1]!);
    expect(payloads.some((payload) => payload.charCodeAt(0) === 0x03)).toBe(true);

    const c = await startNode(options, history);
    const cid = await CanvasClient.join(c, 'Cid');
    expect(cid.drawing()).toEqual(board);
    const snapshot = cid.received.find((m): m is Of<'snapshot'> => m.type === 'snapshot')!;
    expect(snapshot.visitors.map((v) => v.name).sort()).toEqual(['Ann', 'Bob', 'Cid']);

    // And it goes on with the others: a stroke on C reaches A and B with the next id.
    cid.stroke(3000);
    const onA = await ann.drawingWhere(finished(30), 'Cid’s stroke on A');
    expect(onA.at(-1)).toMatchObject({ visitor: cid.id });
    expect(onA.at(-1)!.id).toBeGreaterThan(board.at(-1)!.id);
    expect(await bob.drawingWhere(finished(30), 'Cid’s stroke on B')).toEqual(onA);
    expect(await cid.drawingWhere(finished(30), 'Cid’s stroke on C')).toEqual(onA);
  });
});
