/**
 * The chat's JSON protocol (documented for people in PROTOCOL.md): the
 * shapes of the messages both ways, the limits, and the parsing of what a
 * client sends. Pure: no sockets, no clock.
 */

/** Largest client message handled (UTF-8 bytes of the JSON text); bigger ones get a `too_large` error. */
export const MAX_MESSAGE_BYTES = 10 * 1024;
/**
 * Largest WebSocket message accepted at all: the route's `maxMessageSize`,
 * so anything bigger is refused by the protocol layer with 1009 (RFC 6455
 * §7.4.1, "message too big") before it is buffered whole. Between the two
 * limits a client gets an error and stays connected.
 */
export const MAX_FRAME_BYTES = 16 * 1024;
/** Messages a newcomer receives from the room's past. */
export const HISTORY_LENGTH = 50;
/** The room joined when `join` names none. */
export const DEFAULT_ROOM = 'general';

/** Machine-readable error codes; each error also carries a human sentence. */
export type ChatErrorCode =
  | 'invalid_json'
  | 'invalid_message'
  | 'unknown_type'
  | 'too_large'
  | 'rate_limited'
  | 'invalid_nick'
  | 'invalid_room'
  | 'nick_taken'
  | 'not_joined'
  | 'already_joined'
  | 'empty_message';

export interface ChatError {
  code: ChatErrorCode;
  message: string;
}

// ---- client to server -------------------------------------------------------

export interface JoinRequest {
  type: 'join';
  nick: string;
  /** Default `general`. */
  room?: string;
}

export interface MessageRequest {
  type: 'message';
  text: string;
}

export interface LeaveRequest {
  type: 'leave';
}

export interface PingRequest {
  type: 'ping';
}

export type ClientMessage = JoinRequest | MessageRequest | LeaveRequest | PingRequest;

// ---- server to client -------------------------------------------------------

/** A chat message as the server stamped it: in `message` events and in `history`. */
export interface ChatMessage {
  /** Unique across the server's life (and, with a per-process prefix, across processes). */
  id: string;
  room: string;
  nick: string;
  text: string;
  /** Milliseconds since the Unix epoch, by the server's clock. */
  time: number;
}

export type ServerMessage =
  | { type: 'joined'; room: string; nick: string }
  | { type: 'history'; room: string; messages: readonly ChatMessage[] }
  | { type: 'presence'; room: string; nicks: readonly string[] }
  | ({ type: 'message' } & ChatMessage)
  | { type: 'notice'; event: 'join' | 'leave'; room: string; nick: string; time: number }
  | { type: 'left'; room: string }
  | { type: 'pong' }
  | ({ type: 'error'; request?: string } & ChatError);

export function encode(message: ServerMessage): string {
  return JSON.stringify(message);
}

export function chatError(code: ChatErrorCode, message: string): ChatError {
  return { code, message };
}

// ---- parsing ----------------------------------------------------------------

export type Parsed =
  | { ok: true; message: ClientMessage }
  /** `request` is the offending message's type, when it had a readable one. */
  | { ok: false; error: ChatError; request?: string };

/**
 * Parse one text message from a client. Field types are checked here;
 * the rules on their values (nickname and room syntax, blank text) belong
 * to the room logic, which reports them with their own codes.
 */
export function parseClientMessage(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: chatError('invalid_json', 'That was not valid JSON.') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: chatError('invalid_message', 'A message must be a JSON object with a "type".') };
  }
  const record = value as Record<string, unknown>;
  const type = record['type'];
  if (typeof type !== 'string') {
    return { ok: false, error: chatError('invalid_message', 'A message must be a JSON object with a "type".') };
  }
  const bad = (message: string): Parsed => ({ ok: false, error: chatError('invalid_message', message), request: type });
  switch (type) {
    case 'join': {
      const nick = record['nick'];
      const room = record['room'];
      if (typeof nick !== 'string') return bad('"join" needs a "nick" string.');
      if (room !== undefined && typeof room !== 'string') return bad('"room" must be a string.');
      return { ok: true, message: room === undefined ? { type, nick } : { type, nick, room } };
    }
    case 'message': {
      const body = record['text'];
      if (typeof body !== 'string') return bad('"message" needs a "text" string.');
      return { ok: true, message: { type, text: body } };
    }
    case 'leave':
    case 'ping':
      return { ok: true, message: { type } };
    default:
      return {
        ok: false,
        error: chatError('unknown_type', `Unknown message type ${JSON.stringify(type.slice(0, 40))}; use join, message, leave or ping.`),
        request: type.slice(0, 40),
      };
  }
}
