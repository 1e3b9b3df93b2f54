export { PubSub, type PubSubOptions, type PubSubStats } from './pubsub.js';
export { MemoryBroker } from './memory-broker.js';
export type { Broker, BrokerMessage } from './broker.js';
