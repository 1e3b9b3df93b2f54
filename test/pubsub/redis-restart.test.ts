import { afterEach, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import type { BrokerMessage, TopicDiscontinuity } from '../../src/pubsub/broker.js';
import { until } from '../wait.js';
import { useRedis } from './redis-server.js';

const redis = useRedis();
const brokers: RedisBroker[] = [];

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

const text = (message: BrokerMessage): string => Buffer.from(message.data).toString();

describe('RedisBroker when Redis is SIGKILLed and restarted without its data', () => {
  it('reports the new epoch, delivers the new sequence from its start, and acknowledges a publish queued during the outage', async () => {
    const publisher = await RedisBroker.connect({ url: redis.url });
    const subscriber = await RedisBroker.connect({ url: redis.url });
    brokers.push(publisher, subscriber);
    const received: BrokerMessage[] = [];
    const holes: TopicDiscontinuity[] = [];
    subscriber.onMessage = (message) => received.push(message);
    subscriber.onDiscontinuity = (event) => holes.push(event);
    await subscriber.subscribe('news');
    for (let i = 1; i <= 3; i++) await publisher.publish('news', Buffer.from(`old${i}`));
    await until(() => received.length === 3, 'three messages', 5000);
    const oldEpoch = received[0]!.epoch;

    await redis.kill();
    await until(() => publisher.stats.state !== 'ready' && subscriber.stats.state !== 'ready', 'both nodes to see Redis gone', 5000);
    // Waits in the queue while Redis is down; stored once it is back.
    const queued = publisher.publish('news', Buffer.from('new1'));
    expect(publisher.stats.queueDepth).toBe(1);
    await redis.restart();
    const stored = await queued;
    expect(stored.epoch).not.toBe(oldEpoch);
    await publisher.publish('news', Buffer.from('new2'));

    await until(() => received.length === 5, 'the new sequence to arrive', 10_000);
    expect(received.slice(3).map((m) => [m.epoch, m.offset, text(m)])).toEqual([
      [stored.epoch, 1, 'new1'],
      [stored.epoch, 2, 'new2'],
    ]);
    expect(holes).toEqual([{ topic: 'news', reason: 'epoch-changed', from: { epoch: oldEpoch, offset: 3 }, to: { epoch: stored.epoch, offset: 0 } }]);
    // A client holding an old-epoch position is told it cannot recover.
    expect(await subscriber.history('news', { epoch: oldEpoch, offset: 3 })).toMatchObject({ ok: false, reason: 'epoch-changed' });
    expect(subscriber.stats.state).toBe('ready');
  });
});
