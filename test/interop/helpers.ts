import { createHash } from 'node:crypto';
import { WebSocketServer, type CloseInfo, type Connection } from '../../src/index.js';

/**
 * Shared by the interop tests: the message matrix, payloads, and a Sockeye
 * echo server that records what it received, so each test can check both
 * what the peer got back and what Sockeye itself decoded.
 */

/** Every length-encoding boundary of RFC 6455 §5.2 (7-bit, 16-bit, 64-bit), plus large messages. */
export const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20] as const;

export type Kind = 'text' | 'binary';

export interface MatrixCase {
  kind: Kind;
  size: number;
  fragmented: boolean;
  name: string;
}

export const MATRIX: readonly MatrixCase[] = (['text', 'binary'] as const).flatMap((kind) =>
  SIZES.flatMap((size) =>
    [false, true].map((fragmented) => ({
      kind,
      size,
      fragmented,
      name: `${kind} ${size} B${fragmented ? ' fragmented' : ''}`,
    })),
  ),
);

/** Pieces a fragmented send is split into. */
export const FRAGMENTS = 4;

/** Deadline for any single wait in these tests. */
export const WAIT_MS = 15_000;

// 1, 2, 3 and 4-byte UTF-8 characters.
const ALPHABET = [...'abcXYZ019 .,\u00e9\u00df\u00f1\u03bb\u0436\u20ac\u4e2d\u6587\u{1f600}\u{1f980}\u{10348}'];
const payloads = new Map<string, Buffer>();

/**
 * Deterministic payload of exactly `size` bytes. Text is valid UTF-8 made of
 * mixed-width characters (a character never straddles the end); binary is
 * pseudo-random bytes, the hard case for deflate.
 */
export function payload(kind: Kind, size: number): Buffer {
  const key = `${kind}:${size}`;
  const cached = payloads.get(key);
  if (cached !== undefined) return cached;
  let state = 0x9e3779b9 ^ size;
  const random = (): number => {
    // xorshift32: cheap and reproducible.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  let bytes: Buffer;
  if (kind === 'binary') {
    bytes = Buffer.alloc(size); // not from the shared pool: starts at offset 0, aligned for the word view
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(size / 4));
    for (let i = 0; i < words.length; i++) words[i] = random();
    for (let i = words.length * 4; i < size; i++) bytes[i] = random() & 0xff;
  } else {
    let block = '';
    for (let i = 0; i < 4099; i++) block += ALPHABET[random() % ALPHABET.length];
    const encoded = Buffer.from(block, 'utf8');
    const repeated = Buffer.alloc(size, 'a');
    for (let offset = 0; offset < size; offset += encoded.length) encoded.copy(repeated, offset, 0, Math.min(encoded.length, size - offset));
    // The last block may end inside a character: replace that partial character with ASCII.
    let start = size - 1;
    while (start > 0 && (repeated[start]! & 0xc0) === 0x80) start--;
    if (size > 0 && start + utf8Length(repeated[start]!) > size) repeated.fill(0x61, start);
    bytes = repeated;
  }
  payloads.set(key, bytes);
  return bytes;
}

function utf8Length(lead: number): number {
  return (
    lead < 0x80 ? 1
    : lead >= 0xf0 ? 4
    : lead >= 0xe0 ? 3
    : 2
  );
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * `count` consecutive pieces of at most ceil(length / count) bytes; short
 * messages give empty pieces, so even a 0-byte message is sent as several
 * frames. Text is cut at byte offsets, across characters: UTF-8 validity is
 * a property of the whole message (RFC 6455 §5.6), not of each fragment.
 */
export function splitPieces(bytes: Uint8Array, count = FRAGMENTS): Buffer[] {
  const step = Math.ceil(bytes.length / count);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(Buffer.from(bytes.subarray(i * step, Math.min((i + 1) * step, bytes.length))));
  return out;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Items in arrival order, taken one at a time with a deadline. A wait that
 * timed out leaves no trace, so the next item goes to the next taker.
 */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((item: T) => void) | null = null;

  push(item: T): void {
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter !== null) waiter(item);
    else this.items.push(item);
  }

  next(what: string): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift()!);
    if (this.waiter !== null) return Promise.reject(new Error(`already waiting for ${what}`));
    let mine: ((item: T) => void) | null = null;
    const arrival = new Promise<T>((resolve) => (mine = this.waiter = resolve));
    return withTimeout(arrival, WAIT_MS, what).finally(() => {
      if (this.waiter === mine) this.waiter = null;
    });
  }
}

