import { prepareFrame, type PreparedFrame } from '../../protocol/protocol.js';
import type { Board } from './board.js';
import { encodeServerMessage, PROTOCOL_VERSION, versionOf, type ServerMessage } from './wire/codec.js';

/**
 * Delivery of the board's batches to the visitors' connections, once per
 * tick, without ever queueing without bound for a client that reads slowly.
 *
 * Each tick the board's batch is encoded and framed once, and the same
 * frames go to every client that is keeping up. A client with more than
 * `maxBuffered` bytes still waiting to be sent is skipped, and remembers
 * what it missed:
 *
 * - only pointer positions (`pointers-behind`): positions are state, not
 *   history, so nothing is kept; once it has caught up it gets one
 *   `pointers` message with every pointer's latest position.
 * - anything else, strokes above all (`behind`): strokes are drawing
 *   content and must not be lost, but neither are they queued for it; once
 *   it has caught up it gets a `snapshot` of everyone and the whole drawing
 *   (bounded by the drawing's limits), which replaces what it held.
 *
 * A newcomer (`fresh`) gets a snapshot at its first tick, after that tick's
 * batch went to the others, so it holds exactly what they hold. What waits
 * for one client is thus at most `maxBuffered`, plus one snapshot, plus one
 * tick's batch.
 *
 * A client that said hello in an older protocol version never receives a
 * message type it does not know: a batch holding one (an undo or a clear,
 * for a version 1 client) reaches it as a snapshot instead, taken after the
 * batch, so it holds what the others hold. Snapshots have the same format in
 * every version.
 */
export interface Peer {
  /** Bytes accepted for sending and not yet handed to the operating system. */
  readonly bufferedAmount: number;
  sendPrepared(frame: PreparedFrame): unknown;
}

export type PeerSync = 'fresh' | 'current' | 'pointers-behind' | 'behind';

export interface FanoutStats {
  ticks: number;
  /** Frames handed to clients. */
  frames: number;
  /** Times a client was skipped at a tick because it had too much waiting. */
  skipped: number;
  /** Snapshots sent, to newcomers and to clients that fell behind. */
  snapshots: number;
  /** Snapshots sent to clients that had fallen behind and missed strokes or arrivals. */
  resyncs: number;
  /** `pointers` catch-ups sent to clients that had missed only positions. */
  catchUps: number;
  /**
   * Batches that held messages newer than a client's protocol version, so
   * that client was marked for a snapshot instead (sent at once, or once it
   * reads again; counted in `resyncs` when sent).
   */
  versionResyncs: number;
}

/** Default for `maxBuffered`: a client with more than this waiting is skipped. */
export const DEFAULT_MAX_BUFFERED = 64 * 1024;

export class Fanout<P extends Peer> {
  readonly stats: FanoutStats = { ticks: 0, frames: 0, skipped: 0, snapshots: 0, resyncs: 0, catchUps: 0, versionResyncs: 0 };
  private readonly peers = new Map<P, PeerSync>();
  /** The protocol version of the peers that said hello in an older one than PROTOCOL_VERSION. */
  private readonly older = new Map<P, number>();

  constructor(readonly maxBuffered: number = DEFAULT_MAX_BUFFERED) {}

  get size(): number {
    return this.peers.size;
  }

  /** A client that joined, speaking protocol `version`: it gets a snapshot at the next tick. */
  add(peer: P, version: number = PROTOCOL_VERSION): void {
    this.peers.set(peer, 'fresh');
    if (version < PROTOCOL_VERSION) this.older.set(peer, version);
  }

  remove(peer: P): boolean {
    this.older.delete(peer);
    return this.peers.delete(peer);
  }

  /** Every client gets a snapshot at the next tick (or once it reads again): the board was replaced. */
  resyncAll(): void {
    for (const [peer, sync] of this.peers) if (sync !== 'fresh') this.peers.set(peer, 'behind');
  }

  sync(peer: P): PeerSync | undefined {
    return this.peers.get(peer);
  }

  /** Take the board's batch and give every client what it needs (see the class comment). */
  tick(board: Board): void {
    this.stats.ticks++;
    const batch = board.flush();
    if (this.peers.size === 0) return;
    const frames = batch.map(frame);
    // Everything but the positions: what a client that missed only positions still needs.
    const content: PreparedFrame[] = [];
    batch.forEach((message, index) => {
      if (message.type !== 'pointers') content.push(frames[index]!);
    });
    let snapshot: PreparedFrame | null = null;
    let pointers: PreparedFrame | null | undefined;
    const newest = batch.reduce((version, message) => Math.max(version, versionOf(message)), 1);

    for (const [peer, current] of this.peers) {
      const over = peer.bufferedAmount > this.maxBuffered;
      let sync = current;
      if (newest > (this.older.get(peer) ?? PROTOCOL_VERSION) && (sync === 'current' || sync === 'pointers-behind')) {
        // The batch holds a type this client does not know: a snapshot takes its place.
        sync = 'behind';
        this.peers.set(peer, sync);
        this.stats.versionResyncs++;
      }
      switch (sync) {
        case 'current':
          if (frames.length === 0) break;
          if (over) {
            this.stats.skipped++;
            this.peers.set(peer, content.length > 0 ? 'behind' : 'pointers-behind');
          } else {
            this.send(peer, frames);
          }
          break;
        case 'pointers-behind':
          if (over) {
            this.stats.skipped++;
            if (content.length > 0) this.peers.set(peer, 'behind');
            break;
          }
          this.send(peer, content);
          if (pointers === undefined) {
            const latest = board.pointers();
            pointers = latest === null ? null : frame(latest);
          }
          if (pointers !== null) this.send(peer, [pointers]);
          this.stats.catchUps++;
          this.peers.set(peer, 'current');
          break;
        case 'behind':
        case 'fresh':
          if (over) {
            if (frames.length > 0) this.stats.skipped++;
            break;
          }
          snapshot ??= frame(board.snapshot());
          this.send(peer, [snapshot]);
          this.stats.snapshots++;
          if (sync === 'behind') this.stats.resyncs++;
          this.peers.set(peer, 'current');
          break;
      }
    }
  }

  private send(peer: P, frames: readonly PreparedFrame[]): void {
    for (const prepared of frames) peer.sendPrepared(prepared);
    this.stats.frames += frames.length;
  }
}

function frame(message: ServerMessage): PreparedFrame {
  return prepareFrame(encodeServerMessage(message), true);
}
