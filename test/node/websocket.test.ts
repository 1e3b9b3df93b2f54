import type { Socket } from 'node:net';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { CloseEvent, WebSocket, WebSocketServer } from '../../src/index.js';
import {
  BINARY,
  CLOSE,
  TEXT,
  onClientData,
  parseClientFrame,
  rawServer,
  recordEvents,
  scriptedServer,
  serverFrame,
  switchingProtocols,
  type RawServer,
  type ScriptedServer,
  type UpgradeInfo,
} from './websocket-peers.js';
import { settle, until } from '../wait.js';

/**
 * The WHATWG WebSocket interface (WebSockets Standard) on Node: constructor
 * checks, constants, readyState and event order ("Feedback from the
 * protocol"), send() and bufferedAmount, close() and its exceptions, every
 * way a connection fails, binaryType, and event handler attributes.
 */

let server: ScriptedServer;
beforeAll(async () => {
  server = await scriptedServer();
});
afterAll(async () => {
  await server.close();
});

const sockets: WebSocket[] = [];
const rawServers: RawServer[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) {
    if (ws.readyState === WebSocket.OPEN) ws.close();
    if (ws.readyState === WebSocket.CONNECTING) ws.close();
  }
  await Promise.all(rawServers.splice(0).map((raw) => raw.close()));
});

function open(url: string, protocols?: string | string[]): WebSocket {
  const ws = new WebSocket(url, protocols);
  sockets.push(ws);
  return ws;
}

async function raw(onUpgrade: (socket: Socket, request: UpgradeInfo) => void): Promise<RawServer> {
  const peer = await rawServer(onUpgrade);
  rawServers.push(peer);
  return peer;
}

function expectDomException(run: () => unknown, name: string): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(DOMException);
  expect((thrown as DOMException).name).toBe(name);
}

/** The events every failure must produce: error then close 1006, both with readyState CLOSED. */
const FAILED = [
  { type: 'error', readyState: 3 },
  { type: 'close', readyState: 3, code: 1006, reason: '', wasClean: false },
];

