import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { WebSocketServer, reject, type Connection } from '../../src/index.js';

/**
 * Servers for the WHATWG WebSocket tests (ours and undici's against the
 * same peers): an in-process WebSocketServer whose routes do what a test
 * asks by message, and a raw TCP server for the misbehaviour a correct
 * server never shows (wrong accept key, invalid UTF-8, unoffered subprotocol).
 */

// ---- the well-behaved server -------------------------------------------------

export interface ScriptedServer {
  port: number;
  url(path: string): string;
  /** What each connection received, in order: `text:...`, `binary:<hex>`. */
  received: string[][];
  /** Close codes and reasons the server saw, one per closed connection. */
  closes: Array<{ code: number; reason: string; wasClean: boolean }>;
  close(): Promise<void>;
}

/**
 * Routes:
 * - `/echo` echoes every message (text as text, binary as binary), except
 *   these text commands: `close:CODE:REASON` (the server closes; CODE may be
 *   empty for a close frame without one), `burst:N` (N messages `m1`..`mN`
 *   in one write), `binary:HEX` (sends those bytes as a binary message),
 *   `drop` (the TCP connection is destroyed, no close frame).
 * - `/chat` like `/echo`, selecting the `chat` subprotocol when offered.
 * - `/refuse` answers the upgrade with 403.
 */
export async function scriptedServer(): Promise<ScriptedServer> {
  const server = new WebSocketServer({ heartbeat: false, closeTimeout: 1000 });
  const received: string[][] = [];
  const closes: ScriptedServer['closes'] = [];
  const log = new Map<Connection<unknown>, string[]>();
  const route = {
    open(connection: Connection<unknown>) {
      const entries: string[] = [];
      received.push(entries);
      log.set(connection, entries);
    },
    message(connection: Connection<unknown>, data: string | Buffer, isBinary: boolean) {
      log.get(connection)!.push(isBinary ? `binary:${(data as Buffer).toString('hex')}` : `text:${data as string}`);
      if (!isBinary) {
        const text = data as string;
        const [command, argument, ...rest] = text.split(':');
        if (command === 'close') {
          connection.close(argument === '' || argument === undefined ? undefined : Number(argument), rest.join(':'));
          return;
        }
        if (command === 'burst') {
          for (let i = 1; i <= Number(argument); i++) connection.send(`m${i}`);
          return;
        }
        if (command === 'binary') {
          connection.send(Buffer.from(argument ?? '', 'hex'));
          return;
        }
        if (command === 'drop') {
          connection.terminate();
          return;
        }
      }
      connection.send(data, { binary: isBinary });
    },
    close(_connection: Connection<unknown>, info: { code: number; reason: string; wasClean: boolean }) {
      closes.push({ code: info.code, reason: info.reason, wasClean: info.wasClean });
    },
  };
  server.route('/echo', route);
  server.route('/chat', { ...route, protocols: ['chat'] });
  server.route('/refuse', { ...route, authenticate: () => reject(403, 'go away') });
  const address = await server.listen(0);
  return {
    port: address.port,
    url: (path) => `ws://127.0.0.1:${address.port}${path}`,
    received,
    closes,
    close: () => server.close({ timeout: 200 }),
  };
}

// ---- the raw server ------------------------------------------------------------

export interface UpgradeInfo {
  key: string;
  /** Sec-WebSocket-Accept computed from the key (RFC 6455 §4.2.2 item 5.4). */
  accept: string;
  protocols: string[];
  extensions: string;
  /** Bytes the client sent after the request head. */
  rest: Buffer;
}

export interface RawServer {
  port: number;
  url(path?: string): string;
  close(): Promise<void>;
}

/**
 * A TCP server that reads one HTTP request head per connection and hands
 * the socket to `onUpgrade` to answer however the test wants.
 */
