// The default read mode never pauses the target unless it must, yet never
// reports a torn stack: each stack is read while the target runs, checked
// (top frame and every suspended frame's position unchanged), and read again
// (or, as a last resort, read paused) when it changed. call_chain.py changes
// its call depth all the time; every stack it can really have is
// level_0 → level_1 → … → level_k, every level but the last at its `# CALL`
// line. With --nonblocking, 10–17% of the same stacks came out torn here.
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { FIXTURES_DIR, killAllChildren, runCli, supportedInterpreters } from '../helpers/pythons.js';

afterEach(killAllChildren);

const FIXTURE = path.join(FIXTURES_DIR, 'call_chain.py');
const source = readFileSync(FIXTURE, 'utf8').split('\n');
const CALL_LINE = source.findIndex((l) => /^\s+return .*# CALL$/.test(l)) + 1;
/** Line ranges of the two `def level` bodies: the deepest level's, then the others'. */
const defs = source.flatMap((l, i) => (/^\s+def level\(/.test(l) ? [i + 1] : []));

function topLineOk(level: number, line: number, deepest: number): boolean {
  if (line === 0) return true; // an instruction without a location (e.g. implicit return)
  const [deepDef, otherDef] = defs as [number, number];
  return level === deepest ? line >= deepDef && line < otherDef : line >= otherDef && line <= CALL_LINE;
}

describe.each(
  supportedInterpreters()
    .filter((i) => ['debian-3.11', 'debian-3.14'].includes(i.id))
    .map((i) => [i.id, i] as const),
)('%s', (_id, interp) => {
  it('every sampled stack has the shape the program can have', { timeout: 120_000 }, async () => {
    expect(CALL_LINE).toBeGreaterThan(0);
    expect(defs).toHaveLength(2);
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'pyspy-chain-')), 'chain.txt');
    // A chroot's interpreter sees the script through its own /tmp.
    const target = interp.root ? `/tmp/${path.basename(FIXTURE)}` : FIXTURE;
    if (interp.root) copyFileSync(FIXTURE, path.join(interp.root, 'tmp', path.basename(FIXTURE)));
    const res = await runCli(['record', '-r', '500', '-f', 'raw', '-o', out, '--', ...interp.argv, target, '3']);
    expect(res.code, res.stderr).toBe(0);
    const summary = /Samples: (\d+) Errors: (\d+)/.exec(res.stderr);
    expect(summary, res.stderr).not.toBeNull();
    const [samples, errors] = [Number(summary![1]), Number(summary![2])];
    expect(errors / (samples + errors), 'error share').toBeLessThan(0.005);

    const deepest = 12;
    let checked = 0;
    const bad: string[] = [];
    for (const line of readFileSync(out, 'utf8').trim().split('\n')) {
      const cut = line.lastIndexOf(' ');
      const count = Number(line.slice(cut + 1));
      const levels = line
        .slice(0, cut)
        .split(';')
        .flatMap((f) => {
          const m = /^level_(\d+) \(.*?:(\d+)\)$/.exec(f) ?? /^level_(\d+) \(.*?\)()$/.exec(f);
          return m ? [{ level: Number(m[1]), line: Number(m[2] || 0) }] : [];
        });
      if (levels.length === 0) continue;
      checked += count;
      const top = levels.at(-1)!;
      const ok =
        levels.every((l, i) => l.level === i) &&
        levels.slice(0, -1).every((l) => l.line === CALL_LINE) &&
        topLineOk(top.level, top.line, deepest);
      if (!ok) bad.push(line);
    }
    expect(checked, 'samples inside the call chain').toBeGreaterThan(300);
    expect(bad).toEqual([]);
  });
});
