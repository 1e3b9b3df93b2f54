export {
  PubSub,
  type PubSubOptions,
  type PubSubStats,
  type HubStats,
  type SubscribeOptions,
  type ResumeOptions,
  type RecoveryResult,
  type MessageEnvelope,
} from './pubsub.js';
export { MemoryBroker, type MemoryBrokerOptions } from './memory-broker.js';
export { BrokerError, type BrokerErrorCode } from './broker-error.js';
export { TopicCursor, type SkippedRange } from './topic-cursor.js';
export type {
  Broker,
  BrokerMessage,
  BrokerState,
  BrokerStats,
  HistoryOptions,
  HistoryPolicy,
  HistoryResult,
  PublishOptions,
  RecoveryFailure,
  StreamPosition,
  TopicDiscontinuity,
} from './broker.js';
export type { Presence, PresenceData, PresenceEvent, PresenceListener, PresenceMember } from './presence.js';
export type { MemoryPresence } from './memory-presence.js';
export type { RedisPresence, RedisPresenceOptions } from './redis-presence.js';
export { RedisBroker, type RedisBrokerOptions } from './redis-broker.js';
