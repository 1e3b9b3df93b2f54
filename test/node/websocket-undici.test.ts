import type { Socket } from 'node:net';
import { WebSocket as UndiciWebSocket } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from '../../src/index.js';
import {
  BINARY,
  TEXT,
  onClientData,
  rawServer,
  recordEvents,
  scriptedServer,
  serverFrame,
  switchingProtocols,
  type EventRecord,
  type RawServer,
  type ScriptedServer,
  type UpgradeInfo,
  type WhatwgSocket,
} from './websocket-peers.js';
import { closesWithin, settle, until } from '../wait.js';

/**
 * Our WebSocket next to undici's (the one later Node versions ship as the
 * global), against the same servers: for every scenario, the sequence of
 * events (type, readyState at that moment, code, reason, wasClean, data)
 * must be the same. Where undici departs from the WebSockets Standard, or
 * we deliberately differ, the test states the difference and why.
 */

type Implementation = 'sockeye' | 'undici';
const IMPLEMENTATIONS: Implementation[] = ['sockeye', 'undici'];

const created: WhatwgSocket[] = [];
const rawServers: RawServer[] = [];
let server: ScriptedServer;

beforeAll(async () => {
  server = await scriptedServer();
});
afterAll(async () => {
  await server.close();
});
afterEach(async () => {
  for (const ws of created.splice(0)) {
    if (ws.readyState === 0 || ws.readyState === 1) ws.close();
  }
  await Promise.all(rawServers.splice(0).map((peer) => peer.close()));
});

function create(implementation: Implementation, url: string, protocols?: string | string[]): WhatwgSocket {
  const ws =
    implementation === 'sockeye' ?
      (new WebSocket(url, protocols) as unknown as WhatwgSocket)
    : (new UndiciWebSocket(url, protocols) as unknown as WhatwgSocket);
  created.push(ws);
  return ws;
}

async function raw(onUpgrade: (socket: Socket, request: UpgradeInfo) => void): Promise<RawServer> {
  const peer = await rawServer(onUpgrade);
  rawServers.push(peer);
  return peer;
}

/** Run `script` on a socket of each implementation; resolve with both event sequences once both closed. */
async function compare(
  url: () => string,
  script: (ws: WhatwgSocket) => void = () => {},
  protocols?: string | string[],
): Promise<Record<Implementation, EventRecord[]>> {
  const logs = {} as Record<Implementation, EventRecord[]>;
  // One after the other, so a scenario's server-side effects do not interleave.
  for (const implementation of IMPLEMENTATIONS) {
    const ws = create(implementation, url(), protocols);
    const recording = recordEvents(ws);
    script(ws);
    await recording.closed;
    logs[implementation] = recording.log;
  }
  return logs;
}

const OPENED: EventRecord = { type: 'open', readyState: 1 };
const FAILED: EventRecord[] = [
  { type: 'error', readyState: 3 },
  { type: 'close', readyState: 3, code: 1006, reason: '', wasClean: false },
];

function caught(run: () => unknown): string {
  try {
    run();
    return 'no exception';
  } catch (error) {
    return error instanceof DOMException ? `DOMException ${error.name}` : (error as Error).constructor.name;
  }
}

