import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Memory held by Buffers and ArrayBuffers (`process.memoryUsage().arrayBuffers`),
 * measured after a full garbage collection so that only what is still
 * reachable counts: what a test compares before and after a flood.
 */

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

export function bufferMemory(): number {
  // Two passes: the first may only queue weak callbacks that free external memory.
  collect();
  collect();
  return process.memoryUsage().arrayBuffers;
}

export const MiB = 1024 * 1024;
