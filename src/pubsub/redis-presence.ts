import type { Redis as RedisClient } from 'ioredis';
import { BrokerError } from './broker-error.js';
import type { Presence, PresenceData, PresenceEvent, PresenceListener, PresenceMember } from './presence.js';
import { PRESENCE_CLAIM_SCRIPT, PRESENCE_JOIN_SCRIPT, PRESENCE_LEAVE_SCRIPT, PRESENCE_MEMBERS_SCRIPT } from './redis-scripts.js';

interface PresenceCommands {
  sockeyePresenceJoin(zset: string, hash: string, channel: string, ttlMs: number, ...idData: string[]): Promise<number>;
  sockeyePresenceClaim(zset: string, hash: string, channel: string, ttlMs: number, ...idData: string[]): Promise<number[]>;
  sockeyePresenceLeave(zset: string, hash: string, channel: string, id: string, data?: string): Promise<number>;
  sockeyePresenceMembers(zset: string, hash: string, channel: string): Promise<string[]>;
}

export interface RedisPresenceOptions {
  prefix: string;
  /** Entries expire this long after their node last refreshed them. */
  ttlMs: number;
  /** The command connection when it is ready, else null. */
  command: () => RedisClient | null;
  subscriber: () => RedisClient | null;
}

/**
 * Presence on Redis. Per topic: a sorted set of member ids scored by
 * expiry time, a hash of their data, and a channel for join and leave
 * events. Each node refreshes the members it added every third of the TTL;
 * each node watching a topic sweeps it on the same timer, and every read
 * of the members sweeps first, publishing a leave (`expired: true`) for
 * each entry whose node stopped refreshing it. So a node that dies without
 * a goodbye has its members gone within the TTL plus one sweep interval.
 */
export class RedisPresence implements Presence {
  private readonly options: RedisPresenceOptions;
  /** The members this node added, per topic (id -> data JSON): refreshed on the timer. */
  private readonly local = new Map<string, Map<string, string>>();
  /**
   * Of those, the ids this node claimed (per topic): refreshed by the claim
   * script, which never takes over an id someone else claimed meanwhile
   * (this node was cut off past the TTL); such an id is dropped from `local`.
   */
  private readonly claimed = new Map<string, Set<string>>();
  private readonly watchers = new Map<string, Set<PresenceListener>>();
  private readonly topicsByChannel = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(options: RedisPresenceOptions) {
    this.options = options;
  }

  /** @internal Called by the broker once its command connection exists. */
  defineScripts(client: RedisClient): void {
    client.defineCommand('sockeyePresenceJoin', { numberOfKeys: 2, lua: PRESENCE_JOIN_SCRIPT });
    client.defineCommand('sockeyePresenceClaim', { numberOfKeys: 2, lua: PRESENCE_CLAIM_SCRIPT });
    client.defineCommand('sockeyePresenceLeave', { numberOfKeys: 2, lua: PRESENCE_LEAVE_SCRIPT });
    client.defineCommand('sockeyePresenceMembers', { numberOfKeys: 2, lua: PRESENCE_MEMBERS_SCRIPT });
  }

  /**
   * Rejects with `WS_ERR_BROKER_UNAVAILABLE` while Redis is unreachable; the
   * member is still kept by this node and added on its next refresh.
   */
  async join(topic: string, id: string, data: PresenceData): Promise<void> {
    const json = JSON.stringify(data);
    let members = this.local.get(topic);
    if (members === undefined) this.local.set(topic, (members = new Map()));
    members.set(id, json);
    this.arm();
    const keys = this.keys(topic);
    await this.commands().sockeyePresenceJoin(keys.zset, keys.hash, keys.channel, this.options.ttlMs, id, json);
  }

  /**
   * One script in Redis checks and adds, so of two nodes racing for an id
   * one wins. Only a won claim is kept by this node (refreshed); one whose
   * answer was lost (Redis unreachable: rejects) expires by itself.
   */
  async claim(topic: string, id: string, data: PresenceData): Promise<boolean> {
    const json = JSON.stringify(data);
    const keys = this.keys(topic);
    const [won] = await this.commands().sockeyePresenceClaim(keys.zset, keys.hash, keys.channel, this.options.ttlMs, id, json);
    if (won !== 1) return false;
    let members = this.local.get(topic);
    if (members === undefined) this.local.set(topic, (members = new Map()));
    members.set(id, json);
    let ids = this.claimed.get(topic);
    if (ids === undefined) this.claimed.set(topic, (ids = new Set()));
    ids.add(id);
    this.arm();
    return true;
  }

  async leave(topic: string, id: string, data?: PresenceData): Promise<void> {
    const json = data === undefined ? undefined : JSON.stringify(data);
    // With data, this node stops refreshing the member only if it is the one with that data.
    if (json === undefined || this.local.get(topic)?.get(id) === json) this.forgetLocal(topic, id);
    this.disarmIfIdle();
    const keys = this.keys(topic);
    if (json === undefined) await this.commands().sockeyePresenceLeave(keys.zset, keys.hash, keys.channel, id);
    else await this.commands().sockeyePresenceLeave(keys.zset, keys.hash, keys.channel, id, json);
  }

