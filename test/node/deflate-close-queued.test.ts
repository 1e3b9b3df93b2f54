import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from '../../src/index.js';
import { deflateMessage, frame, OP, parseClose, RawClient, type RawFrame } from './raw-client.js';

/**
 * Echoes still in the permessage-deflate compressor (or messages still in
 * the decompressor) when the connection ends (issue 9, item 6: "closing
 * waits for what is already queued, compressed or not"), on the library's
 * own standalone server. Found by the fuzz test (fuzz.test.ts); each case
 * passes without compression, where the same echoes are written at once.
 * They failed before the server kept half-open sockets, before a codec
 * failure stopped taking the other direction down, and before a peer's FIN
 * waited for the decompressor.
 */

const servers: WebSocketServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

async function echoServer(deflate: boolean, errors: string[]): Promise<number> {
  const server = new WebSocketServer({ perMessageDeflate: deflate, heartbeat: false });
  servers.push(server);
  server.route('/', {
    message: (connection, data, isBinary) => void connection.send(data, { binary: isBinary }),
    error: (_connection, error) => void errors.push(`${(error as { code?: string }).code ?? error.name}: ${error.message}`),
  });
  return (await server.listen(0)).port;
}

/** Frames until the server's FIN: data frames (compressed or not) and the close frame if any. */
async function framesUntilEnd(client: RawClient): Promise<{ data: RawFrame[]; close: RawFrame | null }> {
  const data: RawFrame[] = [];
  for (let i = 0; i < 1000; i++) {
    let next: RawFrame;
    try {
      next = await client.readFrame(5_000);
    } catch (error) {
      if (client.ended && client.buffered === 0) return { data, close: null };
      throw error;
    }
    if (next.opcode === OP.close) return { data, close: next };
    data.push(next);
  }
  throw new Error('over 1000 frames');
}

/** Messages over the 1024-byte compression threshold, so that every echo goes through the compressor. */
const MESSAGES = Array.from({ length: 8 }, (_, i) => Buffer.alloc(4096 + i, 0x41 + i));
const WIRE = Buffer.concat(MESSAGES.map((payload) => frame({ opcode: OP.binary, payload })));

describe.each([false, true])('standalone server, permessage-deflate %s', (deflate) => {
  const offer = deflate ? ['Sec-WebSocket-Extensions: permessage-deflate'] : [];

  it('a peer FIN right after 8 messages: all 8 echoes leave before the server ends TCP', async () => {
    const errors: string[] = [];
    const port = await echoServer(deflate, errors);
    const { client } = await RawClient.upgrade(port, { extra: offer });
    clients.push(client);
    client.write(WIRE);
    client.socket.end();
    const { data } = await framesUntilEnd(client);
    expect(data.length, errors.join('; ')).toBe(MESSAGES.length);
  });

  it.runIf(deflate)('a peer FIN right after 8 compressed messages: every one is decompressed and echoed before the server ends TCP', async () => {
    const errors: string[] = [];
    const port = await echoServer(deflate, errors);
    const { client } = await RawClient.upgrade(port, { extra: offer });
    clients.push(client);
    // The messages wait in line for the decompressor when the FIN arrives behind them.
    client.write(Buffer.concat(MESSAGES.map((payload) => frame({ opcode: OP.binary, rsv1: true, payload: deflateMessage(payload) }))));
    client.socket.end();
    const { data } = await framesUntilEnd(client);
    expect(data.length, errors.join('; ')).toBe(MESSAGES.length);
  });

  it('a corrupt compressed frame after 8 messages: all 8 echoes, then close 1007 (1002 without deflate: RSV1 unnegotiated)', async () => {
    const errors: string[] = [];
    const port = await echoServer(deflate, errors);
    const { client } = await RawClient.upgrade(port, { extra: offer });
    clients.push(client);
    // 0xff begins a DEFLATE block of the reserved type 3 (RFC 1951 §3.2.3): never valid (RFC 7692 §8: fail the connection).
    client.write(Buffer.concat([WIRE, frame({ opcode: OP.binary, rsv1: true, payload: Buffer.from([0xff, 0xff, 0xff]) })]));
    const { data, close } = await framesUntilEnd(client);
    const seen = `${data.length} echoes, then ${close === null ? 'no close frame' : JSON.stringify(parseClose(close))}; errors: ${errors.join('; ')}`;
    expect(close === null ? null : parseClose(close).code, seen).toBe(deflate ? 1007 : 1002);
    expect(data.length, seen).toBe(MESSAGES.length);
  });
});
