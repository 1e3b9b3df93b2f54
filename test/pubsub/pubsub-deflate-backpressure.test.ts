import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from '../../src/node/server.js';
import type { Connection } from '../../src/node/connection.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { RawClient } from '../node/raw-client.js';
import { until } from '../wait.js';

/**
 * The hub's slow-subscriber check sees data waiting for the
 * permessage-deflate compressor (issue 9, item 3: "the pub/sub hub's check
 * must include data waiting for compression"). The check reads the
 * subscriber's `bufferedAmount` at the start of each turn; while what the
 * application sent is still in the compressor, none of it is in the socket.
 */

let server: WebSocketServer | null = null;
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await server?.close({ timeout: 100 });
  server = null;
});

describe('a subscriber whose own messages wait for the compressor', () => {
  it('is over the hub limit: the next publish skips it (drop) while 16 MiB wait to be compressed', async () => {
    const hub = new PubSub({ maxSubscriberBuffer: 1024 * 1024, slowSubscriberPolicy: 'drop' });
    server = new WebSocketServer({ heartbeat: false, perMessageDeflate: true });
    const opened: Connection<unknown>[] = [];
    server.route('/room', {
      open(connection) {
        hub.subscribe(connection, 'room');
        opened.push(connection);
      },
    });
    const { port } = await server.listen(0);
    const { client, response } = await RawClient.upgrade(port, { path: '/room', extra: ['Sec-WebSocket-Extensions: permessage-deflate'] });
    clients.push(client);
    expect(response.headers.get('sec-websocket-extensions')).toMatch(/^permessage-deflate/);
    client.pause(); // reads nothing
    await until(() => opened.length === 1 && hub.subscriberCount('room') === 1, 'the subscription', 2000);
    const connection = opened[0]!;

    // 16 incompressible MiB through the compressor, one message after another: tens of ms of zlib work.
    for (let i = 0; i < 16; i++) connection.send(randomBytes(1024 * 1024));
    // A later turn: the hub's turn starts afresh and reads bufferedAmount again.
    await new Promise((resolve) => setImmediate(resolve));
    const waiting = connection.bufferedAmount;
    await hub.publish('room', 'news');

    // The kernel takes a few MiB at most from a peer that does not read: most of the 16 MiB is ours.
    expect(waiting).toBeGreaterThan(8 * 1024 * 1024);
    expect(hub.stats).toMatchObject({ published: 1, delivered: 0, dropped: 1 });
  });
});
