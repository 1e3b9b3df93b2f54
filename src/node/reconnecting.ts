import {
  ReconnectingWebSocket as PortableReconnectingWebSocket,
  type ReconnectingWebSocketOptions as PortableOptions,
  type WebSocketConstructor,
} from '../web/reconnecting-websocket.js';
import { WebSocket, type WebSocketOptions } from './websocket.js';

/** The portable options, plus how each attempt connects in Node. */
export interface ReconnectingWebSocketOptions extends PortableOptions {
  /**
   * Passed to every connection attempt, as `connect()` takes them: `headers`,
   * `origin`, `tls` (a private CA, client certificates), `perMessageDeflate`,
   * `handshakeTimeout`, `maxMessageSize`... Subprotocols go in `protocols`
   * (they are offered on every attempt). Only for Sockeye's own WebSocket:
   * giving both this and `WebSocket` is an error.
   */
  connectOptions?: WebSocketOptions;
}

/**
 * The reconnecting client for Node: the runtime-agnostic one from
 * `src/web/`, with Sockeye's WHATWG `WebSocket` as the class it connects
 * with (Node 20 has no global one). `options.WebSocket` still overrides it.
 */
export class ReconnectingWebSocket extends PortableReconnectingWebSocket {
  constructor(url: string | (() => string), options: ReconnectingWebSocketOptions = {}) {
    const { connectOptions, ...portable } = options;
    super(url, { ...portable, WebSocket: socketClass(options.WebSocket, connectOptions) });
  }
}

/**
 * The class each attempt constructs. The portable client calls
 * `new Socket(url, protocols)` like a browser would; the options a Node
 * connection also needs ride along in a subclass that adds them.
 */
function socketClass(given: WebSocketConstructor | undefined, connectOptions: WebSocketOptions | undefined): WebSocketConstructor {
  if (connectOptions === undefined) return given ?? WebSocket;
  if (given !== undefined) {
    throw new TypeError("ReconnectingWebSocket: connectOptions apply to Sockeye's WebSocket; give either them or a WebSocket class, not both");
  }
  const options: WebSocketOptions = { ...connectOptions };
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, options);
    }
  };
}

export {
  backoffDelay,
  ReconnectingWebSocketError,
  type BackoffOptions,
  type BlobLike,
  type HeartbeatOptions,
  type MessageData,
  type OutgoingData,
  type ReconnectingErrorCode,
  type ReconnectingWebSocketEventMap,
  type ReconnectState,
  type SocketEvent,
  type Timers,
  type WebSocketConstructor,
  type WebSocketLike,
} from '../web/reconnecting-websocket.js';
