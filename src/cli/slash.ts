import { isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from '../protocol/close-code.js';
import { UsageFailure } from './args.js';

/**
 * Typed lines: a line starting with "/" is a command ("/ping hi"), "//"
 * escapes a message that itself starts with "/", anything else is a message.
 */

export type InputLine = { kind: 'message'; text: string } | { kind: 'command'; name: string; args: string };

export function parseInputLine(line: string): InputLine {
  if (line.startsWith('//')) return { kind: 'message', text: line.slice(1) };
  if (!line.startsWith('/')) return { kind: 'message', text: line };
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(line)!;
  return { kind: 'command', name: match[1]!.toLowerCase(), args: match[2]! };
}

/** Split off the first word: `"4000 see you"` -> `["4000", "see you"]`. */
export function firstWord(args: string): [string, string] {
  const match = /^(\S*)\s*([\s\S]*)$/.exec(args.trim())!;
  return [match[1]!, match[2]!];
}

/**
 * `[code [reason]]` for a close frame a person asks for. A testing tool may
 * send any code that is valid on the wire (RFC 6455 §7.4.1-§7.4.2: 1004-1006
 * and 1015 never are); the reason must fit in the 125-byte control payload
 * after the 2-byte code (§5.5).
 */
export function parseCloseArgs(args: string, fallback: number): { code: number; reason: string } {
  const [first, reason] = firstWord(args);
  let code = fallback;
  if (first !== '') {
    code = Number(first);
    if (!/^\d+$/.test(first) || !isValidWireCloseCode(code)) {
      throw new UsageFailure(`invalid close code ${first}: use 1000-1003, 1007-1011 or 3000-4999`);
    }
  }
  if (Buffer.byteLength(reason, 'utf8') > MAX_CLOSE_REASON_BYTES) {
    throw new UsageFailure(`close reason too long: at most ${MAX_CLOSE_REASON_BYTES} bytes`);
  }
  return { code, reason };
}
