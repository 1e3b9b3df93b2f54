import { prepareFrame } from '../protocol/protocol.js';
import type { Connection } from '../node/connection.js';
import type { Broker, BrokerMessage } from './broker.js';
import { MemoryBroker } from './memory-broker.js';

export interface PubSubOptions {
  /** Where messages travel between processes. Default: in-memory, this process only. */
  broker?: Broker;
  /**
   * A subscriber with more than this many bytes waiting to be sent is too
   * slow for the next message. Default 1 MiB. A subscription may set its
   * own (`SubscribeOptions.maxBuffer`).
   */
  maxSubscriberBuffer?: number;
  /**
   * What happens to a too-slow subscriber: `drop` skips the message for it
   * and counts it; `close` closes its connection with 1008. Default `drop`.
   */
  slowSubscriberPolicy?: 'drop' | 'close';
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

type Subscriber = Connection<unknown>;

export interface SubscribeOptions {
  /**
   * This subscription's own limit in place of the hub's `maxSubscriberBuffer`:
   * for topics whose messages are large (images in a chat), where the hub's
   * default would count a subscriber still receiving one message as too
   * slow for the next.
   */
  maxBuffer?: number;
}

/**
 * Topics, subscribe/unsubscribe and publish. A message that reaches this
 * process is framed once and the same header and payload bytes are written
 * to every local subscriber; a subscriber that cannot keep up never makes
 * the server queue without bound (see `slowSubscriberPolicy`).
 */
export class PubSub {
  readonly stats: PubSubStats = { published: 0, delivered: 0, dropped: 0, closedSlow: 0 };
  private readonly broker: Broker;
  /** Each topic's subscribers, with the buffer limit of each subscription. */
  private readonly subscribersByTopic = new Map<string, Map<Subscriber, number>>();
  private readonly topicsBySubscriber = new Map<Subscriber, Set<string>>();
  private readonly maxBuffer: number;
  private readonly closeSlow: boolean;

  constructor(options: PubSubOptions = {}) {
    this.broker = options.broker ?? new MemoryBroker();
    this.maxBuffer = options.maxSubscriberBuffer ?? 1024 * 1024;
    this.closeSlow = options.slowSubscriberPolicy === 'close';
    this.broker.onMessage = (message) => this.deliver(message);
  }

  /** Add a connection to a topic; it leaves all its topics when it closes. Returns false if already subscribed. */
  subscribe(connection: Connection<unknown>, topic: string, options: SubscribeOptions = {}): boolean {
    let topics = this.topicsBySubscriber.get(connection);
    if (topics === undefined) {
      topics = new Set();
      this.topicsBySubscriber.set(connection, topics);
      connection.once('close', () => this.unsubscribeAll(connection));
    }
    if (topics.has(topic)) return false;
    topics.add(topic);
    let subscribers = this.subscribersByTopic.get(topic);
    if (subscribers === undefined) {
      subscribers = new Map();
      this.subscribersByTopic.set(topic, subscribers);
      this.broker.subscribe(topic);
    }
    subscribers.set(connection, options.maxBuffer ?? this.maxBuffer);
    return true;
  }

  /** Returns false if the connection was not subscribed to the topic. */
  unsubscribe(connection: Connection<unknown>, topic: string): boolean {
    const topics = this.topicsBySubscriber.get(connection);
    if (topics === undefined || !topics.delete(topic)) return false;
    const subscribers = this.subscribersByTopic.get(topic)!;
    subscribers.delete(connection);
    if (subscribers.size === 0) {
      this.subscribersByTopic.delete(topic);
      this.broker.unsubscribe(topic);
    }
    return true;
  }

  unsubscribeAll(connection: Connection<unknown>): void {
    const topics = this.topicsBySubscriber.get(connection);
    if (topics === undefined) return;
    for (const topic of [...topics]) this.unsubscribe(connection, topic);
    this.topicsBySubscriber.delete(connection);
  }

  /** Publish to every subscriber of the topic, in every process the broker reaches. */
  publish(topic: string, data: string | Uint8Array, options: { binary?: boolean } = {}): void {
    const isString = typeof data === 'string';
    const bytes = isString ? Buffer.from(data, 'utf8') : data;
    this.stats.published++;
    this.broker.publish({ topic, data: bytes, binary: options.binary ?? !isString });
  }

  subscriberCount(topic: string): number {
    return this.subscribersByTopic.get(topic)?.size ?? 0;
  }

  topicsOf(connection: Connection<unknown>): ReadonlySet<string> {
    return this.topicsBySubscriber.get(connection) ?? EMPTY_TOPICS;
  }

  async close(): Promise<void> {
    this.subscribersByTopic.clear();
    this.topicsBySubscriber.clear();
    await this.broker.close();
  }

  private deliver(message: BrokerMessage): void {
    const subscribers = this.subscribersByTopic.get(message.topic);
    if (subscribers === undefined) return;
    const frame = prepareFrame(message.data, message.binary);
    const stats = this.stats;
    for (const [subscriber, maxBuffer] of subscribers) {
      if (subscriber.bufferedAmount + frame.size > maxBuffer) {
        if (this.closeSlow) {
          stats.closedSlow++;
          this.unsubscribeAll(subscriber);
          subscriber.close(1008, 'subscriber too slow');
        } else {
          stats.dropped++;
        }
        continue;
      }
      const status = subscriber.sendPrepared(frame);
      if (status === 'written' || status === 'queued') stats.delivered++;
      else if (status === 'dropped') stats.dropped++;
    }
  }
}

const EMPTY_TOPICS: ReadonlySet<string> = new Set();
