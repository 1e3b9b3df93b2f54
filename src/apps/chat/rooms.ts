import { checkNick, checkRoom, nickKey } from './names.js';
import { chatError, HISTORY_LENGTH, type ChatError, type ChatMessage } from './protocol.js';

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
  /** Messages kept per room and given to newcomers. Default 50. */
  historyLength?: number;
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
      history: readonly ChatMessage[];
      presence: string[];
      /** The room (or nickname) this member had before, if the join moved it. */
      departure: Departure | null;
    }
  | { ok: false; error: ChatError };

export type PostOutcome = { ok: true; message: ChatMessage } | { ok: false; error: ChatError };

interface Room {
  /** By nickKey. */
  members: Map<string, { nick: string; member: unknown }>;
  history: ChatMessage[];
}

export class ChatRooms<Member> {
  private readonly rooms = new Map<string, Room>();
  private readonly memberships = new Map<Member, Membership>();
  /** Empty rooms with history, in the order they emptied. */
  private readonly idle = new Set<string>();
  private readonly historyLength: number;
  private readonly maxIdleRooms: number;
  private readonly now: () => number;
  private readonly newId: () => string;

  constructor(options: ChatRoomsOptions = {}) {
    this.historyLength = options.historyLength ?? HISTORY_LENGTH;
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
      target = { members: new Map(), history: [] };
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
      history: target.history.slice(),
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
    const history = this.rooms.get(membership.room)!.history;
    history.push(message);
    if (history.length > this.historyLength) history.splice(0, history.length - this.historyLength);
    return { ok: true, message };
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

  /** The room's kept messages, oldest first. */
  history(room: string): readonly ChatMessage[] {
    return this.rooms.get(room)?.history.slice() ?? [];
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
      this.rooms.delete(name);
      return;
    }
    this.idle.add(name);
    while (this.idle.size > this.maxIdleRooms) {
      const oldest = this.idle.values().next().value as string;
      this.idle.delete(oldest);
      this.rooms.delete(oldest);
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
