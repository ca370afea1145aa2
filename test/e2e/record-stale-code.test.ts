// Code objects freed and re-created at the same address must not be reported
// under the old object's name: every sampled stack of code_churn.py must be
// internally consistent (f_N runs in genN.py, called from genN.py's module).
// Without validation of the code-object cache, about 10% of stacks were wrong.
// On 3.14+ the cache is vouched for by the interpreter's code-object
// generation instead of byte checks: the 3.15 run covers that path.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, expect, it } from 'vitest';

import { FIXTURES_DIR, killAllChildren, loadMatrix, runCli } from '../helpers/pythons.js';

afterEach(killAllChildren);

const INTERPRETERS = ['debian-3.11', 'debian-3.15'].map((id) => {
  const interp = loadMatrix().find((i) => i.id === id);
  if (!interp) throw new Error(`${id} is missing from the matrix: run test/pythons/install.sh`);
  return interp;
});

it.each(INTERPRETERS.map((i) => [i.id, i] as const))('%s: stacks of short-lived code objects are never mixed up', { timeout: 120_000 }, async (_id, interp) => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'pyspy-churn-')), 'churn.txt');
  // A chroot interpreter sees the script through the chroot's /tmp.
  const dir = mkdtempSync(path.join(interp.root ? path.join(interp.root, 'tmp') : tmpdir(), 'pyspy-churn-'));
  copyFileSync(path.join(FIXTURES_DIR, 'code_churn.py'), path.join(dir, 'code_churn.py'));
  const script = interp.root ? path.join('/tmp', path.basename(dir), 'code_churn.py') : path.join(dir, 'code_churn.py');
  const res = await runCli(['record', '-r', '500', '-f', 'raw', '-o', out, '--', ...interp.argv, script, '3']);
  rmSync(dir, { recursive: true, force: true });
  expect(res.code, res.stderr).toBe(0);
  let checked = 0;
  const bad: string[] = [];
  for (const line of readFileSync(out, 'utf8').trim().split('\n')) {
    const frames = line.slice(0, line.lastIndexOf(' ')).split(';');
    const gens = new Set<string>();
    for (const frame of frames) {
      const m = /^(\S+) \(gen(\d+)\.py/.exec(frame);
      if (!m) continue;
      gens.add(m[2]!);
      if (m[1]!.startsWith('f_') && m[1]!.slice(2) !== m[2]) bad.push(frame);
    }
    if (gens.size > 1) bad.push(line);
    if (gens.size > 0) checked++;
  }
  expect(checked, 'stacks inside generated code were sampled').toBeGreaterThan(100);
  expect(bad).toEqual([]);
});