describe('constructor', () => {
  it.each([
    ['not a URL at all', 'not a url'],
    ['a relative URL (Node has no base URL)', '/echo'],
    ['a scheme-relative URL', '//127.0.0.1/echo'],
    ['an ftp: URL', 'ftp://127.0.0.1/'],
    ['a file: URL', 'file:///tmp/socket'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a fragment', 'ws://127.0.0.1/echo#part'],
    ['an empty fragment', 'ws://127.0.0.1/echo#'],
    ['a fragment on an http: URL', 'http://127.0.0.1/#x'],
    ['no host', 'ws://'],
  ])('throws a SyntaxError DOMException for %s', (_what, url) => {
    expectDomException(() => new WebSocket(url), 'SyntaxError');
  });

  it.each([
    ['ws://127.0.0.1:1/a/b?c=d', 'ws://127.0.0.1:1/a/b?c=d'],
    ['WS://127.0.0.1:1', 'ws://127.0.0.1:1/'],
    ['ws://127.0.0.1:80/', 'ws://127.0.0.1/'],
    ['wss://127.0.0.1:443/', 'wss://127.0.0.1/'],
    ['http://127.0.0.1:1/x', 'ws://127.0.0.1:1/x'],
    ['https://127.0.0.1/x', 'wss://127.0.0.1/x'],
    ['https://127.0.0.1:443/', 'wss://127.0.0.1/'],
    ['http://127.0.0.1:443/', 'ws://127.0.0.1:443/'],
    ['ws://[::1]:1/a b', 'ws://[::1]:1/a%20b'],
  ])('accepts %s and serializes it as %s', (input, serialized) => {
    const ws = new WebSocket(input);
    // Closed before the connection step runs: no socket is ever opened.
    ws.close();
    expect(ws.url).toBe(serialized);
  });

  it('accepts a URL object', () => {
    const ws = new WebSocket(new URL('ws://127.0.0.1:1/p'));
    ws.close();
    expect(ws.url).toBe('ws://127.0.0.1:1/p');
  });

  it.each([
    ['an empty string', ''],
    ['a space', 'a b'],
    ['a comma (a list in one string)', 'a,b'],
    ['a separator', '[x]'],
    ['a non-ASCII character', 'chät'],
    ['a control character', 'a\u0001'],
    ['the same name twice', ['chat', 'chat']],
    ['an empty name in a list', ['chat', '']],
  ])('throws a SyntaxError DOMException for a subprotocol with %s', (_what, protocols) => {
    expectDomException(() => new WebSocket('ws://127.0.0.1:1/', protocols), 'SyntaxError');
  });

  it.each([
    ['one string', 'chat'],
    ['a list', ['chat', 'superchat']],
    ['names differing only in case', ['chat', 'Chat']],
    ['an empty list', []],
    ['undefined', undefined],
  ])('accepts subprotocols given as %s', (_what, protocols) => {
    const ws = new WebSocket('ws://127.0.0.1:1/', protocols);
    ws.close();
    expect(ws.readyState).toBe(WebSocket.CLOSING);
  });

  it('takes any iterable of names as the sequence', () => {
    expectDomException(() => new WebSocket('ws://127.0.0.1:1/', new Set(['ok', 'not ok']) as unknown as string[]), 'SyntaxError');
  });

  it('throws a TypeError without arguments', () => {
    expect(() => new (WebSocket as unknown as new () => WebSocket)()).toThrow(TypeError);
  });

  it('starts connecting only after the constructing script finished', async () => {
    // What reached the peer, by the subprotocols offered.
    const arrived: string[] = [];
    const peer = await raw((socket, request) => {
      arrived.push(request.protocols.join(','));
      socket.destroy();
    });
    const ws = new WebSocket(peer.url());
    const recording = recordEvents(ws);
    ws.close();
    await recording.closed;
    // A later connection as the barrier: connections reach the peer in the
    // order they were started, so once it has arrived, one this WebSocket
    // had started would be there too.
    open(peer.url(), 'marker');
    await until(() => arrived.includes('marker'), 'the marker connection at the peer');
    expect(arrived).toEqual(['marker']);
    expect(recording.log).toEqual(FAILED);
  });

  it('starts CONNECTING with empty protocol and extensions, binaryType blob and nothing buffered', () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    expect(ws.readyState).toBe(WebSocket.CONNECTING);
    expect(ws.protocol).toBe('');
    expect(ws.extensions).toBe('');
    expect(ws.binaryType).toBe('blob');
    expect(ws.bufferedAmount).toBe(0);
    ws.close();
  });
});

describe('constants', () => {
  it('has CONNECTING 0, OPEN 1, CLOSING 2, CLOSED 3 on the class, the prototype and instances', () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    ws.close();
    for (const holder of [WebSocket, WebSocket.prototype, ws] as unknown as Array<Record<string, number>>) {
      expect([holder.CONNECTING, holder.OPEN, holder.CLOSING, holder.CLOSED]).toEqual([0, 1, 2, 3]);
    }
  });

  it('makes them read-only, as Web IDL constants are', () => {
    expect(() => {
      (WebSocket as unknown as Record<string, number>).OPEN = 7;
    }).toThrow(TypeError);
    expect(Object.getOwnPropertyDescriptor(WebSocket.prototype, 'CLOSED')).toMatchObject({
      value: 3,
      writable: false,
      enumerable: true,
      configurable: false,
    });
  });

  it('has the IDL lengths: constructor 1, send 1, close 0', () => {
    expect([WebSocket.length, WebSocket.prototype.send.length, WebSocket.prototype.close.length]).toEqual([1, 1, 0]);
  });

  it('is an EventTarget named WebSocket', () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    ws.close();
    expect(ws).toBeInstanceOf(EventTarget);
    expect(Object.prototype.toString.call(ws)).toBe('[object WebSocket]');
  });
});

