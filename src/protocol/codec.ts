/**
 * The compression codec the core drives for permessage-deflate (RFC 7692).
 * The core decides *what* to compress and decompress and in which order; the
 * codec only runs DEFLATE. The Node layer supplies one built on node:zlib;
 * another runtime can supply its own. Calls are asynchronous and the core
 * never has more than one call of each direction outstanding, so a codec may
 * keep a single zlib stream per direction.
 */
export interface CompressionCodec {
  /**
   * Compress one whole message (or the part of it being sent now).
   * With `fin`, the output ends the message: the trailing 00 00 ff ff of the
   * sync flush is removed (RFC 7692 §7.2.1) and, without context takeover,
   * the compressor is reset.
   */
  compress(data: Uint8Array, fin: boolean, done: (error: Error | null, output: Uint8Array | null) => void): void;

  /**
   * Decompress one frame's payload. With `fin`, 00 00 ff ff is appended first
   * (RFC 7692 §7.2.2) and, without context takeover, the decompressor is reset
   * after the message. The codec stops and reports `tooBig` as soon as the
   * output would exceed `limit` bytes, without inflating the rest.
   */
  decompress(data: Uint8Array, fin: boolean, limit: number, done: (error: Error | null, output: Uint8Array[] | null, tooBig: boolean) => void): void;

  /** Release the zlib state; later calls report an error. */
  close(): void;
}
