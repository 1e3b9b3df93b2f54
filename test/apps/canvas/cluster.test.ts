import { afterEach, describe, expect, it } from 'vitest';
import { Board } from '../../../src/apps/canvas/board.js';
import { CanvasCluster, type ClusterOptions } from '../../../src/apps/canvas/cluster.js';
import { encodeBatch } from '../../../src/apps/canvas/log-codec.js';
import { createLogger } from '../../../src/apps/host/log.js';
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
  const cluster = new CanvasCluster(
    hub,
    board,
    createLogger('info', (line) => lines.push(line)),
    () => false,
    options,
  );
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

  it('without a checkpoint in the history, asks for one, and a node that has the drawing answers', async () => {
    const hub = new PubSub({ broker: new MemoryBroker({ history: { size: 8, ttlMs: 60_000 } }) });
    const a = await node(hub, { checkpointEvery: 1000 });
    const ann = await visitor(a, 'Ann');
    for (let i = 0; i < 25; i++) dot(a, ann, i);
    const lines: string[] = [];
    const c = await node(hub, { checkpointEvery: 1000 }, lines);
    expect(c.board.drawing.strokeCount).toBe(25);
    expect(c.board.drawingState()).toEqual(a.board.drawingState());
    expect(lines.filter((line) => line.includes('canvas:'))).toEqual([]);
    dot(c, ann, 99);
    expect(c.board.drawingState()).toEqual(a.board.drawingState());
  });

  it('with nobody to answer, waits `checkpointWaitMs`, shows what the history holds and says so', async () => {
    const hub = new PubSub({ broker: new MemoryBroker({ history: { size: 8, ttlMs: 60_000 } }) });
    const a = await node(hub, { checkpointEvery: 1000 });
    const ann = await visitor(a, 'Ann');
    for (let i = 0; i < 25; i++) dot(a, ann, i);
    a.cluster.stop();
    const lines: string[] = [];
    const c = await node(hub, { checkpointEvery: 1000, checkpointWaitMs: 50 }, lines);
    expect(c.board.drawing.strokeCount).toBeLessThan(25);
    expect(lines.some((line) => line.includes('no checkpoint of the drawing could be had'))).toBe(true);
  });

  it('does not bring back a visitor whose departure came while the list of visitors was on its way', async () => {
    const hub = new PubSub({ broker: new MemoryBroker() });
    const a = await node(hub);
    const ann = await visitor(a, 'Ann');
    const bob = await visitor(a, 'Bob');
    // The list is read before Ann leaves and arrives after her departure's event.
    const presence = hub.presence;
    const members = presence.members.bind(presence);
    presence.members = async (topic) => {
      const listed = await members(topic);
      a.cluster.left(ann);
      return listed;
    };
    const c = await node(hub);
    expect(c.board.has(bob)).toBe(true);
    expect(c.board.has(ann)).toBe(false);
  });

  it('reports a batch number skipped by a node (part of the log missed here), and a rebuild gives the others’ drawing', async () => {
    const hub = new PubSub({ broker: new MemoryBroker() });
    const a = await node(hub);
    let gaps = 0;
    a.cluster.onGap = () => gaps++;
    const batch = (seq: number, x: number): Uint8Array =>
      encodeBatch({
        node: 'elsewhere',
        seq,
        checkpoint: false,
        request: false,
        commands: [
          { op: 'begin', visitor: 9, colour: 0, width: 1, x, y: x },
          { op: 'end', visitor: 9 },
        ],
      });
    await hub.publish('canvas/drawing', batch(1, 1));
    await hub.publish('canvas/drawing', batch(2, 2));
    expect(gaps).toBe(0);
    // Batch 3 went to the log while this node was not listening: it only sees 4.
    a.cluster.stop();
    await hub.publish('canvas/drawing', batch(3, 3));
    const b = await node(hub);
    b.cluster.onGap = () => gaps++;
    await hub.publish('canvas/drawing', batch(4, 4));
    expect(gaps).toBe(0);
    const rebuilt = b.board.drawingState();
    expect(rebuilt.strokes.map((stroke) => stroke.points[0])).toEqual([1, 2, 3, 4]);
    b.cluster.stop();
    // A node that missed batch 3 says so at batch 4; starting again gives it the whole log.
    const c = new Board();
    const lines: string[] = [];
    const missing = new CanvasCluster(
      hub,
      c,
      createLogger('info', (line) => lines.push(line)),
      () => false,
    );
    clusters.push(missing);
    missing.onGap = () => gaps++;
    await missing.start();
    await hub.publish('canvas/drawing', batch(6, 6));
    expect(gaps).toBe(1);
    expect(lines.some((line) => line.includes('batches 5..5 of a node are missing'))).toBe(true);
    await missing.start();
    expect(c.drawingState().strokes.map((stroke) => stroke.points[0])).toEqual([1, 2, 3, 4, 6]);
  });
});
