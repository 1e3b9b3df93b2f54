import type { HistoryOptions, StreamPosition } from '../../pubsub/broker.js';
import type { PresenceEvent } from '../../pubsub/presence.js';
import type { PubSub } from '../../pubsub/pubsub.js';
import type { PointerPosition } from './wire/codec.js';
import type { Logger } from '../host/log.js';
import { TopicListener } from '../topic-listener.js';
import type { Board } from './board.js';
import {
  decodeBatch,
  decodeCheckpoint,
  decodePointers,
  encodeBatch,
  encodeCheckpoint,
  encodePointers,
  type Checkpoint,
  type DrawingBatch,
} from './log-codec.js';
import { Outbox } from './outbox.js';

/**
 * Keeps this node's board in step with every other node's, through the
 * hub's topics (PROTOCOL.md, "Across several nodes"). With the in-memory
 * broker the "cluster" is this process and every publish comes back
 * before `publish` returns, so one process behaves as it always did.
 *
 * - **The drawing is a log**: each node publishes its visitors' drawing
 *   commands once per tick, as one batch, on `DRAWING_TOPIC`; every node
 *   applies every batch in offset order to its board. Stroke ids are given
 *   as batches are applied, an undo takes "the visitor's latest stroke"
 *   and a clear "every stroke" at that point of the log, and the size
 *   limits trim at the same points: every node holds the same drawing.
 * - **Checkpoints** bound what a node that starts must read: every
 *   `checkpointEvery` batches of the log (counted alike by every node),
 *   the node whose batch it is publishes its drawing as it stood right
 *   after that batch, with the batch's position, into the log itself. A
 *   node that starts reads the log's recent history, loads the latest
 *   checkpoint in it and applies the batches after the checkpoint's
 *   position. Kept in the log, checkpoints share its bounded history: a
 *   few of them at most, never a topic of their own that grows. When the
 *   history holds none it reaches back to (a quiet board whose history
 *   aged out, a broker that lost its data), the starting node asks: its
 *   batch carries a request, a node that holds the drawing answers with a
 *   batch marked as a checkpoint (after a random delay, unless another
 *   answered first), and the starting node waits for that checkpoint
 *   (`checkpointWaitMs`). A quiet board thus costs nothing.
 * - **Pointers** are ephemeral: positions that moved, once per tick, on
 *   `POINTER_TOPIC`, which needs no history.
 * - **Visitors** are presence entries of `VISITOR_TOPIC` (id, name), so
 *   a dead node's visitors expire with its entries. Visitor ids are the
 *   offsets of `VISITOR_ID_TOPIC`: unique across nodes, counting from 1.
 */
export const DRAWING_TOPIC = 'canvas/drawing';
export const POINTER_TOPIC = 'canvas/pointers';
export const VISITOR_TOPIC = 'canvas/visitors';
export const VISITOR_ID_TOPIC = 'canvas/visitor-ids';

/**
 * The history the canvas asks its host to keep for each of its topics
 * (`App.topicHistory`; PROTOCOL.md): the drawing's log comfortably more
 * than three checkpoint intervals; pointers and id allocation none (their
 * offsets are all that is used).
 */
export const CANVAS_HISTORY: Readonly<Record<string, HistoryOptions>> = {
  [DRAWING_TOPIC]: { size: 1000, ttlMs: 10 * 60_000 },
  [POINTER_TOPIC]: { size: 0, ttlMs: 0 },
  [VISITOR_ID_TOPIC]: { size: 0, ttlMs: 0 },
};

export interface ClusterOptions {
  /**
   * Batches of the log between two checkpoints. Default 200 (about 7 s of
   * one node drawing at 30 ticks a second): keep it well under the drawing
   * topic's history size, so that a node that starts finds a checkpoint.
   */
  checkpointEvery?: number;
  /**
   * How long a node that starts waits for the checkpoint it asked for when
   * the history holds none it can use; past it, it shows what the history
   * holds. Default 3000 ms.
   */
  checkpointWaitMs?: number;
}

/**
 * How far back a node that starts reads the drawing's log, in messages,
 * largest first, halving (see `catchUp`): the first that the history
 * holds is at least half of what it holds, so a checkpoint is in it as
 * long as checkpoints come more often than every third of the history.
 */
