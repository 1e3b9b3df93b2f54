/** Close status codes, RFC 6455 §7.4.1 and the IANA registry. */
export enum CloseCode {
  Normal = 1000,
  GoingAway = 1001,
  ProtocolError = 1002,
  UnsupportedData = 1003,
  /** Reserved: never on the wire; reported when a close frame carried no code. */
  NoStatus = 1005,
  /** Reserved: never on the wire; reported when the TCP connection ended without a close frame. */
  Abnormal = 1006,
  InvalidPayload = 1007,
  PolicyViolation = 1008,
  MessageTooBig = 1009,
  MandatoryExtension = 1010,
  InternalError = 1011,
  /** IANA registry: the server is restarting; a client may reconnect (after a pause). */
  ServiceRestart = 1012,
  /** IANA registry: a temporary condition (overload); try again later. */
  TryAgainLater = 1013,
  /** IANA registry: a gateway or proxy got an invalid response from the server behind it. */
  BadGateway = 1014,
  /** Reserved: never on the wire; TLS handshake failure. */
  TlsHandshake = 1015,
}

/**
 * Whether a code may appear in a close frame (RFC 6455 §7.4.1-§7.4.2):
 * 1000-1003 and 1007-1011 are defined by the RFC for use on the wire, and
 * 1012-1014 were added to the IANA "WebSocket Close Code Number" registry
 * later (§11.7 lets the registry grow; browsers and other implementations
 * send them); 1004/1005/1006/1015 are reserved and the rest of 0-2999 is
 * unassigned; 3000-3999 are registered by libraries and applications and
 * 4000-4999 are private use.
 */
export function isValidWireCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** A close reason is at most 123 bytes: 125 bytes of control payload minus the 2-byte code (§5.5). */
export const MAX_CLOSE_REASON_BYTES = 123;
