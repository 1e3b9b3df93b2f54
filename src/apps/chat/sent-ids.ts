/**
 * Client message ids recently posted, across every server process, so a
 * resend (the page sends again what it typed while the connection was
 * failing, not knowing whether the first try arrived) is posted once.
 *
 * Each id is claimed in the pub/sub presence of a per-room topic
 * (`chat-sent/<room>`), under the sender's nickname: the claim is atomic
 * across processes, so of two tries only the first posts. A claim is kept
 * for `windowMs` (default 2 minutes), far longer than a reconnect takes,
 * and at most `maxIds` are kept per process (oldest released first); a
 * process that dies takes its claims with it within the presence TTL.
 */
import type { Presence } from '../../pubsub/presence.js';

export interface SentIdsOptions {
  windowMs?: number;
  maxIds?: number;
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

export class SentIds {
  private readonly windowMs: number;
  private readonly maxIds: number;
  private readonly now: () => number;
  /** Claims held by this process, oldest first. */
  private readonly held: { topic: string; id: string; at: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private counter = 0;
  private readonly prefix = globalThis.crypto.randomUUID();

  constructor(
    private readonly presence: Presence,
    options: SentIdsOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 120_000;
    this.maxIds = options.maxIds ?? 10_000;
    this.now = options.now ?? Date.now;
    this.timer = setInterval(() => this.expire(), Math.max(1000, Math.floor(this.windowMs / 4)));
    this.timer.unref();
  }

  /** True the first time `id` is seen from `nickKey` in `room` within the window (on any process). */
  async first(room: string, nickKey: string, id: string): Promise<boolean> {
    const topic = `chat-sent/${room}`;
    const member = `${nickKey}/${id}`;
    // Data unique to this try: a second try, even from this process, is not the holder's refresh.
    const won = await this.presence.claim(topic, member, `${this.prefix}-${++this.counter}`);
    if (won) {
      this.held.push({ topic, id: member, at: this.now() });
      this.expire();
    }
    return won;
  }

  /** Forget an id whose message could not be posted after all (the store failed): a resend must post it. */
  async forget(room: string, nickKey: string, id: string): Promise<void> {
    const topic = `chat-sent/${room}`;
    const member = `${nickKey}/${id}`;
    const index = this.held.findIndex((entry) => entry.topic === topic && entry.id === member);
    if (index < 0) return;
    this.held.splice(index, 1);
    await this.presence.leave(topic, member);
  }

  /** Release the claims past the window or beyond the count. */
  expire(): void {
    const oldest = this.now() - this.windowMs;
    while (this.held.length > 0 && (this.held.length > this.maxIds || this.held[0]!.at <= oldest)) {
      const gone = this.held.shift()!;
      this.presence.leave(gone.topic, gone.id).catch(() => undefined);
    }
  }

  get size(): number {
    return this.held.length;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
