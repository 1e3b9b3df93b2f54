/** A value a hook may give now or later. */
export type Awaitable<T> = T | Promise<T>;

/**
 * Whether a hook's result is to be awaited. Checked by shape, not with
 * `instanceof Promise`, so a promise from another realm or library counts.
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}
