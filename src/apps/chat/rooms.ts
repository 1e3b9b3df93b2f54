import { checkNick, checkRoom, nickKey } from './names.js';
import {
  chatError,
  HISTORY_LENGTH,
  type ChatError,
  type ChatImage,
  type ChatMessage,
  type HistoryEntry,
  type ImageUpload,
} from './protocol.js';

/**
 * The chat's state, without sockets: who is in which room under which
 * nickname, and each room's recent messages. A `Member` is whatever the
 * caller uses to tell its clients apart (a connection); this module never
 * looks inside it.
 *
 * It is per process. Broadcasts travel through the pub/sub layer and so can
 * cross processes once a shared broker carries them, but presence and
 * history stay local to the process that holds them (PROTOCOL.md says so).
 */
export interface ChatRoomsOptions {
  /** Messages (images included) kept per room and given to newcomers. Default 50. */
  historyLength?: number;
  /**
   * Bytes of images (as stored: the framed envelope) a room's history may
   * hold; past it, the room's oldest images leave its history, its text
   * stays. Default 10 MiB.
   */
  roomImageBytes?: number;
  /** The same across all rooms, idle ones included; past it, the oldest images of any room go. Default 64 MiB. */
  totalImageBytes?: number;
  /**
   * Rooms nobody is in whose history is still kept, oldest emptied
   * forgotten first. Bounds memory against someone creating room after
   * room. Default 100.
   */
  maxIdleRooms?: number;
  /** Clock for message times, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Message ids. Default: a random per-process prefix and a counter. */
  newId?: () => string;
}

export interface Membership {
  room: string;
  nick: string;
}

/** Someone left a room: who, and who is still there. */
export interface Departure {
  room: string;
  nick: string;
  time: number;
  presence: string[];
}

export type JoinOutcome =
  | {
      ok: true;
      room: string;
      nick: string;
      time: number;
      /** The room's past, oldest first, not including anything of this join. */
      history: readonly HistoryEntry[];
      /** What was kept for each image in `history` (see `postImage`), in the same order. */
      images: readonly Uint8Array[];
      presence: string[];
      /** The room (or nickname) this member had before, if the join moved it. */
      departure: Departure | null;
    }
  | { ok: false; error: ChatError };

export type PostOutcome = { ok: true; message: ChatMessage } | { ok: false; error: ChatError };

export type PostImageOutcome = { ok: true; image: ChatImage; stored: Uint8Array } | { ok: false; error: ChatError };

/** A history entry; an image's comes with the bytes kept for it. */
interface Entry {
  message: HistoryEntry;
  stored: Uint8Array | null;
}

interface Room {
  /** By nickKey. */
  members: Map<string, { nick: string; member: unknown }>;
  history: Entry[];
  /** Bytes of the images in `history`. */
  imageBytes: number;
}

export class ChatRooms<Member> {
  private readonly rooms = new Map<string, Room>();
  private readonly memberships = new Map<Member, Membership>();
  /** Empty rooms with history, in the order they emptied. */
  private readonly idle = new Set<string>();
  /** Ids of the images kept in any room's history, oldest first, with their room. */
  private readonly keptImages = new Map<string, string>();
  private keptImageBytes = 0;
  private readonly historyLength: number;
  private readonly roomImageBytes: number;
  private readonly totalImageBytes: number;
  private readonly maxIdleRooms: number;
  private readonly now: () => number;
  private readonly newId: () => string;

  constructor(options: ChatRoomsOptions = {}) {
    this.historyLength = options.historyLength ?? HISTORY_LENGTH;
    this.roomImageBytes = options.roomImageBytes ?? 10 * 1024 * 1024;
    this.totalImageBytes = options.totalImageBytes ?? 64 * 1024 * 1024;
    this.maxIdleRooms = options.maxIdleRooms ?? 100;
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? createIdSource();
  }

  /**
   * Enter `room` (default `general`) as `nick`. A member already in a room
   * moves: the old membership ends (see `departure`) once the new one is
   * sure to succeed, so a refused join changes nothing.
   */
  join(member: Member, nick: string, room?: string): JoinOutcome {
    const checkedNick = checkNick(nick);
    if (!checkedNick.ok) return checkedNick;
    const checkedRoom = checkRoom(room);
    if (!checkedRoom.ok) return checkedRoom;
    const name = checkedRoom.value;
    const wanted = checkedNick.value;
    const key = nickKey(wanted);

    const current = this.memberships.get(member);
    if (current !== undefined && current.room === name && current.nick === wanted) {
      return { ok: false, error: chatError('already_joined', `You are already in #${name} as ${wanted}.`) };
    }
    const holder = this.rooms.get(name)?.members.get(key);
    if (holder !== undefined && holder.member !== member) {
      return { ok: false, error: chatError('nick_taken', `The nickname ${holder.nick} is taken in #${name}; pick another.`) };
    }

    const departure = current === undefined ? null : this.depart(member, name);
    let target = this.rooms.get(name);
    if (target === undefined) {
      target = { members: new Map(), history: [], imageBytes: 0 };
      this.rooms.set(name, target);
    }
    this.idle.delete(name);
    target.members.set(key, { nick: wanted, member });
    this.memberships.set(member, { room: name, nick: wanted });
    return {
      ok: true,
      room: name,
      nick: wanted,
      time: this.now(),
      history: target.history.map((entry) => entry.message),
      images: target.history.flatMap((entry) => (entry.stored === null ? [] : [entry.stored])),
      presence: this.presence(name),
      departure,
    };
  }

