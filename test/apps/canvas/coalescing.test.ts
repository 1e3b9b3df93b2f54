import { describe, expect, it } from 'vitest';
import { Board } from '../../../src/apps/canvas/board.js';
import { Fanout } from '../../../src/apps/canvas/fanout.js';
import { FakePeer } from './peer.js';

/**
 * Merging and coalescing, without sockets: the board merges what happens
 * between two ticks, and the fan-out gives each peer the batch, skips a peer
 * with too much waiting, and brings it up to date once it has caught up
 * (the latest positions, or a snapshot when it missed drawing content).
 */

const LIMIT = 1000;

/** A board, a fan-out, and `count` visitors already past their first (snapshot) tick. */
function setUp(count: number): { board: Board; fanout: Fanout<FakePeer>; ids: number[]; peers: FakePeer[] } {
  const board = new Board();
  const fanout = new Fanout<FakePeer>(LIMIT);
  const ids: number[] = [];
  const peers: FakePeer[] = [];
  for (let i = 0; i < count; i++) {
    const joined = board.join(`v${i}`);
    if (!joined.ok) throw new Error(joined.error.message);
    ids.push(joined.visitor.id);
    const peer = new FakePeer();
    fanout.add(peer);
    peers.push(peer);
  }
  fanout.tick(board);
  for (const peer of peers) {
    const first = peer.take();
    expect(first.map((message) => message.type)).toEqual(['snapshot']);
  }
  return { board, fanout, ids, peers };
}

describe('merging between ticks', () => {
  it('sends a pointer that moved a hundred times once, at its latest position', () => {
    const { board, fanout, ids, peers } = setUp(2);
    for (let i = 0; i < 100; i++) board.move(ids[0]!, i * 10, 5000 - i);
    board.move(ids[1]!, 7, 8);
    fanout.tick(board);
    expect(peers[1]!.take()).toEqual([
      {
        type: 'pointers',
        pointers: [
          { id: ids[0], x: 990, y: 4901 },
          { id: ids[1], x: 7, y: 8 },
        ],
      },
    ]);
  });

  it('sends nothing at a tick when nothing changed', () => {
    const { board, fanout, peers } = setUp(2);
    fanout.tick(board);
    fanout.tick(board);
    expect(peers[0]!.take()).toEqual([]);
  });

  it('loses no point of a stroke: points from many messages go out together, in order, between begin and end', () => {
    const { board, fanout, ids, peers } = setUp(2);
    board.beginStroke(ids[0]!, 0xff0000, 3, 0, 0);
    for (let i = 1; i <= 20; i++) board.addPoints(ids[0]!, [i, i * 2]);
    fanout.tick(board);
    const expectedPoints = Array.from({ length: 20 }, (_, k) => [k + 1, (k + 1) * 2]).flat();
    const first = peers[1]!.take();
    expect(first).toEqual([
      { type: 'stroke-begin', id: 1, visitor: ids[0], colour: 0xff0000, width: 3, x: 0, y: 0 },
      { type: 'stroke-points', id: 1, points: expectedPoints },
    ]);
    board.addPoints(ids[0]!, [100, 100, 101, 101]);
    board.endStroke(ids[0]!);
    board.beginStroke(ids[0]!, 0x00ff00, 4, 9, 9);
    board.addPoints(ids[0]!, [10, 10]);
    board.endStroke(ids[0]!);
    fanout.tick(board);
    expect(peers[1]!.take()).toEqual([
      { type: 'stroke-points', id: 1, points: [100, 100, 101, 101] },
      { type: 'stroke-end', id: 1 },
      { type: 'stroke-begin', id: 2, visitor: ids[0], colour: 0x00ff00, width: 4, x: 9, y: 9 },
      { type: 'stroke-points', id: 2, points: [10, 10] },
      { type: 'stroke-end', id: 2 },
    ]);
  });

  it('frames a batch once: every peer that keeps up is handed the very same frames', () => {
    const { board, fanout, ids, peers } = setUp(3);
    board.move(ids[0]!, 1, 2);
    board.beginStroke(ids[1]!, 0, 1, 3, 4);
    fanout.tick(board);
    expect(peers[0]!.frames.length).toBe(3);
    for (const peer of peers.slice(1)) {
      expect(peer.frames.length).toBe(3);
      peer.frames.slice(1).forEach((frame, index) => expect(frame).toBe(peers[0]!.frames[index + 1]));
    }
  });

  it('announces a departure, and forgets a pointer that moved and left within the same tick', () => {
    const { board, fanout, ids, peers } = setUp(2);
    board.move(ids[0]!, 1, 1);
    board.leave(ids[0]!);
    fanout.remove(peers[0]!);
    fanout.tick(board);
    expect(peers[1]!.take()).toEqual([{ type: 'leave', id: ids[0] }]);
  });
});

