// Bun echo server for bench/run.mjs: bun bench/servers/bun-echo.mjs <port>
// Bun's built-in WebSocket server (Bun.serve with a `websocket` handler),
// the fastest server a user can pick without writing C; it is the anchor
// column of the table. Run by the `bun` binary, not by Node: the harness
// finds it on PATH or under bench/build/ (see bench/README.md).
// permessage-deflate is off, as in the other servers; text stays text and
// binary stays binary (Bun passes a string for text and a Buffer for binary,
// and send() frames each as it came).
const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: bun-echo.mjs <port>');
  process.exit(2);
}

Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch(request, server) {
    if (server.upgrade(request)) return undefined;
    return new Response('WebSocket upgrade required\n', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    message(ws, message) {
      ws.send(message);
    },
  },
});
