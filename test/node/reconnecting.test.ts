import { afterEach, describe, expect, it } from 'vitest';
import { ReconnectingWebSocket, type ReconnectingWebSocketEventMap } from '../../src/node/reconnecting.js';
import { WebSocketServer } from '../../src/node/server.js';
import { until } from '../wait.js';

/**
 * The Node entry point of the reconnecting client: with no WebSocket class
 * given it uses Sockeye's own, and survives a server restart on the same
 * port with its offline queue intact.
 */

const servers: WebSocketServer[] = [];
const clients: ReconnectingWebSocket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
});

async function serve(received: string[], port = 0): Promise<{ server: WebSocketServer; port: number }> {
  const server = new WebSocketServer({ heartbeat: false });
  servers.push(server);
  server.route('*', {
    message(connection, data) {
      received.push(String(data));
      if (data === 'echo') connection.send('echoed');
    },
  });
  const address = await server.listen(port);
  return { server, port: address.port };
}

function nextEvent<K extends keyof ReconnectingWebSocketEventMap>(client: ReconnectingWebSocket, type: K): Promise<ReconnectingWebSocketEventMap[K]> {
  return new Promise((resolve) => {
    const off = client.on(type, (event) => {
      off();
      resolve(event);
    });
  });
}

describe('ReconnectingWebSocket for Node', () => {
  it("connects with Sockeye's WebSocket by default and delivers the offline queue after a restart", async () => {
    const first: string[] = [];
    const { server, port } = await serve(first);
    const client = new ReconnectingWebSocket(`ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 20, maxDelay: 100 } });
    clients.push(client);
    await nextEvent(client, 'open');
    client.send('echo');
    expect((await nextEvent(client, 'message')).data).toBe('echoed');

    const closed = nextEvent(client, 'close');
    await server.close();
    servers.splice(0);
    expect(await closed).toMatchObject({ code: 1001, willReconnect: true });
    client.send('a');
    client.send('b');

    const second: string[] = [];
    await serve(second, port);
    expect((await nextEvent(client, 'open')).reconnected).toBe(true);
    await until(() => second.length === 2, 'the queued messages');
    expect(second).toEqual(['a', 'b']);
    expect(first).toEqual(['echo']);
  });
});
