import { UsageError } from '../protocol/errors.js';
import type { Protocol } from '../protocol/protocol.js';

/**
 * The pings of one connection: those the application sent and awaits (a
 * promise each, settled by the matching pong with its round-trip time) and
 * the heartbeat's, which only ask whether the peer is still there.
 */

/** Most application pings that may wait for their pong at once. */
const MAX_PENDING_PINGS = 32;

const EMPTY = Buffer.alloc(0);

interface PendingPing {
  payload: Buffer;
  sentAt: number;
  resolve: (rtt: number) => void;
  reject: (error: Error) => void;
}

export class PingTracker {
  private readonly core: Protocol;
  /** Application pings awaiting their pong, oldest first; null until the first. */
  private pings: PendingPing[] | null = null;
  /** A heartbeat ping went out and nothing has been received since. */
  private heartbeatPending = false;
  /** Bytes the peer had taken at the last heartbeat ping (see `heartbeat()`). */
  private heartbeatAccepted = 0;

  constructor(core: Protocol) {
    this.core = core;
  }

  /**
   * Send a ping for the application; resolves with the round-trip time in
   * milliseconds when its pong arrives. The caller has checked the payload
   * (at most 125 bytes, §5.5) and that the connection is open.
   */
  ping(payload: Buffer): Promise<number> {
    const pings = (this.pings ??= []);
    if (pings.length >= MAX_PENDING_PINGS) {
      return Promise.reject(new UsageError('WS_ERR_INVALID_ARGUMENT', `more than ${MAX_PENDING_PINGS} pings await their pong`));
    }
    return new Promise<number>((resolve, reject) => {
      pings.push({ payload, sentAt: performance.now(), resolve, reject });
      this.core.ping(payload);
    });
  }

  /**
   * A pong arrived: settle the pings it answers and return the round trip
   * of the one it matches, or undefined if it answers none of ours.
   */
  answer(payload: Buffer): number | undefined {
    const pings = this.pings;
    if (pings === null || pings.length === 0) return undefined;
    // §5.5.3: a pong may answer only the latest of several pings, so the
    // match is by payload, oldest first, and the older ones count as answered too.
    const index = pings.findIndex((p) => p.payload.equals(payload));
    if (index < 0) return undefined;
    const now = performance.now();
    const answered = pings.splice(0, index + 1);
    for (const ping of answered) ping.resolve(now - ping.sentAt);
    return now - answered[index]!.sentAt;
  }

  /** The connection closed: no pong will come for the pings still waiting. */
  abandon(): void {
    const pings = this.pings;
    this.pings = null;
    if (pings === null) return;
    for (const ping of pings) ping.reject(new UsageError('WS_ERR_NOT_OPEN', 'the connection closed before the pong'));
  }

  /**
   * Something arrived from the peer, or reading resumed after the
   * application held it paused (when nothing could arrive): the next
   * heartbeat tick starts a fresh interval instead of judging the last one.
   */
  restartHeartbeat(): void {
    this.heartbeatPending = false;
  }

  /**
   * One heartbeat tick on an open connection that is reading: ping, or
   * answer false if nothing at all (pong or otherwise) arrived since the
   * previous tick's ping and the peer should be dropped.
   *
   * `accepted` is how many bytes the peer has taken from us so far, and
   * `outputBlocked` whether reading is paused because our output is backed
   * up. Then the pong may sit behind output the peer is still reading: a
   * peer that took more bytes since the last ping is alive and kept, one
   * that took nothing is dropped like a silent one.
   */
  heartbeat(accepted: number, outputBlocked: boolean): boolean {
    if (this.heartbeatPending) {
      if (!outputBlocked || accepted <= this.heartbeatAccepted) return false;
      this.heartbeatAccepted = accepted;
      return true;
    }
    this.heartbeatPending = true;
    this.heartbeatAccepted = accepted;
    this.core.ping(EMPTY);
    return true;
  }
}