describe('the same events as undici', () => {
  it('for a text echo closed by the client', async () => {
    const logs = await compare(
      () => server.url('/echo'),
      (ws) => {
        ws.onopen = () => ws.send('hello');
        ws.onmessage = () => ws.close(1000, 'bye');
      },
    );
    expect(logs.sockeye).toEqual(logs.undici);
    expect(logs.sockeye).toEqual([
      OPENED,
      { type: 'message', readyState: 1, data: 'text:hello' },
      { type: 'close', readyState: 3, code: 1000, reason: '', wasClean: true },
    ]);
  });

  it('for binary messages as ArrayBuffer and as Blob', async () => {
    const logs = await compare(
      () => server.url('/echo'),
      (ws) => {
        ws.binaryType = 'arraybuffer';
        ws.onopen = () => ws.send(new Uint8Array([1, 2, 3]));
        ws.onmessage = (event: MessageEvent) => {
          if (event.data instanceof ArrayBuffer) {
            ws.binaryType = 'blob';
            ws.send('binary:00ff');
          } else ws.close(3000);
        };
      },
    );
    expect(logs.sockeye).toEqual(logs.undici);
    expect(logs.sockeye.map((e) => e.data ?? e.type)).toEqual(['open', 'arraybuffer:010203', 'blob:2', 'close']);
  });

  it('for a close started by the server, with and without a code', async () => {
    for (const [command, code, reason] of [
      ['close:4001:server says bye', 4001, 'server says bye'],
      ['close::', 1005, ''],
    ] as const) {
      const logs = await compare(
        () => server.url('/echo'),
        (ws) => {
          ws.onopen = () => ws.send(command);
        },
      );
      expect(logs.sockeye).toEqual(logs.undici);
      expect(logs.sockeye).toEqual([OPENED, { type: 'close', readyState: 3, code, reason, wasClean: true }]);
    }
  });

  it('for close() from a message handler while more messages wait', async () => {
    const logs = await compare(
      () => server.url('/echo'),
      (ws) => {
        ws.onopen = () => ws.send('burst:3');
        ws.onmessage = () => ws.close(1000);
      },
    );
    expect(logs.sockeye).toEqual(logs.undici);
    expect(logs.sockeye.map((e) => e.data ?? e.type)).toEqual(['open', 'text:m1', 'close']);
  });

  it('for a change of binaryType between two messages that arrived together', async () => {
    const peer = await raw((socket, request) => {
      socket.write(switchingProtocols(request.accept));
      onClientData(socket, request, () => {
        socket.write(Buffer.concat([serverFrame(BINARY, 'ab'), serverFrame(BINARY, 'cd'), serverFrame(TEXT, 'end')]));
        // The client's close frame: end TCP (a lazy server, no close frame back).
        socket.once('data', () => socket.end());
      });
    });
    const logs = await compare(
      () => peer.url(),
      (ws) => {
        ws.onopen = () => ws.send('go');
        ws.onmessage = (event: MessageEvent) => {
          ws.binaryType = 'arraybuffer';
          if (event.data === 'end') ws.close();
        };
      },
    );
    expect(logs.sockeye).toEqual(logs.undici);
    expect(logs.sockeye.map((e) => e.data ?? e.type)).toEqual(['open', 'blob:2', 'arraybuffer:6364', 'text:end', 'error', 'close']);
  });

  it('for the selected subprotocol', async () => {
    const seen: Record<string, string> = {};
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, server.url('/chat'), ['superchat', 'chat']);
      const recording = recordEvents(ws);
      await recording.next('open');
      seen[implementation] = ws.protocol;
      ws.close();
      await recording.closed;
    }
    expect(seen).toEqual({ sockeye: 'chat', undici: 'chat' });
  });

  it.each([
    ['a refused upgrade (403)', async () => server.url('/refuse'), undefined],
    [
      'nothing listening',
      async () => {
        const peer = await rawServer(() => {});
        const url = peer.url();
        await peer.close();
        return url;
      },
      undefined,
    ],
    ['a wrong Sec-WebSocket-Accept', async () => (await raw((s) => s.write(switchingProtocols('d3JvbmcgYWNjZXB0IGtleSE=')))).url(), undefined],
    [
      'a subprotocol that was not offered',
      async () => (await raw((s, r) => s.write(switchingProtocols(r.accept, ['Sec-WebSocket-Protocol: other'])))).url(),
      ['chat'],
    ],
    ['no subprotocol selected from those offered', async () => server.url('/echo'), ['chat']],
    ['a server that closes TCP during the handshake', async () => (await raw((s) => s.destroy())).url(), undefined],
  ])('for a failed handshake: %s', async (_what, makeUrl, protocols) => {
    const url = await makeUrl();
    const logs = await compare(
      () => url,
      () => {},
      protocols,
    );
    expect(logs.sockeye).toEqual(logs.undici);
    expect(logs.sockeye).toEqual(FAILED);
  });

  it.each([
    ['invalid UTF-8 in a text message', (socket: Socket) => socket.write(serverFrame(TEXT, Buffer.from([0x68, 0xc3, 0x28])))],
    ['a TCP connection dropped without a close frame', (socket: Socket) => socket.destroy()],
    ['a TCP connection ended in the middle of a message', (socket: Socket) => socket.end(serverFrame(TEXT, 'half', false))],
  ])('for a connection that fails after opening: %s', async (_what, misbehave) => {
    const peer = await raw((socket, request) => {
      socket.write(switchingProtocols(request.accept));
      onClientData(socket, request, () => misbehave(socket));
    });
    const logs = await compare(
      () => peer.url(),
      (ws) => {
        ws.onopen = () => ws.send('go');
      },
    );
    expect(logs.sockeye).toEqual(logs.undici);
    expect(logs.sockeye).toEqual([OPENED, ...FAILED]);
  });

  it('for URLs: http(s) mapped to ws(s), serialized alike', () => {
    for (const url of ['http://127.0.0.1:1/x?y', 'https://127.0.0.1/', 'WS://127.0.0.1:80/a%20b', 'ws://[::1]:1']) {
      const ours = create('sockeye', url);
      const theirs = create('undici', url);
      expect(ours.url).toBe(theirs.url);
    }
  });

  it('for constructor arguments that throw', () => {
    const cases: Array<[string, string | string[] | undefined]> = [
      ['not a url', undefined],
      ['/relative', undefined],
      ['ftp://127.0.0.1/', undefined],
      ['ws://127.0.0.1/#fragment', undefined],
      ['ws://127.0.0.1/#', undefined],
      ['ws://127.0.0.1:1/', 'a b'],
      ['ws://127.0.0.1:1/', ['chat', 'chat']],
      ['ws://127.0.0.1:1/', ''],
      ['ws://127.0.0.1:1/', 'chät'],
    ];
    for (const [url, protocols] of cases) {
      const ours = caught(() => create('sockeye', url, protocols));
      const theirs = caught(() => create('undici', url, protocols));
      expect({ url, protocols, ours }).toEqual({ url, protocols, ours: theirs });
      expect(ours).toBe('DOMException SyntaxError');
    }
  });

  it('for send() while CONNECTING and for close() arguments', () => {
    const outcomes: Record<string, string[]> = {};
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, 'ws://127.0.0.1:1/');
      outcomes[implementation] = [
        caught(() => ws.send('early')),
        caught(() => ws.close(999)),
        caught(() => ws.close(1001)),
        caught(() => ws.close(5000)),
        caught(() => ws.close(1000, 'x'.repeat(124))),
        caught(() => ws.close(1001, 'x'.repeat(124))),
        caught(() => ws.close(4999, '€'.repeat(41))),
      ];
    }
    expect(outcomes.sockeye).toEqual(outcomes.undici);
    expect(outcomes.sockeye).toEqual([
      'DOMException InvalidStateError',
      'DOMException InvalidAccessError',
      'DOMException InvalidAccessError',
      'DOMException InvalidAccessError',
      'DOMException SyntaxError',
      'DOMException InvalidAccessError',
      'no exception',
    ]);
  });

  it('for bufferedAmount while open: counted on send, back to 0 once written', async () => {
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, server.url('/echo'));
      const recording = recordEvents(ws);
      await recording.next('open');
      ws.send('héllo');
      ws.send(new Uint16Array(3));
      ws.send(new Blob(['abcd']));
      expect({ implementation, buffered: ws.bufferedAmount }).toEqual({ implementation, buffered: 6 + 6 + 4 });
      await until(() => ws.bufferedAmount === 0, `${implementation} bufferedAmount to reach 0`, 3000);
      ws.close();
      await recording.closed;
    }
  });
});

