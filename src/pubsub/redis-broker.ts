import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Redis as RedisClient } from 'ioredis';
import {
  emptyBrokerStats,
  historyFor,
  type Broker,
  type BrokerMessage,
  type BrokerStats,
  type HistoryPolicy,
  type HistoryResult,
  type PublishOptions,
  type RecoveryFailure,
  type StreamPosition,
  type TopicDiscontinuity,
} from './broker.js';
import { BrokerError } from './broker-error.js';
import { newEpoch } from './epoch.js';
import { HISTORY_SCRIPT, PUBLISH_SCRIPT, parseEnvelope } from './redis-scripts.js';
import type { Presence } from './presence.js';
import { RedisPresence } from './redis-presence.js';
import { TopicCursor } from './topic-cursor.js';

export interface RedisBrokerOptions {
  /** `redis://[:password@]host[:port][/db]` or `rediss://` for TLS. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** TLS settings for `rediss://` (e.g. `ca`, `servername`). */
  tls?: TlsOptions;
  /** Prefix of every key and channel, so several deployments can share one Redis. Default `sockeye`. */
  prefix?: string;
  /** History kept per topic (size and age). Default 1,000 messages, 5 minutes. */
  history?: HistoryPolicy;
  /** A topic's epoch and offset are forgotten after this long without a publish. Default 24 hours (never less than its history age). */
  topicTtlMs?: number;
  /**
   * Publishes not yet acknowledged by Redis (waiting for a connection, or
   * sent and unanswered) are bounded by count and bytes; past either bound
   * a publish fails at once with `WS_ERR_BROKER_QUEUE_FULL`. Defaults:
   * 10,000 messages, 64 MiB.
   */
  maxQueuedPublishes?: number;
  maxQueuedBytes?: number;
  /** A publish not acknowledged within this many milliseconds fails with `WS_ERR_BROKER_UNAVAILABLE`. Default 5,000. */
  publishTimeoutMs?: number;
  /** Presence entries expire this long after their node last refreshed them. Default 30,000 ms. */
  presenceTtlMs?: number;
  /** Most history entries read per round of a catch-up. Default 1,000. */
  catchUpBatch?: number;
  /** Name of this node in envelopes (for diagnosis). Default: random. */
  nodeId?: string;
}

interface TopicState {
  readonly topic: string;
  readonly channel: string;
  readonly meta: string;
  readonly stream: string;
  /** Null until the start position is known (after SUBSCRIBE and a read of the topic's position). */
  cursor: TopicCursor | null;
  /** Live messages that arrived before the start position was known. */
  early: BrokerMessage[];
  catchingUp: boolean;
  /** Another catch-up was asked for while one ran. */
  catchUpAgain: boolean;
  waiters: { resolve: (position: StreamPosition) => void; reject: (error: Error) => void }[];
}

interface QueuedPublish {
  readonly topic: string;
  readonly data: Uint8Array;
  readonly binary: boolean;
  readonly resolve: (position: StreamPosition) => void;
  readonly reject: (error: Error) => void;
  timer: NodeJS.Timeout | null;
  settled: boolean;
}

/** Live messages kept per topic while its start position is read, at most. */
const MAX_EARLY = 10_000;

type HistoryReply = [Buffer, number, number, [Buffer, Buffer[]][]];

/** ioredis with this broker's scripts defined on it. */
interface ScriptedClient extends RedisClient {
  sockeyePublish(meta: string, stream: string, ...args: (string | number | Uint8Array)[]): Promise<[string, number]>;
  sockeyeHistoryBuffer(meta: string, stream: string, ...args: (string | number)[]): Promise<HistoryReply>;
}

/**
 * A broker on Redis, for several processes (on one machine or many).
 *
 * - Each publish is one Lua script: the topic's offset is incremented, the
 *   message appended to the topic's capped stream (entry id = offset) and
 *   published on the topic's channel with its epoch and offset.
 * - Each node delivers a topic in offset order: out-of-order arrivals wait,
 *   a hole is filled from the stream (XRANGE), duplicates are dropped by
 *   offset, so each message reaches each local subscriber once.
 * - After the subscriber connection comes back (killed, Redis restarted)
 *   the node subscribes again and catches up from its last offset; an
 *   epoch change (Redis lost its data) is reported (`onDiscontinuity`).
 * - Publishes wait while Redis is unreachable, bounded in count, bytes and
 *   time, then fail with a `BrokerError`.
 *
 * The Redis client (ioredis) is loaded when the broker is created, not
 * when the package is imported.
 */
