import { createServer } from 'node:net';

/**
 * A loopback port the kernel had free a moment ago, for servers that cannot
 * listen on port 0 and report the port (redis-server, nginx). Another
 * process may take it before the server binds it: callers start the server
 * on it and, when the bind fails, ask for another port (a bounded number of
 * times).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