describe('readyState and event order', () => {
  it('goes CONNECTING, OPEN, CLOSING, CLOSED with open, message and close in order', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    const states: number[] = [ws.readyState];
    ws.onopen = () => {
      ws.send('hello');
    };
    ws.onmessage = () => {
      ws.close(1000, 'bye');
      states.push(ws.readyState);
    };
    await recording.closed;
    expect(states).toEqual([WebSocket.CONNECTING, WebSocket.CLOSING]);
    expect(recording.log).toEqual([
      { type: 'open', readyState: 1 },
      { type: 'message', readyState: 1, data: 'text:hello' },
      // The code and reason of the close frame received: the server's
      // answer, which repeats the code (RFC 6455 §5.5.1) and not the reason.
      { type: 'close', readyState: 3, code: 1000, reason: '', wasClean: true },
    ]);
    expect(ws.readyState).toBe(WebSocket.CLOSED);
  });

  it('delivers each message as its own task: microtasks queued by one handler run before the next message', async () => {
    const ws = open(server.url('/echo'));
    const order: string[] = [];
    ws.onopen = () => ws.send('burst:3');
    ws.onmessage = (event) => {
      order.push(event.data as string);
      void Promise.resolve().then(() => order.push(`after ${event.data as string}`));
      if (event.data === 'm3') ws.close();
    };
    await recordEvents(ws).closed;
    expect(order).toEqual(['m1', 'after m1', 'm2', 'after m2', 'm3', 'after m3']);
  });

  it('drops messages already received once close() was called from a message handler', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    ws.onopen = () => ws.send('burst:3');
    ws.onmessage = () => ws.close(1000);
    await recording.closed;
    expect(recording.log.map((e) => e.data ?? e.type)).toEqual(['open', 'text:m1', 'close']);
    expect(recording.log.at(-1)).toMatchObject({ code: 1000, wasClean: true });
  });

  it('reports the subprotocol the server selected and the extensions in use', async () => {
    const ws = open(server.url('/chat'), ['superchat', 'chat']);
    const recording = recordEvents(ws);
    await recording.next('open');
    expect(ws.protocol).toBe('chat');
    expect(ws.extensions).toBe('');
  });

  it('shows the permessage-deflate agreement in extensions and reads compressed messages', async () => {
    const deflating = new WebSocketServer({ heartbeat: false, perMessageDeflate: { threshold: 0 } });
    deflating.route('/', { message: (connection, data) => connection.send(data) });
    const { port } = await deflating.listen(0);
    try {
      const ws = open(`ws://127.0.0.1:${port}/`);
      const recording = recordEvents(ws);
      ws.onopen = () => ws.send('squeeze me '.repeat(20));
      const message = (await recording.next('message')) as MessageEvent;
      expect(ws.extensions).toMatch(/^permessage-deflate/);
      expect(message.data).toBe('squeeze me '.repeat(20));
      ws.close();
      await recording.closed;
    } finally {
      await deflating.close({ timeout: 100 });
    }
  });

  it('gives message events the origin of the URL and the data', async () => {
    const ws = open(server.url('/echo'));
    ws.onopen = () => ws.send('hi');
    const event = (await recordEvents(ws).next('message')) as MessageEvent;
    expect(event).toBeInstanceOf(MessageEvent);
    expect(event.data).toBe('hi');
    expect(event.origin).toBe(`ws://127.0.0.1:${server.port}`);
  });

  it('closes cleanly with the code and reason of a server-initiated close, without an error event', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    ws.onopen = () => ws.send('close:4001:server says bye');
    await recording.closed;
    expect(recording.log).toEqual([
      { type: 'open', readyState: 1 },
      { type: 'close', readyState: 3, code: 4001, reason: 'server says bye', wasClean: true },
    ]);
  });

  it('reports 1005 when the server closes without a status code', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    ws.onopen = () => ws.send('close::');
    await recording.closed;
    expect(recording.log.at(-1)).toEqual({ type: 'close', readyState: 3, code: 1005, reason: '', wasClean: true });
  });

  it('creates CloseEvent objects that are Events', async () => {
    const ws = open(server.url('/echo'));
    ws.onopen = () => ws.close(3001, 'x');
    const event = await recordEvents(ws).next('close');
    expect(event).toBeInstanceOf(CloseEvent);
    expect(event).toBeInstanceOf(Event);
    expect(event.type).toBe('close');
  });

  it('delivers a message that arrived in the same packet as the 101', async () => {
    const peer = await raw((socket, request) => {
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(request.accept)), serverFrame(TEXT, 'early')]));
    });
    const ws = open(peer.url());
    const recording = recordEvents(ws, 1000);
    const message = (await recording.next('message')) as MessageEvent;
    expect(message.data).toBe('early');
  });
});

