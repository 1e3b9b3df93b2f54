import { CloseCode } from '../protocol/close-code.js';
import { prepareFrame, type PreparedFrame } from '../protocol/protocol.js';
import type { Connection } from '../node/connection.js';
import type { Broker, BrokerMessage, BrokerStats, HistoryResult, RecoveryFailure, StreamPosition, TopicDiscontinuity } from './broker.js';
import { MemoryBroker } from './memory-broker.js';
import type { Presence, PresenceData } from './presence.js';
import { newEpoch } from './epoch.js';
import { TopicCursor } from './topic-cursor.js';

export interface PubSubOptions {
  /** Where messages travel between processes. Default: in-memory, this process only. */
  broker?: Broker;
  /**
   * A subscriber is too slow when more than this many bytes it was sent
   * before the current event-loop turn are still waiting to be taken by its
   * socket. Default 1 MiB. A subscription may set its own
   * (`SubscribeOptions.maxBuffer`). See `slowSubscriberPolicy`.
   *
   * How it relates to the connection's own limit (`maxBufferedAmount` of
   * the server or client, default 64 MiB): this one applies only to topic
   * deliveries and is checked first, before the message is handed to the
   * connection; the connection's limit then still applies to it, as to
   * everything else the connection sends (`send()`, `broadcast()`, pongs).
   * With the defaults, a subscriber that stops reading meets the hub's
   * limit first; the connection's bounds what one turn's burst may queue.
   */
  maxSubscriberBuffer?: number;
  /**
   * What happens to a too-slow subscriber: `close` closes its connection
   * with 1008 and the closing handshake (it can reconnect and resume from
   * its position without a hole); `drop` skips messages for it and counts
   * them, which leaves a hole in its stream (only for topics where the
   * latest value is all that matters). Default `close`, as for the
   * connection's own `backpressurePolicy`, whose `close` fails the
   * connection (the socket is destroyed: no close frame fits behind a
   * full buffer) once `maxBufferedAmount` is passed.
   */
  slowSubscriberPolicy?: 'drop' | 'close';
  /**
   * What subscribers receive for a message, computed once per message
   * (the result is framed once for all of them): e.g. the payload wrapped
   * with its epoch and offset, so clients can resume from their position.
   * A string is sent as a text message, bytes as binary. Default: the
   * published data as published.
   */
  envelope?: (message: BrokerMessage) => string | Uint8Array;
}

export interface PubSubStats {
  /** Messages handed to the broker by `publish`. */
  published: number;
  /** Messages written (or queued within the limit) to a subscriber, one per subscriber. */
  delivered: number;
  /** Deliveries skipped because the subscriber was too slow (policy `drop`). */
  dropped: number;
  /** Subscribers closed because they were too slow (policy `close`). */
  closedSlow: number;
}

/** The hub's figures (`PubSubStats`, what `/metrics` reads today) plus recovery and the broker's. */
export interface HubStats extends PubSubStats {
  /** Messages replayed from history to subscribers that resumed from a position. */
  recovered: number;
  /** Resumptions that could not replay (epoch changed, history too short). */
  recoveryFailed: number;
  /** The broker's own figures: stored, gaps caught up, publish queue depth, connection state. */
  readonly broker: BrokerStats;
}

type Subscriber = Connection<unknown>;

export interface SubscribeOptions {
  /**
   * This subscription's own limit in place of the hub's `maxSubscriberBuffer`:
   * for topics whose messages are large (images in a chat), where the hub's
   * default would count a subscriber still receiving one message as too
   * slow for the next.
   */
  maxBuffer?: number;
  /**
   * What this subscription receives for a message, in place of the hub's
   * `envelope`: e.g. an application's own wrapping with the position, on a
   * hub shared with other applications. Computed (and framed) once per
   * message for all the subscriptions that pass the same function.
   */
  envelope?: MessageEnvelope;
}

/** Turns a message into what subscribers receive: a string is sent as text, bytes as binary. */
export type MessageEnvelope = (message: BrokerMessage) => string | Uint8Array;