  /** End the member's membership; null if it was in no room. */
  leave(member: Member): Departure | null {
    return this.depart(member, null);
  }

  /** Stamp a message with id, sender and time, and keep it in the room's history. */
  post(member: Member, text: string): PostOutcome {
    const membership = this.memberships.get(member);
    if (membership === undefined) return { ok: false, error: chatError('not_joined', 'Join a room before sending messages.') };
    if (!/\S/u.test(text)) return { ok: false, error: chatError('empty_message', 'An empty message is not sent.') };
    const message: ChatMessage = { id: this.newId(), room: membership.room, nick: membership.nick, text, time: this.now() };
    this.keep(membership.room, { message, stored: null });
    return { ok: true, message };
  }

  /**
   * Stamp an image with id, sender and time; `store` turns it into what the
   * history keeps for it (the caller's framed message, so newcomers get the
   * very bytes the room got), counted against the image budgets.
   */
  postImage(member: Member, upload: Omit<ImageUpload, 'bytes'> & { size: number }, store: (image: ChatImage) => Uint8Array): PostImageOutcome {
    const membership = this.memberships.get(member);
    if (membership === undefined) return { ok: false, error: chatError('not_joined', 'Join a room before sending images.') };
    const image: ChatImage = {
      id: this.newId(),
      room: membership.room,
      nick: membership.nick,
      time: this.now(),
      mime: upload.mime,
      size: upload.size,
      name: upload.name,
    };
    if (upload.clientId !== undefined) image.clientId = upload.clientId;
    const stored = store(image);
    this.keep(membership.room, { message: image, stored });
    return { ok: true, image, stored };
  }

  membership(member: Member): Membership | undefined {
    return this.memberships.get(member);
  }

  /** Nicknames in the room, sorted regardless of case. */
  presence(room: string): string[] {
    const members = this.rooms.get(room)?.members;
    if (members === undefined) return [];
    return [...members.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry.nick);
  }

  /** The room's kept messages and images, oldest first. */
  history(room: string): readonly HistoryEntry[] {
    return this.rooms.get(room)?.history.map((entry) => entry.message) ?? [];
  }

  /** Bytes kept for images: in one room's history, or in all rooms'. */
  imageBytes(room?: string): number {
    return room === undefined ? this.keptImageBytes : (this.rooms.get(room)?.imageBytes ?? 0);
  }

  /** Add to a room's history; then the oldest entries beyond the length, and the oldest images beyond the budgets, go. */
  private keep(name: string, entry: Entry): void {
    const room = this.rooms.get(name)!;
    room.history.push(entry);
    if (entry.stored !== null) {
      room.imageBytes += entry.stored.length;
      this.keptImageBytes += entry.stored.length;
      this.keptImages.set(entry.message.id, name);
    }
    if (room.history.length > this.historyLength) {
      for (const gone of room.history.splice(0, room.history.length - this.historyLength)) this.release(room, gone);
    }
    while (room.imageBytes > this.roomImageBytes) {
      const index = room.history.findIndex((candidate) => candidate.stored !== null);
      this.release(room, room.history.splice(index, 1)[0]!);
    }
    while (this.keptImageBytes > this.totalImageBytes) {
      const [id, roomName] = this.keptImages.entries().next().value as [string, string];
      const holder = this.rooms.get(roomName)!;
      this.release(holder, holder.history.splice(holder.history.findIndex((candidate) => candidate.message.id === id), 1)[0]!);
    }
  }

  /** Account for an entry that left a room's history. */
  private release(room: Room, entry: Entry): void {
    if (entry.stored === null) return;
    room.imageBytes -= entry.stored.length;
    this.keptImageBytes -= entry.stored.length;
    this.keptImages.delete(entry.message.id);
  }

  /** Forget a room, history and all. */
  private forget(name: string): void {
    const room = this.rooms.get(name);
    if (room === undefined) return;
    for (const entry of room.history) this.release(room, entry);
    this.rooms.delete(name);
  }

  /** Rooms with members or kept history. */
  roomNames(): string[] {
    return [...this.rooms.keys()];
  }

  /** Leave; `staying` names a room the member is about to re-enter (a new nickname), which must not be retired meanwhile. */
  private depart(member: Member, staying: string | null): Departure | null {
    const membership = this.memberships.get(member);
    if (membership === undefined) return null;
    this.memberships.delete(member);
    const room = this.rooms.get(membership.room)!;
    room.members.delete(nickKey(membership.nick));
    if (room.members.size === 0 && membership.room !== staying) this.retire(membership.room, room);
    return { room: membership.room, nick: membership.nick, time: this.now(), presence: this.presence(membership.room) };
  }

  /** A room just emptied: forget it, or keep its history among a bounded number of idle rooms. */
  private retire(name: string, room: Room): void {
    if (room.history.length === 0 || this.maxIdleRooms <= 0) {
      this.forget(name);
      return;
    }
    this.idle.add(name);
    while (this.idle.size > this.maxIdleRooms) {
      const oldest = this.idle.values().next().value as string;
      this.idle.delete(oldest);
      this.forget(oldest);
    }
  }
}

/**
 * Ids unique across processes without coordination: a random prefix drawn
 * once per source and a counter, both base 36 ("k3x9q1-2s").
 */
export function createIdSource(): () => string {
  const bytes = new Uint8Array(6);
  globalThis.crypto.getRandomValues(bytes);
  const prefix = [...bytes].map((byte) => (byte % 36).toString(36)).join('');
  let counter = 0;
  return () => `${prefix}-${(++counter).toString(36)}`;
}
