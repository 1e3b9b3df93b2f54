import type { Presence, PresenceData, PresenceListener, PresenceMember } from './presence.js';

/** Presence within one process: nothing to expire, since members and their process die together. */
export class MemoryPresence implements Presence {
  private readonly membersByTopic = new Map<string, Map<string, PresenceData>>();
  private readonly listeners = new Map<string, Set<PresenceListener>>();

  join(topic: string, id: string, data: PresenceData): Promise<void> {
    let members = this.membersByTopic.get(topic);
    if (members === undefined) this.membersByTopic.set(topic, (members = new Map()));
    members.set(id, data);
    this.emit(topic, { type: 'join', topic, member: { id, data } });
    return Promise.resolve();
  }

  /** One process: a check and a join in the same synchronous step cannot be raced. */
  claim(topic: string, id: string, data: PresenceData): Promise<boolean> {
    const holder = this.membersByTopic.get(topic)?.get(id);
    if (holder !== undefined) return Promise.resolve(JSON.stringify(holder) === JSON.stringify(data));
    void this.join(topic, id, data);
    return Promise.resolve(true);
  }

  leave(topic: string, id: string, data?: PresenceData): Promise<void> {
    const members = this.membersByTopic.get(topic);
    if (data !== undefined && members?.has(id) === true && JSON.stringify(members.get(id)) !== JSON.stringify(data)) return Promise.resolve();
    if (members !== undefined && members.delete(id)) {
      if (members.size === 0) this.membersByTopic.delete(topic);
      this.emit(topic, { type: 'leave', topic, id, expired: false });
    }
    return Promise.resolve();
  }

  members(topic: string): Promise<PresenceMember[]> {
    const members = this.membersByTopic.get(topic);
    return Promise.resolve(members === undefined ? [] : [...members].map(([id, data]) => ({ id, data })));
  }

  watch(topic: string, listener: PresenceListener): () => void {
    let set = this.listeners.get(topic);
    if (set === undefined) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.listeners.get(topic);
      if (current === undefined) return;
      current.delete(listener);
      if (current.size === 0) this.listeners.delete(topic);
    };
  }

  clear(): void {
    this.membersByTopic.clear();
    this.listeners.clear();
  }

  private emit(topic: string, event: Parameters<PresenceListener>[0]): void {
    const set = this.listeners.get(topic);
    if (set === undefined) return;
    for (const listener of [...set]) listener(event);
  }
}
