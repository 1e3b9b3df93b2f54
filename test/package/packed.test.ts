import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Program } from 'typescript';
import { BROWSER_COMPILER_OPTIONS, BROWSER_CONSUMER, COMMONJS_CONSUMER, NODE_COMPILER_OPTIONS, NODE_CONSUMER } from './consumers.js';
import { cleanEnv, packAndInstall, REPO_MODULES, REPO_ROOT, run, type Installed } from './packed-install.js';
import { PUBLIC_NAMES, PUBLIC_TYPES } from './public-names.js';
import { compilerOptions, createProgram, declaredNames, problems, resolveEntries, unnameableTypes } from './typescript-program.js';

/**
 * The package as users meet it: `npm pack`, `npm install` of the tarball
 * into a scratch project, then imports, require(), a TypeScript consumer and
 * `sockeye serve` from what was installed. See packed-install.ts for how the
 * package is built and installed without the network.
 */

const ENTRY_POINTS = Object.keys(PUBLIC_NAMES);
const APPS_WITH_PAGES = ['home', 'chat', 'clock', 'dashboard', 'canvas'];
/**
 * The apps' wire modules the pages import (src/apps/<app>/wire/, shared with
 * the server), as served: they ship compiled in dist/src/apps/<app>/wire/.
 */
const WIRE_MODULES = ['/canvas/wire/codec.js', '/chat/wire/envelope.js', '/dashboard/wire/protocol.js', '/dashboard/wire/series.js'];

let installed: Installed;

beforeAll(async () => {
  installed = await packAndInstall();
}, 240_000);

afterAll(() => {
  if (installed !== undefined) rmSync(installed.root, { recursive: true, force: true });
});

/**
 * One TypeScript program for the Node consumers and every entry point's
 * declarations, made once (it is the slow part) and shared by the tests
 * that read it.
 */
let nodeProgram: { program: Program; entryFiles: Map<string, string> } | undefined;
function nodeConsumers(): { program: Program; entryFiles: Map<string, string> } {
  if (nodeProgram !== undefined) return nodeProgram;
  writeFileSync(join(installed.project, 'consumer.ts'), NODE_CONSUMER);
  writeFileSync(join(installed.project, 'consumer-cjs.cts'), COMMONJS_CONSUMER);
  const options = compilerOptions(NODE_COMPILER_OPTIONS(join(REPO_MODULES, '@types')), installed.project);
  const entryFiles = resolveEntries(installed.project, ENTRY_POINTS, options);
  const program = createProgram(installed.project, ['consumer.ts', 'consumer-cjs.cts', ...entryFiles.values()], options);
  nodeProgram = { program, entryFiles };
  return nodeProgram;
}

/** Run a script file in the scratch project with the Node that runs the tests. */
async function node(file: string, text: string, args: readonly string[] = []): Promise<{ stdout: string; stderr: string }> {
  writeFileSync(join(installed.project, file), text);
  return run(process.execPath, [file, ...args], installed.project, 30_000);
}

/** `Object.keys` of every entry point, sorted, loaded with import() or require(). */
async function exportedNames(how: 'import' | 'require'): Promise<{ names: Record<string, string[]>; stderr: string }> {
  const script =
    how === 'import' ?
      `const names = {};
for (const entry of JSON.parse(process.argv[2])) names[entry] = Object.keys(await import(entry)).sort();
console.log(JSON.stringify(names));`
    : `const names = {};
for (const entry of JSON.parse(process.argv[2])) names[entry] = Object.keys(require(entry)).sort();
console.log(JSON.stringify(names));`;
  const { stdout, stderr } = await node(how === 'import' ? 'list-esm.mjs' : 'list-cjs.cjs', script, [JSON.stringify(ENTRY_POINTS)]);
  return { names: JSON.parse(stdout) as Record<string, string[]>, stderr };
}

/** The names a README code block takes from each of our entry points (`import { a, type B }` and `const { a } = require()`). */
function namesImportedByReadme(): Array<{ entry: string; name: string }> {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const found: Array<{ entry: string; name: string }> = [];
  const statements = [
    ...readme.matchAll(/^import\s+(?!type\b)\{([^}]*)\}\s+from\s+'(sockeye[^']*)'/gm),
    ...readme.matchAll(/^const\s+\{([^}]*)\}\s*=\s*require\('(sockeye[^']*)'\)/gm),
  ];
  for (const [, list, entry] of statements) {
    for (const item of list!.split(',')) {
      const name = item
        .trim()
        .split(/\s+as\s+|:\s*/)[0]!
        .trim();
      if (name === '' || name.startsWith('type ')) continue;
      found.push({ entry: entry!, name });
    }
  }
  return found;
}

