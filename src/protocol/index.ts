/** The sans-I/O WebSocket core: RFC 6455 framing and closing, RFC 7692 negotiation, the opening handshake. */
export { Opcode, isControl } from './opcode.js';
export { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from './close-code.js';
export { ProtocolError, UsageError, type ProtocolErrorCode, type UsageErrorCode } from './errors.js';
export { Role } from './role.js';
export type { CompressionCodec } from './codec.js';
export {
  Protocol,
  ProtocolState,
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeClosePayload,
  prepareFrame,
  type PreparedFrame,
  type ProtocolEvent,
  type ProtocolHost,
  type ProtocolOptions,
  type PerMessageDeflateSetup,
} from './protocol.js';
export { FrameReader, type FrameSink, type FrameReaderOptions } from './frame-reader.js';
export { encodeFrame, frameHeaderSize, writeFrameHeader, type FrameBits } from './frame-writer.js';
export { applyMask, randomMaskKey } from './mask.js';
export { Utf8Validator, isValidUtf8 } from './utf8.js';
export {
  negotiateServer,
  buildClientOffer,
  acceptServerResponse,
  type DeflateOptions,
  type DeflateParams,
  type DeflateResponseErrorCode,
  type DeflateResponseResult,
} from './permessage-deflate.js';
export * from './handshake/index.js';
