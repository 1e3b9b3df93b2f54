/** Sockeye: a WebSocket server and client for Node.js. */
export { WebSocketServer, type Route, type ServerOptions, type ServerDeflateOptions, type ServerLogEntry, type ShutdownOptions } from './node/server.js';
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
} from './node/connection.js';
export { WebSocket, CloseEvent, type BinaryType, type WebSocketOptions, type WebSocketEventMap } from './node/websocket.js';
export {
  WebSocketClient,
  ClientState,
  type ClientError,
  type WebSocketClientEvents,
  type WebSocketClientOptions,
} from './node/websocket-client.js';
export type { ReceivedMessage, MessageIteratorOptions } from './node/message-iterator.js';
export {
  ReconnectingWebSocket,
  ReconnectingWebSocketError,
  backoffDelay,
  type BackoffOptions,
  type HeartbeatOptions,
  type ReconnectingErrorCode,
  type ReconnectingWebSocketEventMap,
  type ReconnectingWebSocketOptions,
  type ReconnectState,
} from './node/reconnecting.js';
export { reject, UpgradeRejection, type UpgradeRequest } from './node/upgrade.js';
export { ConnectionError, HandshakeError, ProxyError, type ConnectionErrorCode, type HandshakeErrorCode } from './node/errors.js';
export { CloseCode, Opcode, ProtocolError, UsageError, type ProtocolErrorCode, type UsageErrorCode } from './protocol/index.js';
