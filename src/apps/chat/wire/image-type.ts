/**
 * What kind of image a byte string is, told from its first bytes (its
 * "magic number"), never from a file name or a type the sender claims: a
 * name costs nothing to change. Pure: no I/O.
 *
 * Only the signature is checked, not that the rest of the file decodes; the
 * browsers showing the image do the decoding, and a file that starts like a
 * PNG but is broken merely fails to show.
 */

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

/** The accepted types, in the order people name them. */
export const IMAGE_MIMES: readonly ImageMime[] = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

/** A file name extension for each type, for images sent without a name. */
export const IMAGE_EXTENSIONS: Readonly<Record<ImageMime, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

/** PNG specification §5.2 (ISO/IEC 15948): the 8-byte signature. */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** JPEG (ITU-T T.81, Annex B): the SOI marker FF D8, then the FF that starts the next marker. */
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];
/** GIF 87a and 89a specifications: "GIF" and the version. */
const GIF87A = ascii('GIF87a');
const GIF89A = ascii('GIF89a');
/** RFC 9649 (WebP), its RIFF header: "RIFF", a 4-byte little-endian size, then "WEBP". */
const RIFF = ascii('RIFF');
const WEBP = ascii('WEBP');

/** The image type the bytes start with, or null when they are none of PNG, JPEG, GIF and WebP. */
export function sniffImageType(bytes: Uint8Array): ImageMime | null {
  if (startsWith(bytes, PNG_SIGNATURE)) return 'image/png';
  if (startsWith(bytes, JPEG_SIGNATURE)) return 'image/jpeg';
  if (startsWith(bytes, GIF87A) || startsWith(bytes, GIF89A)) return 'image/gif';
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return 'image/webp';
  return null;
}

function startsWith(bytes: Uint8Array, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  for (let i = 0; i < signature.length; i++) if (bytes[offset + i] !== signature[i]) return false;
  return true;
}

function ascii(text: string): number[] {
  return [...text].map((char) => char.charCodeAt(0));
}
