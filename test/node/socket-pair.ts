import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterEach } from 'vitest';

/**
 * Connected TCP pairs on loopback for tests that adopt one side into a
 * `Connection` and drive the other as a raw peer. Call at a test file's top
 * level: every socket and listener a test made is closed after it.
 */
export function useSocketPairs(): () => Promise<[local: Socket, peer: Socket]> {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  });
  return async () => {
    const server = createServer();
    servers.push(server);
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const peer = tcpConnect((server.address() as { port: number }).port, '127.0.0.1');
    const local = await accepted;
    sockets.push(local, peer);
    return [local, peer];
  };
}
