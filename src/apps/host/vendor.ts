import { createRequire } from 'node:module';

/**
 * Front-end libraries the pages load, served from node_modules under
 * `/vendor/`: these files and no others (node_modules holds far more than a
 * browser should be able to read). Keys are the paths under `/vendor/`,
 * values the module specifiers Node resolves to the file.
 */
export const VENDOR_FILES: Readonly<Record<string, string>> = {
  'uplot/uPlot.esm.js': 'uplot/dist/uPlot.esm.js',
  'uplot/uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

/** The URL path prefix of the vendored files. */
export const VENDOR_PREFIX = '/vendor/';

/** Vendored files change only with `npm install`: browsers may keep them a day without asking. */
export const VENDOR_CACHE_CONTROL = 'public, max-age=86400';

const require = createRequire(import.meta.url);

/**
 * The absolute path of a whitelisted file, from its path under `/vendor/`;
 * null when it is not on the list or its package is not installed.
 */
export function vendorFile(name: string): string | null {
  if (!Object.hasOwn(VENDOR_FILES, name)) return null;
  try {
    return require.resolve(VENDOR_FILES[name]!);
  } catch {
    return null;
  }
}
