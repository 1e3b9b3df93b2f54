import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../apps/host/paths.js';

/** The package's version, as package.json gives it (the one file that says it). */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof manifest.version === 'string' ? manifest.version : 'unknown';
}

/** What `sockeye --version` prints: the version, then the runtime. */
export function versionText(): string {
  return `sockeye ${packageVersion()} (node ${process.versions.node})\n`;
}
