import { CloseCode } from './close-code.js';

/**
 * Stable error codes. Each failure of the protocol maps to exactly one code
 * and one close code, so applications can switch on `error.code` and the
 * peer learns why the connection failed.
 */
export type ProtocolErrorCode =
  | 'WS_ERR_INVALID_OPCODE'
  | 'WS_ERR_UNEXPECTED_RSV'
  | 'WS_ERR_EXPECTED_MASK'
  | 'WS_ERR_UNEXPECTED_MASK'
  | 'WS_ERR_NON_MINIMAL_LENGTH'
  | 'WS_ERR_INVALID_LENGTH'
  | 'WS_ERR_CONTROL_TOO_LONG'
  | 'WS_ERR_FRAGMENTED_CONTROL'
  | 'WS_ERR_UNEXPECTED_CONTINUATION'
  | 'WS_ERR_EXPECTED_CONTINUATION'
  | 'WS_ERR_INVALID_UTF8'
  | 'WS_ERR_INVALID_CLOSE_CODE'
  | 'WS_ERR_INVALID_CLOSE_PAYLOAD'
  | 'WS_ERR_MESSAGE_TOO_BIG'
  | 'WS_ERR_DECOMPRESSION_FAILED'
  /** Local: our own compressor failed (1011), not a peer violation. */
  | 'WS_ERR_COMPRESSION_FAILED';

/**
 * The one place where a failure becomes a close code (RFC 6455 §7.4.1):
 * framing violations are 1002, bad text or a broken compressed stream 1007,
 * an oversized message 1009, and a failure of our own compressor 1011.
 */
const CLOSE_CODE_OF: Record<ProtocolErrorCode, CloseCode> = {
  WS_ERR_INVALID_OPCODE: CloseCode.ProtocolError,
  WS_ERR_UNEXPECTED_RSV: CloseCode.ProtocolError,
  WS_ERR_EXPECTED_MASK: CloseCode.ProtocolError,
  WS_ERR_UNEXPECTED_MASK: CloseCode.ProtocolError,
  WS_ERR_NON_MINIMAL_LENGTH: CloseCode.ProtocolError,
  WS_ERR_INVALID_LENGTH: CloseCode.ProtocolError,
  WS_ERR_CONTROL_TOO_LONG: CloseCode.ProtocolError,
  WS_ERR_FRAGMENTED_CONTROL: CloseCode.ProtocolError,
  WS_ERR_UNEXPECTED_CONTINUATION: CloseCode.ProtocolError,
  WS_ERR_EXPECTED_CONTINUATION: CloseCode.ProtocolError,
  WS_ERR_INVALID_CLOSE_CODE: CloseCode.ProtocolError,
  WS_ERR_INVALID_CLOSE_PAYLOAD: CloseCode.ProtocolError,
  WS_ERR_INVALID_UTF8: CloseCode.InvalidPayload,
  WS_ERR_DECOMPRESSION_FAILED: CloseCode.InvalidPayload,
  WS_ERR_COMPRESSION_FAILED: CloseCode.InternalError,
  WS_ERR_MESSAGE_TOO_BIG: CloseCode.MessageTooBig,
};

/**
 * A violation by the peer (or, for WS_ERR_COMPRESSION_FAILED, a local codec
 * fault): the connection is failed with `closeCode` (RFC 6455 §7.1.7).
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly closeCode: CloseCode;
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.closeCode = CLOSE_CODE_OF[code];
  }
}

/** Misuse of the API by the local application (sending after close, a bad close code...). */
export type UsageErrorCode =
  'WS_ERR_NOT_OPEN' | 'WS_ERR_INVALID_CLOSE_CODE' | 'WS_ERR_CLOSE_REASON_TOO_LONG' | 'WS_ERR_CONTROL_PAYLOAD_TOO_LONG' | 'WS_ERR_INVALID_ARGUMENT';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    readonly code: UsageErrorCode,
    message: string,
  ) {
    super(message);
  }
}
