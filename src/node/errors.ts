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
  | 'WS_ERR_EXTENSION_REJECTED';

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
