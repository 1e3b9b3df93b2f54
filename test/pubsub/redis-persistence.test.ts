import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import { BrokerError } from '../../src/pubsub/broker-error.js';
import type { BrokerMessage, StreamPosition, TopicDiscontinuity } from '../../src/pubsub/broker.js';
import { until } from '../wait.js';
import { startRedis, type RedisServer } from './redis-server.js';

/**
 * A Redis that keeps its data across a SIGKILL: every write is appended to
 * its AOF and fsynced before Redis answers (`appendfsync always`), so what
 * it acknowledged is on disk when it is killed.
 */
let redis: RedisServer | undefined;
let dataDir = '';
const brokers: RedisBroker[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sockeye-redis-aof-'));
  redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir] });
});

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

afterAll(async () => {
  await redis?.stop();
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
});

const payload = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (message: BrokerMessage): string => new TextDecoder().decode(message.data);
const oneToN = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Outcome = { readonly i: number; readonly position: StreamPosition } | { readonly i: number; readonly error: unknown };

describe('RedisBroker when Redis is SIGKILLed mid-stream and restarted with its data', () => {
  it('keeps the epoch, delivers offsets 1..N once each with no hole, and loses no acknowledged publish', async () => {
    const server = redis!;
    const topic = 'ledger';
    const publisher = await RedisBroker.connect({ url: server.url, publishTimeoutMs: 20_000 });
    const subscriber = await RedisBroker.connect({ url: server.url });
    brokers.push(publisher, subscriber);
    const received: BrokerMessage[] = [];
    const holes: TopicDiscontinuity[] = [];
    subscriber.onMessage = (message) => received.push(message);
    subscriber.onDiscontinuity = (event) => holes.push(event);
    const start = await subscriber.subscribe(topic);
    expect(start.offset).toBe(0);

    const outcomes: Promise<Outcome>[] = [];
    const publish = (i: number): void => {
      outcomes.push(
        publisher.publish(topic, payload(`m${i}`)).then(
          (position) => ({ i, position }),
          (error: unknown) => ({ i, error }),
        ),
      );
    };

    // Before the kill: a stream the subscriber is in the middle of.
    for (let i = 1; i <= 100; i++) {
      publish(i);
      if (i % 25 === 0) await turn();
    }
    await until(() => received.length >= 50, 'the subscriber to be mid-stream', 10_000);
    await server.kill();
    await until(() => publisher.stats.state !== 'ready' && subscriber.stats.state !== 'ready', 'both nodes to see Redis gone', 10_000);

    // During the outage: these wait in the publisher's queue.
    for (let i = 101; i <= 150; i++) publish(i);
    expect(publisher.stats.queueDepth).toBeGreaterThanOrEqual(50);
    await server.restart();

    // After the restart (the broker may still be reconnecting: then they queue too).
    for (let i = 151; i <= 300; i++) {
      publish(i);
      if (i % 25 === 0) await turn();
    }
    const settled = await Promise.all(outcomes);

    const acknowledged = settled.flatMap((outcome) => ('position' in outcome ? [outcome] : []));
    for (const outcome of settled) {
      // Only the publishes in flight at the kill may fail (and may or may not be stored).
      if ('error' in outcome) {
        expect(outcome.error).toBeInstanceOf(BrokerError);
        expect(outcome.i).toBeLessThanOrEqual(100);
      }
    }
    expect(acknowledged.length).toBeGreaterThanOrEqual(250);
    // Redis came back with its data: the same sequence went on.
    for (const { position } of acknowledged) expect(position.epoch).toBe(start.epoch);
    const end = await publisher.position(topic);
    expect(end.epoch).toBe(start.epoch);
    expect(end.offset).toBeGreaterThanOrEqual(acknowledged.length);

    await until(() => received.length >= end.offset, 'the subscriber to receive every stored message', 15_000);
    expect(received.map((message) => message.offset)).toEqual(oneToN(end.offset));
    expect(new Set(received.map((message) => message.epoch))).toEqual(new Set([start.epoch]));
    expect(holes).toEqual([]);

    // Every acknowledged publish is in the history, at the offset it was acknowledged with.
    const history = await subscriber.history(topic, { epoch: start.epoch, offset: 0 });
    if (!history.ok) throw new Error(`history not readable: ${history.reason}`);
    expect(history.position).toEqual(end);
    const stored = new Map(history.messages.map((message) => [message.offset, text(message)]));
    for (const { i, position } of acknowledged) expect([position.offset, stored.get(position.offset)]).toEqual([position.offset, `m${i}`]);
    // And the subscriber saw exactly what is stored.
    expect(received.map(text)).toEqual(history.messages.map(text));
  });
});
