import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The dependency direction of ARCHITECTURE.md, checked on the sources:
 * a layer imports only itself and the layers below it, and the sans-I/O core
 * (protocol/) and the browser modules (web/) import no Node module and no
 * package at all, so they run in any JavaScript runtime.
 *
 *   cli/ > apps/ > pubsub/ > node/ > protocol/ > web/
 */

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const LAYERS = ['web', 'protocol', 'node', 'pubsub', 'apps', 'cli'] as const;
type Layer = (typeof LAYERS)[number];

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

function layerOf(path: string): Layer | null {
  const top = relative(SRC, path).split(sep)[0];
  return (LAYERS as readonly string[]).includes(top ?? '') ? (top as Layer) : null;
}

/** Every module specifier of `import ... from`, `export ... from` and `import()` with a literal. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) found.push(match[1]!);
  return found;
}

interface Violation {
  file: string;
  imports: string;
  why: string;
}

function violations(): Violation[] {
  const found: Violation[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    if (from === null) continue; // src/index.ts: the package entry re-exports the layers
    const shown = relative(SRC, file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const to = layerOf(resolve(dirname(file), spec));
        if (to === null) {
          found.push({ file: shown, imports: spec, why: 'outside the layer folders' });
        } else if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) {
          found.push({ file: shown, imports: spec, why: `${from}/ may not import ${to}/, a layer above it` });
        }
      } else if (from === 'protocol' || from === 'web') {
        found.push({ file: shown, imports: spec, why: `${from}/ imports no Node module and no package` });
      }
    }
  }
  return found;
}

describe('layers', () => {
  it('point down only, and protocol/ and web/ import neither Node nor packages', () => {
    expect(violations()).toEqual([]);
  });

  it('is a check that finds imports: every layer above web/ imports something', () => {
    const imported = new Set<Layer>();
    for (const file of sourceFiles(SRC)) {
      const layer = layerOf(file);
      if (layer !== null && specifiers(readFileSync(file, 'utf8')).some((s) => s.startsWith('..'))) imported.add(layer);
    }
    for (const layer of ['node', 'pubsub', 'apps', 'cli'] as const) expect(imported.has(layer), layer).toBe(true);
  });
});
