// Bun fan-out server for bench/run.mjs: bun bench/servers/bun-fanout.mjs <port>
// Bun's own pub/sub: a client that upgrades on /sub is subscribed to the
// topic "all" (ws.subscribe), and every message that arrives on /pub is
// passed to server.publish("all", ...), which frames it once and writes it
// to every subscriber. The publisher is not subscribed, so it receives
// nothing. permessage-deflate is off, as in the other servers.
//
// When a publisher leaves it prints the number of messages it published as
// one JSON line (the harness reads it). Bun keeps no count of deliveries it
// dropped for slow subscribers that the harness could read; the load
// generator's window keeps every subscriber far below its backpressure limit.
const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: bun-fanout.mjs <port>');
  process.exit(2);
}

let published = 0;

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch(request, srv) {
    const route = new URL(request.url).pathname;
    if (route !== '/sub' && route !== '/pub') return new Response('not found\n', { status: 404 });
    if (srv.upgrade(request, { data: { route } })) return undefined;
    return new Response('WebSocket upgrade required\n', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    open(ws) {
      if (ws.data.route === '/sub') ws.subscribe('all');
    },
    message(ws, message) {
      if (ws.data.route !== '/pub') return;
      published++;
      server.publish('all', message);
    },
    close(ws) {
      if (ws.data.route === '/pub') console.log(JSON.stringify({ fanout_stats: { server: 'bun', published } }));
    },
  },
});