describe('the same interface as undici', () => {
  it('enumerates the same attributes, operations and constants on the prototype', () => {
    const enumerable = (prototype: object): string[] =>
      Object.entries(Object.getOwnPropertyDescriptors(prototype))
        .filter(([, descriptor]) => descriptor.enumerable === true)
        .map(([name]) => name)
        .sort();
    expect(enumerable(WebSocket.prototype)).toEqual(enumerable(UndiciWebSocket.prototype));
    expect(enumerable(WebSocket.prototype)).toContain('bufferedAmount');
  });
});

describe('where undici and the standard differ, and we follow the standard', () => {
  it('close() while CONNECTING: undici fires error and close inside close() and stays CLOSING; we queue them and end CLOSED', async () => {
    // Standard: close() fails the connection and sets readyState to CLOSING;
    // the close event comes from a queued task ("When the WebSocket
    // connection is closed ... queue a task"), after which readyState is
    // CLOSED. undici runs its close steps synchronously inside close(), then
    // sets CLOSING over the CLOSED it had just reported.
    const asked: Socket[] = [];
    const peer = await raw((socket) => {
      // Never answers.
      asked.push(socket);
    });
    const observed: Record<string, { duringClose: EventRecord[]; after: EventRecord[]; finalState: number }> = {};
    for (const [index, implementation] of IMPLEMENTATIONS.entries()) {
      const ws = create(implementation, peer.url());
      const recording = recordEvents(ws);
      // Close once the request is out and unanswered: mid-handshake, still CONNECTING.
      await until(() => asked.length === index + 1, `${implementation}'s upgrade request at the peer`);
      ws.close();
      const duringClose = [...recording.log];
      await recording.closed;
      // Nothing may follow the close event: once the peer sees the TCP
      // connection gone, the client has torn it down, and whatever that set
      // off has had its turn after settle().
      await closesWithin(asked[index]!, 5000);
      await settle();
      observed[implementation] = { duringClose, after: recording.log, finalState: ws.readyState };
    }
    expect(observed.sockeye).toEqual({ duringClose: [], after: FAILED, finalState: 3 });
    expect(observed.undici).toEqual({ duringClose: FAILED, after: FAILED, finalState: 2 });
  });

  it('send() after close(): the standard counts the data in bufferedAmount; undici does not', async () => {
    // "Any invocation of this method with a string argument that does not
    // throw an exception must increase the bufferedAmount attribute" - also
    // once the closing handshake started, so scripts see the data was lost.
    const buffered: Record<string, number[]> = {};
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, server.url('/echo'));
      const recording = recordEvents(ws);
      await recording.next('open');
      ws.close();
      ws.send('lost');
      const whileClosing = ws.bufferedAmount;
      await recording.closed;
      ws.send(new ArrayBuffer(3));
      buffered[implementation] = [whileClosing, ws.bufferedAmount];
    }
    expect(buffered.sockeye).toEqual([4, 7]);
    expect(buffered.undici).toEqual([0, 0]);
  });

  it('replacing an onX handler: HTML keeps its place among listeners; undici moves it to the end', async () => {
    // HTML "event handler IDL attributes": the listener is added when the
    // handler is first set to a non-null value; later values replace the
    // callback in place. undici removes and re-adds the listener each time.
    const orders: Record<string, string[]> = {};
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, server.url('/echo'));
      const calls: string[] = [];
      ws.onopen = () => calls.push('first handler');
      ws.addEventListener('open', () => calls.push('listener'));
      ws.onopen = () => calls.push('second handler');
      const recording = recordEvents(ws);
      await recording.next('open');
      orders[implementation] = calls;
      ws.close();
      await recording.closed;
    }
    expect(orders.sockeye).toEqual(['second handler', 'listener']);
    expect(orders.undici).toEqual(['listener', 'second handler']);
  });

  it('a Blob sent before close(): we send it before the close frame; undici sends the close frame first and loses it', async () => {
    // The standard's note on close(): it "does not discard previously sent
    // messages before starting the WebSocket closing handshake". undici's
    // close frame overtakes a Blob that is still being read.
    const received: Record<string, string[]> = {};
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, server.url('/echo'));
      const recording = recordEvents(ws);
      await recording.next('open');
      const connections = server.received.length;
      ws.send(new Blob(['blob bytes']));
      ws.send('then text');
      // A reason of its own, to tell this close among the server's.
      const reason = `${implementation} is done`;
      ws.close(1000, reason);
      await recording.closed;
      // The server reports the close after every message it will ever take
      // from the connection: what it received is final from then on.
      await until(() => server.closes.some((close) => close.reason === reason), `the server to see ${implementation}'s close`);
      received[implementation] = server.received[connections - 1] ?? [];
    }
    expect(received.sockeye).toEqual([`binary:${Buffer.from('blob bytes').toString('hex')}`, 'text:then text']);
    expect(received.undici).toEqual([]);
  });

  it('messages that arrive together: each is a task for us (microtasks run in between); undici dispatches them in one go', async () => {
    // "Feedback from the protocol": each received message queues its own
    // task, and microtasks run at the end of every task. undici fires the
    // events synchronously while parsing one chunk.
    const orders: Record<string, string[]> = {};
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, server.url('/echo'));
      const order: string[] = [];
      ws.onopen = () => ws.send('burst:2');
      ws.onmessage = (event: MessageEvent) => {
        order.push(event.data as string);
        void Promise.resolve().then(() => order.push(`after ${event.data as string}`));
        if (event.data === 'm2') ws.close();
      };
      await recordEvents(ws).closed;
      orders[implementation] = order;
    }
    expect(orders.sockeye).toEqual(['m1', 'after m1', 'm2', 'after m2']);
    expect(orders.undici).toEqual(['m1', 'm2', 'after m1', 'after m2']);
  });

  it('the error event: a plain Event for us, as the standard says; an ErrorEvent for undici', async () => {
    // "fire an event named error": Event, no failure details (the standard
    // warns against letting scripts tell network failures apart).
    const kinds: Record<string, string> = {};
    for (const implementation of IMPLEMENTATIONS) {
      const ws = create(implementation, server.url('/refuse'));
      const recording = recordEvents(ws);
      const error = await recording.next('error');
      kinds[implementation] = error.constructor.name;
      await recording.closed;
    }
    expect(kinds).toEqual({ sockeye: 'Event', undici: 'ErrorEvent' });
  });

  it('subprotocol names differing only in case: distinct for us (exact comparison); duplicates for undici', () => {
    // The standard: "If any of the values in protocols occur more than
    // once"; RFC 6455 compares subprotocol names exactly (§4.1: "unique
    // strings"). undici lower-cases them before looking for duplicates.
    const ours = caught(() => create('sockeye', 'ws://127.0.0.1:1/', ['chat', 'Chat']));
    const theirs = caught(() => create('undici', 'ws://127.0.0.1:1/', ['chat', 'Chat']));
    expect({ ours, theirs }).toEqual({ ours: 'no exception', theirs: 'DOMException SyntaxError' });
  });
});
