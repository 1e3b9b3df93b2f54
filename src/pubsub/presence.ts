/**
 * Presence: who is in a topic, across every process of a deployment. A
 * member is an id (unique within the topic, e.g. a connection id) plus
 * application data (a nickname). Each process owns the members it added
 * and keeps them alive; the Redis broker gives every entry a TTL that its
 * process refreshes, so the members of a process that died disappear by
 * themselves.
 */

/** Application data attached to a member: anything JSON can carry. */
export type PresenceData = string | number | boolean | null | readonly PresenceData[] | { readonly [key: string]: PresenceData };

export interface PresenceMember {
  readonly id: string;
  readonly data: PresenceData;
}

export type PresenceEvent =
  | { readonly type: 'join'; readonly topic: string; readonly member: PresenceMember }
  /** `expired`: the member's process stopped refreshing it (died or was cut off). */
  | { readonly type: 'leave'; readonly topic: string; readonly id: string; readonly expired: boolean };

export type PresenceListener = (event: PresenceEvent) => void;

export interface Presence {
  /** Add (or update) a member of the topic; it lives until `leave` or until this process stops refreshing it. */
  join(topic: string, id: string, data: PresenceData): Promise<void>;
  /**
   * Join only if no live member of the topic has this id (a nickname that
   * must be unique across every process): resolves true if the member is
   * now this process's, false if someone else holds the id. Atomic across
   * processes, so two racing for one id cannot both win. Claiming again
   * with the same data is a refresh and resolves true. A claimed member
   * lives like a joined one: until `leave`, or until this process stops
   * refreshing it.
   */
  claim(topic: string, id: string, data: PresenceData): Promise<boolean>;
  /**
   * Remove a member. With `data`, only if the member still has exactly
   * this data (compared as JSON): whoever claimed or joined the id since
   * with other data keeps it. Atomic across processes.
   */
  leave(topic: string, id: string, data?: PresenceData): Promise<void>;
  /** Every live member of the topic, from every process. */
  members(topic: string): Promise<PresenceMember[]>;
  /** Receive the topic's join and leave events from every process. Returns the function that stops them. */
  watch(topic: string, listener: PresenceListener): () => void;
}