describe('send()', () => {
  it('throws an InvalidStateError DOMException while CONNECTING and counts nothing', () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    expectDomException(() => ws.send('too early'), 'InvalidStateError');
    expect(ws.bufferedAmount).toBe(0);
    ws.close();
  });

  it('sends strings as text and every kind of binary data as binary, in order, Blobs included', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    await recording.next('open');
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    ws.send('héllo');
    ws.send(new Uint8Array([1, 2, 3]).buffer);
    ws.send(backing.subarray(2, 5));
    ws.send(new Blob([new Uint8Array([0xb1, 0xb2]), 'ob']));
    ws.send(new DataView(backing.buffer, 1, 2));
    ws.send(new Uint16Array([0x0102]));
    ws.send(Buffer.from('buf'));
    ws.send(42 as unknown as string);
    ws.send('last');
    await until(() => server.received.at(-1)?.length === 9, 'nine messages', 3000);
    expect(server.received.at(-1)).toEqual([
      'text:héllo',
      'binary:010203',
      'binary:010203',
      'binary:b1b26f62',
      'binary:0901',
      `binary:${Buffer.from(new Uint16Array([0x0102]).buffer).toString('hex')}`,
      `binary:${Buffer.from('buf').toString('hex')}`,
      'text:42',
      'text:last',
    ]);
  });

  it('sends the bytes a view had at send() time even when queued behind a Blob', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    await recording.next('open');
    const bytes = new Uint8Array([1, 2, 3]);
    ws.send(new Blob(['blob']));
    ws.send(bytes);
    bytes.fill(0);
    await until(() => server.received.at(-1)?.length === 2, 'two messages', 3000);
    expect(server.received.at(-1)).toEqual([`binary:${Buffer.from('blob').toString('hex')}`, 'binary:010203']);
  });

  it('adds the UTF-8 length of text and the byte length of binary data to bufferedAmount, then drops to 0 once sent', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    await recording.next('open');
    ws.send('héllo'); // 6 bytes in UTF-8
    expect(ws.bufferedAmount).toBe(6);
    ws.send(new ArrayBuffer(10));
    ws.send(new Uint16Array(4).subarray(1)); // 3 elements, 6 bytes
    ws.send(new Blob(['abcd']));
    expect(ws.bufferedAmount).toBe(6 + 10 + 6 + 4);
    // Not under a running script: the value only changes between tasks.
    await Promise.resolve();
    expect(ws.bufferedAmount).toBe(26);
    await until(() => ws.bufferedAmount === 0, 'bufferedAmount to reach 0', 3000);
  });

  it('keeps counting a message the network has not taken yet', async () => {
    let peerSocket: Socket | null = null;
    const peer = await raw((socket, request) => {
      peerSocket = socket;
      socket.write(switchingProtocols(request.accept));
      // Read nothing: what the client sends piles up in its buffers.
      socket.pause();
    });
    const ws = open(peer.url());
    const recording = recordEvents(ws);
    await recording.next('open');
    const size = 16 * 1024 * 1024;
    ws.send(new Uint8Array(size));
    expect(ws.bufferedAmount).toBe(size);
    // Only the write's completion, which needs the peer to read, may lower
    // it: a drop queued when the data was handed over would have run by now.
    await settle();
    expect(ws.bufferedAmount).toBe(size);
    peerSocket!.on('data', () => {});
    peerSocket!.resume();
    await until(() => ws.bufferedAmount === 0, 'bufferedAmount to reach 0', 10_000);
  });

  it('after close(), counts sent data in bufferedAmount and discards it, also once CLOSED', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    await recording.next('open');
    ws.send('before');
    await until(() => ws.bufferedAmount === 0, 'the first message to leave', 3000);
    // A reason of its own, to tell this close among the server's.
    ws.close(1000, 'discarding after close');
    ws.send('during closing');
    expect(ws.bufferedAmount).toBe(14);
    await recording.closed;
    ws.send(new ArrayBuffer(5));
    expect(ws.bufferedAmount).toBe(19);
    // The server reports the close after every message it will ever take
    // from the connection; by then a drop queued by the send has run too.
    await until(() => server.closes.some((c) => c.reason === 'discarding after close'), 'the server to see the close', 3000);
    await settle();
    expect(ws.bufferedAmount).toBe(19);
    expect(server.received.at(-1)).toEqual(['text:before']);
  });

  it('sends what was queued behind a Blob before the close frame', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    await recording.next('open');
    ws.send(new Blob([new Uint8Array(100_000).fill(7)]));
    ws.send('after the blob');
    ws.close(3000, 'done');
    ws.send('after close');
    await recording.closed;
    await until(() => server.closes.some((c) => c.reason === 'done'), 'the server to see the close', 3000);
    const received = server.received.at(-1)!;
    expect(received).toHaveLength(2);
    expect(received[0]).toBe(`binary:${'07'.repeat(100_000)}`);
    expect(received[1]).toBe('text:after the blob');
    expect(server.closes.find((c) => c.reason === 'done')).toEqual({ code: 3000, reason: 'done', wasClean: true });
    expect(recording.log.at(-1)).toMatchObject({ code: 3000, wasClean: true });
  });

  it('throws a TypeError without an argument', async () => {
    const ws = open(server.url('/echo'));
    await recordEvents(ws).next('open');
    expect(() => (ws.send as unknown as () => void)()).toThrow(TypeError);
  });
});

