/**
 * Ids unique across processes without coordination: a random prefix drawn
 * once per source and a counter, both base 36 ("k3x9q1-2s").
 */
export function createIdSource(): () => string {
  const bytes = new Uint8Array(6);
  globalThis.crypto.getRandomValues(bytes);
  const prefix = [...bytes].map((byte) => (byte % 36).toString(36)).join('');
  let counter = 0;
  return () => `${prefix}-${(++counter).toString(36)}`;
}
