// ws across nodes, as ws users write it by hand: node bench/servers/ws-redis-fanout.mjs <port> <redis-url>
// Each node is a ws server. A message arriving on /pub is PUBLISHed on one
// Redis channel; every node SUBSCRIBEs to that channel and hands what comes
// back to ws's broadcast loop (README, "Server broadcast") over its own /sub
// clients. Same Redis client library as Sockeye's broker (ioredis), same
// settings as ws-fanout.mjs otherwise: no permessage-deflate, no limit on
// what a slow client queues (the load generator's window bounds it).
//
// Nothing here gives order across publishers, history or recovery: a
// subscriber that was disconnected when a message went by never gets it.
// That is the relay people write, and the line it is measured against.
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
const redisUrl = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !redisUrl) {
  console.error('usage: ws-redis-fanout.mjs <port> <redis-url>');
  process.exit(2);
}

const CHANNEL = 'bench:all';
const publisher = new Redis(redisUrl, { lazyConnect: false });
const subscriber = new Redis(redisUrl, { lazyConnect: false });
const subscribers = new Set();
let published = 0;
let received = 0;

await subscriber.subscribe(CHANNEL);
subscriber.on('messageBuffer', (_channel, data) => {
  received++;
  subscribers.forEach((client) => {
    if (client.readyState === WebSocket.OPEN) client.send(data, { binary: false });
  });
});

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (ws, request) => {
  ws.on('error', () => {});
  if (request.url === '/sub') {
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
    return;
  }
  ws.on('close', () => console.log(JSON.stringify({ fanout_stats: { server: 'ws-redis', published, received } })));
  ws.on('message', (data) => {
    published++;
    publisher.publish(CHANNEL, data).catch((error) => console.error(error.message));
  });
});
wss.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
