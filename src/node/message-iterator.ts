import { UsageError } from '../protocol/errors.js';

/**
 * Incoming messages of one connection as an async iterator, with
 * backpressure reaching the peer: while the application has not taken
 * `highWaterMark` messages, reading from the socket stops, the TCP window
 * fills, and the sender's buffered amount grows until it slows down.
 */

export interface MessageIteratorOptions {
  /**
   * Stop reading from the socket once this many messages wait for the
   * consumer; read again when half of them were taken. Default 16.
   * Messages already inside the bytes read (one socket chunk, or input
   * waiting for decompression) are still queued after the pause. This
   * pause is the application's (`Connection.pause()`): the heartbeat
   * neither pings nor drops the connection while it holds.
   */
  highWaterMark?: number;
}

export type ReceivedMessage = string | Buffer;

/**
 * What the iterator needs of a connection (a `Connection` is one): its
 * messages, its end, and a pause of reading it can hold and release.
 * Declared here so that this module does not depend on the connection's.
 */
export interface MessageSource {
  /** `ConnectionState`'s values, spelled out: a connection whose states differ is no source. */
  readonly state: 'open' | 'closing' | 'closed';
  on(event: 'message', listener: (data: ReceivedMessage) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'message', listener: (data: ReceivedMessage) => void): unknown;
  off(event: 'close', listener: () => void): unknown;
  pause(): void;
  resume(): void;
}

const DEFAULT_HIGH_WATER_MARK = 16;

/** Connections with a live iterator: one consumer at a time, or pauses and resumes would fight. */
const iterated = new WeakSet<MessageSource>();

export function iterateMessages(connection: MessageSource, options: MessageIteratorOptions = {}): AsyncIterableIterator<ReceivedMessage> {
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  if (!Number.isInteger(highWaterMark) || highWaterMark < 1) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', `highWaterMark must be a positive integer, got ${highWaterMark}`);
  }
  if (iterated.has(connection)) {
    throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'this connection already has an active message iterator');
  }
  return new MessageIterator(connection, highWaterMark);
}

type Waiter = (result: IteratorResult<ReceivedMessage>) => void;

const DONE: IteratorResult<ReceivedMessage> = { done: true, value: undefined };

class MessageIterator implements AsyncIterableIterator<ReceivedMessage> {
  private readonly connection: MessageSource;
  private readonly highWaterMark: number;
  private readonly lowWaterMark: number;
  /** Messages not yet taken; `head` is the index of the oldest, so taking one is O(1). */
  private queue: ReceivedMessage[] = [];
  private head = 0;
  /** `next()` calls waiting for a message, oldest first. */
  private waiters: Waiter[] = [];
  private ended = false;
  private paused = false;

  private readonly onMessage = (data: ReceivedMessage): void => {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter({ done: false, value: data });
      return;
    }
    this.queue.push(data);
    if (!this.paused && this.queue.length - this.head >= this.highWaterMark) {
      this.paused = true;
      this.connection.pause();
    }
  };

  /** Everything queued is still handed out; after that the iterator is done. */
  private readonly onClose = (): void => {
    this.paused = false;
    this.finish();
  };

  constructor(connection: MessageSource, highWaterMark: number) {
    this.connection = connection;
    this.highWaterMark = highWaterMark;
    this.lowWaterMark = Math.floor(highWaterMark / 2);
    if (connection.state === 'closed') {
      this.ended = true;
      return;
    }
    iterated.add(connection);
    connection.on('message', this.onMessage);
    connection.on('close', this.onClose);
  }

  next(): Promise<IteratorResult<ReceivedMessage>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head]!;
      this.head++;
      const left = this.queue.length - this.head;
      if (left === 0) {
        this.queue = [];
        this.head = 0;
      }
      if (this.paused && left <= this.lowWaterMark) {
        this.paused = false;
        this.connection.resume();
      }
      return Promise.resolve({ done: false, value });
    }
    if (this.ended) return Promise.resolve(DONE);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * The consumer stopped (`break` in a `for await`): stop listening and give
   * reading back. The connection itself stays open; close it if it should not.
   */
  return(): Promise<IteratorResult<ReceivedMessage>> {
    this.queue = [];
    this.head = 0;
    if (this.paused) {
      this.paused = false;
      this.connection.resume();
    }
    this.finish();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedMessage> {
    return this;
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    iterated.delete(this.connection);
    this.connection.off('message', this.onMessage);
    this.connection.off('close', this.onClose);
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter(DONE);
  }
}
