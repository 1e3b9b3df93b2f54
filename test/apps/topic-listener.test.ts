import { describe, expect, it } from 'vitest';
import { TopicListener } from '../../src/apps/topic-listener.js';
import { MemoryBroker } from '../../src/pubsub/memory-broker.js';
import { PubSub } from '../../src/pubsub/pubsub.js';

/** The listener is a hub subscriber that is code, not a connection: it gets what subscribers get. */
function setUp(): { hub: PubSub; received: string[]; errors: unknown[]; listener: TopicListener } {
  const hub = new PubSub({ broker: new MemoryBroker() });
  const received: string[] = [];
  const errors: unknown[] = [];
  const listener = new TopicListener(
    hub,
    (data, binary) => {
      const text = Buffer.from(data).toString();
      if (text === 'boom') throw new Error('boom');
      received.push(`${binary ? 'b' : 't'}:${text}`);
    },
    (error) => errors.push(error),
  );
  return { hub, received, errors, listener };
}

describe('TopicListener', () => {
  it('receives a topic’s messages in order, text and binary as published, until it stops listening', async () => {
    const { hub, received, listener } = setUp();
    expect(listener.listen('t')).toBe(true);
    expect(listener.listen('t')).toBe(false);
    await hub.publish('t', 'one');
    await hub.publish('t', Buffer.from('two'));
    await hub.publish('other', 'not this');
    expect(listener.unlisten('t')).toBe(true);
    await hub.publish('t', 'three');
    expect(received).toEqual(['t:one', 'b:two']);
    expect(hub.subscriberCount('t')).toBe(0);
  });

  it('replays what came after a position, then goes on live, with no hole and no duplicate', async () => {
    const { hub, received, listener } = setUp();
    const first = await hub.publish('t', 'm1');
    await hub.publish('t', 'm2');
    await hub.publish('t', 'm3');
    const result = await listener.listenSince('t', first);
    expect(result).toMatchObject({ recovered: true, replayed: 2 });
    await hub.publish('t', 'm4');
    expect(received).toEqual(['t:m2', 't:m3', 't:m4']);
  });

  it('reports what its handler throws and keeps delivering to the others', async () => {
    const { hub, received, errors, listener } = setUp();
    const seenByOther: string[] = [];
    const other = new TopicListener(
      hub,
      (data) => seenByOther.push(Buffer.from(data).toString()),
      () => {},
    );
    listener.listen('t');
    other.listen('t');
    await hub.publish('t', 'boom');
    await hub.publish('t', 'after');
    expect(errors).toHaveLength(1);
    expect(received).toEqual(['t:after']);
    expect(seenByOther).toEqual(['boom', 'after']);
  });

  it('close() stops every topic', async () => {
    const { hub, received, listener } = setUp();
    listener.listen('a');
    listener.listen('b');
    listener.close();
    await hub.publish('a', 'x');
    await hub.publish('b', 'y');
    expect(received).toEqual([]);
    expect(hub.subscriberCount('a') + hub.subscriberCount('b')).toBe(0);
  });
});
