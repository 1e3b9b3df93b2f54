/** Failures of the I/O layer, each with a stable code applications can switch on. */
export type ConnectionErrorCode =
  | 'WS_ERR_SOCKET'
  | 'WS_ERR_TERMINATED'
  /** An application hook (open, message, drain, error, close) threw; the cause is what it threw. */
  | 'WS_ERR_HANDLER_FAILED'
  | 'WS_ERR_CLOSE_TIMEOUT'
  | 'WS_ERR_CONNECTION_LOST'
  | 'WS_ERR_BUFFER_LIMIT'
  | 'WS_ERR_HEARTBEAT_TIMEOUT'
  | 'WS_ERR_IDLE_TIMEOUT';

export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  constructor(
    readonly code: ConnectionErrorCode,
    message: string,
    override readonly cause?: Error,
  ) {
    super(message);
  }
}

/** Why an opening handshake did not produce a connection (client side). */
export type HandshakeErrorCode =
  | 'WS_ERR_INVALID_URL'
  | 'WS_ERR_CONNECT_FAILED'
  | 'WS_ERR_HANDSHAKE_TIMEOUT'
  | 'WS_ERR_ABORTED'
  | 'WS_ERR_HANDSHAKE_REFUSED'
  | 'WS_ERR_INVALID_RESPONSE'
  | 'WS_ERR_EXTENSION_REJECTED'
  /** The proxy answered 407, or a SOCKS5 proxy turned down the method or the credentials (RFC 1928 §3, RFC 1929 §2). */
  | 'WS_ERR_PROXY_AUTH'
  /** The proxy would not open the tunnel: a non-2xx answer to CONNECT, or a SOCKS5 reply other than "succeeded". */
  | 'WS_ERR_PROXY_REFUSED'
  /** The proxy could not be reached, broke off, or answered with something that is not its protocol. */
  | 'WS_ERR_PROXY_FAILED';

export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
  constructor(
    readonly code: HandshakeErrorCode,
    message: string,
    /** The HTTP status the server answered with, when it answered. */
    readonly status?: number,
    /** The body of a refusal, when the server sent one (at most a few KiB). */
    readonly body?: string,
    override readonly cause?: Error,
  ) {
    super(message);
  }
}

/**
 * A proxy would not (or could not) open the tunnel to the WebSocket server.
 * `proxy` names it as `scheme://[user@]host:port`: never with the password.
 * (Its `name` stays 'HandshakeError': it is one, and the base fixes the name's type.)
 */
export class ProxyError extends HandshakeError {
  constructor(
    code: 'WS_ERR_PROXY_AUTH' | 'WS_ERR_PROXY_REFUSED' | 'WS_ERR_PROXY_FAILED',
    message: string,
    /** The proxy, without its password. */
    readonly proxy: string,
    /** An HTTP proxy's status for CONNECT, when it answered with one. */
    status?: number,
    /** A SOCKS5 proxy's reply code (RFC 1928 §6) or auth status (RFC 1929 §2), when it sent one. */
    readonly socksReply?: number,
    cause?: Error,
  ) {
    super(code, message, status, undefined, cause);
  }
}
