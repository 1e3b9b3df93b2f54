import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package as a user gets it: the working tree's sources built and packed
 * by `npm pack` (the package's own prepack/prepare scripts), the tarball
 * installed by `npm install` into a scratch project. Everything happens in a
 * temporary directory: the repository's dist/ is neither read nor written,
 * so a stale build cannot make this pass and other tests reading dist/ are
 * not disturbed.
 *
 * No network: the runtime dependencies (and theirs) are packed from the
 * repository's node_modules into tarballs of their own and installed by path
 * with `--offline` and an empty cache, so npm has nothing to fetch and a
 * dependency the package forgot to declare is simply missing.
 */

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const REPO_MODULES = join(REPO_ROOT, 'node_modules');

/** What the package is built from: its manifest, compiler settings, README and sources. */
const SOURCES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src'];

export interface Installed {
  /** The temporary directory holding everything; remove it when done. */
  root: string;
  /** The scratch project (a package.json with `"type": "module"`, and node_modules). */
  project: string;
  /** node_modules/sockeye inside the scratch project. */
  packageDir: string;
  /** Paths inside the packed tarball, as `npm pack` listed them (`package/` prefix removed). */
  packedFiles: string[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * npm run from a script (`npm test`) passes its configuration to children
 * as npm_* variables (the prefix among them); a nested npm must not see the
 * repository's, so children get the environment without them.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return { ...env, ...extra };
}

/** Run a program to completion (bounded by `timeoutMs`); rejects with its output when it fails. */
export function run(file: string, args: readonly string[], cwd: string, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env: cleanEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`${file} ${args.join(' ')} failed in ${cwd}: ${error.message}\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/** npm, told to stay off the network (nothing here needs it) and to keep its notices to itself. */
function npm(args: readonly string[], cwd: string, cache: string, timeoutMs?: number): Promise<RunResult> {
  return run('npm', [...args, '--offline', '--cache', cache, '--no-update-notifier', '--loglevel=error'], cwd, timeoutMs);
}

/** Node's lookup: `name` in the nearest node_modules at or above `fromDir`. */
function locate(name: string, fromDir: string): string | null {
  let dir = fromDir;
  for (let depth = 0; depth < 64; depth++) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
  return null;
}

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/**
 * The folders, in the repository's node_modules, of every package the
 * manifest needs at run time, transitively: dependencies, present optional
 * dependencies, and required peers (npm installs those too).
 */
export function runtimeDependencyDirs(manifest: Manifest, fromDir: string): string[] {
  const found = new Map<string, string>();
  const queue: Array<{ manifest: Manifest; dir: string }> = [{ manifest, dir: fromDir }];
  for (let steps = 0; queue.length > 0; steps++) {
    if (steps > 10_000) throw new Error('dependency walk did not end');
    const { manifest: current, dir } = queue.shift()!;
    const wanted: Array<[string, boolean]> = [
      ...Object.keys(current.dependencies ?? {}).map((name): [string, boolean] => [name, true]),
      ...Object.keys(current.optionalDependencies ?? {}).map((name): [string, boolean] => [name, false]),
      ...Object.keys(current.peerDependencies ?? {}).map((name): [string, boolean] => [
        name,
        current.peerDependenciesMeta?.[name]?.optional !== true,
      ]),
    ];
    for (const [name, required] of wanted) {
      const at = locate(name, dir);
      if (at === null) {
        if (required) throw new Error(`${current.name} needs ${name}, which is not in ${REPO_MODULES}: run npm install`);
        continue;
      }
      const seen = found.get(name);
      if (seen === undefined) {
        found.set(name, at);
        queue.push({ manifest: readManifest(at), dir: at });
      } else if (seen !== at) {
        throw new Error(`two copies of ${name} (${seen}, ${at}): this test installs one of each`);
      }
    }
  }
  return [...found.values()];
}

/** Build, pack and install the package; see the module comment. */
export async function packAndInstall(): Promise<Installed> {
  const root = mkdtempSync(join(tmpdir(), 'sockeye-packed-'));
  try {
    return await packAndInstallIn(root);
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
}

async function packAndInstallIn(root: string): Promise<Installed> {
  const source = join(root, 'source');
  const tarballs = join(root, 'tarballs');
  const project = join(root, 'project');
  const cache = join(root, 'npm-cache');
  for (const dir of [source, tarballs, project]) mkdirSync(dir);

  for (const entry of SOURCES) cpSync(join(REPO_ROOT, entry), join(source, entry), { recursive: true });
  // The build needs the compiler and @types/node: the repository's, not a second install.
  symlinkSync(REPO_MODULES, join(source, 'node_modules'), 'dir');

  const packed = await npm(['pack', '--json', '--pack-destination', tarballs], source, cache, 120_000);
  // Lifecycle scripts may print before the JSON; the JSON is the last thing printed.
  const start = packed.stdout.startsWith('[') ? 0 : packed.stdout.indexOf('\n[') + 1;
  const listing = JSON.parse(packed.stdout.slice(start)) as Array<{ files: Array<{ path: string }> }>;
  const packedFiles = listing[0]!.files.map((file) => file.path).sort();

  const dependencyDirs = runtimeDependencyDirs(readManifest(source), REPO_ROOT);
  if (dependencyDirs.length > 0) {
    await npm(['pack', ...dependencyDirs, '--ignore-scripts', '--pack-destination', tarballs], root, cache);
  }

  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }, null, 2));
  const files = readdirSync(tarballs)
    .filter((name) => name.endsWith('.tgz'))
    .map((name) => join(tarballs, name));
  await npm(['install', ...files, '--no-audit', '--no-fund', '--no-package-lock', '--ignore-scripts'], project, cache);
  return { root, project, packageDir: join(project, 'node_modules', 'sockeye'), packedFiles };
}
