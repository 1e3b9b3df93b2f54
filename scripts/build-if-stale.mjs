// `npm start` and `npm run bench` build first, but only when something the
// build reads changed since the last build: a source under src/, a
// tsconfig, or package.json. The last build is the stamp file dist/.build-stamp.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const stamp = join(root, 'dist', '.build-stamp');

function newest(path) {
  const info = statSync(path);
  if (!info.isDirectory()) return path.endsWith('.ts') || path.endsWith('.json') ? info.mtimeMs : 0;
  let latest = 0;
  for (const name of readdirSync(path)) latest = Math.max(latest, newest(join(path, name)));
  return latest;
}

const inputs = Math.max(
  newest(join(root, 'src')),
  ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((name) => statSync(join(root, name)).mtimeMs),
);
if (existsSync(stamp) && statSync(stamp).mtimeMs >= inputs && existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) process.exit(0);

const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
writeFileSync(stamp, `${new Date().toISOString()}\n`);
