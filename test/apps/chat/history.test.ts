import { describe, expect, it } from 'vitest';
import type { BrokerMessage } from '../../../src/pubsub/broker.js';
import { wrap } from '../../../src/apps/chat/wire/envelope.js';
import { readRecent, selectHistory } from '../../../src/apps/chat/history.js';
import { withPosition } from '../../../src/apps/chat/positions.js';
import { PubSub } from '../../../src/pubsub/pubsub.js';
import { MemoryBroker } from '../../../src/pubsub/memory-broker.js';
import { readEnvelope } from './samples.js';

let offset = 0;
const text = (value: Record<string, unknown>): BrokerMessage => ({
  topic: 'chat/x',
  data: Buffer.from(JSON.stringify(value)),
  binary: false,
  epoch: 'e1',
  offset: ++offset,
});
const image = (name: string, bytes: number): BrokerMessage => ({
  topic: 'chat/x',
  data: wrap({ type: 'image', id: name, name, mime: 'image/png', size: bytes } as { type: string }, new Uint8Array(bytes)),
  binary: true,
  epoch: 'e1',
  offset: ++offset,
});

describe('selectHistory', () => {
  it('keeps the last messages and images, oldest first, leaving out notices and presence lists', () => {
    const entries = [
      text({ type: 'notice', event: 'join', nick: 'ann' }),
      text({ type: 'presence', nicks: ['ann'] }),
      ...Array.from({ length: 60 }, (_, i) => text({ type: 'message', id: `m${i}`, text: String(i) })),
      image('pic', 10),
      text({ type: 'notice', event: 'leave', nick: 'ann' }),
    ];
    const history = selectHistory(entries);
    expect(history.messages).toHaveLength(50);
    expect(history.messages[0]).toEqual({ id: 'm11', text: '11' });
    expect(history.messages.at(-1)).toEqual({ id: 'pic', name: 'pic', mime: 'image/png', size: 10 });
    expect(history.images).toHaveLength(1);
    expect(history.images[0]).toBe(entries[62]!.data);
  });

  it('drops the oldest images past the byte budget, keeping the text and the newest images', () => {
    const entries = [image('one', 100), text({ type: 'message', id: 'a' }), image('two', 100), image('three', 100)];
    const budget = entries[2]!.data.length + entries[3]!.data.length;
    const history = selectHistory(entries, { imageBytes: budget });
    expect(history.messages.map((m) => m.id)).toEqual(['a', 'two', 'three']);
    expect(history.images.map((bytes) => readEnvelope(Buffer.from(bytes)).header['name'])).toEqual(['two', 'three']);
  });
});

describe('withPosition', () => {
  it('adds epoch and offset as the first fields of a text message and to an image’s header, bytes untouched', () => {
    const message = text({ type: 'message', text: 'hi "there"' });
    expect(JSON.parse(withPosition(message) as string)).toEqual({ epoch: 'e1', offset: message.offset, type: 'message', text: 'hi "there"' });
    expect((withPosition(message) as string).startsWith('{"epoch":"e1","offset":')).toBe(true);
    const pic = image('p', 5);
    const out = readEnvelope(Buffer.from(withPosition(pic) as Uint8Array));
    expect(out.header).toMatchObject({ type: 'image', name: 'p', epoch: 'e1', offset: pic.offset });
    expect(out.bytes.equals(Buffer.alloc(5))).toBe(true);
  });
});

describe('readRecent', () => {
  it('reads as far back as the topic’s history reaches, trimmed by count', async () => {
    const hub = new PubSub({ broker: new MemoryBroker({ history: { size: 30, ttlMs: 60_000 } }) });
    for (let i = 1; i <= 100; i++) await hub.publish('chat/r', `{"type":"message","text":"${i}"}`);
    const recent = await readRecent(hub, 'chat/r', 200);
    expect(recent.position.offset).toBe(100);
    expect(recent.entries.length).toBeGreaterThanOrEqual(30 / 2);
    expect(recent.entries.at(-1)?.offset).toBe(100);
    const offsets = recent.entries.map((m) => m.offset);
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    // A topic never published: nothing, at offset 0.
    expect(await readRecent(hub, 'chat/empty')).toMatchObject({ position: { offset: 0 }, entries: [] });
  });
});
