// In-process echo: Sockeye's own cost per message, without the kernel.
//   node bench/inproc-echo.mjs [dist directory, default ../dist]
// 100 Connections on fake sockets (no system calls); each "read" is 16 masked
// 64 B text frames, echoed back through the write batch. Prints the CPU time
// per message (process CPU, min and median of 7 repetitions). Compare two
// builds by pointing it at a copy of each dist, alternating runs: the machine
// noise is a few percent, so look for a difference that repeats.
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '..', 'dist'));
const { Connection } = await import(pathToFileURL(path.join(dist, 'src', 'node', 'connection.js')).href);
const { Role } = await import(pathToFileURL(path.join(dist, 'src', 'protocol', 'role.js')).href);

let written = 0;
class FakeSocket extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  write(chunk, callback) {
    written += chunk.length;
    if (typeof callback === 'function') callback();
    return true;
  }
  cork() {}
  uncork() {}
  end() {}
  destroy() {
    this.destroyed = true;
  }
  setNoDelay() {}
  pause() {}
  resume() {}
}

const CONNECTIONS = 100;
const PER_READ = 16;
const ROUNDS = 3000;
const key = [0x11, 0x22, 0x33, 0x44];
const frame = Buffer.alloc(6 + 64);
frame[0] = 0x81; // FIN, text
frame[1] = 0x80 | 64; // masked, 64 bytes
key.forEach((k, i) => (frame[2 + i] = k));
for (let i = 0; i < 64; i++) frame[6 + i] = 0x61 ^ key[i & 3];
const read = Buffer.concat(Array.from({ length: PER_READ }, () => frame));

const sockets = [];
for (let i = 0; i < CONNECTIONS; i++) {
  const socket = new FakeSocket();
  const connection = Connection.adopt(socket, { role: Role.Server, decodeText: false }, undefined);
  connection.on('message', (data, isBinary) => connection.send(data, { binary: isBinary }));
  sockets.push(socket);
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const perMessage = [];
for (let rep = 0; rep < 7; rep++) {
  const start = process.cpuUsage();
  for (let r = 0; r < ROUNDS; r++) {
    // A fresh copy per read, as a socket gives: the core unmasks in place.
    for (const socket of sockets) socket.emit('data', Buffer.from(read));
    await nextTurn();
  }
  const used = process.cpuUsage(start);
  perMessage.push(((used.user + used.system) * 1000) / (ROUNDS * CONNECTIONS * PER_READ));
}
perMessage.sort((a, b) => a - b);
const expected = 7 * ROUNDS * CONNECTIONS * PER_READ * (2 + 64);
if (written !== expected) throw new Error(`echoed ${written} bytes, expected ${expected}`);
console.log(`${dist}: ${perMessage[0].toFixed(0)} ns per message (min), ${perMessage[3].toFixed(0)} (median)`);
