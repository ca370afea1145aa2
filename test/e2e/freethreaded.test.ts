// Free-threaded CPython 3.13t (built once per machine by scripts/freethreaded.mjs,
// which setup runs): dump, record and top on a target whose threads run Python
// truly in parallel, and on the same build with the GIL switched back on
// (PYTHON_GIL=1). The dump fixture reports its own stacks from
// sys._current_frames(); the dump must match them frame for frame.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  FIXTURES_DIR,
  freeThreadedInterpreter,
  killAllChildren,
  runCli,
  shownName,
  spawnFixture,
  type DumpTargetReport,
} from '../helpers/pythons.js';
import { cleanupRecord, outputDir, parseRaw, totalCount } from '../helpers/record.js';

const TIMEOUT = 180_000;
const FT = freeThreadedInterpreter();
const RATE = 100;
const SECONDS = 4;
/** Each of N symmetric spinning threads gets 1/N of the samples, within this many points. */
const TOLERANCE = 5;

interface SpinReport {
  pid: number;
  gil_enabled: boolean | null;
  thread_count: number;
  threads: { ident: number; native_id: number; name: string }[];
}

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

/** The dump's threads against the fixture's own report: names, ids, every frame and line. */
function expectDumpMatches(json: string, report: DumpTargetReport): void {
  const threads = JSON.parse(json) as {
    thread_id: number;
    os_thread_id: number;
    thread_name: string;
    active: boolean;
    owns_gil: boolean;
    attached?: boolean;
    frames: { name: string; filename: string; line: number }[];
  }[];
  expect(threads.map((t) => t.thread_id).sort()).toEqual(report.threads.map((t) => t.ident).sort());
  for (const want of report.threads) {
    const got = threads.find((t) => t.thread_id === want.ident)!;
    const label = `thread "${want.name}"`;
    expect(got.os_thread_id, `${label} os_thread_id`).toBe(want.native_id);
    expect(got.thread_name, `${label} name`).toBe(want.name);
    const actual = got.frames.map(({ name, filename, line }) => ({ name, filename, line }));
    const expected = want.frames.map((f) => ({ name: shownName(f), filename: f.filename, line: f.line }));
    if (want.ident === report.busy.ident) {
      const [lo, hi] = report.busy.line_range;
      expect(actual[0]?.name, `${label} innermost function`).toBe(report.busy.shown);
      expect(actual[0]!.line).toBeGreaterThanOrEqual(lo);
      expect(actual[0]!.line).toBeLessThanOrEqual(hi);
      expected[0]!.line = actual[0]!.line;
    }
    expect(actual, `${label} frames (innermost first)`).toEqual(expected);
    expect(got.active, `${label} active`).toBe(want.name === 'busy-worker');
    // No GIL: nobody holds one; the thread running Python is attached.
    expect(got.owns_gil, `${label} owns_gil`).toBe(false);
    expect(got.attached, `${label} attached`).toBe(want.name === 'busy-worker');
  }
}

/** Samples per spinner from raw output; throws on a stack that mixes two threads. */
function spinnerCounts(raw: string, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  const wrong: string[] = [];
  for (const stack of parseRaw(raw)) {
    const names = stack.frames.map((f) => f.name);
    const leaf = names.at(-1) ?? '';
    const m = /^spin_(\d)$/.exec(leaf);
    const k = m ? Number(m[1]) : -1;
    // Every sample of a spinner is run_k -> spin_k (a spinner is always in its loop).
    if (k < 0 || k >= n || names.at(-2) !== `run_${k}`) wrong.push(`${names.join(';')} ${stack.count}`);
    else counts[k]! += stack.count;
  }
  expect(wrong, 'stacks that are not run_k -> spin_k').toEqual([]);
  return counts;
}

/** Each refresh's figures line (the third) of `top`'s plain output. */
function figureLinesOf(stdout: string): string[] {
  return stdout
    .split('\n\n')
    .filter((b) => b.startsWith('Collecting samples'))
    .map((b) => b.split('\n')[2] ?? '');
}

