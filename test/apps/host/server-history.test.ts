import { afterEach, describe, expect, it } from 'vitest';
import { allApps, AppServer } from '../../../src/apps/index.js';
import { roomTopic } from '../../../src/apps/chat/index.js';
import { ROOM_TOPIC_HISTORY } from '../../../src/apps/chat/history.js';
import { DEFAULT_HISTORY } from '../../../src/pubsub/broker.js';

/**
 * The apps host builds its in-memory hub with each app's own history per
 * topic (App.topicHistory): a chat room keeps what the chat asks for, other
 * topics the broker's default.
 */

const servers: AppServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function fill(server: AppServer, topic: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await server.pubsub.publish(topic, `m${i}`);
}

describe('AppServer history per topic', () => {
  it('keeps a chat room to the chat history size and other topics to the default', async () => {
    expect(ROOM_TOPIC_HISTORY.size).toBeLessThan(DEFAULT_HISTORY.size);
    const server = new AppServer({ apps: allApps, logLevel: 'silent' });
    servers.push(server);
    const room = roomTopic('history-test');
    const count = ROOM_TOPIC_HISTORY.size + 10;
    await fill(server, room, count);
    await fill(server, 'elsewhere', count);
    const position = await server.pubsub.live(room);

    // From the start, the room's history no longer reaches back: it keeps the chat's size only.
    const roomFromStart = await server.pubsub.history(room, { epoch: position.epoch, offset: 0 });
    expect(roomFromStart.ok).toBe(false);
    const lastKept = await server.pubsub.history(room, { epoch: position.epoch, offset: count - ROOM_TOPIC_HISTORY.size });
    expect(lastKept.ok && lastKept.messages.length).toBe(ROOM_TOPIC_HISTORY.size);

    // A topic no app claims keeps the broker's default, which holds all of them.
    const other = await server.pubsub.live('elsewhere');
    const otherFromStart = await server.pubsub.history('elsewhere', { epoch: other.epoch, offset: 0 });
    expect(otherFromStart.ok && otherFromStart.messages.length).toBe(count);
  });
});
