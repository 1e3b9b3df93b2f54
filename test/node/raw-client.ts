import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { deflateRawSync } from 'node:zlib';

/**
 * A deliberately dumb WebSocket peer for integration tests: a raw TCP socket
 * that writes hand-made bytes and parses what comes back with its own small
 * HTTP head and frame parser, so the tests check the server's exact bytes
 * rather than what another WebSocket implementation makes of them.
 */

/** The sample nonce of RFC 6455 §1.3 and the accept value it must produce. */
export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

const DEFAULT_WAIT_MS = 2000;

export interface UpgradeRequestOptions {
  path?: string;
  method?: string;
  /** Header lines after the request line, replacing the standard set when given. */
  lines?: string[];
  /** Lines added to the standard set. */
  extra?: string[];
  /** Standard header names (case-insensitive) left out. */
  omit?: string[];
  key?: string;
}

/** A complete upgrade request; by default the standard headers of a version 13 handshake. */
export function upgradeRequest(options: UpgradeRequestOptions = {}): string {
  const omit = new Set((options.omit ?? []).map((name) => name.toLowerCase()));
  const standard = [
    `Host: 127.0.0.1`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${options.key ?? SAMPLE_KEY}`,
    'Sec-WebSocket-Version: 13',
  ].filter((line) => !omit.has(line.slice(0, line.indexOf(':')).toLowerCase()));
  const lines = options.lines ?? [...standard, ...(options.extra ?? [])];
  return `${options.method ?? 'GET'} ${options.path ?? '/'} HTTP/1.1\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** true (default): a random key; false: unmasked; a Buffer: that key. */
  mask?: boolean | Buffer;
}

/** One frame's bytes (RFC 6455 §5.2), with the minimal length encoding. */
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : (spec.payload ?? Buffer.alloc(0));
  const key =
    spec.mask === false ? null
    : Buffer.isBuffer(spec.mask) ? spec.mask
    : randomBytes(4);
  const length = payload.length;
  const extended =
    length < 126 ? 0
    : length < 0x10000 ? 2
    : 8;
  const header = Buffer.alloc(2 + extended + (key === null ? 0 : 4));
  header[0] =
    ((spec.fin ?? true) ? 0x80 : 0) |
    (spec.rsv1 === true ? 0x40 : 0) |
    (spec.rsv2 === true ? 0x20 : 0) |
    (spec.rsv3 === true ? 0x10 : 0) |
    (spec.opcode & 0x0f);
  header[1] =
    (key === null ? 0 : 0x80) |
    (extended === 0 ? length
    : extended === 2 ? 126
    : 127);
  if (extended === 2) header.writeUInt16BE(length, 2);
  if (extended === 8) header.writeBigUInt64BE(BigInt(length), 2);
  if (key === null) return Buffer.concat([header, payload]);
  key.copy(header, 2 + extended);
  const masked = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([header, masked]);
}

/** A close frame payload: 2-byte code then the reason's bytes. */
export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const code2 = Buffer.alloc(2);
  code2.writeUInt16BE(code);
  return Buffer.concat([code2, typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason]);
}

/** permessage-deflate payload (RFC 7692 §7.2.1): raw DEFLATE, sync-flushed, 00 00 ff ff removed. */
export function deflateMessage(data: Buffer | string): Buffer {
  const out = deflateRawSync(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, { finishFlush: 2 /* Z_SYNC_FLUSH */ });
  if (!out.subarray(out.length - 4).equals(Buffer.from([0x00, 0x00, 0xff, 0xff]))) {
    throw new Error('a sync-flushed deflate stream should end with 00 00 ff ff');
  }
  return out.subarray(0, out.length - 4);
}

export interface RawFrame {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  /** The frame exactly as it came off the wire. */
  bytes: Buffer;
}

export interface HttpResponse {
  status: number;
  statusLine: string;
  /** Lower-cased names, repeated lines joined with ", ". */
  headers: Map<string, string>;
  /** The head exactly as received, blank line included. */
  head: string;
  body: string;
}

/** Whether `promise` settles within `ms` milliseconds. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return result;
}

/** A close frame's status code and reason; code undefined for an empty payload. */
export function parseClose(frame: RawFrame): { code: number | undefined; reason: string } {
  if (frame.opcode !== OP.close) throw new Error(`expected a close frame, got opcode ${frame.opcode}`);
  if (frame.payload.length < 2) return { code: undefined, reason: '' };
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString('utf8') };
}

