import type { ClientHttp2Session } from 'node:http2';
import { Socket as NetSocket, type Socket } from 'node:net';

/**
 * The tests' one way to wait for something that happens by itself: poll a
 * condition until it holds, failing with what was awaited after a bound.
 * Waiting for the event rather than sleeping a fixed time keeps the suite
 * fast on an idle machine and green on a loaded one; the bound only decides
 * how long a broken test takes to say so.
 */
export const DEFAULT_WAIT_MS = 10_000;

export async function until(check: () => boolean | Promise<boolean>, what: string, ms = DEFAULT_WAIT_MS): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Let the event loop turn a few times, so that I/O callbacks and promise
 * reactions already set off have run. For checking that something did not
 * follow a step the test took itself (a manual clock's advance, a close):
 * whatever that step started has had its turn by then.
 */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Resolves when `target` (a socket, or an HTTP/2 session) has closed;
 * rejects past `bound` ms. For a close the code under test has already
 * decided on: the bound only tells "never" from "eventually".
 */
export function closesWithin(target: Socket | ClientHttp2Session, bound: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (target instanceof NetSocket ? target.closed : target.destroyed) {
      resolve();
      return;
    }
    const what = target instanceof NetSocket ? 'socket' : 'HTTP/2 session';
    const timer = setTimeout(() => reject(new Error(`the ${what} was still open after ${bound} ms`)), bound);
    target.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
