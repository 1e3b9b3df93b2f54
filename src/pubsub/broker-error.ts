/**
 * Stable codes for broker failures, so applications can switch on
 * `error.code`:
 * - `WS_ERR_BROKER_UNAVAILABLE`: the store did not acknowledge in time
 *   (unreachable, paused, or the connection dropped with the command in
 *   flight). The message may or may not have been stored.
 * - `WS_ERR_BROKER_QUEUE_FULL`: the publish queue was at its bound (count or
 *   bytes); nothing was sent.
 * - `WS_ERR_BROKER_CLOSED`: the broker was closed.
 */
export type BrokerErrorCode = 'WS_ERR_BROKER_UNAVAILABLE' | 'WS_ERR_BROKER_QUEUE_FULL' | 'WS_ERR_BROKER_CLOSED';

export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly code: BrokerErrorCode;

  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