export class RawClient {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  private length = 0;
  private peerEnded = false;
  private socketClosed = false;
  private readonly wakers = new Set<() => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
      this.wake();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      this.wake();
    });
    socket.on('close', () => {
      this.socketClosed = true;
      this.wake();
    });
    socket.on('error', () => {
      // ECONNRESET and the like: seen as a close.
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host });
      socket.setNoDelay(true);
      const client = new RawClient(socket);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(client);
      });
      socket.once('error', reject);
    });
  }

  /** Open a connection, send the standard upgrade (plus `options`), and check for the 101. */
  static async upgrade(port: number, options: UpgradeRequestOptions = {}, after?: Buffer): Promise<{ client: RawClient; response: HttpResponse }> {
    const client = await RawClient.open(port);
    const request = Buffer.from(upgradeRequest(options), 'latin1');
    client.write(after === undefined ? request : Buffer.concat([request, after]));
    const response = await client.readHead();
    if (response.status !== 101) {
      client.destroy();
      throw new Error(`expected 101, got ${response.statusLine}`);
    }
    return { client, response };
  }

  /** Bytes received and not yet consumed. */
  get buffered(): number {
    return this.length;
  }

  /** The server sent FIN (or the socket is gone). */
  get ended(): boolean {
    return this.peerEnded || this.socketClosed;
  }

  write(bytes: Buffer | string): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  send(spec: FrameSpec): void {
    this.write(frame(spec));
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Stop reading from the socket: the server's writes back up (TCP backpressure). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Read an HTTP response head (consumed); its body is left in the buffer. */
  async readHead(timeout = DEFAULT_WAIT_MS): Promise<HttpResponse> {
    const end = await this.waitFor(
      () => {
        const at = this.peek(this.length).indexOf('\r\n\r\n');
        return at < 0 ? null : at + 4;
      },
      timeout,
      'an HTTP response head',
    );
    const head = this.take(end).toString('latin1');
    const lines = head.slice(0, -4).split('\r\n');
    const statusLine = lines[0]!;
    const match = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    if (match === null) throw new Error(`malformed status line: ${JSON.stringify(statusLine)}`);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)!}, ${value}` : value);
    }
    return { status: Number(match[1]), statusLine, headers, head, body: '' };
  }

  /** Read a whole refusal: head, then a body of Content-Length bytes. */
  async readResponse(timeout = DEFAULT_WAIT_MS): Promise<HttpResponse> {
    const response = await this.readHead(timeout);
    const size = Number(response.headers.get('content-length') ?? '0');
    await this.waitFor(() => (this.length >= size ? true : null), timeout, `a ${size}-byte body`);
    response.body = this.take(size).toString('utf8');
    return response;
  }

  /** Read the next frame; rejects if none arrives in time or the connection ends first. */
  async readFrame(timeout = DEFAULT_WAIT_MS): Promise<RawFrame> {
    const size = await this.waitFor(() => this.frameSize(), timeout, 'a frame');
    const bytes = this.take(size);
    const b0 = bytes[0]!;
    const b1 = bytes[1]!;
    const code = b1 & 0x7f;
    let offset =
      2 +
      (code === 126 ? 2
      : code === 127 ? 8
      : 0);
    const masked = (b1 & 0x80) !== 0;
    let payload = bytes.subarray(offset + (masked ? 4 : 0));
    if (masked) {
      const key = bytes.subarray(offset, offset + 4);
      payload = Buffer.from(payload.map((byte, i) => byte ^ key[i & 3]!));
      offset += 4;
    }
    return {
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f,
      masked,
      payload,
      bytes,
    };
  }

  /** Read frames until a close frame; everything before it is returned too. */
  async readUntilClose(timeout = DEFAULT_WAIT_MS): Promise<{ before: RawFrame[]; close: RawFrame }> {
    const before: RawFrame[] = [];
    for (let i = 0; i < 10_000; i++) {
      const next = await this.readFrame(timeout);
      if (next.opcode === OP.close) return { before, close: next };
      before.push(next);
    }
    throw new Error('no close frame within 10000 frames');
  }

  /** Resolves once the server has closed its side of the TCP connection. */
  async waitEnd(timeout = DEFAULT_WAIT_MS): Promise<void> {
    await this.waitFor(() => (this.ended ? true : null), timeout, 'the server to close the TCP connection', true);
  }

  /** Resolves once the socket is fully closed (both sides). */
  async waitClosed(timeout = DEFAULT_WAIT_MS): Promise<void> {
    await this.waitFor(() => (this.socketClosed ? true : null), timeout, 'the socket to close', true);
  }

  /** Resolves once `n` unconsumed bytes are buffered. */
  async waitBytes(n: number, timeout = DEFAULT_WAIT_MS): Promise<void> {
    await this.waitFor(() => (this.length >= n ? true : null), timeout, `${n} buffered bytes`, true);
  }

  /** Everything received and not consumed yet, consumed now. */
  drainBuffer(): Buffer {
    return this.take(this.length);
  }

  /** Size of the complete frame at the front of the buffer, or null if it is still incomplete. */
  private frameSize(): number | null {
    if (this.length < 2) return null;
    const head = this.peek(Math.min(this.length, 14));
    const code = head[1]! & 0x7f;
    const masked = (head[1]! & 0x80) !== 0;
    const extended =
      code === 126 ? 2
      : code === 127 ? 8
      : 0;
    const headerSize = 2 + extended + (masked ? 4 : 0);
    if (head.length < headerSize) return null;
    const length =
      code === 126 ? head.readUInt16BE(2)
      : code === 127 ? Number(head.readBigUInt64BE(2))
      : code;
    return this.length >= headerSize + length ? headerSize + length : null;
  }

  /** The first n bytes (n <= length) without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    for (const chunk of this.chunks) {
      if (filled >= n) break;
      filled += chunk.copy(out, filled, 0, Math.min(chunk.length, n - filled));
    }
    return out;
  }

  /** Consume the first n bytes (n <= length), copying only when they span chunks. */
  private take(n: number): Buffer {
    this.length -= n;
    const first = this.chunks[0];
    if (first === undefined || n === 0) return Buffer.alloc(0);
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, count);
      filled += count;
      if (count === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(count);
    }
    return out;
  }

  private wake(): void {
    for (const waker of [...this.wakers]) waker();
  }

  /**
   * Wait until `ready` returns a value. Fails when the time is up, or (unless
   * `afterEnd`) when the server ended the connection before it was ready.
   */
  private waitFor<T>(ready: () => T | null, timeout: number, what: string, afterEnd = false): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const value = ready();
        if (value !== null) {
          done();
          resolve(value);
          return true;
        }
        if (!afterEnd && this.ended) {
          done();
          reject(new Error(`the connection ended while waiting for ${what} (${this.length} bytes left unparsed)`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeout} ms waiting for ${what} (${this.length} bytes buffered)`));
      }, timeout);
      const waker = (): void => {
        check();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(waker);
      };
      this.wakers.add(waker);
      check();
    });
  }
}
