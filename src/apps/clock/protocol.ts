/**
 * The clock's messages, the classic exercise's plain-text requests with
 * JSON replies.
 *
 * Client to server, text messages (surrounding white space and letter case
 * ignored):
 * - `date`: send me the current date and time now and then every interval
 *   (2 s) until I say `stop` or leave. Sent while already ticking, it starts
 *   the rhythm afresh from that moment.
 * - `stop`: stop sending. Harmless when not ticking.
 *
 * Server to client, one JSON object per text message, told apart by `type`:
 * - `{"type":"started","intervalMs":2000}`: the answer to `date`, followed at
 *   once by the first `time`.
 * - `{"type":"time","iso":"2025-01-31T12:00:00.000Z","epochMs":1738324800000}`:
 *   the server's current date and time, as ISO 8601 in UTC and as
 *   milliseconds since the Unix epoch; the page shows it in local time.
 * - `{"type":"stopped"}`: the answer to `stop`.
 * - `{"type":"error","code":"unknown-command"|"binary-not-supported","message":"..."}`:
 *   the request was not understood; the connection stays open.
 */

export type ClockCommand = 'date' | 'stop';

export type ClockErrorCode = 'unknown-command' | 'binary-not-supported';

export type ClockReply =
  | { type: 'started'; intervalMs: number }
  | { type: 'time'; iso: string; epochMs: number }
  | { type: 'stopped' }
  | { type: 'error'; code: ClockErrorCode; message: string };

/** How much of an unknown command is quoted back in the error. */
const QUOTE_LIMIT = 40;

export type ParsedRequest = { ok: true; command: ClockCommand } | { ok: false; code: ClockErrorCode; message: string };

/** Read one received message. */
export function parseRequest(data: string | Uint8Array, isBinary: boolean): ParsedRequest {
  if (isBinary || typeof data !== 'string') {
    return { ok: false, code: 'binary-not-supported', message: 'send the text "date" or "stop"' };
  }
  const command = data.trim().toLowerCase();
  if (command === 'date' || command === 'stop') return { ok: true, command };
  const quoted = data.length > QUOTE_LIMIT ? `${data.slice(0, QUOTE_LIMIT)}…` : data;
  return { ok: false, code: 'unknown-command', message: `unknown command ${JSON.stringify(quoted)}: send "date" or "stop"` };
}

export function timeReply(epochMs: number): ClockReply {
  return { type: 'time', iso: new Date(epochMs).toISOString(), epochMs };
}
