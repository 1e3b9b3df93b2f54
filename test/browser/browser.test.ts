import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/apps/host/paths.js';

/**
 * The harness's promise that a machine without Chromium never passes the
 * browser tests silently: run a browser test file in a child vitest with the
 * browser path pointing nowhere, and look at how it ends.
 */
describe('browser test harness without Chromium', () => {
  it('fails the run and says to run scripts/test-deps.sh', () => {
    const result = spawnSync(
      process.execPath,
      [join(PROJECT_ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/browser/home.test.ts', '--reporter=verbose'],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, SOCKEYE_CHROMIUM: '/nonexistent/chromium', NO_COLOR: '1', FORCE_COLOR: '0' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status, output).toBe(1);
    expect(output).toContain('BROWSER TESTS CANNOT RUN: no Chromium at /nonexistent/chromium');
    expect(output).toContain('scripts/test-deps.sh');
    expect(output).not.toMatch(/Tests\s+\d+ passed/);
  }, 60_000);
});
