import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '../../src/pubsub/memory-broker.js';
import type { BrokerMessage } from '../../src/pubsub/broker.js';
import type { PresenceEvent } from '../../src/pubsub/presence.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (message: BrokerMessage): string => new TextDecoder().decode(message.data);

describe('MemoryBroker', () => {
  it('numbers a topic 1, 2, 3 within one epoch and acknowledges each publish with its position', async () => {
    const broker = new MemoryBroker();
    const received: BrokerMessage[] = [];
    broker.onMessage = (message) => received.push(message);
    const start = await broker.subscribe('t');
    expect(start.offset).toBe(0);
    const positions = [await broker.publish('t', bytes('a')), await broker.publish('t', bytes('b'))];
    expect(positions).toEqual([
      { epoch: start.epoch, offset: 1 },
      { epoch: start.epoch, offset: 2 },
    ]);
    expect(received.map((m) => [text(m), m.epoch, m.offset])).toEqual([
      ['a', start.epoch, 1],
      ['b', start.epoch, 2],
    ]);
    expect(broker.stats).toMatchObject({ published: 2, received: 2 });
  });

  it('replays what followed a position, and says when history is too short or the epoch is not the topic’s', async () => {
    const broker = new MemoryBroker({ history: { size: 3, ttlMs: 60_000 } });
    for (let i = 1; i <= 5; i++) await broker.publish('t', bytes(`m${i}`));
    const { epoch } = await broker.position('t');
    const fromTwo = await broker.history('t', { epoch, offset: 2 });
    expect(fromTwo.ok && fromTwo.messages.map(text)).toEqual(['m3', 'm4', 'm5']);
    expect(await broker.history('t', { epoch, offset: 1 })).toMatchObject({ ok: false, reason: 'history-too-short' });
    expect(await broker.history('t', { epoch: 'other', offset: 4 })).toMatchObject({
      ok: false,
      reason: 'epoch-changed',
      position: { epoch, offset: 5 },
    });
    expect(await broker.history('t', { epoch, offset: 5 })).toEqual({ ok: true, position: { epoch, offset: 5 }, messages: [] });
    // A position past the end (forged, or from another life of the topic) would make the cursor skip live messages.
    expect(await broker.history('t', { epoch, offset: 9 })).toMatchObject({ ok: false, reason: 'epoch-changed' });
  });

  it('does not replay messages older than the history age', async () => {
    let now = 1_000_000;
    const broker = new MemoryBroker({ history: { size: 100, ttlMs: 10_000 }, now: () => now });
    await broker.publish('t', bytes('old'));
    now += 20_000;
    await broker.publish('t', bytes('new'));
    const { epoch } = await broker.position('t');
    expect(await broker.history('t', { epoch, offset: 0 })).toMatchObject({ ok: false, reason: 'history-too-short' });
    const fromOne = await broker.history('t', { epoch, offset: 1 });
    expect(fromOne.ok && fromOne.messages.map(text)).toEqual(['new']);
  });

  it('keeps offsets but no messages for a topic without history', async () => {
    const broker = new MemoryBroker({ history: (topic) => (topic.startsWith('tick:') ? { size: 0, ttlMs: 0 } : { size: 10, ttlMs: 60_000 }) });
    await broker.publish('tick:a', bytes('1'));
    const second = await broker.publish('tick:a', bytes('2'));
    expect(second.offset).toBe(2);
    expect(await broker.history('tick:a', { epoch: second.epoch, offset: 1 })).toMatchObject({ ok: false, reason: 'history-too-short' });
  });

  it('forgets a topic idle past its TTL: its next publish starts a new epoch', async () => {
    let now = 0;
    const broker = new MemoryBroker({ history: { size: 10, ttlMs: 1000 }, topicTtlMs: 5000, now: () => now });
    const first = await broker.publish('t', bytes('a'));
    now += 120_000;
    const after = await broker.publish('t', bytes('b'));
    expect(after.epoch).not.toBe(first.epoch);
    expect(after.offset).toBe(1);
  });

  it('lists presence members and reports joins and leaves to watchers', async () => {
    const broker = new MemoryBroker();
    const events: PresenceEvent[] = [];
    const stop = broker.presence.watch('room', (event) => events.push(event));
    await broker.presence.join('room', 'c1', { nick: 'ann' });
    await broker.presence.join('room', 'c2', { nick: 'bob' });
    await broker.presence.leave('room', 'c1');
    expect(await broker.presence.members('room')).toEqual([{ id: 'c2', data: { nick: 'bob' } }]);
    stop();
    await broker.presence.leave('room', 'c2');
    expect(events.map((event) => (event.type === 'join' ? `+${event.member.id}` : `-${event.id}`))).toEqual(['+c1', '+c2', '-c1']);
  });

  it('leaves the Redis client out of every static import: only a Redis broker loads it, when it starts', () => {
    const dir = new URL('../../src/', import.meta.url);
    const offenders: string[] = [];
    const walk = (folder: URL): void => {
      for (const entry of readdirSync(folder, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(new URL(`${entry.name}/`, folder));
        else if (entry.name.endsWith('.ts')) {
          const source = readFileSync(new URL(entry.name, folder), 'utf8');
          // `import type` is erased at compile time; anything else would load the client with the module.
          if (/^\s*(import|export)\s+(?!type\b)[^;]*?from\s+['"](ioredis|@redis\/client)['"]/m.test(source)) offenders.push(entry.name);
          if (/require\(\s*['"]ioredis['"]\s*\)/.test(source)) offenders.push(entry.name);
        }
      }
    };
    walk(dir);
    expect(offenders).toEqual([]);
    const broker = readFileSync(new URL('pubsub/redis-broker.ts', dir), 'utf8');
    expect(broker).toContain("await import('ioredis')");
  });
});
