import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * docs/deploy/sockeye.service, checked the way systemd reads it:
 * `systemd-analyze verify` (Debian's systemd package) must accept it without
 * a single complaint (it only warns about unknown keys, so the test also
 * asserts that it printed nothing), and the hardening the deploy guide
 * promises must be in it.
 */

const UNIT = fileURLToPath(new URL('../../docs/deploy/sockeye.service', import.meta.url));
const ANALYZE = '/usr/bin/systemd-analyze';

function verify(path: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(ANALYZE, ['verify', path], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code =
        error === null ? 0
        : typeof error.code === 'number' ? error.code
        : 1;
      resolve({ code, output: `${stdout}${stderr}`.trim() });
    });
  });
}

/** Settings as systemd would read them: the last assignment of each key. */
function settings(text: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match !== null) result.set(match[1]!, match[2]!);
  }
  return result;
}

describe('docs/deploy/sockeye.service', () => {
  it('passes systemd-analyze verify with no warning at all', async () => {
    if (!existsSync(ANALYZE)) throw new Error(`${ANALYZE} is missing: run scripts/test-deps.sh (installs Debian's systemd)`);
    const { code, output } = await verify(UNIT);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('is a check that can fail: a misspelt key makes verify speak up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sockeye-unit-'));
    try {
      const broken = join(dir, 'sockeye.service');
      writeFileSync(broken, readFileSync(UNIT, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
      const { output } = await verify(broken);
      expect(output).toMatch(/Unknown key 'NoNewPrivilege'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs sockeye serve hardened, restarts on failure and stops with SIGTERM within its timeout', () => {
    const unit = settings(readFileSync(UNIT, 'utf8'));
    expect(unit.get('ExecStart')).toMatch(/^\/usr\/bin\/env sockeye serve /);
    expect(unit.get('KillSignal')).toBe('SIGTERM');
    expect(unit.get('Restart')).toBe('on-failure');
    // sockeye's close timeout is 5 s: systemd must wait longer before SIGKILL.
    expect(Number(unit.get('TimeoutStopSec'))).toBeGreaterThan(5);
    for (const [key, value] of [
      ['DynamicUser', 'yes'],
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
    ] as const) {
      expect(unit.get(key), key).toBe(value);
    }
    // V8 needs writable and executable memory: this setting would kill node at start.
    expect(unit.has('MemoryDenyWriteExecute')).toBe(false);
  });
});