/** The percentage after `label: ` in each line (NaN where absent). */
function percents(lines: string[], label: string): number[] {
  return lines.map((l) => Number(new RegExp(`${label}: ([0-9.]+)%`).exec(l)?.[1] ?? NaN));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** `top` launching `args` under the 3.13t build, refreshing every 0.5 s. */
async function topOn(args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const res = await runCli(['top', '--delay', '0.5', '--rate', String(RATE), '--', FT.binary, ...args], { timeoutMs: 60_000, env });
  expect(res.code, res.stderr).toBe(0);
  const lines = figureLinesOf(res.stdout);
  expect(lines.length, res.stdout).toBeGreaterThanOrEqual(4);
  return lines;
}

describe(`free-threaded ${FT.id}`, () => {
  it('is a free-threaded build with the GIL off', () => {
    const out = execFileSync(FT.binary, ['-c', 'import sys; print(sys._is_gil_enabled(), sys.version_info[:2])'], { encoding: 'utf8' });
    expect(out.trim()).toBe('False (3, 13)');
  });

  it('dump --json reports exactly the stacks the fixture sees', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(FT, 'dump_target.py');
    const res = await runCli(['dump', '--pid', String(fx.pid), '--json']);
    expect(res.code, res.stderr).toBe(0);
    expectDumpMatches(res.stdout, fx.report);
  });

  it('dump --native and --locals work', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(FT, 'dump_target.py');
    const native = await runCli(['dump', '--pid', String(fx.pid), '--native']);
    expect(native.code, native.stderr).toBe(0);
    expect(native.stdout).toMatch(/clock_nanosleep|nanosleep|select|poll/);
    expect(native.stdout).toContain('Worker.spin (dump_target.py:');
    const locals = await runCli(['dump', '--pid', String(fx.pid), '--locals']);
    expect(locals.code, locals.stderr).toBe(0);
    // park_main's locals: instance dicts and containers read through the longer object headers.
    expect(locals.stdout).toMatch(/sleeper: <Thread at 0x[0-9a-f]+>/);
  });

  it('4 threads spinning in parallel are all active at once, in 20 dumps', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<SpinReport>(FT, 'parallel_spin.py', ['--threads', '4'], { via: 'shell' });
    expect(fx.report.gil_enabled).toBe(false);
    const { dump } = await import('pyspy-node');
    let allActive = 0;
    for (let i = 0; i < 20; i++) {
      const d = await dump(fx.pid);
      const spinners = d.threads.filter((t) => t.threadName?.startsWith('spinner-'));
      expect(spinners).toHaveLength(4);
      for (const t of spinners) {
        const k = t.threadName!.slice('spinner-'.length);
        expect(t.frames.map((f) => f.name).slice(0, 2)).toEqual([`spin_${k}`, `run_${k}`]);
        expect(t.ownsGil).toBe(false);
      }
      if (spinners.every((t) => t.active)) allActive++;
    }
    // A preempted runnable thread is still running (state R): on a busy machine, too.
    expect(allActive).toBe(20);
  });

  it(`record: 4 parallel spinners get 25% each (±${TOLERANCE} points), no mixed stacks`, { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<SpinReport>(FT, 'parallel_spin.py', ['--threads', '4'], { via: 'shell' });
    const file = path.join(outputDir(), 'spin.txt');
    const res = await runCli(['record', '-p', String(fx.pid), '-o', file, '-f', 'raw', '-r', String(RATE), '-d', String(SECONDS)]);
    expect(res.code, res.stderr).toBe(0);
    const errors = Number(/Errors: (\d+)/.exec(res.stderr)?.[1] ?? NaN);
    const counts = spinnerCounts(readFileSync(file, 'utf8'), 4);
    const total = totalCount(parseRaw(readFileSync(file, 'utf8')));
    expect(total).toBeGreaterThan(4 * RATE); // at least one second's worth of every thread
    expect(errors / (total + errors), `error share (stderr: ${res.stderr})`).toBeLessThan(0.01);
    for (const c of counts) expect(Math.abs((100 * c) / total - 25), `shares ${counts.join('/')}`).toBeLessThanOrEqual(TOLERANCE);
  });

  it('record --subprocesses: a Pool of 3 workers, every process sampled, the workers under their parent', { timeout: TIMEOUT }, async () => {
    const file = path.join(outputDir(), 'pool.txt');
    const fixture = path.join(FIXTURES_DIR, 'subprocess_tree.py');
    const res = await runCli(['record', '-s', '-r', String(RATE), '-f', 'raw', '-o', file, '--', FT.binary, fixture, 'pool', '3']);
    expect(res.code, res.stderr).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const pids = new Set<number>();
    const burners = new Set<number>();
    for (const line of lines) {
      const roots = [...line.matchAll(/(?:^|;)process (\d+):"/g)].map((m) => Number(m[1]));
      for (const p of roots) pids.add(p);
      // A worker's samples: its parent's root frame, then its own, then burn().
      if (roots.length === 2 && /;burn \(subprocess_tree\.py:\d+\)/.test(line)) burners.add(roots[1]!);
    }
    expect(pids.size, lines.slice(0, 5).join('\n')).toBeGreaterThanOrEqual(4);
    expect(burners.size, lines.slice(0, 5).join('\n')).toBe(3);
  });

  it('record --gil is refused while the GIL is off, with the reason', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<SpinReport>(FT, 'parallel_spin.py', ['--threads', '1'], { via: 'shell' });
    const res = await runCli(['record', '-p', String(fx.pid), '--gil', '-d', '1', '-f', 'raw', '-o', path.join(outputDir(), 'x.txt')]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/free-threaded.*GIL disabled.*PYTHON_GIL=1/s);
  });

  it('top prints both spinners', { timeout: TIMEOUT }, async () => {
    const fixture = path.join(FIXTURES_DIR, 'parallel_spin.py');
    const res = await runCli(['top', '--delay', '0.5', '--rate', '100', '--', FT.binary, fixture, '--threads', '2', '--lifetime', '3'], {
      timeoutMs: 60_000,
    });
    expect(res.code, res.stderr).toBe(0);
    const last = res.stdout.split('\n\n').filter((b) => b.startsWith('Collecting samples')).at(-1) ?? '';
    expect(last).toMatch(/Threads: 3$/m);
    expect(last).toMatch(/spin_0 \(parallel_spin\.py\)/);
    expect(last).toMatch(/spin_1 \(parallel_spin\.py\)/);
  });

  it('top shows Attached (high for 4 spinners), never GIL', { timeout: TIMEOUT }, async () => {
    const lines = await topOn([path.join(FIXTURES_DIR, 'parallel_spin.py'), '--threads', '4', '--lifetime', '4']);
    // The first refresh covers start-up, where 3.13t may enable its GIL for
    // a moment (seen once in ~10 runs: "GIL: 1.96%", 1 attempt of 51, with
    // the GIL's own flag read as enabled): from the second one on, never.
    for (const l of lines.slice(1)) {
      expect(l).toMatch(/^Attached: [0-9.]+%, Active: [0-9.]+%, Threads: \d+$/);
      expect(l).not.toContain('GIL');
    }
    expect(lines[0]).toMatch(/Attached: [0-9.]+%, Active: [0-9.]+%, Threads: \d+$/);
    // A spinner stays attached even while the kernel has it preempted: the
    // share does not depend on the machine's load. Startup and exit may dip.
    expect(median(percents(lines, 'Attached')), lines.join('\n')).toBeGreaterThanOrEqual(90);
  });

  it('top shows a low Attached share for a program that sleeps', { timeout: TIMEOUT }, async () => {
    // A thread in time.sleep() is detached: attached only around startup and exit.
    const lines = await topOn(['-c', 'import time; time.sleep(3)']);
    for (const l of lines) expect(l).toMatch(/^Attached: [0-9.]+%, /);
    expect(median(percents(lines, 'Attached')), lines.join('\n')).toBeLessThanOrEqual(10);
  });

  it('dump says free-threaded, GIL disabled', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<SpinReport>(FT, 'parallel_spin.py', ['--threads', '1'], { via: 'shell' });
    const res = await runCli(['dump', '--pid', String(fx.pid)]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[1]).toMatch(/^Python v3\.13\.\d+, free-threaded, GIL disabled \(/);
    const { dump } = await import('pyspy-node');
    expect(await dump(fx.pid)).toMatchObject({ freeThreaded: true, gilEnabled: false });
  });

  describe('with PYTHON_GIL=1 (the GIL back on at run time)', () => {
    const env = { PYTHON_GIL: '1' };

    it('top shows GIL, not Attached; dump says GIL enabled', { timeout: TIMEOUT }, async () => {
      const lines = await topOn([path.join(FIXTURES_DIR, 'parallel_spin.py'), '--threads', '4', '--lifetime', '4'], env);
      for (const l of lines) {
        expect(l).toMatch(/^GIL: [0-9.]+%, Active: [0-9.]+%, GIL wait: [0-9.]+%, Threads: \d+$/);
        expect(l).not.toContain('Attached');
      }
      // One of 4 spinners holds the GIL nearly always.
      expect(median(percents(lines, 'GIL')), lines.join('\n')).toBeGreaterThanOrEqual(50);
      const fx = await spawnFixture<SpinReport>(FT, 'parallel_spin.py', ['--threads', '1'], { via: 'shell', env });
      const res = await runCli(['dump', '--pid', String(fx.pid)]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout.split('\n')[1]).toMatch(/^Python v3\.13\.\d+, free-threaded, GIL enabled \(/);
    });

    it('dump sees a GIL holder among 2 spinners, and record --gil works', { timeout: TIMEOUT }, async () => {
      const fx = await spawnFixture<SpinReport>(FT, 'parallel_spin.py', ['--threads', '2'], { via: 'shell', env });
      expect(fx.report.gil_enabled).toBe(true);
      const { dump } = await import('pyspy-node');
      let holders = 0;
      for (let i = 0; i < 20; i++) {
        const owners = (await dump(fx.pid)).threads.filter((t) => t.ownsGil);
        expect(owners.length).toBeLessThanOrEqual(1);
        holders += owners.length;
      }
      expect(holders, 'dumps that found a GIL holder').toBeGreaterThan(10);
      const file = path.join(outputDir(), 'gil.txt');
      const res = await runCli(['record', '-p', String(fx.pid), '--gil', '-o', file, '-f', 'raw', '-r', String(RATE), '-d', '2']);
      expect(res.code, res.stderr).toBe(0);
      const counts = spinnerCounts(readFileSync(file, 'utf8'), 2);
      expect(counts[0]! + counts[1]!).toBeGreaterThan(RATE / 2);
    });
  });
});
