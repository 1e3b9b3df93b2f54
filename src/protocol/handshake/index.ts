/** The opening handshake of RFC 6455 §4, both roles, without I/O. */
export {
  DEFAULT_HEAD_LIMITS,
  RequestHeadParser,
  ResponseHeadParser,
  headersFromRaw,
  type HeadComplete,
  type HeadError,
  type HeadErrorCode,
  type HeadIncomplete,
  type HeadLimits,
  type HeadResult,
  type RequestHead,
  type ResponseHead,
} from './http-head.js';
export { WEBSOCKET_GUID, base64Decode, base64Encode, computeAcceptKey, generateClientKey, isValidClientKey, sha1 } from './accept-key.js';
export { formatExtensions, parseExtensions, type ExtensionOffer, type ParseExtensionsResult } from './extensions-header.js';
export { parseSubprotocols, selectSubprotocol, type ParseSubprotocolsResult } from './subprotocol.js';
export {
  buildAcceptResponse,
  buildRejection,
  validateUpgradeRequest,
  type AcceptResponseOptions,
  type UpgradeRejectionCode,
  type UpgradeRequestAccepted,
  type UpgradeRequestRejected,
  type UpgradeRequestValidation,
} from './server-handshake.js';
export {
  buildUpgradeRequest,
  validateUpgradeResponse,
  type UpgradeExpectation,
  type UpgradeRequestOptions,
  type UpgradeResponseAccepted,
  type UpgradeResponseFailureCode,
  type UpgradeResponseRejected,
  type UpgradeResponseValidation,
} from './client-handshake.js';
export { isToken, type HeaderPair } from './http-syntax.js';
