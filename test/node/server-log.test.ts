import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../src/node/client.js';
import type { Connection } from '../../src/node/connection.js';
import { WebSocketServer, type ServerLogEntry } from '../../src/node/server.js';
import { Opcode } from '../../src/protocol/opcode.js';
import { until } from '../wait.js';

/**
 * The library's own log: connection events always, and with `logFrames`
 * every frame header in both directions, as python-websockets' debug log
 * shows them (issue 8, "Observability in the library").
 */

const servers: WebSocketServer[] = [];
const clients: Connection<undefined>[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  for (const server of servers.splice(0)) await server.close({ timeout: 500 });
});

async function echoWithLog(logFrames: boolean): Promise<{ port: number; entries: ServerLogEntry[] }> {
  const entries: ServerLogEntry[] = [];
  const server = new WebSocketServer({ heartbeat: false, perMessageDeflate: false, log: (entry) => entries.push(entry), logFrames });
  servers.push(server);
  server.route('/echo', { message: (connection, data, isBinary) => void connection.send(data, { binary: isBinary }) });
  return { port: (await server.listen(0)).port, entries };
}

async function exchange(port: number, entries: ServerLogEntry[]): Promise<void> {
  const client = await connect(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: false });
  clients.push(client);
  const echoed = new Promise((resolve) => client.once('message', resolve));
  client.send('hello');
  await echoed;
  await client.ping('p');
  const closed = new Promise((resolve) => client.once('close', resolve));
  client.close(1000);
  await closed;
  await until(() => entries.some((entry) => entry.event === 'close'), 'the server to log the close');
}

describe('WebSocketServer log', () => {
  it('with logFrames, reports every frame header both ways, control frames included, with the path', async () => {
    const { port, entries } = await echoWithLog(true);
    await exchange(port, entries);
    const frames = entries.filter((entry): entry is Extract<ServerLogEntry, { event: 'frame' }> => entry.event === 'frame');
    const seen = frames.map(
      (entry) => `${entry.frame.direction} ${Opcode[entry.frame.opcode]} ${entry.frame.length}${entry.frame.masked ? ' masked' : ''}`,
    );
    expect(seen).toEqual(['in Text 5 masked', 'out Text 5', 'in Ping 1 masked', 'out Pong 1', 'in Close 2 masked', 'out Close 2']);
    expect(frames.every((entry) => entry.path === '/echo')).toBe(true);
    expect(entries.map((entry) => entry.event).filter((event) => event !== 'frame')).toEqual(['open', 'close']);
  });

  it('without logFrames, reports connection events only', async () => {
    const { port, entries } = await echoWithLog(false);
    await exchange(port, entries);
    expect(entries.map((entry) => entry.event)).toEqual(['open', 'close']);
  });
});
