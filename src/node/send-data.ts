import { UsageError } from '../protocol/errors.js';

/** What `send()` and friends take: text, or bytes in any of JavaScript's containers. */
export type SendData = string | Buffer | ArrayBuffer | ArrayBufferView;

/** The bytes of a binary `SendData`, as a view (no copy). */
export function toBytes(data: Exclude<SendData, string>): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new UsageError('WS_ERR_INVALID_ARGUMENT', 'send() takes a string, Buffer, ArrayBuffer or typed array');
}
