// ws fan-out server for bench/run.mjs: node bench/servers/ws-fanout.mjs <port>
// The broadcast loop is the one in ws's README ("Server broadcast", the
// variant that skips the sender), run over the clients that connected on
// /sub rather than over wss.clients, so the publisher (on /pub) receives
// nothing. ws frames the message anew for every client and has no limit on
// what a slow client queues; the load generator's window keeps that bounded.
// permessage-deflate is off, as in the Sockeye server.
//
// When a publisher leaves it prints the number of messages it published as
// one JSON line (the harness reads it; ws has no count of dropped messages:
// it drops none).
import WebSocket, { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: ws-fanout.mjs <port>');
  process.exit(2);
}

const subscribers = new Set();
let published = 0;

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (ws, request) => {
  ws.on('error', () => {});
  if (request.url === '/sub') {
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
    return;
  }
  ws.on('close', () => console.log(JSON.stringify({ fanout_stats: { server: 'ws', published } })));
  ws.on('message', (data, isBinary) => {
    published++;
    subscribers.forEach((client) => {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
});
wss.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
