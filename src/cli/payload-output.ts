/**
 * `--raw` output: standard output carries the received payloads and nothing
 * else, so it can feed another program. Text messages are written exactly
 * as received, one per line; with `--json`, each becomes one compact JSON
 * value on its own line (text that is not JSON becomes a JSON string), which
 * `jq` reads as a stream; with `--binary`, binary messages are written as
 * their bytes, back to back.
 */

export interface RawStyle {
  json: boolean;
  /** Write binary messages' bytes to the output (otherwise they are only noted). */
  binary: boolean;
}

/**
 * The bytes to write for one received message, or `null` when a binary
 * message has no place on the output in this style.
 */
export function rawPayload(data: string | Buffer, isBinary: boolean, style: RawStyle): string | Buffer | null {
  if (isBinary || typeof data !== 'string') {
    if (!style.binary) return null;
    return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  }
  if (!style.json) return `${data}\n`;
  return `${compactJson(data)}\n`;
}

/**
 * The text as one line of JSON: as received when it is JSON on one line
 * (no digits lost to re-serialising large numbers), re-serialised compactly
 * when it is JSON over several lines, a JSON string otherwise.
 */
export function compactJson(text: string): string {
  if (text.trim() !== '') {
    try {
      const value: unknown = JSON.parse(text);
      return /[\r\n]/.test(text) ? JSON.stringify(value) : text.trim();
    } catch {
      // Not JSON: fall through to a string, which is still one JSON value.
    }
  }
  return JSON.stringify(text);
}
