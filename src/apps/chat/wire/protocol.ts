/**
 * The chat's protocol (documented for people in ../PROTOCOL.md): JSON text
 * messages, and binary messages carrying images. The shapes of the messages
 * both ways, the limits, and the parsing of what a client sends. Pure: no
 * sockets, no clock, no Node modules, imports only this folder: the page
 * loads it compiled (/chat/wire/protocol.js) for the same limits.
 */
import { unwrap } from './envelope.js';
import { IMAGE_EXTENSIONS, sniffImageType, type ImageMime } from './image-type.js';

export type { ImageMime } from './image-type.js';

/** Largest client text message handled (UTF-8 bytes of the JSON text); bigger ones get a `too_large` error. */
export const MAX_MESSAGE_BYTES = 10 * 1024;
/**
 * Largest text message tolerated: a bigger one closes the connection with
 * 1009 (RFC 6455 §7.4.1, "message too big"). Between the two limits a client
 * gets an error and stays connected.
 */
export const MAX_FRAME_BYTES = 16 * 1024;
/** Largest image (its bytes, without the envelope); bigger ones get a `too_large` error. */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** Largest header of a client's binary message, in bytes. */
export const MAX_IMAGE_HEADER_BYTES = 2048;
/**
 * Largest header of the server's binary message that a reader accepts (the
 * server itself reading the room's stored images, and the page): it holds
 * at most a 255-character name and a few short fields, far below this.
 */
export const MAX_SERVER_IMAGE_HEADER_BYTES = 8192;
/** Longest file name shown with an image, in characters (code points): what file systems allow. */
export const MAX_IMAGE_NAME_LENGTH = 255;
/**
 * Largest WebSocket message of either kind: the route's `maxMessageSize`,
 * so anything bigger is refused by the protocol layer with 1009 before it
 * is buffered whole. It leaves room above the largest image and its
 * envelope, so an image somewhat over 5 MB gets a `too_large` error and the
 * connection stays; a text message this big is read before it is refused.
 */
export const MAX_WIRE_MESSAGE_BYTES = 6 * 1024 * 1024;
/** Messages a newcomer receives from the room's past. */
export const HISTORY_LENGTH = 50;
/**
 * The protocol's version, sent in `joined`. 2: room messages carry their
 * position (epoch, offset), `join` takes `since` and `session`, `message`
 * takes a client `id`, `typing`, `resumed`, `history.missed`, and state
 * shared across server processes (PROTOCOL.md).
 */
export const PROTOCOL_VERSION = 2;
/** The shortest gap between two `typing` broadcasts of one member, ms: more often is ignored. */
export const TYPING_INTERVAL_MS = 2000;
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
  | 'empty_message'
  | 'unsupported_image'
  | 'unavailable';

export interface ChatError {
  code: ChatErrorCode;
  message: string;
}

// ---- client to server -------------------------------------------------------

/** A place in a room's sequence of messages (PROTOCOL.md, "Positions"). */
export interface Position {
  epoch: string;
  offset: number;
}

export interface JoinRequest {
  type: 'join';
  nick: string;
  /** Default `general`. */
  room?: string;
  /** The last position the client saw in this room: resume after it instead of receiving the history. */
  since?: Position;
  /**
   * A random token of the page (not of the connection): a nickname held by
   * the same session on a connection the server has not yet seen close is
   * taken over rather than refused, so a reconnect keeps its nickname.
   */
  session?: string;
}

export interface MessageRequest {
  type: 'message';
  text: string;
  /** The client's id of the message: echoed as `clientId`; a resend with the same id is not posted twice. */
  id?: string;
}

export interface TypingRequest {
  type: 'typing';
}

export interface LeaveRequest {
  type: 'leave';
}

export interface PingRequest {
  type: 'ping';
}

export type ClientMessage = JoinRequest | MessageRequest | LeaveRequest | PingRequest | TypingRequest;