/** What resuming a subscription from a position gave. */
export type RecoveryResult =
  | {
      readonly recovered: true;
      /** Messages replayed from history before live delivery went on. */
      readonly replayed: number;
      /** The last position delivered to the connection when the replay ended. */
      readonly position: StreamPosition;
    }
  | {
      readonly recovered: false;
      readonly reason: RecoveryFailure | 'unavailable';
      /** The topic's position now: live delivery continues after it; a snapshot should describe the state there. */
      readonly position: StreamPosition;
    };

export interface ResumeOptions extends SubscribeOptions {
  /**
   * Called once the replay is decided, before any later live message is
   * written to the connection: on failure, send the snapshot here so that
   * it precedes the live messages that follow it.
   */
  onRecovery?: (result: RecoveryResult) => void;
}

/** A subscribed connection: its topics, and its backlog when the current turn's first delivery reached it. */
interface Peer {
  readonly topics: Set<string>;
  /** The hub's turn number when `before` was taken. */
  turn: number;
  /** Bytes the connection had not handed to its socket before this turn's deliveries. */
  before: number;
}

interface Subscription {
  readonly peer: Peer;
  readonly maxBuffer: number;
  /** The subscription's own envelope, or null for the hub's. */
  readonly envelope: MessageEnvelope | null;
  /** Live messages held while this subscription's history is being read; null once live. */
  held: BrokerMessage[] | null;
}

/** Live messages held per resuming subscription, at most: past it the resumption fails as too short. */
const MAX_HELD = 10_000;

/**
 * Topics, subscribe/unsubscribe and publish. A message that reaches this
 * process is framed once and the same header and payload bytes are written
 * to every local subscriber.
 *
 * One slow-subscriber rule: a subscriber is too slow when the bytes it had
 * not taken before the current event-loop turn exceed its limit
 * (`maxSubscriberBuffer`, default 1 MiB). What is queued during the turn
 * does not count against it, so a burst published within one turn reaches
 * every subscriber that is reading; the connection's own `maxBufferedAmount`
 * still bounds what one turn may queue. A too-slow subscriber is closed
 * (default) or skipped (`slowSubscriberPolicy: 'drop'`).
 */
export class PubSub {
  readonly stats: HubStats;
  private readonly broker: Broker;
  private readonly subscribersByTopic = new Map<string, Map<Subscriber, Subscription>>();
  private readonly peers = new Map<Subscriber, Peer>();
  /** Presence: each connection's member id, and the topics it joined (until it closes). */
  private readonly memberIds = new WeakMap<Subscriber, string>();
  private readonly presenceOf = new Map<Subscriber, Set<string>>();
  private readonly maxBuffer: number;
  private readonly closeSlow: boolean;
  private readonly envelope: MessageEnvelope | null;
  /**
   * Counts event-loop turns in which something was delivered: a peer whose
   * `turn` differs has not been measured in this one. Moved on by a
   * next-tick callback, i.e. once this turn's synchronous work is over
   * (when connections flush their batches too).
   */
  private turn = 1;
  private turnEndScheduled = false;
  private readonly endTurn = (): void => {
    this.turnEndScheduled = false;
    this.turn++;
  };

  constructor(options: PubSubOptions = {}) {
    this.broker = options.broker ?? new MemoryBroker();
    this.maxBuffer = options.maxSubscriberBuffer ?? 1024 * 1024;
    this.closeSlow = options.slowSubscriberPolicy !== 'drop';
    this.envelope = options.envelope ?? null;
    this.stats = { published: 0, delivered: 0, dropped: 0, closedSlow: 0, recovered: 0, recoveryFailed: 0, broker: this.broker.stats };
    this.broker.onMessage = (message) => this.deliver(message);
    this.broker.onDiscontinuity = (event) => this.onDiscontinuity?.(event);
    this.broker.onError = (error) => this.onBrokerError?.(error);
  }

  /** Set by the application: transport failures the broker reports (Redis unreachable...), for logs. */
  onBrokerError: ((error: Error) => void) | null = null;

  /**
   * Set by the application: this process's delivery of a topic had a hole
   * that history could not fill (see `TopicDiscontinuity`): its subscribers
   * may need a snapshot.
   */
  onDiscontinuity: ((event: TopicDiscontinuity) => void) | null = null;

