import type { Broker, BrokerMessage } from './broker.js';

/** The default broker: one process, delivery in the publisher's call stack. */
export class MemoryBroker implements Broker {
  onMessage: ((message: BrokerMessage) => void) | null = null;
  onError: ((error: Error) => void) | null = null;
  private readonly topics = new Set<string>();

  publish(message: BrokerMessage): void {
    if (this.topics.has(message.topic)) this.onMessage?.(message);
  }

  subscribe(topic: string): void {
    this.topics.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }

  close(): Promise<void> {
    this.topics.clear();
    return Promise.resolve();
  }
}
