/** Sockeye: a WebSocket server and client for Node.js. */
export {
  WebSocketServer,
  routeParams,
  type HookFailure,
  type HookName,
  type HookResult,
  type RateLimited,
  type Route,
  type RouteTraffic,
  type ServerOptions,
  type ServerDeflateOptions,
  type ServerLogEntry,
  type ShutdownOptions,
  type TrafficCounts,
} from './node/server.js';
export type { ServerCounters } from './node/server-counters.js';
export type { RouteParams } from './node/route-pattern.js';
export type { BroadcastOptions } from './node/broadcast.js';
export type { TopicHub } from './node/topic-hub.js';
export type { RateLimitKind, RateLimitOptions } from './node/rate-limit.js';
export { connect, type ConnectOptions, type ClientDeflateOptions } from './node/client.js';
export {
  Connection,
  ConnectionState,
  type CloseInfo,
  type ConnectionEvents,
  type FrameInfo,
  type SendData,
  type SendOptions,
  type SendStatus,
  type WireFrame,
} from './node/connection.js';
export { WebSocket, type BinaryType, type WebSocketEventHandler, type WebSocketEventMap, type WebSocketOptions } from './node/websocket.js';
export { CloseEvent, type CloseEventInit } from './node/events.js';
export type { ReceivedMessage, MessageIteratorOptions } from './node/message-iterator.js';
export {
  ReconnectingWebSocket,
  ReconnectingWebSocketError,
  backoffDelay,
  type BackoffOptions,
  type BlobLike,
  type HeartbeatOptions,
  type MessageData,
  type OutgoingData,
  type ReconnectingErrorCode,
  type ReconnectingWebSocketEventMap,
  type ReconnectingWebSocketOptions,
  type ReconnectState,
  type SocketEvent,
  type Timers,
  type WebSocketConstructor,
  type WebSocketLike,
} from './node/reconnecting.js';
export { reject, UpgradeRejection, type UpgradeRequest } from './node/upgrade.js';
export { ConnectionError, HandshakeError, ProxyError, type ConnectionErrorCode, type HandshakeErrorCode } from './node/errors.js';
export { CloseCode, Opcode, ProtocolError, UsageError, type ProtocolErrorCode, type UsageErrorCode } from './protocol/index.js';
