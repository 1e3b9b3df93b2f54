import { afterEach, describe, expect, it } from 'vitest';
import { RedisBroker, type RedisBrokerOptions } from '../../src/pubsub/redis-broker.js';
import { BrokerError } from '../../src/pubsub/broker-error.js';
import type { BrokerMessage, TopicDiscontinuity } from '../../src/pubsub/broker.js';
import { settle, until } from '../wait.js';
import { startRedis, useRedis } from './redis-server.js';
import { makeSelfSignedCertificate } from '../node/test-certificates.js';

const redis = useRedis();
const brokers: RedisBroker[] = [];
let topicCounter = 0;

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

/** A fresh topic name per test: the Redis is shared by the tests of this file. */
const freshTopic = (): string => `t${++topicCounter}`;

async function node(options: RedisBrokerOptions = {}): Promise<{ broker: RedisBroker; received: BrokerMessage[]; holes: TopicDiscontinuity[] }> {
  const broker = await RedisBroker.connect({ url: redis.url, ...options });
  brokers.push(broker);
  const received: BrokerMessage[] = [];
  const holes: TopicDiscontinuity[] = [];
  broker.onMessage = (message) => received.push(message);
  broker.onDiscontinuity = (event) => holes.push(event);
  return { broker, received, holes };
}

