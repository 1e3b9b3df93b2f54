/**
 * Small programs written the way users write them against the installed
 * package, type-checked by the repository's TypeScript with strict settings
 * and library checking on (so our .d.ts files are checked too, not skipped).
 */

/**
 * A Node program (ES module): server, routes, client, publish/subscribe.
 * Each `@ts-expect-error` line touches a member that is internal to the
 * library: if the published types showed it, the directive would be unused
 * and the check would fail.
 */
export const NODE_CONSUMER = `
import { WebSocketServer, connect, Connection, ConnectionState, HandshakeError, ReconnectingWebSocket, reject, type CloseInfo } from 'sockeye';
import { CloseCode, Protocol, Role, type ProtocolEvent } from 'sockeye/protocol';
import { PubSub, MemoryBroker } from 'sockeye/pubsub';
import { Socket } from 'node:net';

interface User {
  name: string;
}

const hub = new PubSub({ broker: new MemoryBroker() });
const server = new WebSocketServer({ maxMessageSize: 1 << 20, heartbeat: false });
server.route<User>('/chat', {
  authenticate: (request) => (request.query.get('name') === null ? reject(401, 'no name') : { name: String(request.query.get('name')) }),
  open(connection) {
    const name: string = connection.context.name;
    hub.subscribe(connection, 'room');
    hub.publish('room', name + ' joined');
  },
  message(connection, data, isBinary) {
    const status: 'written' | 'queued' | 'dropped' | 'closed' = connection.send(data, { binary: isBinary });
    void status;
  },
  close(_connection, info: CloseInfo) {
    const code: number = info.code;
    void code;
  },
});

const everyone: ReadonlySet<Connection<unknown>> = server.connections;

function internals(connection: Connection<unknown>): void {
  // @ts-expect-error writeFrame is internal
  connection.writeFrame(new Uint8Array(2), new Uint8Array(0));
  // @ts-expect-error flush is internal
  connection.flush();
  // @ts-expect-error serverData is internal
  void connection.serverData;
  // @ts-expect-error event is internal
  void connection.event;
  // @ts-expect-error backlogDrained is internal
  connection.backlogDrained();
  // @ts-expect-error heartbeat is internal
  connection.heartbeat(1000);
  // @ts-expect-error drop is internal
  void connection.drop;
  // @ts-expect-error receiveInitial is internal
  connection.receiveInitial(new Uint8Array(0));
  // @ts-expect-error the counters are read-only to applications
  connection.messagesSent = 0;
  const sent: number = connection.bytesSent + connection.messagesReceived + connection.bytesReceived + connection.droppedMessages;
  void sent;
  // @ts-expect-error applications do not construct connections: the server and connect() adopt sockets
  void new Connection(new Socket(), { role: Role.Server }, undefined);
  // @ts-expect-error adopting a socket is internal
  void Connection.adopt;
}

function testClocks(): void {
  // @ts-expect-error the timer source is for the library's own tests
  void new WebSocketServer({ timers: undefined });
  // @ts-expect-error the timer source is for the library's own tests
  void connect('ws://127.0.0.1:1/', { timers: undefined });
}
void testClocks;

/** The sans-I/O core, driven by hand: bytes in, events out. */
export function sansIo(received: Uint8Array): ProtocolEvent[] {
  const events: ProtocolEvent[] = [];
  const protocol = new Protocol({ writeFrame: () => {}, event: (event) => void events.push(event) }, { role: Role.Server });
  protocol.receive(received);
  // @ts-expect-error frameHeader is the frame reader's callback, internal
  protocol.frameHeader(true, false, 1, 0);
  // @ts-expect-error frameError is the frame reader's callback, internal
  void protocol.frameError;
  return events;
}

async function main(): Promise<void> {
  const address = await server.listen(0);
  const client = await connect('ws://127.0.0.1:' + address.port + '/chat?name=ann', { protocols: [], headers: { 'x-a': 'b' } });
  client.on('message', (data: string | Buffer, isBinary: boolean) => void [data, isBinary]);
  const rtt: number = await client.ping('x');
  const open: boolean = client.state === ConnectionState.Open;
  for (const connection of everyone) internals(connection);
  client.close(CloseCode.Normal, 'done ' + rtt + ' ' + open);
  const reconnecting = new ReconnectingWebSocket('ws://127.0.0.1:' + address.port + '/chat?name=bob');
  reconnecting.on('message', ({ data }) => void data);
  reconnecting.close();
  await server.close();
}

main().catch((error: unknown) => {
  if (error instanceof HandshakeError) console.error(error.code, error.status);
});
`;

/** The same package from CommonJS: \`import x = require()\` of the ES modules (Node >= 20.19). */
export const COMMONJS_CONSUMER = `
import sockeye = require('sockeye');
import pubsub = require('sockeye/pubsub');

const server: sockeye.WebSocketServer = new sockeye.WebSocketServer();
const hub: pubsub.PubSub = new pubsub.PubSub();
server.route('/', { open: (connection) => void hub.subscribe(connection, 'all') });
export = server;
`;

/**
 * A page's script, as a bundler sees it: the browser modules against the
 * DOM's WebSocket, with no Node types anywhere.
 */
export const BROWSER_CONSUMER = `
import { ReconnectingWebSocket, type ReconnectState } from 'sockeye/web/reconnecting-websocket';
import { parseEnvelope, socketUrl } from 'sockeye/web/page-socket';

const socket = new ReconnectingWebSocket(socketUrl('/chat/ws', location), { WebSocket, binaryType: 'arraybuffer' });
socket.on('message', ({ data }) => {
  const envelope = parseEnvelope(data);
  if (envelope !== null) document.title = envelope.type;
});
socket.on('statechange', ({ state }: { state: ReconnectState }) => void state);
socket.send(new Uint8Array([1, 2, 3]));
`;

/** What the Node consumers are compiled with: strict, and stricter than the default in places. */
export const NODE_COMPILER_OPTIONS = (typeRoot: string): object => ({
  strict: true,
  noUnusedLocals: true,
  noImplicitOverride: true,
  exactOptionalPropertyTypes: true,
  module: 'nodenext',
  moduleResolution: 'nodenext',
  target: 'es2022',
  lib: ['es2022'],
  types: ['node'],
  typeRoots: [typeRoot],
  noEmit: true,
});

/** A bundler's view: module resolution `bundler`, the DOM, no Node types. */
export const BROWSER_COMPILER_OPTIONS = {
  strict: true,
  noUnusedLocals: true,
  exactOptionalPropertyTypes: true,
  module: 'preserve',
  moduleResolution: 'bundler',
  target: 'es2022',
  lib: ['es2022', 'dom'],
  types: [],
  noEmit: true,
};