/** An image a client sends: the header of its binary message, checked, and the image's bytes. */
export interface ImageUpload {
  /** The client's own id for the upload, echoed in the broadcast and in errors about it. */
  clientId?: string;
  /** For display only; the server never trusts it for the type. */
  name: string;
  /** From the bytes. */
  mime: ImageMime;
  bytes: Uint8Array;
}

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
  /** The sender's id for the message, when it gave one. */
  clientId?: string;
}

/** An image as the server stamped it: the header of its binary message, and an entry in `history`. */
export interface ChatImage {
  /** From the same source as chat message ids. */
  id: string;
  room: string;
  nick: string;
  time: number;
  mime: ImageMime;
  /** Bytes of the image. */
  size: number;
  name: string;
  /** The sender's id for the upload, when it gave one. */
  clientId?: string;
}

/** What `history` lists: chat messages, and images (they have `mime`, and their bytes follow in binary messages). */
export type HistoryEntry = ChatMessage | ChatImage;

/** The header of the server's binary message carrying an image. */
export type ImageHeader = { type: 'image' } & ChatImage;

export type ServerMessage =
  | { type: 'joined'; room: string; nick: string; version: number }
  /**
   * `epoch`/`offset`: the room's position the history describes (room
   * messages after it follow). `missed`: the client asked to resume and
   * could not be (`since` too old, or the room's store lost its data).
   */
  | { type: 'history'; room: string; messages: readonly HistoryEntry[]; epoch: string; offset: number; missed?: boolean }
  /** A resumption succeeded: the `replayed` messages after the client's `since` came just before. */
  | { type: 'resumed'; room: string; epoch: string; offset: number; replayed: number }
  | { type: 'typing'; room: string; nick: string }
  /** A resent message (same client id) that was posted already: its broadcast is in the room's sequence. */
  | { type: 'duplicate'; room: string; id: string }
  | { type: 'presence'; room: string; nicks: readonly string[] }
  | ({ type: 'message' } & ChatMessage)
  | { type: 'notice'; event: 'join' | 'leave'; room: string; nick: string; time: number }
  | { type: 'left'; room: string }
  | { type: 'pong' }
  /** `id`: the client's id of the image the error is about. */
  | ({ type: 'error'; request?: string; id?: string } & ChatError);

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
      const since = record['since'];
      const session = record['session'];
      if (typeof nick !== 'string') return bad('"join" needs a "nick" string.');
      if (room !== undefined && typeof room !== 'string') return bad('"room" must be a string.');
      if (session !== undefined && (typeof session !== 'string' || !CLIENT_ID_PATTERN.test(session))) {
        return bad('"session" must be 1 to 64 of A-Z, a-z, 0-9, "_", ".", ":" or "-".');
      }
      const join: JoinRequest = room === undefined ? { type, nick } : { type, nick, room };
      if (since !== undefined) {
        const position = readPosition(since);
        if (position === null) return bad('"since" must be {"epoch": string, "offset": a whole number >= 0}.');
        join.since = position;
      }
      if (session !== undefined) join.session = session as string;
      return { ok: true, message: join };
    }
    case 'message': {
      const body = record['text'];
      const id = record['id'];
      if (typeof body !== 'string') return bad('"message" needs a "text" string.');
      if (id !== undefined && (typeof id !== 'string' || !CLIENT_ID_PATTERN.test(id))) {
        return bad('"id" must be 1 to 64 of A-Z, a-z, 0-9, "_", ".", ":" or "-".');
      }
      return { ok: true, message: id === undefined ? { type, text: body } : { type, text: body, id: id as string } };
    }
    case 'leave':
    case 'ping':
    case 'typing':
      return { ok: true, message: { type } };
    default:
      return {
        ok: false,
        error: chatError('unknown_type', `Unknown message type ${JSON.stringify(type.slice(0, 40))}; use join, message, typing, leave or ping.`),
        request: type.slice(0, 40),
      };
  }
}

function readPosition(value: unknown): Position | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { epoch, offset } = value as Record<string, unknown>;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 64) return null;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return null;
  return { epoch, offset };
}