const CATCH_UP_ATTEMPTS: readonly number[] = Array.from({ length: 10 }, (_, i) => 4096 >> i);
/** Answers to a request for a checkpoint are spread over this many milliseconds (see `scheduleAnswer`). */
const ANSWER_SPREAD_MS = 200;
/** Nodes whose batch numbers are followed at once (see `checkSequence`). */
const MAX_NODES_TRACKED = 256;
/** Own batch positions remembered until their checkpoint is captured (a few ticks' worth). */
const KEPT_POSITIONS = 64;
/** Allocations tried for a visitor id before giving up (only after the broker lost its data do ids repeat). */
const MAX_ID_ATTEMPTS = 300;

export class CanvasCluster {
  readonly outbox: Outbox;
  /** This node's name in its batches: random, for this run. */
  readonly node = globalThis.crypto.randomUUID();
  private readonly listener: TopicListener;
  private readonly checkpointEvery: number;
  private readonly waitMs: number;
  private seq = 0;
  /** Log batches applied since the last checkpoint: counted alike by every node. */
  private sinceCheckpoint = 0;
  /** An answer to another node's request for a checkpoint, waiting for its random delay. */
  private answer: NodeJS.Timeout | null = null;
  /** While starting and waiting for a checkpoint: called with each one that arrives. */
  private onCheckpoint: (() => void) | null = null;
  /** Own batches: their positions once stored, and the drawings captured after them. */
  private readonly positions = new Map<number, StreamPosition>();
  private readonly captured = new Map<number, Omit<Checkpoint, 'position'>>();
  /** Positions of this node's visitors that moved since the last tick. */
  private readonly moved = new Map<number, PointerPosition>();
  private stopWatching: (() => void) | null = null;
  private stopped = false;
  /** The last batch number seen from each node (see `checkSequence`). */
  private readonly lastSeq = new Map<string, number>();
  /** Set by the owner: part of the log may have been missed; `start()` again rebuilds the board. */
  onGap: (() => void) | null = null;
  /** While `start()` waits for the list of visitors: the ids that left meanwhile. */
  private departedWhileListing: Set<string> | null = null;
  /** While starting: the log's messages read so far (see `catchUp`); null once live. */
  private loading: Uint8Array[] | null = null;

  constructor(
    private readonly pubsub: PubSub,
    private readonly board: Board,
    private readonly log: Logger,
    /** True while this node has no visitor to tell: what the board announces is then dropped. */
    private readonly idle: () => boolean,
    options: ClusterOptions = {},
  ) {
    this.outbox = new Outbox(board.drawing.limits.maxStrokePoints);
    this.checkpointEvery = options.checkpointEvery ?? 200;
    this.waitMs = options.checkpointWaitMs ?? 3000;
    this.listener = new TopicListener(
      pubsub,
      (data) => this.receive(data),
      (error) => this.report('applying a message', error),
    );
  }

  /**
   * Join the cluster: the visitors present, the latest checkpoint and the
   * log after it, then live. Resolves once the board holds the drawing
   * (as far as the topics' history allows; a hole is logged).
   */
  async start(): Promise<void> {
    // Another attempt after a failed one starts from scratch.
    this.stopWatching?.();
    this.listener.close();
    this.loading = null;
    this.lastSeq.clear();
    this.stopWatching = this.pubsub.presence.watch(VISITOR_TOPIC, (event) => this.onPresence(event));
    // Events come on one connection and the list on another: a departure announced while the list
    // was on its way may be in it still, and must not bring that visitor back.
    const departed = new Set<string>();
    this.departedWhileListing = departed;
    try {
      for (const member of await this.pubsub.presence.members(VISITOR_TOPIC)) {
        if (!departed.has(member.id)) this.onPresence({ type: 'join', topic: VISITOR_TOPIC, member });
      }
    } finally {
      this.departedWhileListing = null;
    }
    if (this.stopped) return;
    this.listener.listen(POINTER_TOPIC);
    await this.catchUp();
    // What was applied while catching up goes to nobody: clients are given snapshots.
    this.board.flush();
  }