describe('newcomers', () => {
  it('gives a newcomer a snapshot, after the batch that went to the others, so it holds exactly what they hold', () => {
    const { board, fanout, ids, peers } = setUp(1);
    board.move(ids[0]!, 100, 200);
    board.beginStroke(ids[0]!, 0x123456, 2, 10, 10);
    board.addPoints(ids[0]!, [20, 20]);
    fanout.tick(board);
    peers[0]!.take();

    board.addPoints(ids[0]!, [30, 30]);
    const joined = board.join('late');
    if (!joined.ok) throw new Error('join failed');
    const late = new FakePeer();
    fanout.add(late);
    expect(fanout.sync(late)).toBe('fresh');
    fanout.tick(board);

    // The others get the arrival and the new point; the newcomer only the snapshot, which has both.
    expect(peers[0]!.take().map((message) => message.type)).toEqual(['join', 'stroke-points']);
    expect(late.take()).toEqual([
      {
        type: 'snapshot',
        visitors: [
          { id: ids[0], colour: expect.any(Number), name: 'v0', pointer: { x: 100, y: 200 } },
          { id: joined.visitor.id, colour: joined.visitor.colour, name: 'late', pointer: null },
        ],
        strokes: [{ id: 1, visitor: ids[0], colour: 0x123456, width: 2, open: true, points: [10, 10, 20, 20, 30, 30] }],
      },
    ]);
    expect(fanout.sync(late)).toBe('current');
    board.addPoints(ids[0]!, [40, 40]);
    fanout.tick(board);
    expect(late.take()).toEqual([{ type: 'stroke-points', id: 1, points: [40, 40] }]);
  });
});

