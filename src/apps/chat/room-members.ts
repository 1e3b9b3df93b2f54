/**
 * Who is in a room, under which nickname, across every server process: the
 * pub/sub presence of the room's topic, one member per nickname (its id is
 * the nickname's case-folded key), claimed atomically so that two
 * processes racing for one nickname cannot both win. A member lives while
 * its process refreshes it (PROTOCOL.md, "Several server processes").
 */
import type { Presence, PresenceData, PresenceEvent, PresenceMember } from '../../pubsub/presence.js';
import { roomTopic } from './history.js';
import { nickKey } from './names.js';

/** What a member's presence entry holds. */
interface Holder {
  /** As shown. */
  nick: string;
  /** The page's session token: the same person coming back on a new connection. */
  session: string;
  /** The connection's token: which connection holds the nickname now. */
  owner: string;
}

/**
 * `claimed`: the nickname was free. `resumed`: the same session (or the
 * same connection) held it, on a connection not yet seen closing (a
 * reconnect faster than the old connection's end, or a server process that
 * died): this connection takes it over. `taken`: someone else has it.
 */
export type ClaimOutcome = 'claimed' | 'resumed' | 'taken';

export class RoomMembers {
  constructor(private readonly presence: Presence) {}

  async claim(room: string, nick: string, session: string, owner: string): Promise<ClaimOutcome> {
    const topic = roomTopic(room);
    const key = nickKey(nick);
    const data: Holder & PresenceData = { nick, session, owner };
    // Twice at most: a holder seen by the claim may have left before the read.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.presence.claim(topic, key, data)) return 'claimed';
      const holder = await this.holder(room, key);
      if (holder === null) continue;
      if (holder.session !== session && holder.owner !== owner) return 'taken';
      // Overwritten with this connection as owner: the old connection's process stops refreshing it (its claim is lost).
      await this.presence.join(topic, key, data);
      return 'resumed';
    }
    return 'taken';
  }

  /** Whether the connection `owner` still holds the nickname (not taken over by a newer connection of its session). */
  async holds(room: string, nick: string, owner: string): Promise<boolean> {
    return (await this.holder(room, nickKey(nick)))?.owner === owner;
  }

  /** Give the nickname up, unless a newer connection of the session took it over meanwhile (checked atomically). */
  release(room: string, nick: string, session: string, owner: string): Promise<void> {
    const data: Holder & PresenceData = { nick, session, owner };
    return this.presence.leave(roomTopic(room), nickKey(nick), data);
  }

  /** The room's nicknames, sorted regardless of case. */
  async nicks(room: string): Promise<string[]> {
    const members = await this.presence.members(roomTopic(room));
    return members
      .map((member) => [member.id, holderOf(member)?.nick ?? member.id] as const)
      .sort(([a], [b]) =>
        a < b ? -1
        : a > b ? 1
        : 0,
      )
      .map(([, nick]) => nick);
  }

  /** The room's presence events (joins, leaves, expiries), from every process. */
  watch(room: string, listener: (event: PresenceEvent) => void): () => void {
    return this.presence.watch(roomTopic(room), listener);
  }

  private async holder(room: string, key: string): Promise<Holder | null> {
    const member = (await this.presence.members(roomTopic(room))).find((candidate) => candidate.id === key);
    return member === undefined ? null : holderOf(member);
  }
}

/** The nickname a presence event's member shows, if it is one of the chat's. */
export function holderOf(member: PresenceMember): Holder | null {
  const data = member.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const { nick, session, owner } = data as Record<string, PresenceData>;
  if (typeof nick !== 'string' || typeof session !== 'string' || typeof owner !== 'string') return null;
  return { nick, session, owner };
}
