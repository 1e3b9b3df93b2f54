// ws echo server for bench/run.mjs: node bench/servers/ws-echo.mjs <port>
// ws uses bufferutil for masking when it is installed (it is a devDependency).
// perMessageDeflate is off so every server in the table does the same work.
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: ws-echo.mjs <port>');
  process.exit(2);
}

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
