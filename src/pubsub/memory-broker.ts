import {
  emptyBrokerStats,
  historyFor,
  type Broker,
  type BrokerMessage,
  type BrokerStats,
  type HistoryPolicy,
  type HistoryResult,
  type PublishOptions,
  type StreamPosition,
  type TopicDiscontinuity,
} from './broker.js';
import { newEpoch } from './epoch.js';
import { MemoryPresence } from './memory-presence.js';

export interface MemoryBrokerOptions {
  /** History kept per topic (size and age). Default 1,000 messages, 5 minutes. */
  history?: HistoryPolicy;
  /**
   * A topic nobody subscribes to and nobody published to for this long is
   * forgotten (its next publish starts a new epoch), so topics used once do
   * not accumulate. Default 24 hours, and never less than the topic's history age.
   */
  topicTtlMs?: number;
  /** Milliseconds clock, for tests. Default `Date.now`. */
  now?: () => number;
}

interface TopicState {
  epoch: string;
  offset: number;
  /** Oldest first; `at` is when it was stored. */
  history: { message: BrokerMessage; at: number }[];
  lastPublish: number;
}

/**
 * The default broker: one process. Same contract as the Redis broker
 * (offsets, epochs, bounded history, recovery, presence), so an
 * application written against it behaves the same on Redis. Delivery
 * happens in the publisher's call stack, before `publish` returns.
 */
export class MemoryBroker implements Broker {
  onMessage: ((message: BrokerMessage) => void) | null = null;
  onDiscontinuity: ((event: TopicDiscontinuity) => void) | null = null;
  onError: ((error: Error) => void) | null = null;
  readonly presence = new MemoryPresence();
  readonly stats: BrokerStats = emptyBrokerStats('ready');
  private readonly subscribed = new Set<string>();
  private readonly topics = new Map<string, TopicState>();
  private readonly historyPolicy: HistoryPolicy | undefined;
  private readonly topicTtlMs: number;
  private readonly now: () => number;
  private lastSweep: number;

  constructor(options: MemoryBrokerOptions = {}) {
    this.historyPolicy = options.history;
    this.topicTtlMs = options.topicTtlMs ?? 24 * 3600_000;
    this.now = options.now ?? Date.now;
    this.lastSweep = this.now();
  }

  publish(topic: string, data: Uint8Array, options: PublishOptions = {}): Promise<StreamPosition> {
    const now = this.now();
    this.sweep(now);
    let state = this.topics.get(topic);
    if (state === undefined) {
      state = { epoch: newEpoch(), offset: 0, history: [], lastPublish: now };
      this.topics.set(topic, state);
    }
    const offset = ++state.offset;
    state.lastPublish = now;
    const message: BrokerMessage = { topic, data, binary: options.binary ?? true, epoch: state.epoch, offset };
    const { size } = historyFor(this.historyPolicy, topic);
    if (size > 0) {
      const history = state.history;
      history.push({ message, at: now });
      // Trimmed in batches (at twice the size, plus by age), so a publish
      // does not move the whole array each time; reads take the last `size`.
      if (history.length >= 2 * size + 16) {
        const oldestAllowed = now - historyFor(this.historyPolicy, topic).ttlMs;
        let drop = history.length - size;
        while (drop < history.length && history[drop]!.at < oldestAllowed) drop++;
        history.splice(0, drop);
      }
    }
    this.stats.published++;
    if (this.subscribed.has(topic)) {
      this.stats.received++;
      this.onMessage?.(message);
    }
    return Promise.resolve({ epoch: state.epoch, offset });
  }

  subscribe(topic: string): Promise<StreamPosition> {
    this.subscribed.add(topic);
    return this.position(topic);
  }

  unsubscribe(topic: string): void {
    this.subscribed.delete(topic);
    // A topic only ever looked at (never published) holds nothing worth keeping.
    if (this.topics.get(topic)?.offset === 0) this.topics.delete(topic);
  }

  history(topic: string, since: StreamPosition): Promise<HistoryResult> {
    const state = this.topics.get(topic);
    const position = state === undefined ? this.unknownPosition(topic) : { epoch: state.epoch, offset: state.offset };
    // An offset past the topic's end cannot belong to this epoch's sequence either.
    if (position.epoch !== since.epoch || since.offset > position.offset) {
      return Promise.resolve({ ok: false, reason: 'epoch-changed', position });
    }
    if (since.offset >= position.offset) return Promise.resolve({ ok: true, position, messages: [] });
    const { size, ttlMs } = historyFor(this.historyPolicy, topic);
    const oldestAllowed = this.now() - ttlMs;
    const kept = state!.history.slice(-size).filter((entry) => entry.at >= oldestAllowed);
    const first = kept[0]?.message.offset;
    if (first === undefined || first > since.offset + 1) {
      return Promise.resolve({ ok: false, reason: 'history-too-short', position });
    }
    const messages = kept.filter((entry) => entry.message.offset > since.offset).map((entry) => entry.message);
    return Promise.resolve({ ok: true, position, messages });
  }

  position(topic: string): Promise<StreamPosition> {
    const state = this.topics.get(topic);
    return Promise.resolve(state === undefined ? this.unknownPosition(topic) : { epoch: state.epoch, offset: state.offset });
  }

  close(): Promise<void> {
    this.subscribed.clear();
    this.topics.clear();
    this.presence.clear();
    this.stats.state = 'closed';
    return Promise.resolve();
  }

  /**
   * A topic never published (or forgotten) still needs an epoch that
   * positions can name: create its state now, with offset 0.
   */
  private unknownPosition(topic: string): StreamPosition {
    const state: TopicState = { epoch: newEpoch(), offset: 0, history: [], lastPublish: this.now() };
    this.topics.set(topic, state);
    return { epoch: state.epoch, offset: 0 };
  }

  /** Forget idle topics, at most once a minute (amortised over publishes). */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [topic, state] of this.topics) {
      if (this.subscribed.has(topic)) continue;
      const ttl = Math.max(this.topicTtlMs, historyFor(this.historyPolicy, topic).ttlMs);
      if (now - state.lastPublish > ttl) this.topics.delete(topic);
    }
  }
}
