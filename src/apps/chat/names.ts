import { chatError, DEFAULT_ROOM, type ChatError } from './wire/protocol.js';

export const NICK_MAX_LENGTH = 24;
export const ROOM_MAX_LENGTH = 32;

/**
 * Letters, combining marks and digits of any script, plus `_ - .`; the
 * first character a letter or digit. No spaces or symbols: a nickname is
 * shown inline, next to text, and must not pass for anything else.
 */
const NICK_PATTERN = /^[\p{L}\p{N}][\p{L}\p{M}\p{N}_.-]*$/u;
/** Checked before lower-casing: non-ASCII letters that lower-case to ASCII (the Kelvin sign) stay out. */
const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]*$/i;

export type NameResult = { ok: true; value: string } | { ok: false; error: ChatError };

/**
 * A nickname as it will be shown: Unicode NFC (so the same name typed on
 * two keyboards is the same name), 1 to 24 characters (code points).
 */
export function checkNick(raw: string): NameResult {
  const nick = raw.normalize('NFC');
  const length = [...nick].length;
  if (length < 1 || length > NICK_MAX_LENGTH || !NICK_PATTERN.test(nick)) {
    return {
      ok: false,
      error: chatError(
        'invalid_nick',
        `A nickname has 1 to ${NICK_MAX_LENGTH} characters: letters, digits, "_", "-" or ".", starting with a letter or digit.`,
      ),
    };
  }
  return { ok: true, value: nick };
}

/** Nicknames are unique within a room regardless of case: "Ann" and "ann" are the same person. */
export function nickKey(nick: string): string {
  return nick.toLowerCase();
}

/** A room name, lower-cased: 1 to 32 of a-z, 0-9, "_" and "-", starting with a letter or digit. */
export function checkRoom(raw: string | undefined): NameResult {
  if (raw === undefined) return { ok: true, value: DEFAULT_ROOM };
  if (raw.length < 1 || raw.length > ROOM_MAX_LENGTH || !ROOM_PATTERN.test(raw)) {
    return {
      ok: false,
      error: chatError('invalid_room', `A room name has 1 to ${ROOM_MAX_LENGTH} characters: a-z, 0-9, "_" or "-", starting with a letter or digit.`),
    };
  }
  return { ok: true, value: raw.toLowerCase() };
}
