// `--native` (issue 5) against test/fixtures/native: a C extension, built
// here with gcc against each interpreter's own headers, that spins in a C
// function (thread c-busy) and calls back into Python twice over (thread
// callback: cb_outer -> C -> cb_middle -> C -> cb_inner). `dump --native`
// must show the C functions by name with their module, and the Python frames
// under each callback in the right order; `record --native` must carry the C
// frames into raw, flamegraph and pprof output. Every interpreter `dump`
// supports in .cache/pythons/matrix.json (2.7, 3.6-3.15): pyenv builds
// (libpython, unstripped), Debian's own 3.11 and in-place 2.7/3.9 (static,
// stripped) and Debian 3.13-3.15 in chroots (static, stripped, their
// evaluation loop split into pieces with no exported name).
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { killAllChildren, loadMatrix, runCli, settleWithin, spawnFixture, type CliResult, type Interpreter } from '../helpers/pythons.js';
import { cleanupRecord, decodePprof, outputDir, parseFlamegraph, parseRaw, parseSummary, totalCount, type RawStack } from '../helpers/record.js';

import {
  buildExtension,
  expectMergedStacks,
  fromCliJson,
  NATIVE_FIXTURE,
  nativeInterpreters,
  type BuiltExtension,
  type Fixture,
  type NativeTargetReport,
} from './native-helpers.js';

const TIMEOUT = 180_000;
const matrix = loadMatrix();
const interpreters = nativeInterpreters(matrix);
/** Where record, the text form, the library and a symbols-only build are checked too. */
const RECORD_ON = ['pyenv-3.11.7', 'pyenv-3.12.1', 'debian-3.11', 'debian-3.14'];
const covered = new Map<string, string[]>();

function cover(interp: Interpreter, what: string): void {
  covered.set(interp.id, [...(covered.get(interp.id) ?? []), what]);
}

afterAll(() => {
  const lines = [...covered].map(([id, what]) => `  ${id}: ${what.join(', ')}`);
  console.log(`native e2e covered ${covered.size} interpreters:\n${lines.join('\n')}`);
});

/** Started by a `sh`, so the target is not this process's child (nor the CLI's). */
function startFixture(interp: Interpreter, ext: BuiltExtension, extra: string[] = []): Promise<Fixture> {
  return spawnFixture<NativeTargetReport>(interp, NATIVE_FIXTURE, [ext.dir, ...extra], { via: 'shell' });
}

function expectClean(res: CliResult, what: string): void {
  expect(res.stderr, `${what}: stderr`).not.toMatch(/panicked|stack backtrace|^\s+at /m);
  expect(res.code, `${what}: exit code; stderr: ${res.stderr}`).toBe(0);
}

/** Records `-f format --native` from `fx` for `seconds` and checks the summary. */
async function recordNative(fx: Fixture, format: string, extra: string[] = [], seconds = 2) {
  const ext = { flamegraph: 'svg', raw: 'txt', pprof: 'pb.gz' }[format] ?? format;
  const file = path.join(outputDir(), `native.${ext}`);
  const res = await runCli(['record', '--native', '-p', String(fx.pid), '-o', file, '-f', format, '-d', String(seconds), '-r', '100', ...extra]);
  expectClean(res, `record --native -f ${format}`);
  const summary = parseSummary(res.stderr);
  expect(summary, `summary line: ${res.stderr}`).not.toBeNull();
  expect(summary!.samples, 'samples').toBeGreaterThan(0);
  return { file, summary: summary!, stderr: res.stderr };
}

/** Function names of a raw stack, root first. */
function names(s: RawStack): string[] {
  return s.frames.map((f) => f.name);
}

