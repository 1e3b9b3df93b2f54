/**
 * The chat's binary envelope, the same both ways (PROTOCOL.md, "Images"):
 *
 *   4 bytes   N, the header's length in bytes, unsigned big-endian
 *   N bytes   the header: one JSON object in UTF-8, with a string `type`
 *   the rest  the payload (the image's bytes), untouched
 *
 * A length prefix rather than a separator: the payload is arbitrary bytes,
 * and the header is found without scanning it. Pure: Uint8Array and
 * TextEncoder/TextDecoder only. The server and the page (compiled, served
 * as /chat/wire/envelope.js) use this same module.
 */

export const ENVELOPE_PREFIX_BYTES = 4;

export type Unwrapped =
  | { ok: true; header: Record<string, unknown>; payload: Uint8Array }
  /** `reason`: a sentence saying what is wrong with the envelope. */
  | { ok: false; reason: string };

const utf8 = new TextEncoder();
/** `fatal`: a header that is not valid UTF-8 is refused, not patched with U+FFFD. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Header and payload in one buffer, ready to send. */
export function wrap(header: { type: string }, payload: Uint8Array): Uint8Array {
  const head = utf8.encode(JSON.stringify(header));
  const out = new Uint8Array(ENVELOPE_PREFIX_BYTES + head.length + payload.length);
  new DataView(out.buffer).setUint32(0, head.length, false);
  out.set(head, ENVELOPE_PREFIX_BYTES);
  out.set(payload, ENVELOPE_PREFIX_BYTES + head.length);
  return out;
}

/**
 * Split an envelope into its header (parsed, an object with a string
 * `type`) and payload, a view into `bytes` (no copy). Headers over
 * `maxHeaderBytes` are refused before being read.
 */
export function unwrap(bytes: Uint8Array, maxHeaderBytes: number): Unwrapped {
  if (bytes.length < ENVELOPE_PREFIX_BYTES) return { ok: false, reason: 'A binary message starts with a 4-byte header length.' };
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, false);
  if (length > maxHeaderBytes) return { ok: false, reason: `A binary message's header may have at most ${maxHeaderBytes} bytes.` };
  const end = ENVELOPE_PREFIX_BYTES + length;
  if (end > bytes.length) return { ok: false, reason: 'The header length runs past the end of the binary message.' };
  let header: unknown;
  try {
    header = JSON.parse(strictUtf8.decode(bytes.subarray(ENVELOPE_PREFIX_BYTES, end)));
  } catch {
    return { ok: false, reason: "A binary message's header must be JSON in UTF-8." };
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header) || typeof (header as Record<string, unknown>)['type'] !== 'string') {
    return { ok: false, reason: 'A binary message\'s header must be a JSON object with a "type".' };
  }
  return { ok: true, header: header as Record<string, unknown>, payload: bytes.subarray(end) };
}
