// `dump` against processes whose Python version it cannot read: versions it
// does not support (a build claiming 3.99 without the 3.13+ debug-offsets
// table, one claiming 3.5) and a garbage version number. Each gives one clear line and a stable code, never a crash.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { dump } from 'pyspy-node';

import { FIXTURES_DIR, killAllChildren, runCli, spawnTracked } from '../helpers/pythons.js';

afterEach(killAllChildren);

const dir = mkdtempSync(path.join(tmpdir(), 'pyspy-fake-python-'));

/** Builds the fake interpreter with the given `Py_Version` value. */
function buildFake(name: string, version: string): string {
  const out = path.join(dir, name);
  execFileSync('gcc', ['-O0', '-rdynamic', `-DPYV=${version}`, '-o', out, path.join(FIXTURES_DIR, 'fake-python/fake_python.c')]);
  return out;
}

async function codeOf(pid: number): Promise<string> {
  try {
    await dump(pid);
  } catch (err) {
    return (err as { code: string }).code;
  }
  throw new Error('dump() resolved for a process it cannot read');
}

function expectOneLine(res: { code: number | null; stderr: string; stdout: string }, pattern: RegExp): void {
  expect(res.code).toBe(1);
  expect(res.stdout).toBe('');
  expect(res.stderr).not.toMatch(/panicked|backtrace|^\s+at /m);
  const lines = res.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe('unsupported and garbage versions', () => {
  let future = '';
  let garbage = '';
  beforeAll(() => {
    future = buildFake('python3.99', '0x036300f0UL');
    garbage = buildFake('python3.x', '0xdeadbeefUL');
  });

  it('a version it does not know names the version (EUNSUPPORTED)', async () => {
    const target = await spawnTracked(future, []);
    expect(await codeOf(target.pid)).toBe('EUNSUPPORTED');
    expectOneLine(await runCli(['dump', '--pid', String(target.pid)]), /3\.99\.0/);
  });

  it('a garbage version is not taken for Python (ENOTPYTHON)', async () => {
    const target = await spawnTracked(garbage, []);
    expect(await codeOf(target.pid)).toBe('ENOTPYTHON');
    expectOneLine(await runCli(['dump', '--pid', String(target.pid)]), /Python version/);
  });

  it('a version older than this release reads (3.5) is refused with its version (EUNSUPPORTED)', async () => {
    const target = await spawnTracked(buildFake('python3.5', '0x030500f0UL'), []);
    expect(await codeOf(target.pid)).toBe('EUNSUPPORTED');
    expectOneLine(await runCli(['dump', '--pid', String(target.pid)]), /3\.5\.0/);
  });
});
