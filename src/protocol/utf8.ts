/**
 * Incremental UTF-8 validation (RFC 3629 §4, as required for text messages by
 * RFC 6455 §8.1). It keeps its state across calls so a text message split into
 * fragments is rejected in the fragment where the bad sequence appears, not at
 * the end of the message (§8.1: "MUST Fail the WebSocket Connection" as soon as
 * invalid data is seen).
 */
export class Utf8Validator {
  /** Continuation bytes still expected for the current character. */
  private pending = 0;
  /** Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4). */
  private low = 0x80;
  private high = 0xbf;

  /** Feed bytes; returns false at the first byte that cannot be part of valid UTF-8. */
  update(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    let i = start;
    let pending = this.pending;
    let low = this.low;
    let high = this.high;
    while (i < end) {
      if (pending === 0) {
        // ASCII runs are the common case: skip them without touching the state.
        while (i < end && bytes[i]! < 0x80) i++;
        if (i === end) break;
        const b = bytes[i++]!;
        if (b < 0xc2) return this.reject(); // continuation byte or overlong 2-byte lead
        if (b < 0xe0) {
          pending = 1;
          low = 0x80;
          high = 0xbf;
        } else if (b < 0xf0) {
          pending = 2;
          low = b === 0xe0 ? 0xa0 : 0x80; // E0: no overlong 3-byte forms
          high = b === 0xed ? 0x9f : 0xbf; // ED: no UTF-16 surrogates
        } else if (b < 0xf5) {
          pending = 3;
          low = b === 0xf0 ? 0x90 : 0x80; // F0: no overlong 4-byte forms
          high = b === 0xf4 ? 0x8f : 0xbf; // F4: nothing above U+10FFFF
        } else {
          return this.reject();
        }
      } else {
        const b = bytes[i++]!;
        if (b < low || b > high) return this.reject();
        pending--;
        low = 0x80;
        high = 0xbf;
      }
    }
    this.pending = pending;
    this.low = low;
    this.high = high;
    return true;
  }

  /** True when everything fed so far ends on a character boundary. */
  get complete(): boolean {
    return this.pending === 0;
  }

  reset(): void {
    this.pending = 0;
    this.low = 0x80;
    this.high = 0xbf;
  }

  private reject(): false {
    this.reset();
    return false;
  }
}

/** Whole-buffer check, for payloads that arrive in one piece (close reasons, single-frame messages). */
export function isValidUtf8(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  const validator = new Utf8Validator();
  return validator.update(bytes, start, end) && validator.complete;
}