const payload = (text: string): Uint8Array => new TextEncoder().encode(text);
const texts = (messages: readonly BrokerMessage[]): string[] => messages.map((m) => new TextDecoder().decode(m.data));
const offsets = (messages: readonly BrokerMessage[]): number[] => messages.map((m) => m.offset);
const oneToN = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('RedisBroker', () => {
  it('acknowledges a publish with its stored position and delivers it with its epoch and offset', async () => {
    const topic = freshTopic();
    const { broker, received } = await node();
    const start = await broker.subscribe(topic);
    expect(start.offset).toBe(0);
    const position = await broker.publish(topic, payload('hello'), { binary: false });
    expect(position).toEqual({ epoch: start.epoch, offset: 1 });
    await until(() => received.length === 1, 'one message', 5000);
    expect(received[0]).toMatchObject({ topic, epoch: start.epoch, offset: 1, binary: false });
    expect(texts(received)).toEqual(['hello']);
    const binary = await broker.publish(topic, new Uint8Array([0, 10, 255, 10]));
    await until(() => received.length === 2, 'two messages', 5000);
    expect(Buffer.from(received[1]!.data)).toEqual(Buffer.from([0, 10, 255, 10]));
    expect(binary.offset).toBe(2);
  });

  it('delivers a topic in one order, the same on every node, with contiguous offsets (three publishers, three nodes)', async () => {
    const topic = freshTopic();
    const nodes = await Promise.all([node(), node(), node()]);
    await Promise.all(nodes.map(({ broker }) => broker.subscribe(topic)));
    const perPublisher = 200;
    await Promise.all(
      nodes.map(({ broker }, publisher) =>
        Promise.all(Array.from({ length: perPublisher }, (_, i) => broker.publish(topic, payload(`${publisher}:${i}`)))),
      ),
    );
    const total = 3 * perPublisher;
    await until(() => nodes.every(({ received }) => received.length >= total), 'every node to receive every message', 10_000);
    const reference = texts(nodes[0]!.received);
    for (const { received } of nodes) {
      expect(offsets(received)).toEqual(oneToN(total));
      expect(texts(received)).toEqual(reference);
    }
    // Each publisher's own messages keep the order it published them in.
    for (let publisher = 0; publisher < 3; publisher++) {
      const own = reference.filter((text) => text.startsWith(`${publisher}:`));
      expect(own).toEqual(Array.from({ length: perPublisher }, (_, i) => `${publisher}:${i}`));
    }
  });

  it('replays history after a position, and reports a position of another epoch or one trimmed away', async () => {
    const topic = freshTopic();
    const { broker } = await node({ history: { size: 5, ttlMs: 60_000 } });
    for (let i = 1; i <= 8; i++) await broker.publish(topic, payload(`m${i}`));
    const { epoch, offset } = await broker.position(topic);
    expect(offset).toBe(8);
    const fromFive = await broker.history(topic, { epoch, offset: 5 });
    expect(fromFive.ok && texts(fromFive.messages)).toEqual(['m6', 'm7', 'm8']);
    expect(await broker.history(topic, { epoch, offset: 2 })).toMatchObject({ ok: false, reason: 'history-too-short' });
    expect(await broker.history(topic, { epoch, offset: 9 })).toMatchObject({ ok: false, reason: 'epoch-changed' });
    expect(await broker.history(topic, { epoch: 'elsewhere', offset: 7 })).toMatchObject({
      ok: false,
      reason: 'epoch-changed',
      position: { epoch, offset: 8 },
    });
  });

  it('keeps offsets but no messages for a topic configured without history', async () => {
    const topic = `tick:${freshTopic()}`;
    const { broker } = await node({ history: (name) => (name.startsWith('tick:') ? { size: 0, ttlMs: 0 } : { size: 100, ttlMs: 60_000 }) });
    await broker.publish(topic, payload('a'));
    const second = await broker.publish(topic, payload('b'));
    expect(second.offset).toBe(2);
    expect(await redis.command('EXISTS', `sockeye:{${topic}}:history`)).toBe(0);
    expect(await broker.history(topic, { epoch: second.epoch, offset: 1 })).toMatchObject({ ok: false, reason: 'history-too-short' });
  });

  it('loses nothing and duplicates nothing when Redis kills the subscriber connection mid-stream', async () => {
    const topic = freshTopic();
    const publisher = await node();
    const subscriber = await node();
    await subscriber.broker.subscribe(topic);
    const total = 600;
    const sent: Promise<unknown>[] = [];
    for (let i = 1; i <= total; i++) {
      sent.push(publisher.broker.publish(topic, payload(`m${i}`)));
      if (i === 200) {
        // Kills every pub/sub connection: the subscriber's, mid-stream.
        const killed = await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
        expect(killed).toBeGreaterThanOrEqual(1);
      }
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(sent);
    await until(() => subscriber.received.length >= total, 'the subscriber to catch up', 10_000);
    expect(offsets(subscriber.received)).toEqual(oneToN(total));
    expect(texts(subscriber.received)).toEqual(oneToN(total).map((i) => `m${i}`));
    expect(subscriber.holes).toEqual([]);
    expect(subscriber.broker.stats.gapsCaughtUp).toBeGreaterThanOrEqual(1);
  });

  it('fails publishes past the queue bound at once and those Redis does not answer within the wait, with typed errors (CLIENT PAUSE)', async () => {
    const topic = freshTopic();
    const { broker } = await node({ maxQueuedPublishes: 5, publishTimeoutMs: 300 });
    await broker.publish(topic, payload('before'));
    await redis.command('CLIENT', 'PAUSE', 1500, 'ALL');
    const started = Date.now();
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => broker.publish(topic, payload(`p${i}`))));
    const codes = outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as BrokerError).code : 'stored'));
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('WS_ERR_BROKER_UNAVAILABLE'));
    expect(codes.slice(5)).toEqual(Array(3).fill('WS_ERR_BROKER_QUEUE_FULL'));
    for (const outcome of outcomes) expect(outcome.status === 'rejected' && outcome.reason instanceof BrokerError).toBe(true);
    // The unanswered ones failed after the wait, not after the pause.
    expect(Date.now() - started).toBeLessThan(1400);
    // Still counted while Redis holds them: the bound is on what is really pending.
    expect(broker.stats.queueDepth).toBe(5);
    await until(() => broker.stats.queueDepth === 0, 'the paused commands to be answered', 5000);
    const after = await broker.publish(topic, payload('after'));
    expect(after.offset).toBeGreaterThan(1);
    expect(broker.stats.publishFailed).toBe(8);
  });

  it('fails a publish that would take the queued bytes past maxQueuedBytes at once, while smaller ones queue (CLIENT PAUSE)', async () => {
    const topic = freshTopic();
    const { broker } = await node({ maxQueuedBytes: 100, publishTimeoutMs: 20_000 });
    await broker.publish(topic, payload('before'));
    // Long enough that the held publishes are still pending when the rejection is checked; the test waits for the answers, not the pause.
    await redis.command('CLIENT', 'PAUSE', 2000, 'ALL');
    const settled = new Set<string>();
    const track = (name: string, promise: Promise<unknown>): Promise<unknown> => {
      promise.then(
        () => settled.add(name),
        () => settled.add(name),
      );
      return promise;
    };
    const a = track('a', broker.publish(topic, payload('a'.repeat(40))));
    const b = track('b', broker.publish(topic, payload('b'.repeat(40))));
    // 80 + 30 > 100: refused, although only 3 publishes would be pending (the count bound is 10,000).
    const tooBig = track('c', broker.publish(topic, payload('c'.repeat(30))));
    // 80 + 20 = 100: exactly the bound still fits.
    const fits = track('d', broker.publish(topic, payload('d'.repeat(20))));
    const overByOne = track('e', broker.publish(topic, payload('e')));
    await expect(tooBig).rejects.toMatchObject({ name: 'BrokerError', code: 'WS_ERR_BROKER_QUEUE_FULL' });
    await expect(overByOne).rejects.toMatchObject({ code: 'WS_ERR_BROKER_QUEUE_FULL' });
    await expect(tooBig).rejects.toBeInstanceOf(BrokerError);
    // Refused at once: the others are still held by the paused Redis.
    expect([...settled].sort()).toEqual(['c', 'e']);
    expect(broker.stats.queueDepth).toBe(3);

    const stored = (await Promise.all([a, b, fits])) as { offset: number }[];
    expect(stored.map((position) => position.offset)).toEqual([2, 3, 4]);
    // The refused ones were never sent.
    const { epoch, offset } = await broker.position(topic);
    expect(offset).toBe(4);
    const history = await broker.history(topic, { epoch, offset: 0 });
    expect(history.ok && texts(history.messages)).toEqual(['before', 'a'.repeat(40), 'b'.repeat(40), 'd'.repeat(20)]);
    // The answered bytes left the count: a publish of the whole bound fits again, one byte more never does.
    expect((await broker.publish(topic, payload('f'.repeat(100)))).offset).toBe(5);
    await expect(broker.publish(topic, payload('g'.repeat(101)))).rejects.toMatchObject({ code: 'WS_ERR_BROKER_QUEUE_FULL' });
    expect(broker.stats.publishFailed).toBe(3);
  });

  it('bounds the bytes of publishes waiting for an unreachable Redis the same way', async () => {
    // Nothing listens on port 1: the broker keeps trying to connect.
    const broker = new RedisBroker({ url: 'redis://127.0.0.1:1', maxQueuedBytes: 100, publishTimeoutMs: 60_000 });
    brokers.push(broker);
    const first = broker.publish('nowhere', payload('x'.repeat(60)));
    const refused = broker.publish('nowhere', payload('y'.repeat(50)));
    const second = broker.publish('nowhere', payload('z'.repeat(40)));
    let refusal: unknown = 'still pending';
    refused.catch((error: unknown) => (refusal = error));
    // Refused at once, not when the wait or the close ends it.
    await settle();
    expect(refusal).toMatchObject({ code: 'WS_ERR_BROKER_QUEUE_FULL' });
    expect(broker.stats.queueDepth).toBe(2);
    const closed = Promise.allSettled([first, second]);
    await broker.close();
    expect((await closed).map((outcome) => outcome.status === 'rejected' && (outcome.reason as BrokerError).code)).toEqual([
      'WS_ERR_BROKER_CLOSED',
      'WS_ERR_BROKER_CLOSED',
    ]);
  });

  it('delivers every acknowledged publish exactly once when Redis kills the command connection mid-stream', async () => {
    const topic = freshTopic();
    const publisher = await node();
    const subscriber = await node();
    await subscriber.broker.subscribe(topic);
    const outcomes: Promise<PromiseSettledResult<unknown>>[] = [];
    const total = 400;
    for (let i = 1; i <= total; i++) {
      outcomes.push(
        publisher.broker.publish(topic, payload(`m${i}`)).then(
          (value) => ({ status: 'fulfilled', value }),
          (reason: unknown) => ({ status: 'rejected', reason }),
        ),
      );
      if (i === 150) await redis.command('CLIENT', 'KILL', 'TYPE', 'normal');
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const settled = await Promise.all(outcomes);
    const acknowledged = settled.filter((outcome) => outcome.status === 'fulfilled').length;
    for (const outcome of settled) {
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(BrokerError);
    }
    expect(acknowledged).toBeGreaterThan(0);
    const { offset: stored } = await publisher.broker.position(topic);
    // At least every acknowledged one was stored (a failed one may have been too).
    expect(stored).toBeGreaterThanOrEqual(acknowledged);
    await until(() => subscriber.received.length >= stored, 'every stored message', 10_000);
    expect(offsets(subscriber.received)).toEqual(oneToN(stored));
  });

  it('fails the publishes still waiting when the broker is closed', async () => {
    const broker = new RedisBroker({ url: 'redis://127.0.0.1:1', publishTimeoutMs: 60_000 });
    const waiting = broker.publish('nowhere', payload('x'));
    expect(broker.stats.queueDepth).toBe(1);
    const failed = expect(waiting).rejects.toMatchObject({ code: 'WS_ERR_BROKER_CLOSED' });
    await broker.close();
    await failed;
    await expect(broker.publish('nowhere', payload('y'))).rejects.toMatchObject({ code: 'WS_ERR_BROKER_CLOSED' });
  });

  it('connects with a password in the URL', async () => {
    const secured = await startRedis({ password: 's3cret pass' });
    try {
      const broker = await RedisBroker.connect({ url: secured.url });
      brokers.push(broker);
      expect((await broker.publish('p', payload('x'))).offset).toBe(1);
      const wrong = secured.url.replace('s3cret', 'wrong');
      await expect(RedisBroker.connect({ url: wrong, timeoutMs: 1000 })).rejects.toMatchObject({ code: 'WS_ERR_BROKER_UNAVAILABLE' });
    } finally {
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
      await secured.stop();
    }
  });

  it('connects over TLS with a rediss:// URL and a password, checking the server certificate against the given CA', async () => {
    // A self-signed certificate for 127.0.0.1: it is its own CA.
    const tls = makeSelfSignedCertificate();
    const { certFile, keyFile } = tls;
    const secured = await startRedis({ password: 'tls-pass', tls: { certFile, keyFile } });
    try {
      expect(secured.url.startsWith('rediss://')).toBe(true);
      const broker = await RedisBroker.connect({ url: secured.url, tls: { ca: tls.cert } });
      brokers.push(broker);
      const received: BrokerMessage[] = [];
      broker.onMessage = (message) => received.push(message);
      await broker.subscribe('secure');
      expect((await broker.publish('secure', payload('over tls'))).offset).toBe(1);
      await until(() => received.length === 1, 'one message', 5000);
      expect(texts(received)).toEqual(['over tls']);
      // Without the CA the self-signed certificate is refused.
      await expect(RedisBroker.connect({ url: secured.url, timeoutMs: 1000 })).rejects.toMatchObject({ code: 'WS_ERR_BROKER_UNAVAILABLE' });
    } finally {
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
      await secured.stop();
      tls.remove();
    }
  });

  it('forgets the state of a topic whose last subscriber left', async () => {
    const topic = freshTopic();
    const { broker } = await node();
    await broker.subscribe(topic);
    broker.unsubscribe(topic);
    expect(broker['topics'].size).toBe(0);
    // The UNSUBSCRIBE travels on the subscriber connection: poll Redis a bounded number of times.
    let channels: string[] = ['not asked yet'];
    for (let attempt = 0; attempt < 100 && channels.length > 0; attempt++) {
      channels = (await redis.command('PUBSUB', 'CHANNELS', `sockeye:{${topic}}:*`)) as string[];
      if (channels.length > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(channels).toEqual([]);
  });
});
