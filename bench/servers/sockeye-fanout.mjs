// Sockeye fan-out server for bench/run.mjs: node bench/servers/sockeye-fanout.mjs <port>
// Clients on /sub are subscribed to the topic "all"; every message that
// arrives on /pub is published to it through Sockeye's pub/sub hub, which
// frames it once and writes the same bytes to each subscriber. The hub keeps
// its 1 MiB maxSubscriberBuffer; slow subscribers are dropped and counted
// (the hub's default is to close them); the load generator's window keeps
// subscribers far below that.
// Heartbeat and permessage-deflate are off, as in the ws server.
//
// When a publisher leaves it prints the hub's counters as one JSON line, so
// the harness can report deliveries the hub dropped.
import { WebSocketServer } from '../../dist/src/index.js';
import { PubSub } from '../../dist/src/pubsub/index.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: sockeye-fanout.mjs <port>');
  process.exit(2);
}

const pubsub = new PubSub({ slowSubscriberPolicy: 'drop' });
const server = new WebSocketServer({ heartbeat: false, perMessageDeflate: false });
server.route('/sub', {
  open(connection) {
    pubsub.subscribe(connection, 'all');
  },
});
server.route('/pub', {
  message(connection, data) {
    pubsub.publish('all', data);
  },
  close() {
    const { broker: _broker, ...hub } = pubsub.stats;
    console.log(JSON.stringify({ fanout_stats: { server: 'sockeye', ...hub } }));
  },
});

server.listen(port, '127.0.0.1').catch((err) => {
  console.error(err.message);
  process.exit(1);
});
