import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket as UndiciWebSocket } from 'undici';
import { parseEnvelope, sendEnvelope, showState, socketUrl, STATE_LABELS, type StateView } from '../../src/web/page-socket.js';
import { ReconnectingWebSocket } from '../../src/web/reconnecting-websocket.js';
import { WebSocketServer } from '../../src/node/server.js';

describe('socketUrl', () => {
  it('uses ws: for http pages and wss: for https pages, on the page host', () => {
    expect(socketUrl('/chat/ws', { protocol: 'http:', host: '127.0.0.1:8080' })).toBe('ws://127.0.0.1:8080/chat/ws');
    expect(socketUrl('/chat/ws', { protocol: 'https:', host: 'example.org' })).toBe('wss://example.org/chat/ws');
  });
});

describe('parseEnvelope', () => {
  it('takes JSON objects with a string type and nothing else', () => {
    expect(parseEnvelope('{"type":"join","nick":"ann"}')).toEqual({ type: 'join', nick: 'ann' });
    for (const data of ['not json', '[1,2]', '"text"', 'null', '{"type":3}', '{"nick":"ann"}', new ArrayBuffer(2)]) {
      expect(parseEnvelope(data), String(data)).toBeNull();
    }
  });
});

describe('showState and sendEnvelope on a live socket', () => {
  let server: WebSocketServer | null = null;
  let socket: ReconnectingWebSocket | null = null;
  afterEach(async () => {
    socket?.close();
    await server?.close({ timeout: 200 });
  });

  it('follow the state of the connection and send the envelope as JSON text', async () => {
    server = new WebSocketServer({ heartbeat: false });
    const received: string[] = [];
    server.route('/ws', { message: (_connection, data) => received.push(String(data)) });
    const { port } = await server.listen(0);
    socket = new ReconnectingWebSocket(`ws://127.0.0.1:${port}/ws`, { WebSocket: UndiciWebSocket });
    const view: StateView = { textContent: null, dataset: {} };
    showState(socket, view, { open: 'live' });
    expect(view.dataset['state']).toBe('connecting');
    expect(view.textContent).toBe(STATE_LABELS.connecting);
    await new Promise<void>((resolve) => socket!.on('open', () => resolve()));
    expect(view).toMatchObject({ textContent: 'live', dataset: { state: 'open' } });
    expect(sendEnvelope(socket, { type: 'hello', n: 1 })).toBe(true);
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(received).toEqual(['{"type":"hello","n":1}']);
    socket.close();
    for (let i = 0; i < 100 && view.dataset['state'] !== 'closed'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(view).toMatchObject({ textContent: STATE_LABELS.closed, dataset: { state: 'closed' } });
  });
});
