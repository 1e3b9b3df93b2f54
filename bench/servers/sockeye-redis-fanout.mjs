// Sockeye across nodes: node bench/servers/sockeye-redis-fanout.mjs <port> <redis-url>
// One node of a cluster on Redis: the same routes as sockeye-fanout.mjs
// (/sub subscribes to the topic "all", /pub publishes to it), with the
// pub/sub hub on a RedisBroker. Every publish is one atomic step in Redis
// (offset, capped history, PUBLISH), acknowledged once stored; each node
// delivers the topic in offset order, framed once for its subscribers.
// History keeps its default (the last 1,000 messages, 5 minutes), as the
// applications use it. Slow subscribers are dropped and counted, as in the
// single-process line; the load generator's window keeps them far below the
// limit. Heartbeat and permessage-deflate are off, as in the ws servers.
//
// When a publisher leaves it prints the hub's counters as one JSON line.
import { WebSocketServer } from '../../dist/src/index.js';
import { PubSub, RedisBroker } from '../../dist/src/pubsub/index.js';

const port = Number(process.argv[2]);
const redisUrl = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !redisUrl) {
  console.error('usage: sockeye-redis-fanout.mjs <port> <redis-url>');
  process.exit(2);
}

const broker = await RedisBroker.connect({ url: redisUrl });
const pubsub = new PubSub({ broker, slowSubscriberPolicy: 'drop' });
const server = new WebSocketServer({ heartbeat: false, perMessageDeflate: false });
server.route('/sub', {
  open(connection) {
    pubsub.subscribe(connection, 'all');
  },
});
server.route('/pub', {
  message(connection, data) {
    pubsub.publish('all', data).catch((error) => console.error(error.message));
  },
  close() {
    const { broker: brokerStats, ...hub } = pubsub.stats;
    console.log(JSON.stringify({ fanout_stats: { server: 'sockeye-redis', ...hub, broker: brokerStats } }));
  },
});

server.listen(port, '127.0.0.1').catch((err) => {
  console.error(err.message);
  process.exit(1);
});