describe('close()', () => {
  it.each([0, 999, 1001, 1005, 1006, 1015, 2999, 5000, 65535, -1, 70000, Number.NaN, Number.POSITIVE_INFINITY, 4999.5])(
    'throws an InvalidAccessError DOMException for code %s',
    async (code) => {
      const ws = new WebSocket('ws://127.0.0.1:1/');
      expectDomException(() => ws.close(code), 'InvalidAccessError');
      expect(ws.readyState).toBe(WebSocket.CONNECTING);
      ws.close();
    },
  );

  it.each([1000, 3000, 4999, 1000.4, 2999.5, 3000.5])('accepts code %s ([Clamp] rounds half to even)', (code) => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    ws.close(code);
    expect(ws.readyState).toBe(WebSocket.CLOSING);
  });

  it('throws a SyntaxError DOMException for a reason over 123 UTF-8 bytes', () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    expectDomException(() => ws.close(1000, 'x'.repeat(124)), 'SyntaxError');
    expectDomException(() => ws.close(1000, '€'.repeat(42)), 'SyntaxError'); // 126 bytes, 42 characters
    ws.close(1000, '€'.repeat(41)); // 123 bytes
    expect(ws.readyState).toBe(WebSocket.CLOSING);
  });

  it('checks the code before the reason, and checks both in every state', async () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    expectDomException(() => ws.close(1001, 'x'.repeat(200)), 'InvalidAccessError');
    const recording = recordEvents(ws);
    ws.close();
    await recording.closed;
    expectDomException(() => ws.close(1001), 'InvalidAccessError');
    expectDomException(() => ws.close(1000, 'x'.repeat(124)), 'SyntaxError');
  });

  it('fails the connection while CONNECTING: CLOSING at once, then error and close 1006, never open', async () => {
    let asked = false;
    const peer = await raw(() => {
      // Never answers the upgrade.
      asked = true;
    });
    const ws = open(peer.url());
    const recording = recordEvents(ws);
    // Close once the request is out and unanswered: mid-handshake, still CONNECTING.
    await until(() => asked, 'the upgrade request at the peer');
    ws.close(1000, 'never mind');
    expect(ws.readyState).toBe(WebSocket.CLOSING);
    expect(recording.log).toEqual([]);
    await recording.closed;
    expect(recording.log).toEqual(FAILED);
  });

  it('does nothing when already CLOSING or CLOSED: one close event', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    await recording.next('open');
    ws.close(3001);
    ws.close(3002);
    await recording.closed;
    ws.close(3003);
    // A second close event would be a task queued by one of the close()
    // calls: it has run after settle().
    await settle();
    expect(recording.log.filter((e) => e.type === 'close')).toEqual([{ type: 'close', readyState: 3, code: 3001, reason: '', wasClean: true }]);
  });

  it('sends a close frame without a body when given no code and no reason', async () => {
    const peer = await raw((socket, request) => {
      socket.write(switchingProtocols(request.accept));
      onClientData(socket, request, (chunk) => {
        const frame = parseClientFrame(chunk)!;
        socket.end(serverFrame(CLOSE, frame.payload));
        seen.push(frame);
      });
    });
    const seen: Array<{ opcode: number; payload: Buffer }> = [];
    const ws = open(peer.url());
    const recording = recordEvents(ws);
    ws.onopen = () => ws.close();
    await recording.closed;
    expect(seen).toEqual([{ opcode: CLOSE, payload: Buffer.alloc(0) }]);
    expect(recording.log.at(-1)).toMatchObject({ code: 1005, reason: '' });
  });

  it('sends 1000 with a reason given without a code', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    ws.onopen = () => ws.close(undefined, 'why');
    await recording.closed;
    await until(() => server.closes.some((c) => c.reason === 'why'), 'the server to see the close', 3000);
    expect(server.closes.find((c) => c.reason === 'why')).toEqual({ code: 1000, reason: 'why', wasClean: true });
  });
});

