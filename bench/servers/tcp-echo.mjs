// Plain TCP echo for bench/run.mjs: node bench/servers/tcp-echo.mjs <port>
// No WebSocket at all: bytes in, same bytes out. It is the ceiling for any
// echo server written on Node's net layer, and shows how much headroom the
// load generator has.
import net from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: tcp-echo.mjs <port>');
  process.exit(2);
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {});
  socket.pipe(socket);
});
server.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
server.listen(port, '127.0.0.1');
