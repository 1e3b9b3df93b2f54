import { afterEach, describe, expect, it } from 'vitest';
import { Board } from '../../../src/apps/canvas/board.js';
import { CanvasCluster, type ClusterOptions } from '../../../src/apps/canvas/cluster.js';
import { decodeCheckpoint } from '../../../src/apps/canvas/log-codec.js';
import { createLogger } from '../../../src/apps/log.js';
import { TopicListener } from '../../../src/apps/topic-listener.js';
import { MemoryBroker } from '../../../src/pubsub/memory-broker.js';
import { PubSub } from '../../../src/pubsub/pubsub.js';

/**
 * CanvasCluster without sockets: several "nodes" (a board and a cluster
 * each) on one hub over the in-memory broker, which has the same offsets,
 * history and presence as Redis's, and delivers within `publish`.
 */

const clusters: CanvasCluster[] = [];

afterEach(() => {
  for (const cluster of clusters.splice(0)) cluster.stop();
});

async function node(hub: PubSub, options: ClusterOptions = {}, lines: string[] = []): Promise<{ board: Board; cluster: CanvasCluster }> {
  const board = new Board();
  const cluster = new CanvasCluster(hub, board, createLogger('info', (line) => lines.push(line)), () => false, options);
  clusters.push(cluster);
  await cluster.start();
  return { board, cluster };
}

/** A visitor of `at` draws a one-point stroke at (x, x) and the node publishes it (one batch). */
function dot(at: { cluster: CanvasCluster }, visitor: number, x: number): void {
  at.cluster.outbox.begin(visitor, 0, 1, x, x);
  at.cluster.outbox.end(visitor);
  at.cluster.publish();
}

async function visitor(at: { board: Board; cluster: CanvasCluster }, name: string): Promise<number> {
  const id = await at.cluster.allocateId();
  at.board.join(name, id);
  at.cluster.joined(id, name);
  return id;
}

describe('CanvasCluster', () => {
  it('gives every node the same drawing, stroke ids included, and the visitors of the others', async () => {
    const hub = new PubSub({ broker: new MemoryBroker() });
    const a = await node(hub);
    const b = await node(hub);
    const ann = await visitor(a, 'Ann');
    const bob = await visitor(b, 'Bob');
    expect(a.board.nameOf(bob)).toBe('Bob');
    expect(b.board.nameOf(ann)).toBe('Ann');
    dot(a, ann, 1);
    dot(b, bob, 2);
    dot(a, ann, 3);
    a.cluster.outbox.undo(ann, a.board.drawing.countOf(ann));
    a.cluster.publish();
    expect(a.board.drawingState()).toEqual(b.board.drawingState());
    expect(a.board.drawingState().strokes.map((s) => [s.id, s.visitor])).toEqual([
      [1, ann],
      [2, bob],
    ]);
  });

  it('starts a node from the latest checkpoint when the log’s history no longer reaches its start', async () => {
    const hub = new PubSub({ broker: new MemoryBroker({ history: { size: 8, ttlMs: 60_000 } }) });
    const a = await node(hub, { checkpointEvery: 4 });
    const ann = await visitor(a, 'Ann');
    for (let i = 0; i < 25; i++) dot(a, ann, i);
    const lines: string[] = [];
    const c = await node(hub, { checkpointEvery: 4 }, lines);
    expect(c.board.drawingState()).toEqual(a.board.drawingState());
    expect(c.board.drawing.strokeCount).toBe(25);
    expect(lines.filter((line) => line.includes('canvas:'))).toEqual([]);
    // Both go on alike: the next stroke gets the same id on both.
    dot(c, ann, 99);
    expect(c.board.drawingState()).toEqual(a.board.drawingState());
  });

  it('without a checkpoint the history reaches back to, starts from what the history holds and says so', async () => {
    const hub = new PubSub({ broker: new MemoryBroker({ history: { size: 8, ttlMs: 60_000 } }) });
    const a = await node(hub, { checkpointEvery: 1000 });
    const ann = await visitor(a, 'Ann');
    for (let i = 0; i < 25; i++) dot(a, ann, i);
    const lines: string[] = [];
    const c = await node(hub, { checkpointEvery: 1000 }, lines);
    expect(c.board.drawing.strokeCount).toBeLessThan(25);
    expect(lines.some((line) => line.includes('holds no checkpoint'))).toBe(true);
  });

  it('asks for a checkpoint when a drawing has gone without one for `checkpointRefreshMs`', async () => {
    const hub = new PubSub({ broker: new MemoryBroker() });
    const a = await node(hub, { checkpointEvery: 1000, checkpointRefreshMs: 40 });
    const ann = await visitor(a, 'Ann');
    dot(a, ann, 7);
    const checkpoints: number[] = [];
    const watcher = new TopicListener(
      hub,
      (data) => {
        const checkpoint = decodeCheckpoint(data);
        if (checkpoint !== null) checkpoints.push(checkpoint.strokes.length);
      },
      (error) => {
        throw error;
      },
    );
    watcher.listen('canvas/drawing');
    const deadline = Date.now() + 5000;
    while (checkpoints.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    watcher.close();
    expect(checkpoints[0]).toBe(1);
  });
});
