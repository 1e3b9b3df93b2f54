import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project root, found by walking up from this module to package.json:
 * the same answer whether the code runs compiled from dist/ or as
 * TypeScript from src/ (in tests).
 */
export const PROJECT_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error('cannot find the project root (package.json) above ' + fileURLToPath(import.meta.url));
})();

/** Where an app's static page files live: src/apps/<name>/page. */
export function pageDirOf(name: string): string {
  return join(PROJECT_ROOT, 'src', 'apps', name, 'page');
}

/** The compiled browser modules (src/web/*.ts built by tsc). */
export const WEB_MODULES_DIR = join(PROJECT_ROOT, 'dist', 'src', 'web');