  /** Members of topics across every process the broker reaches. */
  get presence(): Presence {
    return this.broker.presence;
  }

  /**
   * Add the connection to the topic's presence with `data` (a nickname...),
   * under an id unique to the connection (returned); it leaves every topic's
   * presence when it closes. Joining again replaces the data. Like
   * `publish`, the promise may be ignored: a failure (Redis unreachable;
   * the member is added on the broker's next refresh) is not an unhandled
   * rejection.
   */
  join(connection: Connection<unknown>, topic: string, data: PresenceData): Promise<string> {
    let id = this.memberIds.get(connection);
    if (id === undefined) {
      id = newEpoch();
      this.memberIds.set(connection, id);
    }
    let topics = this.presenceOf.get(connection);
    if (topics === undefined) {
      this.presenceOf.set(connection, (topics = new Set()));
      connection.once('close', () => {
        const joined = this.presenceOf.get(connection);
        this.presenceOf.delete(connection);
        for (const joinedTopic of joined ?? []) this.broker.presence.leave(joinedTopic, id!).catch(ignore);
      });
    }
    topics.add(topic);
    const member = id;
    const joined = this.broker.presence.join(topic, member, data).then(() => member);
    joined.catch(ignore);
    return joined;
  }

  /** Take the connection out of the topic's presence (the promise may be ignored, as with `join`). */
  leave(connection: Connection<unknown>, topic: string): Promise<void> {
    const id = this.memberIds.get(connection);
    const topics = this.presenceOf.get(connection);
    if (id === undefined || topics === undefined || !topics.delete(topic)) return Promise.resolve();
    const left = this.broker.presence.leave(topic, id);
    left.catch(ignore);
    return left;
  }

  /** Add a connection to a topic, live from now; it leaves all its topics when it closes. Returns false if already subscribed. */
  subscribe(connection: Connection<unknown>, topic: string, options: SubscribeOptions = {}): boolean {
    return this.add(connection, topic, options, false) !== null;
  }

  /**
   * Subscribe a connection and first replay to it (to it alone) what it
   * missed since `since`: every message after that position, then the live
   * ones, with no hole and no duplicate at the seam. When that cannot be
   * done (the topic's epoch changed, or its history no longer reaches back
   * to `since`), the result says so and the connection continues live from
   * the result's position; `unavailable` means the broker could not be
   * asked (Redis unreachable) and the connection continues live. Never
   * rejects. Resolves `null` if the connection was already subscribed to
   * the topic, or left it before the replay (nothing is replayed then).
   */
  async subscribeSince(
    connection: Connection<unknown>,
    topic: string,
    since: StreamPosition,
    options: ResumeOptions = {},
  ): Promise<RecoveryResult | null> {
    const subscription = this.add(connection, topic, options, true);
    if (subscription === null) return null;
    let result: RecoveryResult;
    try {
      // Live delivery must be running before history is read: then every
      // message is either in what history returns or arrives live (the
      // broker's `subscribe` contract), and the cursor removes the overlap.
      await this.live(topic);
      const history = await this.broker.history(topic, since);
      result = this.replay(
        connection,
        topic,
        subscription,
        since,
        history.ok ? history.messages : null,
        history.ok ? null : history.reason,
        history.position,
      );
    } catch (error) {
      // Never a rejection (callers often ignore the promise): the broker
      // could not answer, or the topic was left meanwhile.
      this.goLive(subscription);
      if (!this.isSubscribed(connection, topic, subscription)) return null;
      this.stats.recoveryFailed++;
      result = { recovered: false, reason: 'unavailable', position: since };
      this.onBrokerError?.(error instanceof Error ? error : new Error(String(error)));
      options.onRecovery?.(result);
      return result;
    }
    options.onRecovery?.(result);
    this.releaseHeld(connection, topic, subscription, result.position);
    return result;
  }

  /**
   * The topic's messages stored after `since` (as far as its history
   * reaches), or why they cannot be listed: for an application that builds
   * a snapshot from a topic's recent past (a chat's last messages).
   */
  history(topic: string, since: StreamPosition): Promise<HistoryResult> {
    return this.broker.history(topic, since);
  }