  /**
   * Read the log's recent history, then go on live: the latest checkpoint
   * in it and the batches after its position, or, when the history reaches
   * back to the log's start, every batch. How much history the broker keeps
   * is a deployment setting, so the read asks for less each time the
   * history does not reach back far enough (nothing is lost between two
   * attempts: each replays from further back than the live messages since).
   */
  private async catchUp(): Promise<void> {
    // The log's end, from a batch of this node's (empty unless commands wait): the hub's `live()`
    // gives the position at which this process began to receive the topic, which may be long past.
    const now = await this.publishBatch({ checkpoint: false, request: false });
    // From the start of the log if it is short, then less and less.
    const attempts = [now.offset, ...CATCH_UP_ATTEMPTS.filter((back) => back < now.offset)];
    for (const back of attempts) {
      if (this.stopped) return;
      const since = { epoch: now.epoch, offset: now.offset - back };
      const loading: Uint8Array[] = [];
      this.loading = loading;
      const result = await this.listener.listenSince(DRAWING_TOPIC, since);
      if (result === null) return;
      if (!result.recovered && back !== attempts.at(-1)) {
        this.listener.unlisten(DRAWING_TOPIC);
        continue;
      }
      // Replayed, then live, without a hole: message i is at offset since + 1 + i.
      const first = result.recovered ? since.offset + 1 : result.position.offset + 1;
      const fromStart = since.offset === 0 && result.recovered;
      if (!fromStart && findCheckpoint(loading, first) === null) await this.askForCheckpoint(loading, first);
      // Synchronous from here to live.
      this.load(loading, first, fromStart);
      return;
    }
  }

