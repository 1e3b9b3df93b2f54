import { toUSVString } from 'node:util';

/**
 * `CloseEvent` of the WHATWG WebSockets Standard ("The CloseEvent
 * interface"). Node 20 has `Event` and `MessageEvent` as globals but no
 * `CloseEvent`, so the `WebSocket` class brings its own.
 */

/** `EventInit` (bubbles, cancelable, composed): @types/node does not name it globally. */
type EventInit = NonNullable<ConstructorParameters<typeof Event>[1]>;

export interface CloseEventInit extends EventInit {
  wasClean?: boolean;
  code?: number;
  reason?: string;
}

export class CloseEvent extends Event {
  readonly #wasClean: boolean;
  readonly #code: number;
  readonly #reason: string;

  constructor(type: string, eventInitDict: CloseEventInit = {}) {
    super(type, eventInitDict);
    // The dictionary members' IDL types: boolean, unsigned short, USVString.
    this.#wasClean = Boolean(eventInitDict.wasClean ?? false);
    this.#code = toUnsignedShort(eventInitDict.code ?? 0);
    this.#reason = toUSVString(String(eventInitDict.reason ?? ''));
  }

  /** Whether the connection closed cleanly: both close frames exchanged, then TCP closed (RFC 6455 §7.1.4). */
  get wasClean(): boolean {
    return this.#wasClean;
  }

  /** The close code the server sent, 1005 when its close frame had none, 1006 when none arrived. */
  get code(): number {
    return this.#code;
  }

  /** The close reason the server sent, or "". */
  get reason(): string {
    return this.#reason;
  }

  get [Symbol.toStringTag](): string {
    return 'CloseEvent';
  }
}

for (const name of ['wasClean', 'code', 'reason']) {
  Object.defineProperty(CloseEvent.prototype, name, { enumerable: true });
}

/** Web IDL `unsigned short` conversion (no [Clamp], no [EnforceRange]): modulo 2^16. */
function toUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  const truncated = Math.trunc(n);
  return ((truncated % 0x10000) + 0x10000) % 0x10000;
}