/** A message as Sockeye received it, with how it came over the wire. */
export interface Received {
  data: string | Buffer;
  isBinary: boolean;
  /** Data frames the message arrived in. */
  frames: number;
  /** RSV1 of its first frame: set when the peer compressed it (RFC 7692 §6). */
  compressed: boolean;
}

/** Counts frames per message from a connection's `frame` events (emitted before the `message`). */
export class FrameTracker {
  private frames = 0;
  private compressed = false;

  constructor(connection: Connection<unknown>) {
    connection.on('frame', (frame) => {
      if (this.frames === 0) this.compressed = frame.rsv1;
      this.frames++;
    });
  }

  /** The wire facts of the message that just completed; resets for the next one. */
  take(): { frames: number; compressed: boolean } {
    const facts = { frames: this.frames, compressed: this.compressed };
    this.frames = 0;
    this.compressed = false;
    return facts;
  }
}

/** An async queue of the messages a Sockeye connection receives, plus its close. */
export class Inbox {
  private readonly queue = new AsyncQueue<Received>();
  readonly closed: Promise<CloseInfo>;

  constructor(connection: Connection<unknown>) {
    const tracker = new FrameTracker(connection);
    connection.on('message', (data, isBinary) => this.queue.push({ data, isBinary, ...tracker.take() }));
    this.closed = new Promise((resolve) => connection.once('close', resolve));
  }

  next(): Promise<Received> {
    return this.queue.next('a message at the Sockeye client');
  }
}

/** What the server decoded: a digest rather than the data, to keep memory flat. */
export interface ServerRecord {
  path: string;
  isBinary: boolean;
  frames: number;
  compressed: boolean;
  sha: string;
  size: number;
}

export interface ServerClose {
  path: string;
  protocol: string;
  info: CloseInfo;
}

/**
 * A Sockeye server for peers to talk to, on an ephemeral 127.0.0.1 port:
 * - `/echo` echoes each message as it came (text as text, binary as binary);
 * - `/fragment` echoes each message in FRAGMENTS frames (`fragmentSize`);
 * - `/close?code=&reason=` closes as soon as the connection is open.
 * Subprotocols spoken, in order of preference: chat.v2, chat.v1.
 */
export class EchoServer {
  readonly server: WebSocketServer;
  readonly received: ServerRecord[] = [];
  readonly opened: Connection<unknown>[] = [];
  private readonly closes = new AsyncQueue<ServerClose>();
  port = 0;

  constructor(perMessageDeflate: boolean) {
    this.server = new WebSocketServer({ perMessageDeflate, heartbeat: false });
    const protocols = ['chat.v2', 'chat.v1'];
    for (const path of ['/echo', '/fragment']) {
      this.server.route(path, {
        protocols,
        open: (connection) => this.track(connection),
        message: (connection, data, isBinary) => {
          const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
          const facts = this.trackers.get(connection)!.take();
          this.received.push({ path, isBinary, ...facts, sha: sha256(bytes), size: bytes.length });
          const fragmentSize = path === '/fragment' ? Math.max(1, Math.ceil(bytes.length / FRAGMENTS)) : undefined;
          connection.send(data, { binary: isBinary, fragmentSize });
        },
        close: (connection, info) => this.recordClose(path, connection, info),
      });
    }
    this.server.route<{ code: number; reason: string }>('/close', {
      protocols,
      authenticate: (request) => ({ code: Number(request.query.get('code')), reason: request.query.get('reason') ?? '' }),
      open: (connection) => connection.close(connection.context.code, connection.context.reason),
      close: (connection, info) => this.recordClose('/close', connection, info),
    });
  }

  private readonly trackers = new WeakMap<Connection<unknown>, FrameTracker>();

  private track(connection: Connection<unknown>): void {
    this.opened.push(connection);
    this.trackers.set(connection, new FrameTracker(connection));
  }

  private recordClose(path: string, connection: Connection<unknown>, info: CloseInfo): void {
    this.closes.push({ path, protocol: connection.protocol, info });
  }

  async start(): Promise<this> {
    this.port = (await this.server.listen(0, '127.0.0.1')).port;
    return this;
  }

  url(path: string): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** The next connection to end on the server side, in the order they ended. */
  nextClose(): Promise<ServerClose> {
    return this.closes.next('a server-side close');
  }

  /** The last message the server received (the echo of which the peer is waiting for). */
  last(): ServerRecord {
    const record = this.received.at(-1);
    if (record === undefined) throw new Error('the server received nothing');
    return record;
  }

  stop(): Promise<void> {
    return this.server.close({ timeout: 1000 });
  }
}
