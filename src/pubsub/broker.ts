/**
 * A broker carries published messages between the processes of a
 * deployment. The hub (`PubSub`) owns the local subscribers and frames each
 * message once; the broker only moves topic + bytes. The in-memory broker
 * serves one process; a Redis broker (PUBLISH/SUBSCRIBE) can serve many
 * without any application changing.
 */
export interface BrokerMessage {
  readonly topic: string;
  readonly data: Uint8Array;
  readonly binary: boolean;
}

export interface Broker {
  /** Deliver to every process subscribed to the topic, this one included. */
  publish(message: BrokerMessage): void;
  /** Receive the topic's messages in this process. Called once per topic, when its first local subscriber arrives. */
  subscribe(topic: string): void;
  /** Stop receiving the topic; called when its last local subscriber leaves. */
  unsubscribe(topic: string): void;
  /** Set by the hub: where messages for this process's topics arrive. */
  onMessage: ((message: BrokerMessage) => void) | null;
  /** Reported by brokers whose transport can fail (the in-memory one never calls it). */
  onError: ((error: Error) => void) | null;
  close(): Promise<void>;
}
