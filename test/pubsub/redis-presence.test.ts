import { afterEach, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/pubsub/redis-broker.js';
import type { PresenceEvent } from '../../src/pubsub/presence.js';
import { until } from '../wait.js';
import { useRedis } from './redis-server.js';

const redis = useRedis();
const brokers: RedisBroker[] = [];

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

async function node(presenceTtlMs = 1500): Promise<RedisBroker> {
  const broker = await RedisBroker.connect({ url: redis.url, presenceTtlMs });
  brokers.push(broker);
  return broker;
}

/** Wait until Redis has the presence channel's subscription (SUBSCRIBE travels on another connection than the scripts). */
async function subscribed(topic: string, count = 1): Promise<void> {
  const channel = `sockeye:{${topic}}:presence-events`;
  for (let attempt = 0; attempt < 200; attempt++) {
    const [, subscribers] = (await redis.command('PUBSUB', 'NUMSUB', channel)) as [string, number];
    if (subscribers >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`nobody subscribed to ${channel}`);
}

const describeEvent = (event: PresenceEvent): string =>
  event.type === 'join' ? `join ${event.member.id} ${JSON.stringify(event.member.data)}` : `leave ${event.id}${event.expired ? ' (expired)' : ''}`;

describe('Redis presence', () => {
  it('lists members of every node with their data and reports joins and leaves across nodes', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    const seenByA: PresenceEvent[] = [];
    a.presence.watch('room', (event) => seenByA.push(event));
    await subscribed('room');
    await a.presence.join('room', 'a1', { nick: 'ann' });
    await b.presence.join('room', 'b1', { nick: 'bob' });
    await b.presence.join('room', 'b1', { nick: 'bobby' }); // new data: a join event again
    await b.presence.join('room', 'b1', { nick: 'bobby' }); // the same: no event
    await b.presence.leave('room', 'b1');
    await until(() => seenByA.length === 4, 'four presence events', 5000);
    expect(seenByA.map(describeEvent)).toEqual(['join a1 {"nick":"ann"}', 'join b1 {"nick":"bob"}', 'join b1 {"nick":"bobby"}', 'leave b1']);
    expect(await b.presence.members('room')).toEqual([{ id: 'a1', data: { nick: 'ann' } }]);
  });

  it('keeps a live node’s members past the TTL by refreshing them, and expires those of a node cut off without a goodbye', async () => {
    const ttl = 900;
    const [watcher, live, cut] = await Promise.all([node(ttl), node(ttl), node(ttl)]);
    const events: PresenceEvent[] = [];
    watcher.presence.watch('hall', (event) => events.push(event));
    await subscribed('hall');
    await live.presence.join('hall', 'stays', 1);
    await cut.presence.join('hall', 'goes', 2);
    const cutAt = Date.now();
    cut.disconnectAbruptly();
    await until(() => events.some((e) => e.type === 'leave' && e.id === 'goes'), 'the cut-off member to expire', ttl * 4);
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(ttl / 3); // not before its last refresh could have lapsed
    // Well past the TTL: the refreshed member is still there.
    await new Promise((resolve) => setTimeout(resolve, ttl));
    expect(await watcher.presence.members('hall')).toEqual([{ id: 'stays', data: 1 }]);
    expect(events.filter((e) => e.type === 'leave').map(describeEvent)).toEqual(['leave goes (expired)']);
  });

  it('says goodbye for its members when closed', async () => {
    const [watcher, leaving] = await Promise.all([node(), node()]);
    const events: PresenceEvent[] = [];
    watcher.presence.watch('porch', (event) => events.push(event));
    await subscribed('porch');
    await leaving.presence.join('porch', 'x', null);
    await leaving.close();
    await until(() => events.some((e) => e.type === 'leave'), 'the goodbye', 5000);
    expect(events.map(describeEvent)).toEqual(['join x null', 'leave x']);
  });
});

describe('Redis presence: claim', () => {
  it('lets exactly one of three nodes win each id when they race for it', async () => {
    const nodes = await Promise.all([node(), node(), node()]);
    const ids = Array.from({ length: 20 }, (_, i) => `nick${i}`);
    // Every node claims every id at once: the scripts interleave in Redis.
    const results = await Promise.all(ids.map((id) => Promise.all(nodes.map((broker, n) => broker.presence.claim('race', id, { node: n })))));
    for (const perNode of results) expect(perNode.filter(Boolean)).toHaveLength(1);
    const members = await nodes[0]!.presence.members('race');
    expect(members.map((m) => m.id).sort()).toEqual([...ids].sort());
    // Each member carries the data of the node that won it.
    for (const [i, id] of ids.entries()) {
      const winner = results[i]!.indexOf(true);
      expect(members.find((m) => m.id === id)?.data).toEqual({ node: winner });
    }
  });

  it('refuses an id held by another member, accepts the holder again, and frees it on leave', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    expect(await a.presence.claim('hall', 'ann', { by: 'a' })).toBe(true);
    expect(await b.presence.claim('hall', 'ann', { by: 'b' })).toBe(false);
    expect(await a.presence.claim('hall', 'ann', { by: 'a' })).toBe(true); // the holder's own claim: a refresh
    expect(await a.presence.members('hall')).toEqual([{ id: 'ann', data: { by: 'a' } }]);
    await a.presence.leave('hall', 'ann');
    expect(await b.presence.claim('hall', 'ann', { by: 'b' })).toBe(true);
    expect(await a.presence.members('hall')).toEqual([{ id: 'ann', data: { by: 'b' } }]);
  });

  it('leaves with data only if the member still has that data: a takeover survives the old holder’s leave', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    expect(await a.presence.claim('hall', 'ann', { conn: 1 })).toBe(true);
    await b.presence.join('hall', 'ann', { conn: 2 }); // taken over by another node
    await a.presence.leave('hall', 'ann', { conn: 1 });
    expect(await a.presence.members('hall')).toEqual([{ id: 'ann', data: { conn: 2 } }]);
    await b.presence.leave('hall', 'ann', { conn: 2 });
    expect(await a.presence.members('hall')).toEqual([]);
  });

  it('keeps a claim past the TTL while its node lives, and frees it within the TTL once its node is cut off', async () => {
    const ttl = 900;
    const [holder, other, cut] = await Promise.all([node(ttl), node(ttl), node(ttl)]);
    const events: PresenceEvent[] = [];
    other.presence.watch('porch', (event) => events.push(event));
    await subscribed('porch');
    expect(await holder.presence.claim('porch', 'kept', 1)).toBe(true);
    expect(await cut.presence.claim('porch', 'lost', 2)).toBe(true);
    cut.disconnectAbruptly();
    const cutAt = Date.now();
    // Claim until the dead node's entry has expired: refused at first, then won.
    let won = false;
    for (let attempt = 0; attempt < 200 && !won && Date.now() - cutAt < ttl * 4; attempt++) {
      won = await other.presence.claim('porch', 'lost', 3);
      if (!won) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(won).toBe(true);
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(ttl / 3);
    // Well past the TTL, the live node's claim is still its own.
    await new Promise((resolve) => setTimeout(resolve, ttl));
    expect(await other.presence.claim('porch', 'kept', 4)).toBe(false);
    expect((await other.presence.members('porch')).sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { id: 'kept', data: 1 },
      { id: 'lost', data: 3 },
    ]);
    await until(() => events.some((e) => e.type === 'leave' && e.id === 'lost' && e.expired), 'the expired leave event', 2000);
  });
});
