import { connect as connectTcp, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A minimal HTTP CONNECT proxy (RFC 9110 §9.3.6) on 127.0.0.1, port 0, for
 * tests that only need to see that a client went through a proxy: it
 * records each CONNECT target as sent, opens the tunnel and splices the two
 * sockets. (test/node/proxy-tunnel.test.ts has the full one, with SOCKS5,
 * credentials and refusals, for the library's own tests.)
 */
export interface ConnectProxy {
  port: number;
  url: string;
  /** CONNECT targets, `host:port` as the clients sent them. */
  requested: string[];
  close(): Promise<void>;
}

/** Largest request head read before giving up on a client. */
const MAX_HEAD = 16 * 1024;

export async function startConnectProxy(): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  const requested: string[] = [];
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      const match = /^CONNECT (\S+):(\d+) HTTP\/1\.1\r\n/.exec(head.subarray(0, end + 2).toString('latin1'));
      if (match === null) {
        client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      requested.push(`${match[1]}:${match[2]}`);
      const host = match[1]!.replace(/^\[|\]$/g, '');
      const upstream = connectTcp({ host, port: Number(match[2]) });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.on('error', () => {
        if (!client.destroyed && client.writable) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      });
      upstream.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requested,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
