import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageBuffer } from '../../src/protocol/message-buffer.js';
import { concat, patternBytes } from './helpers.js';

describe('MessageBuffer', () => {
  it('is empty at first and take() gives an empty array', () => {
    const buffer = new MessageBuffer(1024);
    expect(buffer.length).toBe(0);
    expect(buffer.take().length).toBe(0);
  });

  it('hands back a single fragment as the same view, without copying', () => {
    const buffer = new MessageBuffer(1024);
    const chunk = Uint8Array.of(1, 2, 3);
    buffer.append(chunk);
    expect(buffer.length).toBe(3);
    const out = buffer.take();
    expect(out).toBe(chunk);
  });

  it('ignores empty fragments', () => {
    const buffer = new MessageBuffer(1024);
    buffer.append(new Uint8Array(0));
    expect(buffer.length).toBe(0);
    buffer.append(Uint8Array.of(9));
    buffer.append(new Uint8Array(0));
    expect(Array.from(buffer.take())).toEqual([9]);
  });

  it('joins several fragments in order', () => {
    const buffer = new MessageBuffer(1024);
    buffer.append(Uint8Array.of(1, 2));
    buffer.append(Uint8Array.of(3));
    buffer.append(Uint8Array.of(4, 5, 6));
    expect(buffer.length).toBe(6);
    expect(Array.from(buffer.take())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('copies fragments once joined, so later changes to the inputs do not leak in', () => {
    const buffer = new MessageBuffer(1024);
    const a = Uint8Array.of(1, 2);
    const b = Uint8Array.of(3, 4);
    buffer.append(a);
    buffer.append(b);
    a.fill(0);
    b.fill(0);
    expect(Array.from(buffer.take())).toEqual([1, 2, 3, 4]);
  });

  it('is empty after take() and the taken array is not reused by the next message', () => {
    const buffer = new MessageBuffer(1024);
    buffer.append(Uint8Array.of(1, 2));
    buffer.append(Uint8Array.of(3));
    const first = buffer.take();
    expect(buffer.length).toBe(0);
    buffer.append(Uint8Array.of(7, 7));
    buffer.append(Uint8Array.of(7));
    const second = buffer.take();
    expect(Array.from(first)).toEqual([1, 2, 3]);
    expect(Array.from(second)).toEqual([7, 7, 7]);
  });

  it('grows past a limit it was given (the limit bounds preallocation, not correctness)', () => {
    const buffer = new MessageBuffer(10);
    const data = patternBytes(5000, 3);
    for (let i = 0; i < data.length; i += 100) buffer.append(data.subarray(i, i + 100));
    expect(Buffer.from(buffer.take()).equals(Buffer.from(data))).toBe(true);
  });

  it('reassembles 65,536 fragments of 64 bytes', () => {
    const buffer = new MessageBuffer(64 * 1024 * 1024);
    const data = patternBytes(4 * 1024 * 1024, 5);
    for (let i = 0; i < data.length; i += 64) buffer.append(data.subarray(i, i + 64));
    expect(buffer.length).toBe(data.length);
    expect(Buffer.from(buffer.take()).equals(Buffer.from(data))).toBe(true);
  });

  it('equals the concatenation of any fragments (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000, size: 'max' }), { maxLength: 20, size: 'max' }),
        fc.integer({ min: 1, max: 100_000 }),
        (chunks, limit) => {
          const buffer = new MessageBuffer(limit);
          const expected = concat(...chunks);
          for (const chunk of chunks) buffer.append(chunk);
          expect(buffer.length).toBe(expected.length);
          expect(Array.from(buffer.take())).toEqual(Array.from(expected));
          expect(buffer.length).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
