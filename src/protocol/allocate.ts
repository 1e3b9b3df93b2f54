/**
 * The core's default allocator for gathered payloads and fragments: zeroed
 * memory, as any JavaScript runtime gives it. An I/O layer whose buffers
 * are always overwritten whole may pass a faster one (Node's
 * `Buffer.allocUnsafe`) through the reader's and the protocol's options.
 */
export function allocateZeroed(size: number): Uint8Array {
  return new Uint8Array(size);
}
