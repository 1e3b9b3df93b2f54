import type { Socket } from 'node:net';
import type { Protocol } from '../protocol/protocol.js';

/**
 * The write batch of one connection: the frames its core produces during
 * one event-loop turn leave in a single write at the end of the turn (in
 * `process.nextTick`), the way uWebSockets corks, so a burst of small
 * messages is one system call rather than one each. Small chunks are
 * copied together, large payloads written by reference.
 */

/** Chunks shorter than this are copied together before writing; longer ones are written as they are. */
const COPY_LIMIT = 1024;

/** What the batch reports to the connection that owns it. */
export interface WriteBatchOwner {
  /** Whether to learn when the batch being flushed has left (`batchWritten`). Read once per flush. */
  readonly watchingWrites: boolean;
  /** The operating system accepted a whole batch of `bytes` bytes. */
  batchWritten(bytes: number): void;
  /** A batch was handed to the socket. */
  batchFlushed(): void;
}

export class WriteBatch {
  private readonly socket: Socket;
  private readonly core: Protocol;
  private readonly owner: WriteBatchOwner;
  /** Chunks produced this turn, written by `flush()`; null when there are none. */
  private pending: Uint8Array[] | null = null;
  private pendingBytes = 0;
  private flushScheduled = false;
  /** `end()` came while frames were still on their way: end the socket after them. */
  private endAfterFlush = false;
  /** Bytes handed to the socket so far; with its writableLength, how much the kernel took. */
  private flushedBytes = 0;

  constructor(socket: Socket, core: Protocol, owner: WriteBatchOwner) {
    this.socket = socket;
    this.core = core;
    this.owner = owner;
  }

  /** Bytes in the batch, not yet handed to the socket. */
  get bytes(): number {
    return this.pendingBytes;
  }

  /** Bytes the operating system has taken from the socket so far (for liveness checks). */
  get acceptedBytes(): number {
    return this.flushedBytes - this.socket.writableLength;
  }

  /** Add one frame; the batch leaves at the end of this turn. `payload` is kept by reference until then. */
  add(header: Uint8Array, payload: Uint8Array): void {
    const pending = (this.pending ??= []);
    pending.push(header);
    this.pendingBytes += header.length;
    if (payload.length > 0) {
      pending.push(payload);
      this.pendingBytes += payload.length;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushBatch, this);
    }
  }

  /**
   * Close our side of TCP once everything already queued has been written:
   * what is batched, and what the core still has on its way (frames behind
   * a compression, a close frame among them), or the peer would see the
   * connection end before them (RFC 6455 §7.1.1: TCP closes after the close
   * frame). The caller's close timer bounds the wait. Ending a socket twice
   * makes Node build an error object, which is not free at thousands of
   * connections a second.
   */
  end(): void {
    if (this.flushScheduled || this.core.sendInProgress) this.endAfterFlush = true;
    else if (!this.socket.writableEnded) this.socket.end();
  }

  /** Write everything the core produced this turn in one go. */
  flush(): void {
    this.flushScheduled = false;
    const chunks = this.pending;
    const total = this.pendingBytes;
    this.pending = null;
    this.pendingBytes = 0;
    if (chunks === null || this.socket.destroyed) return;
    const socket = this.socket;
    const owner = this.owner;
    this.flushedBytes += total;
    // Writes complete in order: the last chunk's callback means the whole batch left.
    const written =
      owner.watchingWrites ?
        (error?: Error | null): void => {
          if (error == null) owner.batchWritten(total);
        }
      : undefined;
    const only = chunks.length === 1 ? chunks[0]! : null;
    const pieces = only !== null && (only instanceof Buffer || only.length >= COPY_LIMIT) ? chunks : coalesce(chunks);
    if (pieces.length === 1) {
      socket.write(pieces[0]!, written);
    } else {
      // One vectored write for the batch.
      socket.cork();
      const last = pieces.length - 1;
      for (let i = 0; i < last; i++) socket.write(pieces[i]!);
      socket.write(pieces[last]!, written);
      socket.uncork();
    }
    // A close frame queued behind a compression has not come out yet: end after it (see end()).
    if (this.endAfterFlush && !this.core.sendInProgress) {
      this.endAfterFlush = false;
      if (!socket.writableEnded) socket.end();
    }
    owner.batchFlushed();
  }
}

function flushBatch(batch: WriteBatch): void {
  batch.flush();
}

/**
 * Merge each run of small chunks (frame headers, short messages) into one
 * buffer and keep large payloads by reference: a burst of small frames
 * becomes one buffer, and big payloads are never copied just to be written.
 */
function coalesce(chunks: Uint8Array[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  const count = chunks.length;
  let i = 0;
  while (i < count) {
    if (chunks[i]!.length >= COPY_LIMIT) {
      pieces.push(chunks[i++]!);
      continue;
    }
    let end = i;
    let bytes = 0;
    while (end < count && chunks[end]!.length < COPY_LIMIT) bytes += chunks[end++]!.length;
    if (end - i === 1) {
      pieces.push(writable(chunks[i]!));
    } else if (end - i === 2 && adjacent(chunks[i]!, chunks[i + 1]!)) {
      // A header and payload framed together (prepareFrame): one view, no copy.
      pieces.push(joinedView(chunks[i]!, bytes));
    } else {
      const merged = Buffer.allocUnsafe(bytes);
      let offset = 0;
      for (let k = i; k < end; k++) {
        merged.set(chunks[k]!, offset);
        offset += chunks[k]!.length;
      }
      pieces.push(merged);
    }
    i = end;
  }
  return pieces;
}

/**
 * A small chunk as a Buffer. A stream turns any other Uint8Array into a
 * Buffer over the same memory, and for a small array that V8 keeps on its
 * own heap (a frame header) asking for that memory moves it off the heap
 * first: about 300 ns, where a copy into the allocator's pool costs 60.
 */
function writable(chunk: Uint8Array): Uint8Array {
  if (chunk instanceof Buffer) return chunk;
  const copy = Buffer.allocUnsafe(chunk.length);
  copy.set(chunk);
  return copy;
}

/**
 * The last view made over a prepared frame, by the header it starts with:
 * a fan-out writes the same frame to every subscriber in a row, so one
 * Buffer object serves them all rather than one each. Keeps one small
 * frame alive at most.
 */
let joinedHeader: Uint8Array | null = null;
let joined: Buffer = Buffer.alloc(0);

/** A Buffer over `header` and the `bytes - header.length` bytes after it. */
function joinedView(header: Uint8Array, bytes: number): Buffer {
  if (header !== joinedHeader || joined.length !== bytes) {
    joinedHeader = header;
    joined = Buffer.from(header.buffer, header.byteOffset, bytes);
  }
  return joined;
}

/** `b` starts in the same memory right where `a` ends. */
function adjacent(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}