export class RedisBroker implements Broker {
  onMessage: ((message: BrokerMessage) => void) | null = null;
  onDiscontinuity: ((event: TopicDiscontinuity) => void) | null = null;
  onError: ((error: Error) => void) | null = null;
  readonly stats: BrokerStats = emptyBrokerStats('connecting');
  /** Members of topics across every node, with join and leave events; entries expire when their node stops refreshing them. */
  readonly presence: Presence;
  private readonly presenceStore: RedisPresence;
  readonly nodeId: string;

  private readonly options: RedisBrokerOptions;
  private readonly prefix: string;
  private readonly topicTtlMs: number;
  private readonly maxQueued: number;
  private readonly maxQueuedBytes: number;
  private readonly publishTimeoutMs: number;
  private readonly catchUpBatch: number;
  private readonly topics = new Map<string, TopicState>();
  private readonly topicsByChannel = new Map<string, TopicState>();
  /** Publishes waiting for the command connection, oldest first. */
  private readonly waiting: QueuedPublish[] = [];
  private inFlight = 0;
  private queuedBytes = 0;
  private cmd: ScriptedClient | null = null;
  private sub: RedisClient | null = null;
  private closed = false;
  private readonly started: Promise<void>;

  constructor(options: RedisBrokerOptions = {}) {
    this.options = options;
    this.prefix = options.prefix ?? 'sockeye';
    this.topicTtlMs = options.topicTtlMs ?? 24 * 3600_000;
    this.maxQueued = options.maxQueuedPublishes ?? 10_000;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 64 * 1024 * 1024;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5000;
    this.catchUpBatch = options.catchUpBatch ?? 1000;
    this.nodeId = options.nodeId ?? newEpoch();
    this.presence = this.presenceStore = new RedisPresence({
      prefix: this.prefix,
      ttlMs: options.presenceTtlMs ?? 30_000,
      command: () => (this.cmd?.status === 'ready' ? this.cmd : null),
      subscriber: () => this.sub,
    });
    this.started = this.start();
    this.started.catch((error: unknown) => this.report(error));
  }

  /** Create a broker and wait until both its Redis connections are ready (or fail after `timeoutMs`, default 10 s). */
  static async connect(options: RedisBrokerOptions & { timeoutMs?: number } = {}): Promise<RedisBroker> {
    const broker = new RedisBroker(options);
    try {
      await broker.ready(options.timeoutMs ?? 10_000);
    } catch (error) {
      await broker.close();
      throw error;
    }
    return broker;
  }