  /** Returns false if the connection was not subscribed to the topic. */
  unsubscribe(connection: Connection<unknown>, topic: string): boolean {
    const topics = this.peers.get(connection)?.topics;
    if (topics === undefined || !topics.delete(topic)) return false;
    const subscribers = this.subscribersByTopic.get(topic)!;
    subscribers.delete(connection);
    if (subscribers.size === 0) {
      this.subscribersByTopic.delete(topic);
      this.topicReady.delete(topic);
      this.broker.unsubscribe(topic);
    }
    return true;
  }

  unsubscribeAll(connection: Connection<unknown>): void {
    const peer = this.peers.get(connection);
    if (peer === undefined) return;
    for (const topic of [...peer.topics]) this.unsubscribe(connection, topic);
    this.peers.delete(connection);
  }

  /**
   * Publish to every subscriber of the topic, in every process the broker
   * reaches. The promise resolves with the message's position once the
   * broker stored it, and rejects with a `BrokerError` if it could not;
   * a caller that ignores the promise loses nothing but that news (the
   * failure is counted in `stats.broker.publishFailed`).
   */
  publish(topic: string, data: string | Uint8Array, options: { binary?: boolean } = {}): Promise<StreamPosition> {
    const isString = typeof data === 'string';
    const bytes = isString ? Buffer.from(data, 'utf8') : data;
    this.stats.published++;
    const stored = this.broker.publish(topic, bytes, { binary: options.binary ?? !isString });
    // Marks the promise handled: callers may ignore it without an unhandled rejection.
    stored.catch(ignore);
    return stored;
  }

  subscriberCount(topic: string): number {
    return this.subscribersByTopic.get(topic)?.size ?? 0;
  }

  topicsOf(connection: Connection<unknown>): ReadonlySet<string> {
    return this.peers.get(connection)?.topics ?? EMPTY_TOPICS;
  }

  async close(): Promise<void> {
    this.subscribersByTopic.clear();
    this.peers.clear();
    this.topicReady.clear();
    this.presenceOf.clear();
    await this.broker.close();
  }

  // ---- internals ---------------------------------------------------------

  /** Per topic with local subscribers: the broker's subscription, settled once live delivery runs. */
  private readonly topicReady = new Map<string, Promise<StreamPosition>>();

  /** The new subscription, or null if the connection already had one to the topic. */
  private add(connection: Subscriber, topic: string, options: SubscribeOptions, resuming: boolean): Subscription | null {
    let peer = this.peers.get(connection);
    if (peer === undefined) {
      peer = { topics: new Set(), turn: 0, before: 0 };
      this.peers.set(connection, peer);
      connection.once('close', () => this.unsubscribeAll(connection));
    }
    if (peer.topics.has(topic)) return null;
    peer.topics.add(topic);
    const subscription: Subscription = {
      peer,
      maxBuffer: options.maxBuffer ?? this.maxBuffer,
      envelope: options.envelope ?? null,
      held: resuming ? [] : null,
    };
    let subscribers = this.subscribersByTopic.get(topic);
    if (subscribers === undefined) {
      subscribers = new Map();
      this.subscribersByTopic.set(topic, subscribers);
      const ready = this.broker.subscribe(topic);
      ready.catch(ignore);
      this.topicReady.set(topic, ready);
    }
    subscribers.set(connection, subscription);
    return subscription;
  }

  /**
   * Resolves once this process receives the topic's messages live (its
   * broker subscription is in place), with the topic's position then:
   * every later message reaches the topic's local subscribers.
   */
  live(topic: string): Promise<StreamPosition> {
    return this.topicReady.get(topic) ?? this.broker.position(topic);
  }

