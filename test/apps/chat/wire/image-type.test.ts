import { describe, expect, it } from 'vitest';
import { sniffImageType } from '../../../../src/apps/chat/wire/image-type.js';
import { GIF, JPEG, png, WEBP } from '../samples.js';

const bytes = (...values: Array<number | string>): Uint8Array =>
  Uint8Array.from(values.flatMap((value) => (typeof value === 'string' ? [...value].map((char) => char.charCodeAt(0)) : [value])));

describe('sniffImageType', () => {
  it('tells PNG, JPEG, GIF (87a and 89a) and WebP from their first bytes', () => {
    expect(sniffImageType(png(1, 1))).toBe('image/png');
    expect(sniffImageType(JPEG)).toBe('image/jpeg');
    expect(sniffImageType(bytes(0xff, 0xd8, 0xff))).toBe('image/jpeg');
    expect(sniffImageType(GIF)).toBe('image/gif');
    expect(sniffImageType(bytes('GIF87a'))).toBe('image/gif');
    expect(sniffImageType(WEBP)).toBe('image/webp');
    expect(sniffImageType(bytes('RIFF', 0xff, 0xff, 0xff, 0xff, 'WEBP'))).toBe('image/webp');
  });

  it('refuses text, other formats, truncated signatures and near misses', () => {
    for (const sample of [
      bytes(),
      bytes('hello, this is text'),
      bytes('\x89PNG\r\n\x1a'),
      bytes(0x89, 'PNG', 0x0d, 0x0a, 0x1a, 0x00),
      bytes(0xff, 0xd8),
      bytes(0xff, 0xd8, 0xfe),
      bytes('GIF88a'),
      bytes('gif89a'),
      bytes('RIFF', 0, 0, 0, 0, 'WAVE'),
      bytes('RIFF', 0, 0, 0, 0, 'WEB'),
      bytes('BM', 0x36, 0, 0, 0),
      bytes('<svg xmlns="http://www.w3.org/2000/svg"/>'),
      bytes(0x00, 0x00, 0x01, 0x00),
    ]) {
      expect(sniffImageType(sample)).toBeNull();
    }
  });

  it('reads the bytes, not any name: a view into a larger buffer is read from its own start', () => {
    const buffer = Buffer.concat([Buffer.from('junk'), GIF]);
    expect(sniffImageType(buffer.subarray(4))).toBe('image/gif');
    expect(sniffImageType(buffer)).toBeNull();
  });
});
