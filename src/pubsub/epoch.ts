/**
 * A new epoch name: 64 random bits in hex. An epoch only has to differ from
 * the topic's previous ones, so that a position from an earlier life of the
 * topic is never taken for one in this life.
 */
export function newEpoch(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(8));
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
