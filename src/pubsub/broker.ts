/**
 * A broker carries published messages between the processes of a
 * deployment and keeps each topic's order and history. The hub (`PubSub`)
 * owns the local subscribers and frames each message once; the broker
 * gives every message of a topic an (epoch, offset) and delivers them to
 * this process in offset order, exactly once.
 *
 * The model (after Centrifugo's): a topic's offset grows by one per
 * publish; its epoch names one life of that sequence, so a store that lost
 * its data (a Redis restarted without persistence) starts a new epoch and
 * nobody mistakes the new offset 1 for the old one.
 */
import type { Presence } from './presence.js';

/** A place in a topic's sequence: the last message seen. Offset 0 means none yet. */
export interface StreamPosition {
  readonly epoch: string;
  readonly offset: number;
}

export interface BrokerMessage {
  readonly topic: string;
  readonly data: Uint8Array;
  readonly binary: boolean;
  /** The topic's epoch when this message was stored. */
  readonly epoch: string;
  /** 1, 2, 3 ... within the epoch, with no gap. */
  readonly offset: number;
}

/**
 * How much of a topic's past is kept for recovery and catch-up. A topic
 * whose history has `size` 0 still gets offsets (order and duplicate
 * removal work) but keeps no messages: cheaper, for data where only the
 * latest value matters (cursor positions, dashboard ticks).
 */
export interface HistoryOptions {
  /** Most messages kept. */
  readonly size: number;
  /** Messages older than this many milliseconds are not replayed. */
  readonly ttlMs: number;
}

export const DEFAULT_HISTORY: HistoryOptions = { size: 1000, ttlMs: 5 * 60_000 };

/** History per topic: a fixed setting, or a function of the topic's name (e.g. by prefix). */
export type HistoryPolicy = HistoryOptions | ((topic: string) => HistoryOptions);

export function historyFor(policy: HistoryPolicy | undefined, topic: string): HistoryOptions {
  if (policy === undefined) return DEFAULT_HISTORY;
  return typeof policy === 'function' ? policy(topic) : policy;
}

export interface PublishOptions {
  /** Default: true for bytes, false for strings. */
  binary?: boolean;
}

/**
 * Why messages cannot be replayed from a position: the topic's epoch is not
 * the one the position belongs to (its store lost its data; also said of an
 * offset past the topic's end, which no position of this epoch can be), or the history
 * no longer holds the first message after it (trimmed by size or age, or a
 * topic without history).
 */
export type RecoveryFailure = 'epoch-changed' | 'history-too-short';

/** What `history(topic, since)` found. */
export type HistoryResult =
  | {
      readonly ok: true;
      /** The topic's position now (after the last message listed). */
      readonly position: StreamPosition;
      /** Every message after `since`, in offset order. */
      readonly messages: readonly BrokerMessage[];
    }
  | { readonly ok: false; readonly reason: RecoveryFailure; readonly position: StreamPosition };

/**
 * Reported when this process's delivery of a topic has a hole it could not
 * fill: live messages were missed and the history no longer holds them, or
 * the topic's epoch changed (its store restarted without its data).
 * Delivery goes on from `position`; subscribers that need every message
 * should be given a snapshot.
 */
export interface TopicDiscontinuity {
  readonly topic: string;
  readonly reason: RecoveryFailure;
  /** The last position delivered before the hole. */
  readonly from: StreamPosition;
  /** Delivery resumes after this position. */
  readonly to: StreamPosition;
}

export type BrokerState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface BrokerStats {
  /** Publishes acknowledged as stored. */
  published: number;
  /** Messages delivered to this process (once each, whatever the number of local subscribers). */
  received: number;
  /** Duplicates received and dropped (by offset). */
  duplicates: number;
  /** Holes in the live stream filled from history. */
  gapsCaughtUp: number;
  /** Holes that could not be filled (see `TopicDiscontinuity`). */
  gapsLost: number;
  /** Publishes waiting for the store (queued while it is unreachable, or sent and not yet acknowledged). */
  queueDepth: number;
  /** Publishes that failed (queue full, store unreachable past the wait). */
  publishFailed: number;
  state: BrokerState;
}

export function emptyBrokerStats(state: BrokerState): BrokerStats {
  return {
    published: 0,
    received: 0,
    duplicates: 0,
    gapsCaughtUp: 0,
    gapsLost: 0,
    queueDepth: 0,
    publishFailed: 0,
    state,
  };
}

export interface Broker {
  /**
   * Store the message in the topic's sequence and deliver it to every
   * process subscribed to the topic, this one included. Resolves with the
   * message's position once it is stored; rejects with a `BrokerError`
   * when it could not be (then it may or may not have been stored).
   */
  publish(topic: string, data: Uint8Array, options?: PublishOptions): Promise<StreamPosition>;
  /**
   * Receive the topic's messages in this process, from now on, in offset
   * order. Resolves with the topic's position at the moment delivery
   * starts: every message after it is delivered. The hub calls it once per
   * topic, when the topic's first local subscriber arrives.
   */
  subscribe(topic: string): Promise<StreamPosition>;
  /** Stop receiving the topic; its per-topic state is dropped. Called when its last local subscriber leaves. */
  unsubscribe(topic: string): void;
  /** Messages stored after `since`, or why they cannot be replayed. */
  history(topic: string, since: StreamPosition): Promise<HistoryResult>;
  /** The topic's current position (offset 0 and a fresh epoch for a topic never published). */
  position(topic: string): Promise<StreamPosition>;
  /** Members of topics, across every process the broker reaches. */
  readonly presence: Presence;
  readonly stats: BrokerStats;
  /** Set by the hub: where messages for this process's topics arrive, in order, once each. */
  onMessage: ((message: BrokerMessage) => void) | null;
  /** Set by the hub: a hole in a topic's delivery that could not be filled. */
  onDiscontinuity: ((event: TopicDiscontinuity) => void) | null;
  /** Reported by brokers whose transport can fail (the in-memory one never calls it). */
  onError: ((error: Error) => void) | null;
  close(): Promise<void>;
}