/** What `parseImageUpload` found: an image to post, or the error to answer (with the upload's id when it had one). */
export type ParsedImage = { ok: true; upload: ImageUpload } | { ok: false; error: ChatError; request?: string; id?: string };

/** A client's id for an upload: short, and plain enough to echo anywhere. */
const CLIENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Control characters and bidirectional overrides: a name must not reorder or hide the text around it. */
const UNSHOWN_CHARACTERS = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/**
 * The type and client id of a text message refused before it is handled
 * (the message rate), so a page can tell which of its pending messages was
 * not sent. Only messages within the text ceiling are read.
 */
export function peekMessage(text: string): { request?: string; id?: string } {
  if (text.length > MAX_FRAME_BYTES) return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
    const { type, id } = value as Record<string, unknown>;
    if (type !== 'message') return {};
    return typeof id === 'string' && CLIENT_ID_PATTERN.test(id) ? { request: type, id } : { request: type };
  } catch {
    return {};
  }
}

/**
 * The client's id of the upload in a binary message, if it has a readable
 * and valid one: for answering a message refused before it is parsed (the
 * message rate), so the client can still tell which upload failed.
 */
export function peekImageId(message: Uint8Array): string | undefined {
  const envelope = unwrap(message, MAX_IMAGE_HEADER_BYTES);
  if (!envelope.ok) return undefined;
  const id = envelope.header['id'];
  return typeof id === 'string' && CLIENT_ID_PATTERN.test(id) ? id : undefined;
}

/**
 * Parse one binary message from a client: the envelope (envelope.ts), its
 * header `{"type":"image","id"?,"name"?}`, the size, and the image type from
 * the bytes themselves (image-type.ts). A missing name becomes `image.<ext>`.
 */
export function parseImageUpload(message: Uint8Array): ParsedImage {
  const envelope = unwrap(message, MAX_IMAGE_HEADER_BYTES);
  if (!envelope.ok) return { ok: false, error: chatError('invalid_message', envelope.reason) };
  const header = envelope.header;
  const type = header['type'] as string;
  if (type !== 'image') {
    return {
      ok: false,
      error: chatError('unknown_type', `Unknown binary message type ${JSON.stringify(type.slice(0, 40))}; binary messages are images.`),
      request: type.slice(0, 40),
    };
  }
  const rawId = header['id'];
  if (rawId !== undefined && (typeof rawId !== 'string' || !CLIENT_ID_PATTERN.test(rawId))) {
    return { ok: false, error: chatError('invalid_message', '"id" must be 1 to 64 of A-Z, a-z, 0-9, "_", ".", ":" or "-".'), request: type };
  }
  const clientId = rawId as string | undefined;
  const fail = (error: ChatError): ParsedImage =>
    clientId === undefined ? { ok: false, error, request: type } : { ok: false, error, request: type, id: clientId };
  const rawName = header['name'];
  if (rawName !== undefined && typeof rawName !== 'string') return fail(chatError('invalid_message', '"name" must be a string.'));
  const name = (rawName ?? '').normalize('NFC').replace(UNSHOWN_CHARACTERS, '').trim();
  if ([...name].length > MAX_IMAGE_NAME_LENGTH) {
    return fail(chatError('invalid_message', `A file name may have at most ${MAX_IMAGE_NAME_LENGTH} characters.`));
  }
  const bytes = envelope.payload;
  if (bytes.length > MAX_IMAGE_BYTES) {
    return fail(chatError('too_large', `An image may have at most ${MAX_IMAGE_BYTES / (1024 * 1024)} MB; that one was not sent.`));
  }
  const mime = sniffImageType(bytes);
  if (mime === null) {
    return fail(
      chatError('unsupported_image', 'That file is not a PNG, JPEG, GIF or WebP image (told from its contents, not its name); it was not sent.'),
    );
  }
  const upload: ImageUpload = { name: name === '' ? `image.${IMAGE_EXTENSIONS[mime]}` : name, mime, bytes };
  if (clientId !== undefined) upload.clientId = clientId;
  return { ok: true, upload };
}
