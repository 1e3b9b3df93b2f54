import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WriteBatch, type WriteBatchOwner } from '../../src/node/write-batch.js';
import type { Protocol } from '../../src/protocol/protocol.js';
import { prepareFrame } from '../../src/protocol/protocol.js';

/** What a batch hands its socket: each write's bytes, and whether they were corked together. */
function recordingSocket(): { socket: Socket; writes: Uint8Array[] } {
  const writes: Uint8Array[] = [];
  const socket = {
    destroyed: false,
    writableEnded: false,
    writableLength: 0,
    write: (chunk: Uint8Array) => void writes.push(chunk),
    cork: () => {},
    uncork: () => {},
    end: () => {},
  };
  return { socket: socket as unknown as Socket, writes };
}

const core = { sendInProgress: false } as unknown as Protocol;
const owner: WriteBatchOwner = { watchingWrites: false, batchWritten: () => {}, batchFlushed: () => {} };

describe('prepareFrame', () => {
  it('frames a small payload once, its header and a copy of the payload side by side in one buffer', () => {
    const payload = new TextEncoder().encode('hello');
    const frame = prepareFrame(payload, false);
    expect([...frame.header]).toEqual([0x81, 5]);
    expect([...frame.payload]).toEqual([...payload]);
    expect(frame.payload.buffer).toBe(frame.header.buffer);
    expect(frame.payload.byteOffset).toBe(frame.header.byteOffset + 2);
    expect(frame.size).toBe(7);
    payload[0] = 0x21; // the frame keeps its own copy
    expect(frame.payload[0]).toBe(0x68);
  });

  it('keeps a payload of 1 KiB or more by reference', () => {
    const payload = new Uint8Array(1024).fill(7);
    const frame = prepareFrame(payload, true);
    expect(frame.payload).toBe(payload);
    expect([...frame.header]).toEqual([0x82, 126, 4, 0]);
  });
});

describe('WriteBatch', () => {
  it('writes a prepared frame alone in its turn as one view of its buffer, without copying it', async () => {
    const { socket, writes } = recordingSocket();
    const batch = new WriteBatch(socket, core, owner);
    const frame = prepareFrame(new TextEncoder().encode('hello'), false);
    batch.add(frame.header, frame.payload);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(writes).toHaveLength(1);
    expect(writes[0]!.buffer).toBe(frame.header.buffer);
    expect([...writes[0]!]).toEqual([0x81, 5, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
  });

  it('hands every subscriber of a fan-out the same Buffer for the same prepared frame, and a new one for the next frame', async () => {
    const recorded = [recordingSocket(), recordingSocket(), recordingSocket()];
    const batches = recorded.map(({ socket }) => new WriteBatch(socket, core, owner));
    const first = prepareFrame(new TextEncoder().encode('one'), false);
    for (const batch of batches) batch.add(first.header, first.payload);
    await new Promise((resolve) => process.nextTick(resolve));
    const second = prepareFrame(new TextEncoder().encode('two'), false);
    for (const batch of batches) batch.add(second.header, second.payload);
    await new Promise((resolve) => process.nextTick(resolve));
    const [a, b, c] = recorded.map(({ writes }) => writes);
    expect(a!.map((w) => Buffer.from(w).toString('latin1'))).toEqual(['\x81\x03one', '\x81\x03two']);
    // One object per frame, shared: no view made per subscriber.
    expect(b![0]).toBe(a![0]);
    expect(c![0]).toBe(a![0]);
    expect(b![1]).toBe(a![1]);
    expect(c![1]).toBe(a![1]);
    expect(a![1]).not.toBe(a![0]);
  });

  it('copies a header and payload that are not side by side into one piece, and several frames of a turn together', async () => {
    const { socket, writes } = recordingSocket();
    const batch = new WriteBatch(socket, core, owner);
    batch.add(Uint8Array.of(0x82, 2), Uint8Array.of(1, 2));
    const frame = prepareFrame(Uint8Array.of(3), true);
    batch.add(frame.header, frame.payload);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(writes.map((w) => [...w])).toEqual([[0x82, 2, 1, 2, 0x82, 1, 3]]);
    expect(writes[0]!.buffer).not.toBe(frame.header.buffer);
  });

  it('hands the socket Buffers only: a small header before a large payload, or an empty frame, is copied into one', async () => {
    // A stream would otherwise move such a header off V8's heap to make a Buffer of it, which costs more than the copy.
    const { socket, writes } = recordingSocket();
    const batch = new WriteBatch(socket, core, owner);
    const large = Buffer.alloc(4096, 7);
    batch.add(Uint8Array.of(0x82, 126, 0x10, 0), large);
    batch.add(Uint8Array.of(0x8a, 0), new Uint8Array(0));
    await new Promise((resolve) => process.nextTick(resolve));
    expect(writes.map((w) => Buffer.isBuffer(w))).toEqual([true, true, true]);
    expect(writes.map((w) => w.length)).toEqual([4, 4096, 2]);
    expect(writes[1]).toBe(large);

    batch.add(Uint8Array.of(0x8a, 0), new Uint8Array(0));
    await new Promise((resolve) => process.nextTick(resolve));
    expect(Buffer.isBuffer(writes[3])).toBe(true);
    expect([...writes[3]!]).toEqual([0x8a, 0]);
  });
});
