import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/protocol/errors.js';
import { iterateMessages, type MessageSource, type ReceivedMessage } from '../../src/node/message-iterator.js';

/**
 * The iterator over a plain event source, no socket and no Connection: it
 * needs only what `MessageSource` declares, and the pauses it holds and
 * releases are counted here directly.
 */
class FakeSource extends EventEmitter implements MessageSource {
  state: 'open' | 'closing' | 'closed' = 'open';
  pauses = 0;
  resumes = 0;

  pause(): void {
    this.pauses++;
  }

  resume(): void {
    this.resumes++;
  }

  deliver(data: ReceivedMessage): void {
    this.emit('message', data, typeof data !== 'string');
  }

  end(): void {
    this.state = 'closed';
    this.emit('close');
  }
}

describe('iterateMessages', () => {
  it('hands out messages in order and pauses the source at the high-water mark, resuming at half of it', async () => {
    const source = new FakeSource();
    const iterator = iterateMessages(source, { highWaterMark: 4 });
    for (let i = 0; i < 3; i++) source.deliver(`m${i}`);
    expect(source.pauses).toBe(0);
    source.deliver('m3');
    expect(source.pauses).toBe(1);
    source.deliver('m4'); // already paused: queued, no second pause
    expect(source.pauses).toBe(1);

    expect(await iterator.next()).toEqual({ done: false, value: 'm0' });
    expect(await iterator.next()).toEqual({ done: false, value: 'm1' });
    expect(source.resumes).toBe(0); // 3 left, over the low-water mark of 2
    expect(await iterator.next()).toEqual({ done: false, value: 'm2' });
    expect(source.resumes).toBe(1);
    expect(await iterator.next()).toEqual({ done: false, value: 'm3' });
    expect(await iterator.next()).toEqual({ done: false, value: 'm4' });
    expect(source.resumes).toBe(1);
  });

  it('ends after the queued messages once the source closes, and settles waiting next() calls', async () => {
    const source = new FakeSource();
    const iterator = iterateMessages(source);
    const waiting = iterator.next();
    source.deliver(Buffer.from([1, 2]));
    expect(await waiting).toEqual({ done: false, value: Buffer.from([1, 2]) });
    source.deliver('last');
    const pending = [iterator.next(), iterator.next()];
    source.end();
    expect(await Promise.all(pending)).toEqual([
      { done: false, value: 'last' },
      { done: true, value: undefined },
    ]);
    expect(source.listenerCount('message')).toBe(0);
    expect(source.listenerCount('close')).toBe(0);
  });

  it('is done at once on a closed source, and allows one live iterator per source', async () => {
    const closed = new FakeSource();
    closed.state = 'closed';
    expect(await iterateMessages(closed).next()).toEqual({ done: true, value: undefined });

    const source = new FakeSource();
    const first = iterateMessages(source);
    expect(() => iterateMessages(source)).toThrow(UsageError);
    source.deliver('a');
    await first.return!();
    expect(source.listenerCount('message')).toBe(0);
    const second = iterateMessages(source);
    source.deliver('b');
    expect(await second.next()).toEqual({ done: false, value: 'b' });
  });

  it('gives reading back when the consumer stops while the source is paused', async () => {
    const source = new FakeSource();
    const iterator = iterateMessages(source, { highWaterMark: 1 });
    source.deliver('x');
    expect(source.pauses).toBe(1);
    await iterator.return!();
    expect(source.resumes).toBe(1);
  });

  it('does not import the connection module (the two used to import each other)', () => {
    const text = readFileSync(new URL('../../src/node/message-iterator.ts', import.meta.url), 'utf8');
    expect(text).not.toMatch(/from\s+['"]\.\/connection\.js['"]/);
  });
});
