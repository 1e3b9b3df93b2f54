/**
 * Where the server and the client take their deadline clock and their
 * timers from. Node's own by default; a test passes a clock it advances by
 * hand, so that a heartbeat tick or a handshake deadline happens when the
 * test says so, not after a wall-clock wait that a busy machine stretches.
 * Internal: applications have no reason to replace time.
 */

/** @internal What a timer source returns for a timer: enough to unref and cancel it. */
export interface TimerHandle {
  /** Let the process exit while only this timer is left (Node's `Timeout.unref`). */
  unref(): unknown;
}

/** @internal A clock and the timers that run against it. */
export interface TimerSource {
  /** Milliseconds on a monotonic clock; deadlines are compared with it. */
  now(): number;
  setInterval(callback: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** @internal Node's clock and timers. */
export const nodeTimers: TimerSource = {
  now: () => performance.now(),
  setInterval: (callback, ms) => setInterval(callback, ms),
  // The handles given to these two came from the functions above.
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