describe('failures', () => {
  it('fails when the server refuses the upgrade: error, then close 1006', async () => {
    const ws = open(server.url('/refuse'));
    const recording = recordEvents(ws);
    await recording.closed;
    expect(recording.log).toEqual(FAILED);
  });

  it('fails when nothing listens on the port', async () => {
    const peer = await rawServer(() => {});
    const url = peer.url();
    await peer.close();
    const ws = open(url);
    const recording = recordEvents(ws);
    await recording.closed;
    expect(recording.log).toEqual(FAILED);
  });

  it('fails on a wrong Sec-WebSocket-Accept', async () => {
    const peer = await raw((socket) => {
      socket.write(switchingProtocols('d3JvbmcgYWNjZXB0IGtleSE='));
    });
    const ws = open(peer.url());
    const recording = recordEvents(ws);
    await recording.closed;
    expect(recording.log).toEqual(FAILED);
  });

  it('fails when the server selects a subprotocol that was not offered', async () => {
    const peer = await raw((socket, request) => {
      socket.write(switchingProtocols(request.accept, ['Sec-WebSocket-Protocol: other']));
    });
    const ws = open(peer.url(), ['chat']);
    const recording = recordEvents(ws);
    await recording.closed;
    expect(recording.log).toEqual(FAILED);
  });

  it('fails when subprotocols were offered and the server selected none', async () => {
    const ws = open(server.url('/echo'), ['chat']);
    const recording = recordEvents(ws);
    await recording.closed;
    expect(recording.log).toEqual(FAILED);
    expect(ws.protocol).toBe('');
  });

  it('fails on invalid UTF-8 in a text message: error, close 1006, and 1007 on the wire', async () => {
    let clientClose: { opcode: number; payload: Buffer } | null = null;
    const peer = await raw((socket, request) => {
      socket.write(switchingProtocols(request.accept));
      onClientData(socket, request, () => {
        socket.write(serverFrame(TEXT, Buffer.from([0x68, 0xc3, 0x28])));
        socket.once('data', (chunk) => {
          clientClose = parseClientFrame(chunk);
          socket.end();
        });
      });
    });
    const ws = open(peer.url());
    const recording = recordEvents(ws);
    ws.onopen = () => ws.send('go');
    await recording.closed;
    expect(recording.log).toEqual([{ type: 'open', readyState: 1 }, ...FAILED]);
    expect(clientClose!.opcode).toBe(CLOSE);
    expect(clientClose!.payload.readUInt16BE(0)).toBe(1007);
  });

  it('fails when the TCP connection drops without a close frame', async () => {
    const ws = open(server.url('/echo'));
    const recording = recordEvents(ws);
    ws.onopen = () => ws.send('drop');
    await recording.closed;
    expect(recording.log).toEqual([{ type: 'open', readyState: 1 }, ...FAILED]);
  });

  it('fails when the server ends TCP in the middle of a message', async () => {
    const peer = await raw((socket, request) => {
      socket.write(switchingProtocols(request.accept));
      onClientData(socket, request, () => socket.end(serverFrame(TEXT, 'half of a', false)));
    });
    const ws = open(peer.url());
    const recording = recordEvents(ws);
    ws.onopen = () => ws.send('go');
    await recording.closed;
    expect(recording.log).toEqual([{ type: 'open', readyState: 1 }, ...FAILED]);
  });

  it('lets no networking error escape as an exception or rejection', async () => {
    const escaped: unknown[] = [];
    const note = (error: unknown): void => {
      escaped.push(error);
    };
    process.on('uncaughtException', note);
    process.on('unhandledRejection', note);
    try {
      const peer = await raw((socket) => socket.destroy());
      const cases = [open(peer.url()), open(server.url('/refuse')), open('ws://127.0.0.1:1/')];
      await Promise.all(cases.map((ws) => recordEvents(ws).closed));
      // An exception thrown or a rejection left behind while failing has
      // been reported once the event loop has turned a few more times.
      await settle();
    } finally {
      process.off('uncaughtException', note);
      process.off('unhandledRejection', note);
    }
    expect(escaped).toEqual([]);
  });
});