export async function rawServer(onUpgrade: (socket: Socket, request: UpgradeInfo) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      const header = (name: string): string => {
        const match = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(text);
        return match === null ? '' : match[1]!.trim();
      };
      const key = header('sec-websocket-key');
      const protocolHeader = header('sec-websocket-protocol');
      onUpgrade(socket, {
        key,
        accept: acceptKey(key),
        protocols: protocolHeader === '' ? [] : protocolHeader.split(',').map((p) => p.trim()),
        extensions: header('sec-websocket-extensions'),
        rest: head.subarray(end + 4),
      });
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path = '/') => `ws://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** A 101 response with the given accept value and extra header lines. */
export function switchingProtocols(accept: string, extra: string[] = []): string {
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, ...extra];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** An unmasked (server-to-client) frame, RFC 6455 §5.2. */
export function serverFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const extended =
    body.length < 126 ? 0
    : body.length < 0x10000 ? 2
    : 8;
  const header = Buffer.alloc(2 + extended);
  header[0] = (fin ? 0x80 : 0) | opcode;
  header[1] =
    extended === 0 ? body.length
    : extended === 2 ? 126
    : 127;
  if (extended === 2) header.writeUInt16BE(body.length, 2);
  if (extended === 8) header.writeBigUInt64BE(BigInt(body.length), 2);
  return Buffer.concat([header, body]);
}

export const TEXT = 0x1;
export const BINARY = 0x2;
export const CLOSE = 0x8;

/** Run `action` once the client sends anything after its handshake (so the client surely processed the 101 first). */
export function onClientData(socket: Socket, request: UpgradeInfo, action: (chunk: Buffer) => void): void {
  if (request.rest.length > 0) {
    action(request.rest);
    return;
  }
  socket.once('data', action);
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- recording what a WHATWG WebSocket reports -------------------------------

/** The part of the WHATWG WebSocket interface the recorder needs (ours and undici's both have it). */
export interface WhatwgSocket extends EventTarget {
  readonly readyState: number;
  readonly bufferedAmount: number;
  readonly protocol: string;
  readonly extensions: string;
  readonly url: string;
  binaryType: string;
  onopen: ((event: Event) => unknown) | null;
  onmessage: ((event: MessageEvent) => unknown) | null;
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;
  close(code?: number, reason?: string): void;
}

/** One event as seen by a listener: its type, the readyState at that moment, and its fields. */
export interface EventRecord {
  type: string;
  readyState: number;
  code?: number;
  reason?: string;
  wasClean?: boolean;
  data?: string;
}

/** A message's data in a comparable form: `text:...`, `arraybuffer:<hex>`, `blob:<size>`. */
export function describeData(data: unknown): string {
  if (typeof data === 'string') return `text:${data}`;
  if (data instanceof ArrayBuffer) return `arraybuffer:${Buffer.from(data).toString('hex')}`;
  if (data instanceof Blob) return `blob:${data.size}`;
  return `other:${Object.prototype.toString.call(data)}`;
}

export interface Recording {
  log: EventRecord[];
  /** Resolves after the close event (rejects if none comes within `timeout`). */
  closed: Promise<void>;
  /** Resolves at the first event of this type. */
  next(type: string): Promise<Event>;
}

export function recordEvents(ws: EventTarget & { readonly readyState: number }, timeout = 5000): Recording {
  const log: EventRecord[] = [];
  const waiters = new Map<string, Array<(event: Event) => void>>();
  for (const type of ['open', 'message', 'error', 'close']) {
    ws.addEventListener(type, (event: Event) => {
      const entry: EventRecord = { type, readyState: ws.readyState };
      if (type === 'message') entry.data = describeData((event as MessageEvent).data);
      if (type === 'close') {
        const close = event as Event & { code: number; reason: string; wasClean: boolean };
        entry.code = close.code;
        entry.reason = close.reason;
        entry.wasClean = close.wasClean;
      }
      log.push(entry);
      for (const wake of waiters.get(type)?.splice(0) ?? []) wake(event);
    });
  }
  const next = (type: string): Promise<Event> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} event within ${timeout} ms; saw ${JSON.stringify(log)}`)), timeout);
      const list = waiters.get(type) ?? [];
      list.push((event) => {
        clearTimeout(timer);
        resolve(event);
      });
      waiters.set(type, list);
    });
  const closed = next('close').then(() => undefined);
  // Tests that never wait on it must not leave an unhandled rejection behind.
  closed.catch(() => {});
  return { log, closed, next };
}

/** The first frame a client sent (masked, RFC 6455 §5.3), unmasked. */
export function parseClientFrame(bytes: Buffer): { opcode: number; payload: Buffer } | null {
  if (bytes.length < 2) return null;
  const opcode = bytes[0]! & 0x0f;
  let length = bytes[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    length = bytes.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    length = Number(bytes.readBigUInt64BE(2));
    offset = 10;
  }
  if (bytes.length < offset + 4 + length) return null;
  const key = bytes.subarray(offset, offset + 4);
  const payload = Buffer.from(bytes.subarray(offset + 4, offset + 4 + length));
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
  return { opcode, payload };
}
