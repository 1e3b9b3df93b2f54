import type { Connection } from './connection.js';

/**
 * What the server needs of a publish/subscribe hub to offer topics in one
 * call (`server.publish`, `server.subscribe`). `PubSub` from `sockeye/pubsub`
 * is one; the interface lives here so the Node layer does not depend on the
 * pub/sub layer above it (ARCHITECTURE: dependencies point down).
 */
export interface TopicHub {
  /** Returns false if the connection was already subscribed. */
  subscribe(connection: Connection<unknown>, topic: string): boolean;
  /** Returns false if the connection was not subscribed. */
  unsubscribe(connection: Connection<unknown>, topic: string): boolean;
  /** Resolves once the message is stored by the hub's broker (for `PubSub`: with its position). */
  publish(topic: string, data: string | Uint8Array, options?: { binary?: boolean }): Promise<unknown>;
}