describe('binaryType', () => {
  it('defaults to blob, takes arraybuffer, and ignores any other value', () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    ws.close();
    expect(ws.binaryType).toBe('blob');
    ws.binaryType = 'arraybuffer';
    expect(ws.binaryType).toBe('arraybuffer');
    ws.binaryType = 'text' as unknown as 'blob';
    expect(ws.binaryType).toBe('arraybuffer');
    ws.binaryType = 'Blob' as unknown as 'blob';
    expect(ws.binaryType).toBe('arraybuffer');
    ws.binaryType = 'blob';
    expect(ws.binaryType).toBe('blob');
  });

  it('delivers binary messages as Blobs with the exact bytes', async () => {
    const ws = open(server.url('/echo'));
    ws.onopen = () => ws.send('binary:00ff10');
    const event = (await recordEvents(ws).next('message')) as MessageEvent;
    expect(event.data).toBeInstanceOf(Blob);
    expect(Buffer.from(await (event.data as Blob).arrayBuffer()).toString('hex')).toBe('00ff10');
  });

  it('delivers binary messages as ArrayBuffers holding exactly the message, not a shared chunk', async () => {
    const ws = open(server.url('/echo'));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send('binary:00ff10');
    const event = (await recordEvents(ws).next('message')) as MessageEvent;
    expect(event.data).toBeInstanceOf(ArrayBuffer);
    expect((event.data as ArrayBuffer).byteLength).toBe(3);
    expect(Buffer.from(event.data as ArrayBuffer).toString('hex')).toBe('00ff10');
  });

  it('applies binaryType when the message event is dispatched, not when the bytes arrived', async () => {
    const peer = await raw((socket, request) => {
      socket.write(switchingProtocols(request.accept));
      onClientData(socket, request, () => socket.write(Buffer.concat([serverFrame(BINARY, 'ab'), serverFrame(BINARY, 'cd')])));
    });
    const ws = open(peer.url());
    const recording = recordEvents(ws);
    ws.onopen = () => ws.send('go');
    ws.onmessage = () => {
      ws.binaryType = 'arraybuffer';
    };
    await until(() => recording.log.filter((e) => e.type === 'message').length === 2, 'two messages', 3000);
    expect(recording.log.filter((e) => e.type === 'message').map((e) => e.data)).toEqual(['blob:2', 'arraybuffer:6364']);
  });
});

