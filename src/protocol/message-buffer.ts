import { allocateZeroed } from './allocate.js';

/**
 * Collects the fragments of one message. The first fragment is kept as a
 * view (an unfragmented message is never copied); from the second on, bytes
 * are copied into one buffer that grows by doubling up to `limit`, so each
 * fragment costs a copy of its bytes and nothing else: 65,536 fragments of
 * 64 bytes hold no 65,536 objects.
 */
export class MessageBuffer {
  private first: Uint8Array | null = null;
  private store: Uint8Array | null = null;
  private used = 0;

  constructor(
    private readonly limit: number,
    private readonly allocate: (size: number) => Uint8Array = allocateZeroed,
  ) {}

  get length(): number {
    return this.used;
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.used === 0) {
      this.first = chunk;
      this.used = chunk.length;
      return;
    }
    const needed = this.used + chunk.length;
    if (this.store === null || this.store.length < needed) {
      const capacity = Math.min(Math.max(needed, this.used * 2, 1024), Math.max(this.limit, needed));
      const grown = this.allocate(capacity);
      grown.set(this.store === null ? this.first! : this.store.subarray(0, this.used), 0);
      this.store = grown;
      this.first = null;
    }
    this.store.set(chunk, this.used);
    this.used = needed;
  }

  /** The whole message so far; the buffer is empty afterwards. */
  take(): Uint8Array {
    const out = this.store !== null ? this.store.subarray(0, this.used) : (this.first ?? EMPTY);
    this.first = null;
    this.store = null;
    this.used = 0;
    return out;
  }
}

const EMPTY = new Uint8Array(0);