  async members(topic: string): Promise<PresenceMember[]> {
    const keys = this.keys(topic);
    const flat = await this.commands().sockeyePresenceMembers(keys.zset, keys.hash, keys.channel);
    const out: PresenceMember[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ id: flat[i]!, data: parseData(flat[i + 1]!) });
    return out;
  }

  watch(topic: string, listener: PresenceListener): () => void {
    let set = this.watchers.get(topic);
    if (set === undefined) {
      this.watchers.set(topic, (set = new Set()));
      const channel = this.keys(topic).channel;
      this.topicsByChannel.set(channel, topic);
      const sub = this.options.subscriber();
      if (sub?.status === 'ready') sub.subscribe(channel).catch(() => undefined); // else on the next 'ready'
    }
    set.add(listener);
    this.arm();
    return () => {
      const current = this.watchers.get(topic);
      if (current === undefined || !current.delete(listener) || current.size > 0) return;
      this.watchers.delete(topic);
      const channel = this.keys(topic).channel;
      this.topicsByChannel.delete(channel);
      const sub = this.options.subscriber();
      if (sub?.status === 'ready') sub.unsubscribe(channel).catch(() => undefined);
      this.disarmIfIdle();
    };
  }

  /** @internal A message on a channel that is not a topic's: a presence event if it is one of ours. */
  onChannelMessage(channel: string, raw: Buffer): void {
    const topic = this.topicsByChannel.get(channel);
    if (topic === undefined) return;
    const listeners = this.watchers.get(topic);
    if (listeners === undefined) return;
    let event: PresenceEvent;
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as { type: string; id: string; data?: string; expired?: boolean };
      event =
        parsed.type === 'join' ?
          { type: 'join', topic, member: { id: parsed.id, data: parseData(parsed.data ?? 'null') } }
        : { type: 'leave', topic, id: parsed.id, expired: parsed.expired === true };
    } catch {
      return;
    }
    for (const listener of [...listeners]) listener(event);
  }

  /** @internal After the subscriber connection (re)opened. */
  async resubscribe(): Promise<void> {
    const sub = this.options.subscriber();
    const channels = [...this.topicsByChannel.keys()];
    if (sub === null || channels.length === 0) return;
    await sub.subscribe(...channels).catch(() => undefined);
  }

  /** @internal Say goodbye for this node's members, then stop. */
  async close(): Promise<void> {
    const local = [...this.local];
    this.stopTimers();
    if (this.options.command() !== null) {
      await Promise.all(local.flatMap(([topic, members]) => [...members.keys()].map((id) => this.leave(topic, id).catch(() => undefined))));
    }
    this.local.clear();
    this.claimed.clear();
    this.watchers.clear();
    this.topicsByChannel.clear();
  }

  /** @internal Stop refreshing and sweeping (the node is going away, or pretends to die). */
  stopTimers(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private forgetLocal(topic: string, id: string): void {
    const members = this.local.get(topic);
    if (members !== undefined) {
      members.delete(id);
      if (members.size === 0) this.local.delete(topic);
    }
    const ids = this.claimed.get(topic);
    if (ids !== undefined) {
      ids.delete(id);
      if (ids.size === 0) this.claimed.delete(topic);
    }
  }

  private commands(): PresenceCommands {
    const client = this.options.command();
    if (client === null) throw new BrokerError('WS_ERR_BROKER_UNAVAILABLE', 'Redis unreachable');
    return client as unknown as PresenceCommands;
  }

  private keys(topic: string): { zset: string; hash: string; channel: string } {
    const base = `${this.options.prefix}:{${topic}}`;
    return { zset: `${base}:presence`, hash: `${base}:presence-data`, channel: `${base}:presence-events` };
  }

  private arm(): void {
    if (this.timer !== null || this.stopped) return;
    this.timer = setInterval(() => void this.tick(), Math.max(10, Math.floor(this.options.ttlMs / 3)));
    this.timer.unref();
  }

  private disarmIfIdle(): void {
    if (this.local.size > 0 || this.watchers.size > 0 || this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Refresh this node's members; sweep the topics this node watches or has members in. */
  private async tick(): Promise<void> {
    const client = this.options.command();
    if (client === null) return;
    const commands = client as unknown as PresenceCommands;
    const work: Promise<unknown>[] = [];
    for (const [topic, members] of this.local) {
      const keys = this.keys(topic);
      const claimed = this.claimed.get(topic);
      const pairs: string[] = [];
      const claims: string[] = [];
      for (const [id, json] of members) (claimed?.has(id) === true ? claims : pairs).push(id, json);
      if (pairs.length > 0) work.push(commands.sockeyePresenceJoin(keys.zset, keys.hash, keys.channel, this.options.ttlMs, ...pairs));
      if (claims.length > 0) {
        work.push(
          commands.sockeyePresenceClaim(keys.zset, keys.hash, keys.channel, this.options.ttlMs, ...claims).then((results) => {
            // An id someone else holds now (claimed while this node's entry had expired) is theirs.
            results.forEach((won, i) => {
              if (won !== 1 && this.local.get(topic)?.get(claims[2 * i]!) === claims[2 * i + 1]) this.forgetLocal(topic, claims[2 * i]!);
            });
          }),
        );
      }
    }
    for (const topic of this.watchers.keys()) {
      const keys = this.keys(topic);
      work.push(commands.sockeyePresenceMembers(keys.zset, keys.hash, keys.channel));
    }
    await Promise.allSettled(work);
  }
}

function parseData(json: string): PresenceData {
  try {
    return JSON.parse(json) as PresenceData;
  } catch {
    return null;
  }
}