  /**
   * Ask the nodes that hold the drawing for a checkpoint, and wait until
   * one arrives that `loading` reaches back to (or `checkpointWaitMs`).
   */
  private async askForCheckpoint(loading: readonly Uint8Array[], first: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.onCheckpoint = null;
        resolve();
      };
      const timer = setTimeout(done, this.waitMs);
      timer.unref();
      this.onCheckpoint = () => {
        if (findCheckpoint(loading, first) !== null) done();
      };
      this.publishBatch({ checkpoint: false, request: true }).catch(done);
    });
  }

  /**
   * Build the board from the log's messages read at start (the first at
   * offset `first`): from the latest checkpoint whose position they reach
   * back to, or from nothing when they start at the log's beginning. Then
   * live delivery applies messages as they come.
   */
  private load(messages: readonly Uint8Array[], first: number, fromStart: boolean): void {
    this.loading = null;
    const found = findCheckpoint(messages, first);
    if (found === null && !fromStart) {
      this.log.info(
        'canvas: no checkpoint of the drawing could be had (none in the history, no node answered): this node shows what the history holds',
      );
    }
    this.board.restoreDrawing(found?.checkpoint.strokes ?? [], found?.checkpoint.nextStrokeId ?? 1);
    this.sinceCheckpoint = 0;
    for (const data of messages.slice(found?.start ?? 0)) this.receive(data);
  }

  stop(): void {
    this.stopped = true;
    this.stopWatching?.();
    this.listener.close();
    this.cancelAnswer();
  }

  /** A visitor id no visitor here has: the next offset of `VISITOR_ID_TOPIC`. */
  async allocateId(): Promise<number> {
    for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
      const { offset } = await this.pubsub.publish(VISITOR_ID_TOPIC, this.node);
      // Ids repeat only after the store lost its data (a new epoch): skip those still in use.
      if (offset >= 1 && offset <= 0xffffffff && !this.board.has(offset)) return offset;
    }
    throw new Error('no free visitor id');
  }

  /** One of this node's visitors arrived (already on the board): it is announced to the other nodes. */
  joined(id: number, name: string): void {
    this.outbox.add(id);
    this.announce(id, name);
  }

  /** One of this node's visitors changed its name (already on the board). */
  renamed(id: number, name: string): void {
    this.announce(id, name);
  }

  /** One of this node's visitors moved its pointer (already on the board). */
  move(id: number, x: number, y: number): void {
    this.moved.set(id, { id, x, y });
  }

  /**
   * One of this node's visitors left: its open stroke is ended through the
   * log (published now, so that with the in-memory broker the end comes
   * before the departure, as it always did), then it leaves the board and
   * the presence.
   */
  left(id: number): void {
    this.outbox.remove(id);
    this.moved.delete(id);
    this.publish();
    this.board.leave(id);
    this.pubsub.presence.leave(VISITOR_TOPIC, String(id)).catch((error: unknown) => this.report('leaving the presence', error));
  }

  /** Publish what this node's visitors did since the last tick: one batch of drawing commands, one of positions. */
  publish(): void {
    if (this.outbox.size > 0) this.publishBatch({ checkpoint: false, request: false }).catch(ignore);
    if (this.moved.size > 0) {
      const pointers = [...this.moved.values()];
      this.moved.clear();
      this.pubsub.publish(POINTER_TOPIC, encodePointers(pointers)).catch((error: unknown) => this.report('publishing pointers', error));
    }
  }

  /**
   * Publish this node's waiting commands as one batch, with the given
   * flags; resolves with its position once stored (its failure is logged
   * here: the commands are lost).
   */
  private publishBatch(flags: { checkpoint: boolean; request: boolean }): Promise<StreamPosition> {
    const seq = ++this.seq;
    const batch: DrawingBatch = { node: this.node, seq, ...flags, commands: this.outbox.take() };
    const stored = this.pubsub.publish(DRAWING_TOPIC, encodeBatch(batch));
    stored.then(
      (position) => {
        const state = this.captured.get(seq);
        if (state !== undefined) {
          this.captured.delete(seq);
          this.publishCheckpoint({ ...state, position });
          return;
        }
        this.positions.set(seq, position);
        if (this.positions.size > KEPT_POSITIONS) this.positions.delete(this.positions.keys().next().value!);
      },
      (error: unknown) => this.report('publishing drawing commands (they are lost)', error),
    );
    return stored;
  }

  private announce(id: number, name: string): void {
    this.pubsub.presence.join(VISITOR_TOPIC, String(id), { name }).catch((error: unknown) => this.report('joining the presence', error));
  }

  private receive(data: Uint8Array): void {
    if (this.loading !== null) {
      // Starting: kept until the history has been read (see `load`). Pointers are not kept.
      if (decodePointers(data) === null) this.loading.push(data);
      if (this.onCheckpoint !== null && decodeCheckpoint(data) !== null) this.onCheckpoint();
      return;
    }
    const batch = decodeBatch(data);
    if (batch !== null) {
      this.apply(batch);
    } else if (decodeCheckpoint(data) !== null) {
      // A node's drawing at an earlier point of the log: for nodes that start; this one has it.
    } else {
      const pointers = decodePointers(data);
      if (pointers === null) {
        this.log.info('canvas: a message on a canvas topic that is not one; ignored');
        return;
      }
      for (const { id, x, y } of pointers) {
        // This node's own visitors' positions are applied when they arrive, not when they come back.
        if (!this.outbox.has(id) && this.board.has(id)) this.board.move(id, x, y);
      }
    }
    if (this.idle()) this.board.flush();
  }

  /** One batch of the log, at its place in offset order: the same on every node. */
  private apply(batch: DrawingBatch): void {
    this.checkSequence(batch);
    const board = this.board;
    for (const command of batch.commands) {
      // The board's answers do not matter here: they were given to the client by the outbox.
      switch (command.op) {
        case 'begin':
          board.beginStroke(command.visitor, command.colour, command.width, command.x, command.y);
          break;
        case 'points':
          board.addPoints(command.visitor, command.points);
          break;
        case 'end':
          board.endStroke(command.visitor);
          break;
        case 'undo':
          board.undo(command.visitor);
          break;
        case 'clear':
          board.clear(command.visitor);
          break;
      }
      if (batch.node === this.node) this.outbox.applied(command);
    }
    this.sinceCheckpoint++;
    if (batch.request && batch.node !== this.node) this.scheduleAnswer();
    if (!batch.checkpoint && this.sinceCheckpoint < this.checkpointEvery) return;
    this.sinceCheckpoint = 0;
    // A checkpoint is on its way: an answer to a request is no longer needed.
    this.cancelAnswer();
    if (batch.node !== this.node) return;
    const state = board.drawingState();
    const position = this.positions.get(batch.seq);
    if (position !== undefined) {
      this.positions.delete(batch.seq);
      this.publishCheckpoint({ ...state, position });
    } else {
      this.captured.set(batch.seq, state);
      // Kept until the batch's position is known; a publish that failed leaves one behind, so few are kept.
      if (this.captured.size > 4) this.captured.delete(this.captured.keys().next().value!);
    }
  }

  /**
   * A node numbers its batches 1, 2, 3...: a number skipped means this node
   * may have missed part of the log (the hub reports holes it could not
   * fill, but to the process, not to the topic's listener), so its board
   * may differ from the others'. `onGap` then rebuilds it from the latest
   * checkpoint. A batch whose publish failed also leaves a number out; the
   * rebuild then finds the same board, at the cost of one read.
   */
  private checkSequence(batch: DrawingBatch): void {
    const last = this.lastSeq.get(batch.node);
    this.lastSeq.delete(batch.node);
    this.lastSeq.set(batch.node, batch.seq);
    // Nodes come and go (a new name each run): the least recently heard are forgotten.
    if (this.lastSeq.size > MAX_NODES_TRACKED) this.lastSeq.delete(this.lastSeq.keys().next().value!);
    if (last !== undefined && batch.seq !== last + 1) {
      this.log.info(`canvas: batches ${last + 1}..${batch.seq - 1} of a node are missing here: rebuilding the board`);
      this.onGap?.();
    }
  }

  private publishCheckpoint(checkpoint: Checkpoint): void {
    this.pubsub.publish(DRAWING_TOPIC, encodeCheckpoint(checkpoint)).catch((error: unknown) => this.report('publishing a checkpoint', error));
  }

  /**
   * Another node is starting and asks for a checkpoint. Every node that
   * holds the drawing may answer: each waits a random moment and answers
   * with a batch marked as a checkpoint unless one came first, so that
   * usually one answers.
   */
  private scheduleAnswer(): void {
    if (this.answer !== null || this.loading !== null || this.stopped) return;
    this.answer = setTimeout(
      () => {
        this.answer = null;
        this.publishBatch({ checkpoint: true, request: false }).catch(ignore);
      },
      Math.floor(Math.random() * ANSWER_SPREAD_MS),
    );
    this.answer.unref();
  }

  private cancelAnswer(): void {
    if (this.answer !== null) clearTimeout(this.answer);
    this.answer = null;
  }

  /** Another node's visitor arrived, was renamed or left. This node's own are applied as they happen. */
  private onPresence(event: PresenceEvent): void {
    if (event.type === 'leave') this.departedWhileListing?.add(event.id);
    const id = Number(event.type === 'join' ? event.member.id : event.id);
    if (!Number.isInteger(id) || id < 1 || id > 0xffffffff || this.outbox.has(id)) return;
    if (event.type === 'join') {
      const data = event.member.data;
      const name =
        typeof data === 'object' && data !== null && !Array.isArray(data) && typeof (data as { name?: unknown }).name === 'string' ?
          (data as { name: string }).name
        : '';
      if (this.board.has(id)) this.board.rename(id, name);
      else this.board.join(name, id);
    } else {
      this.board.leave(id);
      // Its node died or was cut off: its open stroke, if any, is ended through the log, the same for all.
      if (event.expired) {
        this.outbox.endFor(id);
        this.publish();
      }
    }
    if (this.idle()) this.board.flush();
  }

  private report(what: string, error: unknown): void {
    this.log.info(`canvas: ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The latest checkpoint among `messages` (the first at offset `first`) that
 * they reach back to: every batch after its position is among them. With
 * the index of the first message after its position.
 */
function findCheckpoint(messages: readonly Uint8Array[], first: number): { checkpoint: Checkpoint; start: number } | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    const candidate = decodeCheckpoint(messages[i]!);
    if (candidate !== null && candidate.position.offset >= first - 1 && candidate.position.offset < first + i) {
      return { checkpoint: candidate, start: candidate.position.offset - first + 1 };
    }
  }
  return null;
}

function ignore(): void {}