describe('event handler attributes', () => {
  it('are null at first, return what was set, and take anything not callable as null', () => {
    const ws = new WebSocket('ws://127.0.0.1:1/');
    ws.close();
    expect([ws.onopen, ws.onmessage, ws.onerror, ws.onclose]).toEqual([null, null, null, null]);
    const handler = (): void => {};
    ws.onclose = handler;
    expect(ws.onclose).toBe(handler);
    ws.onclose = 'not a function' as unknown as null;
    expect(ws.onclose).toBeNull();
  });

  it('keep the place of their first registration among addEventListener listeners when replaced', async () => {
    const ws = open(server.url('/echo'));
    const calls: string[] = [];
    ws.onopen = () => calls.push('first handler');
    ws.addEventListener('open', () => calls.push('listener'));
    ws.onopen = () => calls.push('second handler');
    await recordEvents(ws).next('open');
    expect(calls).toEqual(['second handler', 'listener']);
  });

  it('move to the end when set to null and then set again', async () => {
    const ws = open(server.url('/echo'));
    const calls: string[] = [];
    ws.onopen = () => calls.push('handler');
    ws.addEventListener('open', () => calls.push('listener'));
    ws.onopen = null;
    ws.onopen = () => calls.push('handler again');
    await recordEvents(ws).next('open');
    expect(calls).toEqual(['listener', 'handler again']);
  });

  it('call the handler with the socket as this', async () => {
    const ws = open(server.url('/echo'));
    let self: unknown;
    ws.onopen = function (this: WebSocket) {
      // eslint-disable-next-line @typescript-eslint/no-this-alias -- what `this` was is the point of the test
      self = this;
    };
    await recordEvents(ws).next('open');
    expect(self).toBe(ws);
  });

  it('work alongside real EventTarget listeners: once, removeEventListener, handleEvent objects', async () => {
    const ws = open(server.url('/echo'));
    const calls: string[] = [];
    const removed = (): void => {
      calls.push('removed');
    };
    ws.addEventListener('message', removed);
    ws.removeEventListener('message', removed);
    ws.addEventListener('message', () => calls.push('once'), { once: true });
    ws.addEventListener('message', { handleEvent: (event: MessageEvent) => calls.push(`object ${event.data as string}`) });
    ws.onopen = () => ws.send('burst:2');
    ws.onmessage = (event) => {
      if (event.data === 'm2') ws.close();
    };
    await recordEvents(ws).closed;
    expect(calls).toEqual(['once', 'object m1', 'object m2']);
  });
});

describe('CloseEvent', () => {
  it('has the standard constructor and defaults', () => {
    const plain = new CloseEvent('close');
    expect([plain.wasClean, plain.code, plain.reason]).toEqual([false, 0, '']);
    const event = new CloseEvent('close', { wasClean: true, code: 4000, reason: 'r', cancelable: true });
    expect([event.wasClean, event.code, event.reason, event.cancelable, event.type]).toEqual([true, 4000, 'r', true, 'close']);
    expect(new CloseEvent('close', { code: 65537 }).code).toBe(1);
    expect(Object.prototype.toString.call(event)).toBe('[object CloseEvent]');
  });
});
