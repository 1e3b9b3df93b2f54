import {
  ReconnectingWebSocket as PortableReconnectingWebSocket,
  type ReconnectingWebSocketOptions,
} from '../web/reconnecting-websocket.js';
import { WebSocket } from './websocket.js';

/**
 * The reconnecting client for Node: the runtime-agnostic one from
 * `src/web/`, with Sockeye's WHATWG `WebSocket` as the class it connects
 * with (Node 20 has no global one). `options.WebSocket` still overrides it.
 */
export class ReconnectingWebSocket extends PortableReconnectingWebSocket {
  constructor(url: string | (() => string), options: ReconnectingWebSocketOptions = {}) {
    super(url, { ...options, WebSocket: options.WebSocket ?? WebSocket });
  }
}

export {
  backoffDelay,
  ReconnectingWebSocketError,
  type BackoffOptions,
  type HeartbeatOptions,
  type MessageData,
  type OutgoingData,
  type ReconnectingErrorCode,
  type ReconnectingWebSocketEventMap,
  type ReconnectingWebSocketOptions,
  type ReconnectState,
  type Timers,
  type WebSocketConstructor,
  type WebSocketLike,
} from '../web/reconnecting-websocket.js';
