import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCanvasApp } from '../../../src/apps/canvas/index.js';
import { createChatApp } from '../../../src/apps/chat/index.js';
import { createDashboardApp } from '../../../src/apps/dashboard/index.js';
import { PROJECT_ROOT, WIRE_FOLDER, wireModulesDirOf } from '../../../src/apps/host/paths.js';
import { AppServer } from '../../../src/apps/host/server.js';
import { get } from './http-get.js';

/**
 * An app's wire modules (src/apps/<app>/wire/: the codec or envelope its
 * server and its page share) are served compiled at /<app>/wire/, and
 * nothing else of the app's compiled code is.
 */

const servers: AppServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(): Promise<number> {
  const server = new AppServer({ apps: [createCanvasApp(), createChatApp(), createDashboardApp()], logLevel: 'silent' });
  servers.push(server);
  return (await server.listen(0)).port;
}

/** Every module of every app's wire folder, as [app, file name]. */
function wireSources(): Array<[app: string, name: string]> {
  const appsDir = join(PROJECT_ROOT, 'src', 'apps');
  const found: Array<[string, string]> = [];
  for (const app of readdirSync(appsDir)) {
    let names: string[];
    try {
      names = readdirSync(join(appsDir, app, WIRE_FOLDER));
    } catch {
      continue;
    }
    for (const name of names) if (name.endsWith('.ts')) found.push([app, name]);
  }
  return found;
}

describe('wire modules', () => {
  it.each([
    ['canvas', 'codec.js', /export function decodeServerMessage/],
    ['canvas', 'byte-reader.js', /export class ByteReader/],
    ['chat', 'envelope.js', /export function unwrap/],
    ['chat', 'protocol.js', /export const MAX_IMAGE_BYTES/],
    ['chat', 'image-type.js', /export const IMAGE_MIMES/],
    ['dashboard', 'protocol.js', /export const TOTAL_NODE/],
    ['dashboard', 'series.js', /export function clusterSeries/],
  ])('serves %s/wire/%s compiled, as JavaScript', async (app, file, content) => {
    const port = await start();
    const response = await get(port, `/${app}/wire/${file}`);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(response.body).toBe(readFileSync(join(wireModulesDirOf(app), file), 'utf8'));
    expect(response.body).toMatch(content);
  });

  it('still serves the page beside them', async () => {
    const port = await start();
    expect((await get(port, '/canvas/canvas.js')).status).toBe(200);
    expect((await get(port, '/chat/chat.js')).status).toBe(200);
    expect((await get(port, '/dashboard/dashboard.js')).status).toBe(200);
  });

  it.each([
    '/canvas/wire/nope.js',
    '/canvas/wire/',
    // The app's server side, compiled one folder up, is not reachable through /wire/.
    '/canvas/wire/..%2findex.js',
    '/canvas/wire/%2e%2e%2findex.js',
    '/canvas/wire/..%2f..%2f..%2f..%2f..%2fpackage.json',
    '/chat/wire/..%2fhistory.js',
    '/dashboard/wire/..%2fsample-window.js',
    // One app's wire folder does not lead to another's.
    '/chat/wire/..%2f..%2fcanvas%2fwire%2fcodec.js',
  ])('answers 404 for %s', async (path) => {
    const port = await start();
    expect((await get(port, path)).status).toBe(404);
  });

  it('finds wire modules to check', () => {
    expect(wireSources().map(([app, name]) => `${app}/${name}`)).toEqual(
      expect.arrayContaining([
        'canvas/codec.ts',
        'canvas/byte-reader.ts',
        'chat/envelope.ts',
        'chat/protocol.ts',
        'chat/image-type.ts',
        'dashboard/protocol.ts',
        'dashboard/series.ts',
      ]),
    );
  });

  it('import only modules of their own folder, so that a page can load them from /<app>/wire/', () => {
    const outside: string[] = [];
    for (const [app, name] of wireSources()) {
      const file = join(PROJECT_ROOT, 'src', 'apps', app, WIRE_FOLDER, name);
      for (const match of readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) {
        if (!/^\.\/[^/]+\.js$/.test(match[1]!)) outside.push(`${relative(PROJECT_ROOT, file)} imports ${match[1]!}`);
      }
    }
    expect(outside).toEqual([]);
  });
});