  /** Resolves once both connections are ready. */
  async ready(timeoutMs = 10_000): Promise<void> {
    await this.started;
    const deadline = Date.now() + timeoutMs;
    for (const client of [this.cmd!, this.sub!]) {
      if (client.status === 'ready') continue;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => {
            client.off('ready', onReady);
            reject(new BrokerError('WS_ERR_BROKER_UNAVAILABLE', `Redis not ready within ${timeoutMs} ms`));
          },
          Math.max(0, deadline - Date.now()),
        );
        const onReady = (): void => {
          clearTimeout(timer);
          resolve();
        };
        client.once('ready', onReady);
      });
    }
  }

  publish(topic: string, data: Uint8Array, options: PublishOptions = {}): Promise<StreamPosition> {
    if (this.closed) return this.fail(new BrokerError('WS_ERR_BROKER_CLOSED', 'broker closed'));
    if (this.waiting.length + this.inFlight >= this.maxQueued) {
      return this.fail(new BrokerError('WS_ERR_BROKER_QUEUE_FULL', `publish queue full (${this.maxQueued} messages)`));
    }
    if (this.queuedBytes + data.length > this.maxQueuedBytes) {
      return this.fail(new BrokerError('WS_ERR_BROKER_QUEUE_FULL', `publish queue full (${this.maxQueuedBytes} bytes)`));
    }
    return new Promise<StreamPosition>((resolve, reject) => {
      const item: QueuedPublish = { topic, data, binary: options.binary ?? true, resolve, reject, timer: null, settled: false };
      this.queuedBytes += data.length;
      item.timer = setTimeout(() => {
        item.timer = null;
        this.settle(item, new BrokerError('WS_ERR_BROKER_UNAVAILABLE', `Redis did not store the message within ${this.publishTimeoutMs} ms`));
      }, this.publishTimeoutMs);
      item.timer.unref();
      if (this.canSend() && this.waiting.length === 0) this.send(item);
      else this.waiting.push(item);
      this.updateDepth();
    });
  }

  subscribe(topic: string): Promise<StreamPosition> {
    let state = this.topics.get(topic);
    if (state === undefined) {
      const base = `${this.prefix}:{${topic}}`;
      state = {
        topic,
        channel: `${base}:ch`,
        meta: `${base}:meta`,
        stream: `${base}:history`,
        cursor: null,
        early: [],
        catchingUp: false,
        catchUpAgain: false,
        waiters: [],
      };
      this.topics.set(topic, state);
      this.topicsByChannel.set(state.channel, state);
      if (this.sub?.status === 'ready') void this.startTopic(state);
    }
    if (state.cursor !== null && state.waiters.length === 0) return Promise.resolve(state.cursor.position);
    return new Promise((resolve, reject) => state.waiters.push({ resolve, reject }));
  }

  unsubscribe(topic: string): void {
    const state = this.topics.get(topic);
    if (state === undefined) return;
    this.topics.delete(topic);
    this.topicsByChannel.delete(state.channel);
    for (const waiter of state.waiters) waiter.reject(new BrokerError('WS_ERR_BROKER_CLOSED', 'unsubscribed'));
    state.waiters.length = 0;
    if (this.sub?.status === 'ready') this.sub.unsubscribe(state.channel).catch((error: unknown) => this.report(error));
  }

  async history(topic: string, since: StreamPosition): Promise<HistoryResult> {
    const read = await this.readHistory(topic, since.offset, historyFor(this.options.history, topic).size + 1);
    const position = { epoch: read.epoch, offset: read.offset };
    // An offset past the topic's end cannot belong to this epoch's sequence either.
    if (read.epoch !== since.epoch || since.offset > read.offset) return { ok: false, reason: 'epoch-changed', position };
    if (since.offset >= read.offset) return { ok: true, position, messages: [] };
    const first = read.messages[0];
    if (first === undefined || first.offset !== since.offset + 1) return { ok: false, reason: 'history-too-short', position };
    return { ok: true, position, messages: read.messages };
  }

  async position(topic: string): Promise<StreamPosition> {
    const read = await this.readHistory(topic, Number.MAX_SAFE_INTEGER, 0);
    return { epoch: read.epoch, offset: read.offset };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stats.state = 'closed';
    const error = new BrokerError('WS_ERR_BROKER_CLOSED', 'broker closed');
    for (const item of this.waiting.splice(0)) this.settle(item, error);
    for (const state of this.topics.values()) for (const waiter of state.waiters.splice(0)) waiter.reject(error);
    this.topics.clear();
    this.topicsByChannel.clear();
    await this.started.catch(() => undefined);
    await this.presenceStore.close();
    await Promise.all(
      [this.cmd, this.sub].map(async (client) => {
        if (client === null) return;
        try {
          if (client.status === 'ready') await client.quit();
          else client.disconnect();
        } catch {
          client.disconnect();
        }
      }),
    );
  }

  /** Drop both connections without any goodbye, as a node cut off from Redis would (tests, fault drills). */
  disconnectAbruptly(): void {
    this.closed = true;
    this.presenceStore.stopTimers();
    this.cmd?.disconnect();
    this.sub?.disconnect();
  }

  // ---- connections -------------------------------------------------------

  private async start(): Promise<void> {
    // Loaded here, not at the top: the in-memory path must not need the client.
    const { Redis } = await import('ioredis');
    if (this.closed) return;
    const url = this.options.url ?? 'redis://127.0.0.1:6379';
    const common = {
      // Our own bounded queue holds publishes while Redis is away.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      // Resubscribing is ours too: it must be followed by a catch-up.
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1000),
      lazyConnect: false,
      ...(this.options.tls !== undefined ? { tls: this.options.tls } : {}),
    };
    const cmd = new Redis(url, { ...common, connectionName: `sockeye-cmd-${this.nodeId}` }) as ScriptedClient;
    cmd.defineCommand('sockeyePublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT });
    cmd.defineCommand('sockeyeHistory', { numberOfKeys: 2, lua: HISTORY_SCRIPT });
    this.presenceStore.defineScripts(cmd);
    const sub = new Redis(url, { ...common, connectionName: `sockeye-sub-${this.nodeId}` });
    this.cmd = cmd;
    this.sub = sub;
    cmd.on('error', (error: Error) => this.report(error));
    sub.on('error', (error: Error) => this.report(error));
    cmd.on('ready', () => {
      this.updateState();
      this.flushWaiting();
      // Catch-ups that failed while commands could not be sent run again now.
      if (sub.status === 'ready') for (const state of this.topics.values()) this.resume(state);
    });
    sub.on('ready', () => {
      this.updateState();
      void this.resubscribeAll();
    });
    for (const client of [cmd, sub]) {
      client.on('close', () => this.updateState());
      client.on('reconnecting', () => this.updateState());
    }
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onChannelMessage(channel.toString(), message));
  }

  private updateState(): void {
    if (this.closed) return;
    const both = this.cmd?.status === 'ready' && this.sub?.status === 'ready';
    this.stats.state =
      both ? 'ready'
      : this.stats.state === 'connecting' ? 'connecting'
      : 'reconnecting';
  }

  /** After the subscriber connection (re)opened: every topic's channel again, then each topic caught up. */
  private async resubscribeAll(): Promise<void> {
    await this.presenceStore.resubscribe();
    for (const state of this.topics.values()) void this.startTopic(state);
  }

  private async startTopic(state: TopicState): Promise<void> {
    try {
      await this.sub!.subscribe(state.channel);
    } catch (error) {
      // The connection dropped: its next 'ready' subscribes again.
      this.report(error);
      return;
    }
    if (this.topics.get(state.topic) !== state) {
      // Unsubscribed while SUBSCRIBE was on its way: leave the channel unless the topic came back.
      if (!this.topicsByChannel.has(state.channel)) this.sub!.unsubscribe(state.channel).catch(() => undefined);
      return;
    }
    this.resume(state);
  }

  /** Now subscribed: take the start position, or catch up from the last delivered one. */
  private resume(state: TopicState): void {
    if (state.cursor === null) void this.takeStartPosition(state);
    else this.catchUp(state);
  }

  private async takeStartPosition(state: TopicState): Promise<void> {
    let position: StreamPosition;
    try {
      position = await this.position(state.topic);
    } catch (error) {
      this.report(error);
      return; // tried again on the next 'ready'
    }
    if (this.topics.get(state.topic) !== state || state.cursor !== null) return;
    state.cursor = this.newCursor(state, position);
    const early = state.early;
    state.early = [];
    for (const message of early) this.accept(state, message);
    for (const waiter of state.waiters.splice(0)) waiter.resolve(position);
  }

  private newCursor(state: TopicState, position: StreamPosition): TopicCursor {
    return new TopicCursor(position, {
      onSkip: (range) => this.lost(state, 'history-too-short', range.from - 1, range.to),
    });
  }

  // ---- delivery ----------------------------------------------------------

  private onChannelMessage(channel: string, raw: Buffer): void {
    const state = this.topicsByChannel.get(channel);
    if (state === undefined) {
      this.presenceStore.onChannelMessage(channel, raw);
      return;
    }
    const envelope = parseEnvelope(raw);
    if (envelope === null) return;
    const message: BrokerMessage = {
      topic: state.topic,
      data: envelope.data,
      binary: envelope.binary,
      epoch: envelope.epoch,
      offset: envelope.offset,
    };
    if (state.cursor === null) {
      if (state.early.length < MAX_EARLY) state.early.push(message);
      return;
    }
    this.accept(state, message);
  }

  /** Deliver what the message makes deliverable; start a catch-up if it shows a hole. */
  private accept(state: TopicState, message: BrokerMessage): void {
    let cursor = state.cursor!;
    if (message.epoch !== cursor.epoch) {
      // The topic's store lost its data (Redis restarted empty, or the topic
      // expired): a new sequence started. Deliver it from its beginning.
      const from = cursor.position;
      cursor = state.cursor = this.newCursor(state, { epoch: message.epoch, offset: 0 });
      this.stats.gapsLost++;
      this.onDiscontinuity?.({ topic: state.topic, reason: 'epoch-changed', from, to: cursor.position });
    }
    const duplicates = cursor.duplicates;
    this.deliver(cursor.offer(message));
    this.stats.duplicates += cursor.duplicates - duplicates;
    if (cursor.gap() !== null) this.catchUp(state);
  }

  private deliver(messages: readonly BrokerMessage[]): void {
    for (const message of messages) {
      this.stats.received++;
      try {
        this.onMessage?.(message);
      } catch (error) {
        this.report(error);
      }
    }
  }

  /**
   * Read the topic's history after the last delivered offset and feed it to
   * the cursor: fills holes, and after a reconnect delivers what was
   * published while this node was not listening. One catch-up per topic at
   * a time; bounded rounds.
   */
  private catchUp(state: TopicState): void {
    if (state.catchingUp) {
      state.catchUpAgain = true;
      return;
    }
    state.catchingUp = true;
    void this.runCatchUp(state).finally(() => {
      state.catchingUp = false;
      if (state.catchUpAgain && this.topics.get(state.topic) === state) {
        state.catchUpAgain = false;
        if (state.cursor?.gap() !== null) this.catchUp(state);
      }
    });
  }

  private async runCatchUp(state: TopicState): Promise<void> {
    const hadGap = state.cursor?.gap() !== null;
    const receivedBefore = this.stats.received;
    for (let round = 0; round < 100; round++) {
      const cursor = state.cursor;
      if (cursor === null || this.topics.get(state.topic) !== state) return;
      let read: Awaited<ReturnType<RedisBroker['readHistory']>>;
      try {
        read = await this.readHistory(state.topic, cursor.offset, this.catchUpBatch);
      } catch (error) {
        this.report(error);
        return; // the command connection's next 'ready' resumes every topic
      }
      if (state.cursor !== cursor) continue; // the epoch changed meanwhile: read again for the new one
      if (read.epoch !== cursor.epoch) {
        const from = cursor.position;
        state.cursor = this.newCursor(state, { epoch: read.epoch, offset: 0 });
        this.stats.gapsLost++;
        this.onDiscontinuity?.({ topic: state.topic, reason: 'epoch-changed', from, to: state.cursor.position });
        continue;
      }
      const first = read.messages[0];
      const wanted = cursor.offset + 1;
      if (read.offset >= wanted && (first === undefined || first.offset > wanted)) {
        // Trimmed by size or age, or a topic without history: give up the hole.
        const to = first === undefined ? Math.min(read.offset, holeEnd(cursor, read.offset)) : first.offset - 1;
        this.lost(state, 'history-too-short', cursor.offset, to);
        this.deliver(cursor.skipTo(to));
      }
      const duplicates = cursor.duplicates;
      for (const message of read.messages) this.deliver(cursor.offer(message));
      this.stats.duplicates += cursor.duplicates - duplicates;
      const more = read.messages.length >= this.catchUpBatch && cursor.offset < read.offset;
      if (!more && cursor.gap() === null) {
        if (hadGap || this.stats.received > receivedBefore) this.stats.gapsCaughtUp++;
        return;
      }
    }
  }

  private lost(state: TopicState, reason: RecoveryFailure, fromOffset: number, toOffset: number): void {
    const epoch = state.cursor?.epoch ?? '';
    this.stats.gapsLost++;
    this.onDiscontinuity?.({ topic: state.topic, reason, from: { epoch, offset: fromOffset }, to: { epoch, offset: toOffset } });
  }

  // ---- commands ----------------------------------------------------------

  private async readHistory(topic: string, after: number, count: number): Promise<{ epoch: string; offset: number; messages: BrokerMessage[] }> {
    await this.started;
    const cmd = this.cmd;
    if (cmd === null || cmd.status !== 'ready') throw new BrokerError('WS_ERR_BROKER_UNAVAILABLE', 'Redis unreachable');
    const base = `${this.prefix}:{${topic}}`;
    const ttl = historyFor(this.options.history, topic).ttlMs;
    const [epochBytes, offset, now, entries] = await cmd.sockeyeHistoryBuffer(
      `${base}:meta`,
      `${base}:history`,
      after,
      count,
      newEpoch(),
      this.metaTtl(topic),
    );
    const epoch = epochBytes.toString();
    const messages: BrokerMessage[] = [];
    for (const [id, fields] of entries) {
      const storedAt = Number(fieldOf(fields, 't'));
      if (now - storedAt > ttl) continue; // older than the topic's history age
      const entryOffset = Number.parseInt(id.toString(), 10);
      messages.push({
        topic,
        data: fieldOf(fields, 'd') ?? Buffer.alloc(0),
        binary: fieldOf(fields, 'b')?.toString() === '1',
        epoch,
        offset: entryOffset,
      });
    }
    return { epoch, offset: Number(offset), messages };
  }

  private metaTtl(topic: string): number {
    return Math.max(this.topicTtlMs, historyFor(this.options.history, topic).ttlMs);
  }

  private send(item: QueuedPublish): void {
    const cmd = this.cmd!;
    const history = historyFor(this.options.history, item.topic);
    const base = `${this.prefix}:{${item.topic}}`;
    this.inFlight++;
    cmd
      .sockeyePublish(
        `${base}:meta`,
        `${base}:history`,
        `${base}:ch`,
        Buffer.from(item.data.buffer, item.data.byteOffset, item.data.byteLength),
        item.binary ? '1' : '0',
        this.nodeId,
        history.size,
        history.ttlMs,
        this.metaTtl(item.topic),
        newEpoch(),
      )
      .then(
        ([epoch, offset]) => {
          this.inFlight--;
          this.updateDepth();
          if (!item.settled) this.stats.published++;
          this.settle(item, { epoch: String(epoch), offset: Number(offset) });
        },
        (error: unknown) => {
          this.inFlight--;
          this.updateDepth();
          this.settle(item, new BrokerError('WS_ERR_BROKER_UNAVAILABLE', 'Redis did not acknowledge the publish', { cause: error }));
        },
      );
  }

  /**
   * A command written now reaches Redis: the client is ready and its socket
   * still takes writes. Between the server's FIN and the client's 'close'
   * the status still says ready while a write would be refused (the client
   * queues nothing offline), and a publish refused there was never sent: it
   * waits for the next 'ready' instead of failing.
   */
  private canSend(): boolean {
    const cmd = this.cmd;
    return cmd !== null && cmd.status === 'ready' && cmd.stream.writable;
  }

  private flushWaiting(): void {
    while (this.waiting.length > 0 && this.canSend()) {
      const item = this.waiting.shift()!;
      if (!item.settled) this.send(item);
    }
    this.updateDepth();
  }

  /** Resolve or reject once; the bytes leave the queue's count when Redis answers or the wait ends. */
  private settle(item: QueuedPublish, outcome: StreamPosition | BrokerError): void {
    if (item.settled) return;
    item.settled = true;
    if (item.timer !== null) clearTimeout(item.timer);
    this.queuedBytes -= item.data.length;
    const index = this.waiting.indexOf(item);
    if (index >= 0) this.waiting.splice(index, 1);
    this.updateDepth();
    if (outcome instanceof BrokerError) {
      this.stats.publishFailed++;
      item.reject(outcome);
    } else {
      item.resolve(outcome);
    }
  }

  private updateDepth(): void {
    this.stats.queueDepth = this.waiting.length + this.inFlight;
  }

  private fail(error: BrokerError): Promise<never> {
    this.stats.publishFailed++;
    return Promise.reject(error);
  }

  private report(error: unknown): void {
    if (this.closed) return;
    const reported = error instanceof Error ? error : new Error(String(error));
    this.onError?.(reported);
  }
}

function fieldOf(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === name) return fields[i + 1];
  return undefined;
}

/** The end of the cursor's first hole, or `top` when nothing waits behind one. */
function holeEnd(cursor: TopicCursor, top: number): number {
  const gap = cursor.gap();
  return gap === null ? top : gap.to;
}
