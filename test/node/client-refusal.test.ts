import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import { HandshakeError } from '../../src/node/errors.js';

/**
 * A server that refuses the upgrade through node:http's ordinary response
 * path: without Content-Length, node frames the body with
 * Transfer-Encoding: chunked (RFC 9112 §7.1), so the client must de-chunk
 * it before it shows it.
 */

let server: Server | null = null;

afterEach(async () => {
  const s = server;
  server = null;
  if (s !== null) await new Promise<void>((resolve) => s.close(() => resolve()));
});

async function refusing(respond: (res: ServerResponse) => void): Promise<string> {
  const s = createServer((_req, res) => respond(res));
  // No 'upgrade' listener: node answers the upgrade request as a plain request.
  server = s;
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(s.address() as AddressInfo).port}/`;
}

async function refusal(url: string): Promise<HandshakeError> {
  const error = await connect(url).then(
    (connection) => {
      connection.terminate();
      throw new Error('the upgrade was accepted');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HandshakeError);
  expect((error as HandshakeError).code).toBe('WS_ERR_HANDSHAKE_REFUSED');
  return error as HandshakeError;
}

describe('a refusal with a chunked body', () => {
  it('shows the de-chunked text in the error, not the chunk framing', async () => {
    const url = await refusing((res) => {
      res.writeHead(403, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end('forbidden: go away');
    });
    const error = await refusal(url);
    expect(error.status).toBe(403);
    expect(error.body).toBe('forbidden: go away');
    expect(error.message).toBe('server refused the upgrade with 403 Forbidden: forbidden: go away');
  });

  it('joins a body written in several chunks, each leaving in its own write', async () => {
    const url = await refusing((res) => {
      res.writeHead(429, { 'Content-Type': 'text/plain' });
      // Each part goes out once the previous one was handed to the socket.
      res.write('too many ', () => res.write('requests, ', () => res.end('retry later')));
    });
    const error = await refusal(url);
    expect(error).toMatchObject({ status: 429, body: 'too many requests, retry later' });
  });

  it('keeps at most 4 KiB of a long chunked body', async () => {
    const url = await refusing((res) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      for (let i = 0; i < 100; i++) res.write('x'.repeat(1000));
      res.end();
    });
    const error = await refusal(url);
    expect(error.status).toBe(500);
    expect(error.body).toBe('x'.repeat(4096));
  });

  it('stops reading after 16 KiB of framing, even when it carries little text', async () => {
    const url = await refusing((res) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      // 10,000 one-byte chunks: 6 bytes on the wire for each byte of text.
      for (let i = 0; i < 10_000; i++) res.write('y');
      res.end();
    });
    const error = await refusal(url);
    expect(error.body).toMatch(/^y+$/);
    expect(error.body!.length).toBeGreaterThan(2000);
    expect(error.body!.length).toBeLessThanOrEqual(Math.ceil((16 * 1024) / 6));
  });
});
