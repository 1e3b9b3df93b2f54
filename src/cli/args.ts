/** Argument helpers shared by the commands: numbers and sizes with clear errors. */

export class UsageFailure extends Error {
  override readonly name = 'UsageFailure';
}

export function parsePort(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageFailure(`invalid port: ${value}`);
  return port;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** "65536", "64KiB", "64MiB", "1g": binary units, case-insensitive. */
export function parseSize(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const match = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match === null ? undefined : SIZE_UNITS[match[2]!.toLowerCase()];
  if (match === null || unit === undefined) throw new UsageFailure(`invalid ${what}: ${value} (use bytes, or a unit like 64KiB or 16MiB)`);
  const size = Number(match[1]) * unit;
  if (!Number.isSafeInteger(size) || size <= 0) throw new UsageFailure(`invalid ${what}: ${value}`);
  return size;
}

/** "2", "0.5": a non-negative number of seconds, returned in milliseconds. */
export function parseSeconds(value: string | undefined, fallbackMs: number, what: string): number {
  if (value === undefined) return fallbackMs;
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(value.trim()) || !Number.isFinite(seconds)) {
    throw new UsageFailure(`invalid ${what}: ${value} (use seconds, e.g. 2 or 0.5)`);
  }
  return Math.round(seconds * 1000);
}
