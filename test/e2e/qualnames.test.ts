// Qualified names (`co_qualname`) on 3.11+, plain `co_name` before: a
// target spinning under a nested class's method, a classmethod, a
// staticmethod, nested functions, a lambda, a list comprehension (a frame of
// its own before 3.12) and a generator expression
// (test/fixtures/qualnames.py, which writes what the interpreter says about
// its own stack) is dumped and recorded as raw and speedscope on every
// supported interpreter; each output must name the frames exactly as the
// interpreter does (py-spy 0.4.3 prints qualified names whole, `<locals>`
// included, so nothing is shortened).
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { killAllChildren, loadMatrix, runCli, spawnFixture, supportedInterpreters, type Interpreter } from '../helpers/pythons.js';
import { cleanupRecord, outputDir, parseRaw, speedscopeProblems, type SpeedscopeFile } from '../helpers/record.js';

const TIMEOUT = 180_000;

interface QualnamesReport {
  pid: number;
  frames: { name: string; qualname: string | null; filename: string }[];
}

const interpreters = supportedInterpreters(loadMatrix());

afterEach(async () => {
  await killAllChildren();
  await cleanupRecord();
});
afterAll(() => {
  console.log(`qualnames e2e ran on ${interpreters.length} interpreters: ${interpreters.map((i) => i.id).join(', ')}`);
});

function hasQualnames(interp: Interpreter): boolean {
  const [major, minor] = interp.version.split('.').map(Number);
  return major! > 3 || (major === 3 && minor! >= 11);
}

/** Root-first names the interpreter's own stack gives, as pyspy-node must show them. */
function expectedNames(interp: Interpreter, report: QualnamesReport): string[] {
  const names = report.frames.map((f) => (hasQualnames(interp) ? f.qualname! : f.name));
  if (hasQualnames(interp)) {
    // The fixture's own check that the chain is what this test is about.
    expect(names).toEqual(expect.arrayContaining(['Outer.Inner.meth', 'Outer.cm', 'Outer.sm', 'main.<locals>.inner']));
    expect(names.some((n) => n.endsWith('.<locals>.nested.<locals>.<lambda>'))).toBe(true);
    expect(names).toContain('driver.<locals>.<genexpr>');
  } else {
    expect(names).toEqual(expect.arrayContaining(['meth', 'cm', 'sm', 'inner', 'nested', '<lambda>', '<genexpr>']));
  }
  return names.reverse();
}

describe.each(interpreters.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  it('dump, record raw and record speedscope name frames as the interpreter does', { timeout: TIMEOUT }, async () => {
    // Not this process's child, so the recorder pauses it as it would any target.
    const fx = await spawnFixture<QualnamesReport>(interp, 'qualnames.py', [], { via: 'shell' });
    const want = expectedNames(interp, fx.report);

    const dumped = await runCli(['dump', '--pid', String(fx.pid), '--json']);
    expect(dumped.code, dumped.stderr).toBe(0);
    const threads = JSON.parse(dumped.stdout) as { frames: { name: string }[] }[];
    expect(threads).toHaveLength(1);
    expect(threads[0]!.frames.map((f) => f.name).reverse()).toEqual(want);

    const dir = outputDir();
    const raw = path.join(dir, 'profile.txt');
    const rec = await runCli(['record', '--pid', String(fx.pid), '-d', '1', '-r', '50', '-f', 'raw', '-o', raw]);
    expect(rec.code, rec.stderr).toBe(0);
    const stacks = parseRaw(readFileSync(raw, 'utf8'));
    const heaviest = stacks.reduce((a, b) => (b.count > a.count ? b : a));
    expect(heaviest.frames.map((f) => f.name)).toEqual(want);

    const ss = path.join(dir, 'profile.json');
    const rec2 = await runCli(['record', '--pid', String(fx.pid), '-d', '1', '-r', '50', '-f', 'speedscope', '-o', ss]);
    expect(rec2.code, rec2.stderr).toBe(0);
    const file = JSON.parse(readFileSync(ss, 'utf8')) as SpeedscopeFile;
    expect(speedscopeProblems(file)).toEqual([]);
    const { frames } = file.shared;
    const samples = file.profiles[0]!.samples;
    const weights = file.profiles[0]!.weights;
    let best = 0;
    weights.forEach((w, i) => {
      if (w > weights[best]!) best = i;
    });
    expect(samples[best]!.map((i) => frames[i]!.name)).toEqual(want);
    for (const i of samples[best]!) {
      const f = frames[i]!;
      expect(f.file, `${f.name} file`).toBe(fx.report.frames[0]!.filename);
      expect(f.line, `${f.name} line`).toBeGreaterThan(0);
      expect(f.col, `${f.name} col`).toBeNull();
    }
    await fx.kill();
  });
});
