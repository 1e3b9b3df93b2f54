import { deflateSync } from 'node:zlib';

/**
 * Test material for the chat's images: small sample files built from bytes,
 * and the binary envelope of PROTOCOL.md written and read independently of
 * the server's own code, so the tests pin the documented format.
 */

/** A real, decodable PNG of `width` x `height` pixels, all of one RGBA colour. */
export function png(width: number, height: number, rgba: readonly [number, number, number, number] = [200, 40, 40, 255]): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  // Bit depth 8, colour type 6 (RGBA), deflate, adaptive filtering, no interlace.
  header.set([8, 6, 0, 0, 0], 8);
  // Each scanline: filter type 0, then the pixels.
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => rgba).flat())]);
  const pixels = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(pixels)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** CRC-32 (ISO 3309), as PNG chunks carry it. */
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A 1x1 GIF89a: screen descriptor, a two-colour table, one image, LZW data, trailer. */
export const GIF = Buffer.concat([
  Buffer.from('GIF89a', 'latin1'),
  Buffer.from([0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00]),
  Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff, 0xff]),
  Buffer.from([0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]),
  Buffer.from([0x02, 0x02, 0x44, 0x01, 0x00]),
  Buffer.from([0x3b]),
]);

/** The start of a JFIF file (SOI, APP0 "JFIF") and an end marker: enough for the signature. */
export const JPEG = Buffer.concat([
  Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]),
  Buffer.from('JFIF\0', 'latin1'),
  Buffer.from([0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xd9]),
]);

/** A RIFF container of form type WEBP with one (empty) VP8L chunk: enough for the signature. */
export const WEBP = (() => {
  const chunk = Buffer.concat([Buffer.from('VP8L', 'latin1'), Buffer.from([0, 0, 0, 0])]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(4 + chunk.length);
  return Buffer.concat([Buffer.from('RIFF', 'latin1'), size, Buffer.from('WEBP', 'latin1'), chunk]);
})();

/** A client's binary message: 4-byte big-endian header length, the JSON header, the bytes. */
export function envelope(header: unknown, bytes: Uint8Array): Buffer {
  const head = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(head.length);
  return Buffer.concat([length, head, bytes]);
}

/** Read a binary message of the server: its JSON header and the bytes after it. */
export function readEnvelope(message: Buffer): { header: Record<string, unknown>; bytes: Buffer } {
  const length = message.readUInt32BE(0);
  return { header: JSON.parse(message.subarray(4, 4 + length).toString('utf8')) as Record<string, unknown>, bytes: message.subarray(4 + length) };
}