describe('the packed package', () => {
  it('holds the built modules, their declarations and every application page, and no tests or source maps', () => {
    const files = installed.packedFiles;
    for (const entry of ['index', 'protocol/index', 'pubsub/index', 'web/reconnecting-websocket', 'web/page-socket', 'cli/main']) {
      expect(files).toContain(`dist/src/${entry}.js`);
      if (entry !== 'cli/main') expect(files).toContain(`dist/src/${entry}.d.ts`);
    }
    for (const app of APPS_WITH_PAGES) expect(files).toContain(`src/apps/${app}/page/index.html`);
    for (const path of WIRE_MODULES) expect(files).toContain(`dist/src/apps${path}`);
    // The wire formats the README points to.
    expect(files).toEqual(expect.arrayContaining(['src/apps/chat/PROTOCOL.md', 'src/apps/canvas/PROTOCOL.md']));
    expect(files.filter((file) => file.endsWith('.map') || file.startsWith('test/') || file.startsWith('dist/test/'))).toEqual([]);
    // Page files and protocol notes yes, TypeScript sources no.
    expect(files.filter((file) => file.startsWith('src/') && !/^src\/apps\/[^/]+\/(page\/|PROTOCOL\.md$)/.test(file))).toEqual([]);
  });

  it('says it needs Node >= 20.19 (require() of ES modules), which the Node running this test is', () => {
    const manifest = JSON.parse(readFileSync(join(installed.packageDir, 'package.json'), 'utf8')) as {
      engines: { node: string };
      dependencies: Record<string, string>;
    };
    expect(manifest.engines.node).toBe('>=20.19');
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    expect(major > 20 || (major === 20 && minor >= 19)).toBe(true);
    // The dashboard page loads uPlot from the installed package's node_modules.
    expect(Object.keys(manifest.dependencies)).toContain('uplot');
  });

  it('exports exactly the pinned names from every entry point (ES modules)', async () => {
    const { names } = await exportedNames('import');
    for (const entry of ENTRY_POINTS) {
      expect(names[entry], `${entry}'s exports changed: if on purpose, update test/package/public-names.ts`).toEqual(PUBLIC_NAMES[entry]);
    }
    for (const entry of ENTRY_POINTS) expect(names[entry]!.length).toBeGreaterThan(0);
  });

  it('declares the same names in its types, and exactly the pinned type-only names', () => {
    const { program, entryFiles } = nodeConsumers();
    const declared = declaredNames(program, entryFiles);
    for (const entry of ENTRY_POINTS) {
      expect(declared[entry]!.values, `${entry}'s declarations export other values than its JavaScript`).toEqual(PUBLIC_NAMES[entry]);
      expect(declared[entry]!.types, `${entry}'s exported types changed: if on purpose, update test/package/public-names.ts`).toEqual(
        PUBLIC_TYPES[entry],
      );
    }
  }, 60_000);

  it('exports every type its public declarations mention, so users can name what they are handed', () => {
    const { program, entryFiles } = nodeConsumers();
    expect(unnameableTypes(program, entryFiles, installed.packageDir), 'export these from an entry point (and pin them)').toEqual([]);
  });

  it('has every name the README imports, from the entry point it names', () => {
    const imported = namesImportedByReadme();
    expect([...new Set(imported.map(({ entry }) => entry))]).toEqual(expect.arrayContaining(['sockeye', 'sockeye/pubsub']));
    for (const { entry, name } of imported) {
      expect(PUBLIC_NAMES[entry], `README imports from ${entry}, which is no entry point`).toBeDefined();
      expect(PUBLIC_NAMES[entry], `README imports ${name} from ${entry}`).toContain(name);
    }
  });

  it('keeps everything else private: deep imports are refused by the exports map', async () => {
    const script = `try { await import('sockeye/dist/src/node/connection.js'); console.log('imported'); } catch (error) { console.log(error.code); }`;
    const { stdout } = await node('deep-import.mjs', script);
    expect(stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('loads through require() (CommonJS) with the same names as through import', async () => {
    const { names } = await exportedNames('require');
    for (const entry of ENTRY_POINTS) expect(names[entry], entry).toEqual(PUBLIC_NAMES[entry]);
  });

  it('type-checks strict TypeScript consumers (ESM and CommonJS) that cannot reach the internals of Connection or Protocol', () => {
    // Internals are gone from the declarations, not only hidden behind a type.
    const declarations = readFileSync(join(installed.packageDir, 'dist/src/node/connection.d.ts'), 'utf8');
    const classBody = declarations.slice(declarations.indexOf('declare class Connection'));
    const members = [...classBody.slice(0, classBody.indexOf('\n}')).matchAll(/^\s+(?:readonly\s+)?(?:get\s+)?([A-Za-z]\w*)\??\s*[(:<;]/gm)].map(
      (match) => match[1],
    );
    expect(members).toEqual(expect.arrayContaining(['send', 'close', 'ping', 'bufferedAmount', 'context']));
    for (const member of ['writeFrame', 'flush', 'serverData', 'event', 'backlogDrained', 'heartbeat', 'drop', 'receiveInitial']) {
      expect(members).not.toContain(member);
    }
    expect(problems(nodeConsumers().program, installed.project)).toEqual([]);
  }, 60_000);

  it('type-checks a browser script that uses the web modules against the DOM, as a bundler resolves them', () => {
    writeFileSync(join(installed.project, 'browser.ts'), BROWSER_CONSUMER);
    const program = createProgram(installed.project, ['browser.ts'], compilerOptions(BROWSER_COMPILER_OPTIONS, installed.project));
    expect(program.getSourceFiles().some((file) => file.fileName.includes('@types/node'))).toBe(false);
    expect(problems(program, installed.project)).toEqual([]);
  }, 60_000);

  describe('sockeye serve, installed', () => {
    let child: ChildProcess | undefined;
    let origin = '';

    beforeAll(async () => {
      const bin = join(installed.project, 'node_modules', '.bin', 'sockeye');
      const started = spawn(bin, ['serve', '--port', '0', '--log-level', 'silent'], {
        cwd: installed.project,
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = started;
      let out = '';
      let err = '';
      started.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
      origin = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" line within 20 s\n--- stdout:\n${out}\n--- stderr:\n${err}`)), 20_000);
        started.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          const match = /listening on (http:\/\/[^/\s]+)\//.exec(out);
          if (match !== null) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        });
        started.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`sockeye serve exited (${code})\n--- stdout:\n${out}\n--- stderr:\n${err}`));
        });
      });
    }, 30_000);

    afterAll(async () => {
      const running = child;
      if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }, 20_000);

    it('serves every application page and everything the pages load', async () => {
      // Follow the pages' src/href attributes and their scripts' imports, on this server only.
      const queue = APPS_WITH_PAGES.map((app) => new URL(app === 'home' ? '/' : `/${app}/`, origin).href);
      const seen = new Set<string>(queue);
      const failed: string[] = [];
      const scripts: string[] = [];
      for (let fetched = 0; queue.length > 0; fetched++) {
        expect(fetched, 'more than 200 files reachable from the pages').toBeLessThan(200);
        const url = queue.shift()!;
        const response = await fetch(url);
        const body = await response.text();
        if (response.status !== 200) {
          failed.push(`${url}: ${response.status}`);
          continue;
        }
        const type = response.headers.get('content-type') ?? '';
        const references =
          type.startsWith('text/html') ? [...body.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
          : type.startsWith('text/javascript') ? [...body.matchAll(/\b(?:from|import)\s*'([^']+)'/g)].map((match) => match[1]!)
          : [];
        if (type.startsWith('text/javascript')) scripts.push(new URL(url).pathname);
        for (const reference of references) {
          const target = new URL(reference, url);
          if (target.origin !== origin || target.pathname.endsWith('/ws')) continue;
          target.hash = '';
          if (!seen.has(target.href)) {
            seen.add(target.href);
            queue.push(target.href);
          }
        }
      }
      expect(failed).toEqual([]);
      // What the pages were seen to load, so the crawl above cannot pass by finding nothing.
      expect(scripts).toEqual(
        expect.arrayContaining([
          '/web/page-socket.js',
          '/web/reconnecting-websocket.js',
          '/vendor/uplot/uPlot.esm.js',
          '/chat/chat.js',
          ...WIRE_MODULES,
        ]),
      );
    }, 60_000);

    it("serves the browser modules and the apps' wire modules as installed, and the vendored uPlot files", async () => {
      const module = await fetch(new URL('/web/reconnecting-websocket.js', origin));
      expect(module.status).toBe(200);
      expect(await module.text()).toBe(readFileSync(join(installed.packageDir, 'dist/src/web/reconnecting-websocket.js'), 'utf8'));
      // The wire modules too: the installed package's own compiled files, not a copy from elsewhere.
      for (const path of WIRE_MODULES) {
        const response = await fetch(new URL(path, origin));
        expect(response.status, path).toBe(200);
        expect(response.headers.get('content-type'), path).toBe('text/javascript; charset=utf-8');
        expect(await response.text(), path).toBe(readFileSync(join(installed.packageDir, 'dist/src/apps', path), 'utf8'));
      }
      for (const file of ['/vendor/uplot/uPlot.esm.js', '/vendor/uplot/uPlot.min.css']) {
        const response = await fetch(new URL(file, origin));
        await response.arrayBuffer();
        expect(response.status, file).toBe(200);
      }
    });

    it('echoes through the installed client on /echo/ws', async () => {
      const script = `import { connect } from 'sockeye';
const client = await connect(process.argv[2]);
const reply = new Promise((resolve) => client.once('message', resolve));
client.send('hello from the installed package');
console.log(await reply);
client.close(1000);`;
      const { stdout } = await node('echo.mjs', script, [new URL('/echo/ws', origin.replace(/^http/, 'ws')).href]);
      expect(stdout.trim()).toBe('hello from the installed package');
    });
  });
});