describe.each(interpreters.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  let ext: BuiltExtension;
  beforeAll(() => {
    ext = buildExtension(interp);
  });
  afterEach(async () => {
    await cleanupRecord();
    await killAllChildren();
  });
  afterAll(() => ext?.remove());

  it('dump --native --json: C functions with their module, Python frames under the callbacks in order', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(interp, ext);
    const res = await runCli(['dump', '--pid', String(fx.pid), '--native', '--json']);
    expectClean(res, 'dump --native --json');
    expectMergedStacks(fromCliJson(res.stdout), fx, `${interp.id} CLI`, true);
    cover(interp, 'dump --json');
  });

  if (RECORD_ON.includes(interp.id)) {
    it('dump --native prints C frames as name (file:line) [module]', { timeout: TIMEOUT }, async () => {
      const fx = await startFixture(interp, ext);
      const res = await runCli(['dump', '--pid', String(fx.pid), '--native']);
      expectClean(res, 'dump --native');
      const block = res.stdout.split('\n\n').find((b) => /^Thread \d+ \(\w+\): "callback"$/m.test(b));
      expect(block, res.stdout).toBeDefined();
      const lines = block!.split('\n').slice(1).map((l) => l.trim());
      const at = (name: string) => lines.findIndex((l) => l.startsWith(`${name} (`));
      const callBacks = lines.filter((l) => /^pyspy_native_call_back \(pyspy_native_ext\.c:\d+\) \[pyspy_native_ext\.so\]$/.test(l));
      expect(callBacks, block).toHaveLength(2);
      expect(at('cb_inner'), block).toBeLessThan(lines.indexOf(callBacks[0]!));
      expect(lines.indexOf(callBacks[0]!), block).toBeLessThan(at('cb_middle'));
      expect(at('cb_middle'), block).toBeLessThan(lines.lastIndexOf(callBacks[1]!));
      expect(lines.lastIndexOf(callBacks[1]!), block).toBeLessThan(at('cb_outer'));
      expect(lines[0], `${block}\n(the innermost frame: the C library's sleep)`).toMatch(/^\S+ \(libc[^)]*\)$/);
      cover(interp, 'dump text');
    });

    it('dump({ native: true }) and sample({ native: true }) from the library', { timeout: TIMEOUT }, async () => {
      const { dump, sample } = await import('pyspy-node');
      const fx = await startFixture(interp, ext);
      const result = await settleWithin(dump(fx.pid, { native: true }), 60_000, 'dump()', fx.pid);
      expectMergedStacks(result.threads.map((t) => ({ name: t.threadName, osThreadId: t.osThreadId, frames: t.frames })), fx, `${interp.id} library`, true);
      let seen: string[] = [];
      for await (const batch of sample({ pid: fx.pid, native: true, interval: 300 })) {
        seen = batch.stacks.flatMap((s) => s.frames.map((f) => f.name));
        if (seen.includes('pyspy_native_spin')) break;
      }
      expect(seen, 'sample() stacks').toContain('pyspy_native_spin');
      cover(interp, 'library');
    });

    it('without line tables (no -g): C functions from the symbol table, with their module', { timeout: TIMEOUT }, async () => {
      const plain = buildExtension(interp, ['-O2']);
      try {
        const fx = await startFixture(interp, plain);
        const res = await runCli(['dump', '--pid', String(fx.pid), '--native', '--json']);
        expectClean(res, 'dump --native --json (no -g)');
        expectMergedStacks(fromCliJson(res.stdout), fx, `${interp.id} CLI, no -g`, false);
      } finally {
        plain.remove();
      }
      cover(interp, 'no -g');
    });

    it('record --native: raw, flamegraph and pprof hold the C frames where they run', { timeout: TIMEOUT }, async () => {
      const fx = await startFixture(interp, ext);
      const c = fx.report.threads.find((t) => t.name === 'c-busy')!;

      const raw = await recordNative(fx, 'raw', ['--idle']);
      const stacks = parseRaw(readFileSync(raw.file, 'utf8'));
      expect(totalCount(stacks), 'raw counts add up to the summary').toBe(raw.summary.samples);
      expect(raw.summary.errors, `errors (merge failures) of ${raw.summary.samples} samples`).toBeLessThanOrEqual(Math.ceil(raw.summary.samples * 0.02));
      const busy = stacks.filter((s) => names(s).includes('c_busy_caller'));
      const busyCount = totalCount(busy);
      expect(busyCount, 'c-busy samples').toBeGreaterThan(0);
      for (const s of busy) {
        const n = names(s);
        const at = n.indexOf('c_busy_caller');
        expect(n.slice(at, at + 3), `c-busy stack ${s.frames.map((f) => f.label).join(';')}`).toEqual(['c_busy_caller', 'ext_spin', 'pyspy_native_spin']);
      }
      // Time spent in the C function: most of the busy thread's samples end in it.
      const inBusy = totalCount(busy.filter((s) => s.frames.at(-1)!.name === 'pyspy_native_busy'));
      expect(inBusy / busyCount, `share of c-busy samples in pyspy_native_busy (thread ${c.native_id})`).toBeGreaterThan(0.5);
      const label = busy.flatMap((s) => s.frames).find((f) => f.name === 'pyspy_native_busy')!;
      expect(label.file, 'native label: the C source file').toBe('pyspy_native_ext.c');
      expect(label.line, 'native label: a line').toBeGreaterThan(0);
      for (const s of stacks.filter((x) => names(x).includes('cb_inner'))) {
        const n = names(s).filter((x) => x.startsWith('cb_') || x === 'pyspy_native_call_back');
        expect(n, `callback stack ${s.frames.map((f) => f.label).join(';')}`).toEqual([
          'cb_outer',
          'pyspy_native_call_back',
          'cb_middle',
          'pyspy_native_call_back',
          'cb_inner',
        ]);
      }

      const svg = await recordNative(fx, 'flamegraph');
      const boxes = parseFlamegraph(readFileSync(svg.file, 'utf8'));
      expect(boxes.map((b) => b.label).filter((l) => l.startsWith('pyspy_native_busy (pyspy_native_ext.c')), 'flamegraph boxes').not.toHaveLength(0);

      const pprof = await recordNative(fx, 'pprof');
      const decoded = decodePprof(readFileSync(pprof.file));
      const leaves = decoded.samples.map((s) => s.functions[0]);
      expect(leaves, 'pprof leaf functions').toContain('pyspy_native_busy');
      for (const s of decoded.samples.filter((x) => x.functions.includes('c_busy_caller'))) {
        const at = s.functions.indexOf('c_busy_caller');
        expect(s.functions.slice(at - 2, at + 1), `pprof stack (leaf first) ${s.functions.join(' <- ')}`).toEqual(['pyspy_native_spin', 'ext_spin', 'c_busy_caller']);
      }
      cover(interp, 'record raw/flamegraph/pprof');
    });
  }
});

