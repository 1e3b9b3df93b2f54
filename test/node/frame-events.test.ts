import { afterEach, describe, expect, it } from 'vitest';
import { connect, WebSocketServer, type Connection, type FrameInfo } from '../../src/index.js';
import { until } from '../wait.js';

/**
 * `frame` events with permessage-deflate negotiated (RFC 7692): each data
 * frame's payload is what that frame adds to the message once inflated,
 * never the compressed bytes on the wire; `rsv1` still says which frame
 * began a compressed message.
 */

const servers: WebSocketServer[] = [];
const clients: Connection<undefined>[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 100 })));
});

async function deflateServer(frames: FrameInfo[], messages: Buffer[]): Promise<string> {
  const server = new WebSocketServer({ heartbeat: false, perMessageDeflate: { threshold: 0 } });
  servers.push(server);
  server.route('/', {
    open(connection) {
      connection.on('frame', (frame) => frames.push({ ...frame, payload: Buffer.from(frame.payload) }));
    },
    message(_connection, data) {
      messages.push(Buffer.from(data));
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return `ws://127.0.0.1:${port}/`;
}

describe('frame events with permessage-deflate negotiated', () => {
  it('carry the inflated bytes of each frame of a compressed, fragmented message', async () => {
    const frames: FrameInfo[] = [];
    const messages: Buffer[] = [];
    const url = await deflateServer(frames, messages);
    const client = await connect(url, { perMessageDeflate: { threshold: 0 } });
    clients.push(client);
    expect(client.extensions).toContain('permessage-deflate');
    const text = 'the same words compress well; '.repeat(200);
    const parts = [text.slice(0, 1000), text.slice(1000, 4000), text.slice(4000)];
    client.sendFragment(parts[0]!, false);
    client.sendFragment(parts[1]!, false);
    client.sendFragment(parts[2]!, true);
    await until(() => messages.length === 1, 'the message', 5000);
    expect(messages[0]!.toString('utf8')).toBe(text);
    expect(frames.map((f) => [f.opcode, f.fin, f.rsv1])).toEqual([
      [1, false, true],
      [0, false, false],
      [0, true, false],
    ]);
    // Inflated, frame by frame: together they are the message, and the
    // first is not a few compressed bytes but the text that frame carried.
    expect(Buffer.concat(frames.map((f) => f.payload)).toString('utf8')).toBe(text);
    expect(frames[0]!.payload.toString('utf8')).toBe(parts[0]);
  });

  it('carry an uncompressed message in a deflate session as it came, RSV1 clear', async () => {
    const frames: FrameInfo[] = [];
    const messages: Buffer[] = [];
    const url = await deflateServer(frames, messages);
    const client = await connect(url, { perMessageDeflate: { threshold: 0 } });
    clients.push(client);
    client.send(Buffer.from([1, 2, 3]), { compress: false });
    await until(() => messages.length === 1, 'the message', 5000);
    expect(frames.map((f) => [f.opcode, f.fin, f.rsv1, [...f.payload]])).toEqual([[2, true, false, [1, 2, 3]]]);
  });
});
