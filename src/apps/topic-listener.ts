import { EventEmitter } from 'node:events';
import type { Connection, SendStatus } from '../node/connection.js';
import type { PreparedFrame } from '../protocol/protocol.js';
import type { StreamPosition } from '../pubsub/broker.js';
import type { PubSub, RecoveryResult } from '../pubsub/pubsub.js';

/**
 * A topic's messages handed to this process's own code rather than to a
 * client: what an application needs to keep state that every node agrees
 * on (the canvas folds its drawing log, the dashboard gathers every node's
 * samples). It receives what the hub's subscribers receive, from the same
 * delivery, so it sees the topic in offset order, each message once, with
 * the hub's recovery from a position (`listenSince`).
 *
 * The hub delivers only to connections, so the listener stands in for one:
 * a subscriber that always keeps up (nothing is buffered) and reads each
 * message as it is written. It therefore gets what subscribers get: the
 * published bytes as published, on a hub without an `envelope`. A hub
 * method that hands `BrokerMessage`s to a callback would make this module
 * unnecessary; until the hub has one, this is the one place that knows.
 */
export type TopicHandler = (data: Uint8Array, binary: boolean) => void;

export class TopicListener {
  private readonly sink: Sink;

  /**
   * `onMessage` runs inside the hub's delivery; what it throws is passed
   * to `onError` (the delivery to the other subscribers goes on).
   */
  constructor(
    private readonly pubsub: PubSub,
    onMessage: TopicHandler,
    onError: (error: unknown) => void,
  ) {
    this.sink = new Sink(onMessage, onError);
  }

  /** Receive the topic's messages from now on. False if already listening to it. */
  listen(topic: string): boolean {
    return this.pubsub.subscribe(this.sink.asSubscriber(), topic);
  }

  /**
   * Receive every message after `since`, then the live ones, with no hole
   * and no duplicate at the seam; or, when the history does not reach back
   * that far (or the epoch changed), the live ones only: the result says
   * which, before any live message is handed over. Null if already listening.
   */
  listenSince(topic: string, since: StreamPosition): Promise<RecoveryResult | null> {
    return this.pubsub.subscribeSince(this.sink.asSubscriber(), topic, since);
  }

  unlisten(topic: string): boolean {
    return this.pubsub.unsubscribe(this.sink.asSubscriber(), topic);
  }

  /** Stop listening to every topic. */
  close(): void {
    this.pubsub.unsubscribeAll(this.sink.asSubscriber());
  }
}

/** What the hub calls on a subscriber, and nothing else. */
class Sink extends EventEmitter {
  /** Handed over synchronously: nothing ever waits, so the hub never finds this subscriber slow. */
  readonly bufferedAmount = 0;

  constructor(
    private readonly onMessage: TopicHandler,
    private readonly onError: (error: unknown) => void,
  ) {
    super();
  }

  sendPrepared(frame: PreparedFrame): SendStatus {
    try {
      this.onMessage(frame.payload, frame.binary);
    } catch (error) {
      this.onError(error);
    }
    return 'written';
  }

  /** The hub closes subscribers it finds too slow; with nothing buffered that cannot happen, but it is honoured. */
  close(): void {
    this.emit('close');
  }

  /**
   * The hub types its subscribers as connections; it uses only
   * `bufferedAmount`, `sendPrepared`, `close` and the `close` event, which
   * this class has (pinned by test/apps/topic-listener.test.ts).
   */
  asSubscriber(): Connection<unknown> {
    return this as unknown as Connection<unknown>;
  }
}