describe('a peer that falls behind', () => {
  it('is skipped while it has too much waiting, then gets only the latest positions, not every step', () => {
    const { board, fanout, ids, peers } = setUp(3);
    const [fast, other, slow] = peers as [FakePeer, FakePeer, FakePeer];
    slow.bufferedAmount = LIMIT + 1;
    for (let step = 1; step <= 50; step++) {
      board.move(ids[0]!, step, step);
      board.move(ids[1]!, 1000 + step, 0);
      fanout.tick(board);
    }
    // The others got every batch; the slow one nothing: what waits for it does not grow.
    expect(fast.take().length).toBe(50);
    expect(other.take().length).toBe(50);
    expect(slow.frames.length).toBe(1);
    expect(fanout.sync(slow)).toBe('pointers-behind');
    expect(fanout.stats.skipped).toBe(50);

    slow.bufferedAmount = 0;
    fanout.tick(board);
    expect(slow.take()).toEqual([
      {
        type: 'pointers',
        pointers: [
          { id: ids[0], x: 50, y: 50 },
          { id: ids[1], x: 1050, y: 0 },
        ],
      },
    ]);
    expect(fanout.sync(slow)).toBe('current');
    expect(fanout.stats.catchUps).toBe(1);
    expect(fanout.stats.resyncs).toBe(0);
  });

  it('is resynced with a snapshot holding every stroke it missed, once it has caught up', () => {
    const { board, fanout, ids, peers } = setUp(2);
    const slow = peers[1]!;
    slow.bufferedAmount = LIMIT + 1;
    board.move(ids[0]!, 5, 5);
    fanout.tick(board);
    expect(fanout.sync(slow)).toBe('pointers-behind');
    board.beginStroke(ids[0]!, 0xabcdef, 6, 1, 2);
    fanout.tick(board);
    expect(fanout.sync(slow)).toBe('behind');
    board.addPoints(ids[0]!, [3, 4, 5, 6]);
    board.endStroke(ids[0]!);
    board.move(ids[0]!, 60_000, 60_001);
    fanout.tick(board);
    const waiting = slow.frames.length;
    fanout.tick(board);
    expect(slow.frames.length).toBe(waiting);

    slow.bufferedAmount = LIMIT;
    fanout.tick(board);
    expect(slow.take()).toEqual([
      {
        type: 'snapshot',
        visitors: [
          { id: ids[0], colour: expect.any(Number), name: 'v0', pointer: { x: 60_000, y: 60_001 } },
          { id: ids[1], colour: expect.any(Number), name: 'v1', pointer: null },
        ],
        strokes: [{ id: 1, visitor: ids[0], colour: 0xabcdef, width: 6, open: false, points: [1, 2, 3, 4, 5, 6] }],
      },
    ]);
    expect(fanout.stats.resyncs).toBe(1);
    expect(fanout.sync(slow)).toBe('current');
  });

  it('gives every client a snapshot of a board replaced whole (resyncAll), and a newcomer still just one', () => {
    const { board, fanout, peers } = setUp(2);
    const newcomer = new FakePeer();
    fanout.add(newcomer);
    board.restoreDrawing([{ id: 7, visitor: 3, colour: 1, width: 2, open: false, points: [9, 9] }], 8);
    fanout.resyncAll();
    fanout.tick(board);
    for (const peer of [...peers, newcomer]) {
      expect(peer.take()).toEqual([
        { type: 'snapshot', visitors: expect.any(Array), strokes: [{ id: 7, visitor: 3, colour: 1, width: 2, open: false, points: [9, 9] }] },
      ]);
    }
    expect(fanout.stats.resyncs).toBe(2);
  });

  it('catching up in a tick that also has content gets that content and then every latest position', () => {
    const { board, fanout, ids, peers } = setUp(2);
    const slow = peers[1]!;
    slow.bufferedAmount = LIMIT + 1;
    board.move(ids[0]!, 5, 5);
    fanout.tick(board);
    slow.bufferedAmount = 0;
    board.rename(ids[0]!, 'Renamed');
    board.move(ids[1]!, 9, 9);
    fanout.tick(board);
    expect(slow.take()).toEqual([
      { type: 'renamed', id: ids[0], name: 'Renamed' },
      {
        type: 'pointers',
        pointers: [
          { id: ids[0], x: 5, y: 5 },
          { id: ids[1], x: 9, y: 9 },
        ],
      },
    ]);
  });

  it('a newcomer with too much waiting gets its snapshot only once it has caught up', () => {
    const board = new Board();
    const fanout = new Fanout<FakePeer>(LIMIT);
    board.join('a');
    const peer = new FakePeer();
    peer.bufferedAmount = LIMIT + 1;
    fanout.add(peer);
    fanout.tick(board);
    expect(peer.frames.length).toBe(0);
    peer.bufferedAmount = 0;
    fanout.tick(board);
    expect(peer.take().map((message) => message.type)).toEqual(['snapshot']);
  });
});

describe('clients of an older protocol version', () => {
  it('gives a version 1 client a snapshot in place of a batch holding an undo or a clear, and the plain batch otherwise', () => {
    const board = new Board();
    const fanout = new Fanout<FakePeer>(LIMIT);
    const ids = ['new', 'old'].map((name) => {
      const joined = board.join(name);
      if (!joined.ok) throw new Error(joined.error.message);
      return joined.visitor.id;
    });
    const [current, older] = [new FakePeer(), new FakePeer()];
    fanout.add(current);
    fanout.add(older, 1);
    fanout.tick(board);
    current.take();
    older.take();

    board.beginStroke(ids[0]!, 0, 1, 5, 5);
    board.endStroke(ids[0]!);
    fanout.tick(board);
    expect(older.take()).toEqual(current.take());

    board.beginStroke(ids[1]!, 0, 1, 6, 6);
    board.undo(ids[0]!);
    board.move(ids[1]!, 1, 2);
    fanout.tick(board);
    expect(current.take().map((message) => message.type)).toEqual(['stroke-begin', 'stroke-undone', 'pointers']);
    const instead = older.take();
    expect(instead.map((message) => message.type)).toEqual(['snapshot']);
    expect(instead[0]).toEqual(board.snapshot());
    expect(board.snapshot().strokes.map((stroke) => stroke.id)).toEqual([2]);
    expect(fanout.stats.versionResyncs).toBe(1);

    // Back to batches at the next tick.
    board.clear(ids[1]!);
    fanout.tick(board);
    expect(current.take()).toEqual([{ type: 'cleared', by: ids[1] }]);
    expect(older.take()).toEqual([{ ...board.snapshot() }]);
    board.move(ids[0]!, 3, 4);
    fanout.tick(board);
    expect(older.take()).toEqual(current.take());
    expect(fanout.stats.versionResyncs).toBe(2);
  });
});
