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

/**
 * The folder of an app's wire format: src/apps/<name>/wire/ holds the
 * modules that both its server side and its page run (the codec, the
 * envelope, the limits), and the page's logic that reads those shapes and
 * is tested as TypeScript (the dashboard's series); browser-safe and
 * importing only each other. The page loads them compiled, at `/<name>/wire/`.
 */
export const WIRE_FOLDER = 'wire';

/** Where an app's wire modules are compiled to: dist/src/apps/<name>/wire. */
export function wireModulesDirOf(name: string): string {
  return join(PROJECT_ROOT, 'dist', 'src', 'apps', name, WIRE_FOLDER);
}
