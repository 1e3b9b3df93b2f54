import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, MessageTooShort } from '../../../../src/apps/canvas/wire/byte-reader.js';

/** The reader both canvas formats share: little-endian fields, colours red first, and a typed error past the end. */

describe('ByteReader', () => {
  it('reads little-endian integers, a red-first colour and a float in order', () => {
    const float = new Uint8Array(new Float64Array([1.5]).buffer);
    const bytes = Uint8Array.from([0xfe, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 0xaa, 0xbb, 0xcc, ...float]);
    const read = new ByteReader(bytes);
    expect(read.u8()).toBe(0xfe);
    expect(read.u16()).toBe(0x1234);
    expect(read.u32()).toBe(0x12345678);
    expect(read.rgb()).toBe(0xaabbcc);
    expect(read.f64()).toBe(1.5);
    expect(read.left).toBe(0);
  });

  it('starts at the offset it is given, and reads a u32 above 2^31 as unsigned', () => {
    const read = new ByteReader(Uint8Array.from([0x99, 0xff, 0xff, 0xff, 0xff]), 1);
    expect(read.u32()).toBe(0xffffffff);
  });

  it('reads inside a view of a larger buffer, not from the start of that buffer', () => {
    const whole = Uint8Array.from([1, 2, 3, 0x10, 0x20, 4]);
    const read = new ByteReader(whole.subarray(3, 5));
    expect(read.u16()).toBe(0x2010);
    expect(() => read.u8()).toThrow(MessageTooShort);
  });

  it('reads points as flat u16 pairs', () => {
    const read = new ByteReader(Uint8Array.from([1, 0, 2, 0, 0xff, 0xff, 0, 1]));
    expect(read.points(2)).toEqual([1, 2, 0xffff, 0x100]);
  });

  it('takes bytes as a view into the message, without copying them', () => {
    const bytes = Uint8Array.from([5, 6, 7, 8]);
    const read = new ByteReader(bytes, 1);
    const taken = read.take(2);
    expect([...taken]).toEqual([6, 7]);
    expect(taken.buffer).toBe(bytes.buffer);
    expect(read.offset).toBe(3);
  });

  it('throws MessageTooShort for every read past the end, and reads nothing then', () => {
    const reads: Array<[string, (read: ByteReader) => unknown, number]> = [
      ['u8', (read) => read.u8(), 1],
      ['u16', (read) => read.u16(), 2],
      ['u32', (read) => read.u32(), 4],
      ['f64', (read) => read.f64(), 8],
      ['rgb', (read) => read.rgb(), 3],
      ['take', (read) => read.take(5), 5],
      ['points', (read) => read.points(2), 8],
    ];
    for (const [name, call, size] of reads) {
      const read = new ByteReader(new Uint8Array(size - 1));
      expect(() => call(read), name).toThrow(MessageTooShort);
      expect(read.offset, name).toBe(0);
    }
  });

  it('reads back any sequence of u16 values written little-endian (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 64 }), (values) => {
        const bytes = new Uint8Array(values.length * 2);
        const view = new DataView(bytes.buffer);
        values.forEach((value, index) => view.setUint16(index * 2, value, true));
        const read = new ByteReader(bytes);
        expect(values.map(() => read.u16())).toEqual(values);
        expect(() => read.u8()).toThrow(MessageTooShort);
      }),
      { numRuns: 100 },
    );
  });
});