  /** Write the history after `since` to the connection alone; decide the outcome. */
  private replay(
    connection: Subscriber,
    topic: string,
    subscription: Subscription,
    since: StreamPosition,
    history: readonly BrokerMessage[] | null,
    failure: RecoveryFailure | null,
    position: StreamPosition,
  ): RecoveryResult {
    if (!this.isSubscribed(connection, topic, subscription)) {
      return { recovered: false, reason: failure ?? 'history-too-short', position };
    }
    // Past MAX_HELD live messages were not kept: the seam cannot be closed.
    if (history === null || subscription.held === null || subscription.held.length >= MAX_HELD) {
      this.stats.recoveryFailed++;
      return { recovered: false, reason: failure ?? 'history-too-short', position };
    }
    const cursor = new TopicCursor(since);
    let replayed = 0;
    for (const message of history) {
      for (const ready of cursor.offer(message)) {
        this.writeOne(connection, subscription, ready);
        replayed++;
      }
    }
    this.stats.recovered += replayed;
    // The held live messages continue the replay; `releaseHeld` writes those after the cursor.
    return { recovered: true, replayed, position: cursor.position };
  }

  /** Hand the connection the live messages held during its replay (after `position`), then deliver live. */
  private releaseHeld(connection: Subscriber, topic: string, subscription: Subscription, position: StreamPosition): void {
    const held = subscription.held;
    this.goLive(subscription);
    if (held === null || !this.isSubscribed(connection, topic, subscription)) return;
    const cursor = new TopicCursor(position);
    for (const message of held) {
      if (message.epoch !== position.epoch) continue;
      for (const ready of cursor.offer(message)) this.writeOne(connection, subscription, ready);
    }
  }

  private goLive(subscription: Subscription): void {
    subscription.held = null;
  }

  private isSubscribed(connection: Subscriber, topic: string, subscription: Subscription): boolean {
    return this.subscribersByTopic.get(topic)?.get(connection) === subscription;
  }

  private frameOf(message: BrokerMessage, envelope: MessageEnvelope | null = this.envelope): PreparedFrame {
    if (envelope === null) return prepareFrame(message.data, message.binary);
    const out = envelope(message);
    return typeof out === 'string' ? prepareFrame(Buffer.from(out, 'utf8'), false) : prepareFrame(out, true);
  }

  private writeOne(connection: Subscriber, subscription: Subscription, message: BrokerMessage): void {
    this.send(connection, subscription, this.frameOf(message, subscription.envelope ?? this.envelope));
  }

  private deliver(message: BrokerMessage): void {
    const subscribers = this.subscribersByTopic.get(message.topic);
    if (subscribers === undefined) return;
    let frame: PreparedFrame | null = null;
    /** Frames of the subscriptions' own envelopes, one per function. */
    let framesByEnvelope: Map<MessageEnvelope, PreparedFrame> | null = null;
    for (const [subscriber, subscription] of subscribers) {
      const held = subscription.held;
      if (held !== null) {
        // Resuming: this subscriber gets the message after its replay.
        if (held.length < MAX_HELD) held.push(message);
        continue;
      }
      const own = subscription.envelope;
      if (own === null) {
        frame ??= this.frameOf(message);
        this.send(subscriber, subscription, frame);
        continue;
      }
      framesByEnvelope ??= new Map();
      let ownFrame = framesByEnvelope.get(own);
      if (ownFrame === undefined) framesByEnvelope.set(own, (ownFrame = this.frameOf(message, own)));
      this.send(subscriber, subscription, ownFrame);
    }
  }

  private send(subscriber: Subscriber, subscription: Subscription, frame: PreparedFrame): void {
    const stats = this.stats;
    const peer = subscription.peer;
    if (peer.turn !== this.turn) {
      peer.turn = this.turn;
      peer.before = subscriber.bufferedAmount;
      if (!this.turnEndScheduled) {
        this.turnEndScheduled = true;
        process.nextTick(this.endTurn);
      }
    }
    if (peer.before > subscription.maxBuffer) {
      if (this.closeSlow) {
        stats.closedSlow++;
        this.unsubscribeAll(subscriber);
        subscriber.close(CloseCode.PolicyViolation, 'subscriber too slow');
      } else {
        stats.dropped++;
      }
      return;
    }
    const status = subscriber.sendPrepared(frame);
    if (status === 'written' || status === 'queued') stats.delivered++;
    else if (status === 'dropped') stats.dropped++;
  }
}

function ignore(): void {}

const EMPTY_TOPICS: ReadonlySet<string> = new Set();
