import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * A stand-in for a TCP socket whose far side the test drives by hand:
 * `receive()` plays bytes arriving from the peer, and every write stays
 * pending (counted in `writableLength`, as in a socket whose kernel buffer
 * is full) until `accept()` lets the "kernel" take it. Pausing stops
 * delivery of received bytes exactly like a socket's pause(). Used where a
 * real loopback socket's kernel buffers would make the outcome depend on
 * timing.
 */
export class ManualSocket extends Duplex {
  /** Writes not yet accepted, oldest first. */
  private readonly held: Array<{ bytes: number; done: (error?: Error | null) => void }> = [];
  /** Bytes accepted so far. */
  accepted = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 1;

  constructor() {
    super({ allowHalfOpen: true });
  }

  /** Bytes from the peer, delivered as one read. */
  receive(bytes: Uint8Array): void {
    this.push(Buffer.from(bytes));
  }

  /** The peer closed its side (TCP FIN). */
  receiveEnd(): void {
    this.push(null);
  }

  /**
   * Let the oldest `count` writes complete, in order (by default every write
   * there is, including those the stream hands over as earlier ones finish).
   */
  accept(count = Infinity): void {
    for (let i = 0; i < count && i < 100_000; i++) {
      const write = this.held.shift();
      if (write === undefined) return;
      this.accepted += write.bytes;
      // The stream passes on its next buffered write from inside this call.
      write.done();
    }
  }

  get heldWrites(): number {
    return this.held.length;
  }

  setNoDelay(): this {
    return this;
  }

  override _read(): void {
    // Bytes arrive only through receive().
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.held.push({ bytes: chunk.length, done });
  }

  override _final(done: (error?: Error | null) => void): void {
    done();
  }

  /** Typed as the Socket a Connection adopts; it uses only what this class provides. */
  asSocket(): Socket {
    return this as unknown as Socket;
  }
}