describe('merging while a thread crosses between Python and C all the time', () => {
  const interp = interpreters.find((i) => i.id === 'pyenv-3.12.1') ?? interpreters[0]!;
  let ext: BuiltExtension;
  beforeAll(() => {
    ext = buildExtension(interp);
  });
  afterEach(async () => {
    await cleanupRecord();
    await killAllChildren();
  });
  afterAll(() => ext?.remove());

  it(`record --native keeps every stack in order and loses few samples (${interp.id})`, { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(interp, ext, ['--churn']);
    const raw = await recordNative(fx, 'raw', [], 3);
    const stacks = parseRaw(readFileSync(raw.file, 'utf8'));
    const churn = stacks.filter((s) => names(s).includes('churn'));
    expect(totalCount(churn), 'churn samples').toBeGreaterThan(20);
    // Failed merges cost a sample each: a handful at most.
    expect(raw.summary.errors, `errors of ${raw.summary.samples} samples`).toBeLessThanOrEqual(Math.ceil(raw.summary.samples * 0.05));
    // Qualified names on 3.11+.
    const [major, minor] = interp.version.split('.').map(Number);
    const lambdaName = major === 3 && minor! >= 11 ? 'churn_step.<locals>.<lambda>' : '<lambda>';
    for (const s of churn) {
      const n = names(s);
      const lambda = n.indexOf(lambdaName);
      if (lambda === -1) continue;
      // Python under C under Python: churn_step -> C -> <lambda>.
      expect(n.slice(lambda - 2, lambda + 1), `churn stack ${s.frames.map((f) => f.label).join(';')}`).toEqual([
        'churn_step',
        'pyspy_native_call_back',
        lambdaName,
      ]);
    }
    expect(churn.some((s) => names(s).includes(lambdaName)), `some churn stack runs ${lambdaName}`).toBe(true);
    cover(interp, 'churn');
  });
});

// A Node program that profiles a Python it spawned itself: the target is then
// paused with SIGSTOP, not ptrace (see dump.test.ts), so its registers cannot
// be read with PTRACE_GETREGS; the unwind starts from the stack and
// instruction pointers of /proc/PID/task/TID/syscall instead.
describe("dump({ native: true }) of this Node process's own child", () => {
  const interp = interpreters.find((i) => i.id === 'debian-3.14') ?? interpreters[0]!;
  let ext: BuiltExtension;
  beforeAll(() => {
    ext = buildExtension(interp);
  });
  afterEach(killAllChildren);
  afterAll(() => ext?.remove());

  it(`unwinds from /proc's stack and instruction pointers (${interp.id})`, { timeout: TIMEOUT }, async () => {
    const { dump } = await import('pyspy-node');
    const fx = await spawnFixture<NativeTargetReport>(interp, NATIVE_FIXTURE, [ext.dir]);
    expect(fx.child.pid, 'the interpreter is our child').toBe(fx.pid);
    for (let i = 0; i < 3; i++) {
      const result = await settleWithin(dump(fx.pid, { native: true }), 60_000, 'dump()', fx.pid);
      expectMergedStacks(result.threads.map((t) => ({ name: t.threadName, osThreadId: t.osThreadId, frames: t.frames })), fx, `${interp.id} own child #${i}`, true);
    }
    cover(interp, 'own child');
  });
});

describe('--native with --nonblocking', () => {
  it('is refused, saying why', async () => {
    const res = await runCli(['dump', '--pid', String(process.pid), '--native', '--nonblocking']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/--native cannot be combined with --nonblocking: .*paused/);
  });
});
