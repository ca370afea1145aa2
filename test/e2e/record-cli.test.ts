// `pyspy-node record` from the command line: every output format read back
// by an independent parser (fast-xml-parser, JSON, pprof-format and
// `go tool pprof`), the flags that shape the samples (--gil, --idle,
// --threads, -F, --nolineno, --full-filenames, -d, -r), attaching by pid and
// launching a command, and how it ends (signals, the target dying, the
// launched command's exit code, no samples).
//
// Targets are test/fixtures/record_target.py (see its docstring) or short
// `python -c` programs. Most tests run on the host's static 3.11; launching
// is also checked in the 3.14 chroot, and record-accuracy.test.ts covers both.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  killAllChildren,
  loadMatrix,
  procStat,
  runCli,
  spawnFixture,
  type CliResult,
  type Interpreter,
  type RunningFixture,
} from '../helpers/pythons.js';
import {
  chrometraceProblems,
  cleanupRecord,
  decodePprof,
  goPprofTop,
  interpreter,
  isPathSuffix,
  launchCommand,
  leafFunctionCounts,
  outputDir,
  parseFlamegraph,
  parseRaw,
  parseSummary,
  RECORD_FIXTURE,
  sleep,
  speedscopeProblems,
  startCli,
  totalCount,
  tracerPid,
  waitForSampler,
  type RawStack,
  type RecordSummary,
  type RecordTargetReport,
  type SpeedscopeFile,
  type TraceEvent,
} from '../helpers/record.js';

const TIMEOUT = 180_000;
const matrix = loadMatrix();
const HOST = interpreter(matrix, 'debian-3.11');
const CHROOT = interpreter(matrix, 'debian-3.14');

type Fixture = RunningFixture<RecordTargetReport>;

function startFixture(interp: Interpreter, mode: 'ratio' | 'mixed' | 'sleep'): Promise<Fixture> {
  // Started by a `sh`, so the target is not this process's child (nor the CLI's).
  return spawnFixture<RecordTargetReport>(interp, RECORD_FIXTURE, ['--mode', mode], { via: 'shell' });
}

function expectNoCrash(res: CliResult, what: string): void {
  expect(res.stderr, `${what}: stderr`).not.toMatch(/panicked|stack backtrace|RUST_BACKTRACE|^\s+at /m);
  expect(res.signal, `${what}: killed by a signal; stderr: ${res.stderr}`).toBeNull();
}

/** Checks exit code and summary line, and that the summary names `file`. */
function expectWritten(res: CliResult, file: string, format: string, what: string, exitCode = 0): RecordSummary {
  expectNoCrash(res, what);
  expect(res.code, `${what}: exit code; stderr: ${res.stderr}`).toBe(exitCode);
  const summary = parseSummary(res.stderr);
  expect(summary, `${what}: "Wrote ... Samples: N Errors: E" on stderr: ${res.stderr}`).not.toBeNull();
  expect(summary!.file, `${what}: file named in the summary`).toBe(file);
  expect(summary!.format.toLowerCase().replace(/\s+/g, ''), `${what}: format named in the summary`).toContain(format);
  expect(existsSync(file), `${what}: ${file} exists`).toBe(true);
  expect(summary!.samples, `${what}: samples`).toBeGreaterThan(0);
  return summary!;
}

/** Runs `record -p PID -o FILE -f FORMAT -d SECONDS ...extra`. */
async function recordPid(
  fx: Fixture,
  format: string,
  extra: string[] = [],
  seconds = 2,
): Promise<{ res: CliResult; file: string }> {
  const ext = { flamegraph: 'svg', speedscope: 'json', raw: 'txt', chrometrace: 'json', pprof: 'pb.gz' }[format] ?? format;
  const file = path.join(outputDir(), `profile.${ext}`);
  const res = await runCli(['record', '-p', String(fx.pid), '-o', file, '-f', format, '-d', String(seconds), ...extra]);
  return { res, file };
}

/** Records raw output by pid and parses it; the counts must add up to the summary. */
async function recordRaw(fx: Fixture, extra: string[], seconds = 1.5): Promise<{ stacks: RawStack[]; summary: RecordSummary }> {
  const { res, file } = await recordPid(fx, 'raw', extra, seconds);
  const summary = expectWritten(res, file, 'raw', `record -f raw ${extra.join(' ')}`);
  const stacks = parseRaw(readFileSync(file, 'utf8'));
  expect(totalCount(stacks), 'raw counts add up to the summary').toBe(summary.samples);
  return { stacks, summary };
}

function mainThread(report: RecordTargetReport) {
  return report.threads.find((t) => t.name === 'MainThread')!;
}

/** The target is alive, running or sleeping, and nobody traces it. */
function expectTargetReleased(pid: number, what: string): void {
  expect(procStat(pid)?.state, `${what}: target state`).toMatch(/^[RS]$/);
  expect(tracerPid(pid), `${what}: target's TracerPid`).toBe(0);
}

describe(`formats (record -p, ${HOST.id})`, () => {
  // One target for all five formats: attaching to it again and again is part of the test.
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture(HOST, 'ratio');
  });
  afterEach(async () => {
    await cleanupRecord();
  });
  afterAll(async () => {
    await killAllChildren();
  });

  it('raw: "frame;...;frame COUNT" lines whose counts add up to the summary', { timeout: TIMEOUT }, async () => {
    const { stacks, summary } = await recordRaw(fx, [], 2);
    expect(summary.errors).toBeGreaterThanOrEqual(0);
    const { work_three, work_one } = fx.report.functions;
    for (const s of stacks) {
      const names = s.frames.map((f) => f.name);
      expect(names[0], `root frame of ${s.frames.map((f) => f.label).join(';')}`).toBe('<module>');
      for (const f of s.frames) {
        expect(f.file, `file of ${f.label}`).not.toBeNull();
        expect(isPathSuffix(f.file!, fx.script), `${f.file} is a suffix of ${fx.script}`).toBe(true);
        expect(f.line, `line of ${f.label}`).toBeGreaterThan(0);
      }
      const leaf = s.frames[s.frames.length - 1]!;
      if (leaf.name === 'work_three') {
        expect(names.slice(-3)).toEqual(['main', 'busy_loop', 'work_three']);
        expect(leaf.line).toBeGreaterThanOrEqual(work_three.body[0]);
        expect(leaf.line).toBeLessThanOrEqual(work_three.body[1]);
      }
      if (leaf.name === 'work_one') {
        expect(leaf.line).toBeGreaterThanOrEqual(work_one.body[0]);
        expect(leaf.line).toBeLessThanOrEqual(work_one.body[1]);
      }
    }
    const counts = leafFunctionCounts(stacks, fx.script);
    expect(counts.get('work_three') ?? 0, JSON.stringify(Object.fromEntries(counts))).toBeGreaterThan(counts.get('work_one') ?? 0);
    expect(counts.get('work_one') ?? 0, JSON.stringify(Object.fromEntries(counts))).toBeGreaterThan(0);
  });

  it('flamegraph: well-formed SVG, an icicle graph whose boxes name the hot function and add up', { timeout: TIMEOUT }, async () => {
    const { res, file } = await recordPid(fx, 'flamegraph');
    const summary = expectWritten(res, file, 'flamegraph', 'record -f flamegraph');
    const boxes = parseFlamegraph(readFileSync(file, 'utf8'));
    // The root box covers every sample.
    const roots = boxes.filter((b) => b.percent === 100 && b.samples === summary.samples);
    expect(roots.length, `a box with ${summary.samples} samples, 100%: ${boxes.map((b) => b.label).join(' | ')}`).toBeGreaterThan(0);
    const root = roots.reduce((a, b) => (b.y < a.y ? b : a));
    // Frames are labelled `name (file:line)`, as in the raw format.
    const frames = boxes.filter((b) => b !== root).map((b) => ({ ...b, m: /^(.+) \((.+):(\d+)\)$/.exec(b.label) }));
    expect(frames.length).toBeGreaterThan(3);
    for (const f of frames) expect(f.m, `box label "${f.label}"`).not.toBeNull();
    const of = (name: string) => frames.filter((f) => f.m![1] === name);
    const samplesOf = (name: string) => of(name).reduce((n, f) => n + f.samples, 0);
    for (const f of of('work_three')) expect(isPathSuffix(f.m![2]!, fx.script), `${f.label}: file`).toBe(true);
    expect(samplesOf('work_three'), 'work_three is the hot function').toBeGreaterThan(summary.samples / 2);
    expect(samplesOf('work_three')).toBeGreaterThan(samplesOf('work_one'));
    expect(samplesOf('<module>'), '<module> (the root of every stack)').toBe(summary.samples);
    // Icicle: the root at the top, callees below their callers.
    const module = of('<module>')[0]!;
    expect(root.y).toBeLessThan(module.y);
    for (const f of of('work_three')) expect(f.y).toBeGreaterThan(of('busy_loop')[0]!.y);
    expect(of('busy_loop')[0]!.y).toBeGreaterThan(module.y);
  });

  it('speedscope: schema, valid frame indices, one sampled profile per thread', { timeout: TIMEOUT }, async () => {
    const { res, file } = await recordPid(fx, 'speedscope', ['-r', '100']);
    const summary = expectWritten(res, file, 'speedscope', 'record -f speedscope');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as SpeedscopeFile;
    expect(speedscopeProblems(doc)).toEqual([]);
    const main = mainThread(fx.report);
    // Only MainThread runs; the profile is named as py-spy names it.
    expect(doc.profiles.map((p) => p.name)).toEqual([`Thread ${main.native_id} "MainThread"`]);
    const profile = doc.profiles[0]!;
    // Weights are seconds (count / rate): they add up to the sample count.
    const weight = profile.weights.reduce((a, b) => a + b, 0);
    expect(weight * 100).toBeCloseTo(summary.samples, 3);
    // The hot function by weight, with its full filename and a line in its body.
    const byLeaf = new Map<string, number>();
    profile.samples.forEach((stack, i) => {
      const leaf = doc.shared.frames[stack[stack.length - 1]!]!;
      byLeaf.set(leaf.name, (byLeaf.get(leaf.name) ?? 0) + profile.weights[i]!);
      expect(doc.shared.frames[stack[0]!]!.name, 'root frame').toBe('<module>');
    });
    const hot = [...byLeaf].sort((a, b) => b[1] - a[1])[0]!;
    expect(hot[0], JSON.stringify(Object.fromEntries(byLeaf))).toBe('work_three');
    const three = doc.shared.frames.filter((f) => f.name === 'work_three');
    expect(three.length).toBeGreaterThan(0);
    for (const f of three) {
      expect(f.file).toBe(fx.script);
      expect(f.line).toBeGreaterThanOrEqual(fx.report.functions.work_three.body[0]);
      expect(f.line).toBeLessThanOrEqual(fx.report.functions.work_three.body[1]);
    }
  });

  it('chrometrace: a JSON array of trace events, B/E balanced per thread', { timeout: TIMEOUT }, async () => {
    const { res, file } = await recordPid(fx, 'chrometrace');
    expectWritten(res, file, 'chrometrace', 'record -f chrometrace');
    const events = JSON.parse(readFileSync(file, 'utf8')) as TraceEvent[];
    expect(Array.isArray(events)).toBe(true);
    expect(chrometraceProblems(events)).toEqual([]);
    const begins = events.filter((e) => e.ph === 'B');
    expect(begins.length).toBeGreaterThan(0);
    expect(events.filter((e) => e.ph === 'E')).toHaveLength(begins.length);
    const main = mainThread(fx.report);
    for (const e of begins) {
      expect(e.pid).toBe(fx.pid);
      expect(e.tid).toBe(main.native_id);
    }
    expect(begins.map((e) => e.name)).toContain('work_three');
    expect(begins.map((e) => e.name)).toContain('work_one');
  });

  it('pprof: read by go tool pprof -top and by pprof-format, with thread and pid labels', { timeout: 300_000 }, async () => {
    const { res, file } = await recordPid(fx, 'pprof');
    const summary = expectWritten(res, file, 'pprof', 'record -f pprof');

    const decoded = decodePprof(readFileSync(file));
    expect(decoded.sampleTypes[0]).toBe('samples/count');
    expect(decoded.sampleTypes[1]).toMatch(/^(cpu|wall)\/nanoseconds$/);
    expect(decoded.samples.reduce((n, s) => n + s.values[0]!, 0), 'samples/count adds up to the summary').toBe(summary.samples);
    const byLeaf = new Map<string, number>();
    for (const s of decoded.samples) {
      expect(s.functions[s.functions.length - 1], 'root (last location)').toBe('<module>');
      byLeaf.set(s.functions[0]!, (byLeaf.get(s.functions[0]!) ?? 0) + s.values[0]!);
    }
    const hot = [...byLeaf].sort((a, b) => b[1] - a[1])[0]!;
    expect(hot[0], JSON.stringify(Object.fromEntries(byLeaf))).toBe('work_three');
    const main = mainThread(fx.report);
    for (const s of decoded.samples) {
      expect(s.labels.pid).toBe(fx.pid);
      expect(s.labels['thread id']).toBe(main.ident);
      expect(s.labels['thread native id']).toBe(main.native_id);
      expect(s.labels['thread name']).toBe('MainThread');
    }

    const top = await goPprofTop(file);
    expect(top.rows.length, `go tool pprof -top output:\n${top.output}`).toBeGreaterThan(0);
    expect(top.rows[0]!.name, `top flat entry; output:\n${top.output}`).toBe('work_three');
    expect(top.output, 'total in the header').toMatch(new RegExp(`of ${summary.samples} total`));
  });
});

describe(`flags (record -p, ${HOST.id})`, () => {
  afterEach(async () => {
    await cleanupRecord();
    await killAllChildren();
  });

  it('--idle: a sleeping thread is sampled (in nap, time.sleep\'s caller) only with --idle', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'mixed');
    const without = leafFunctionCounts((await recordRaw(fx, [])).stacks, fx.script);
    const withIdle = leafFunctionCounts((await recordRaw(fx, ['--idle'])).stacks, fx.script);
    expect(without.get('nap') ?? 0, `without --idle: ${JSON.stringify(Object.fromEntries(without))}`).toBe(0);
    expect(without.get('work_three') ?? 0).toBeGreaterThan(0);
    // The napper sleeps all the time: with --idle it is in (nearly) every attempt.
    expect(withIdle.get('nap') ?? 0, `with --idle: ${JSON.stringify(Object.fromEntries(withIdle))}`).toBeGreaterThan(0.6 * 150);
    expect(withIdle.get('work_three') ?? 0).toBeGreaterThan(0);
  });

  it('--threads: a root frame "thread (TID): NAME" per thread', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'mixed');
    const { stacks } = await recordRaw(fx, ['--threads', '--idle']);
    const byRoot = new Map<string, number>();
    for (const s of stacks) {
      const root = s.frames[0]!;
      expect(root.thread, `root of ${s.frames.map((f) => f.label).join(';')}`).not.toBeNull();
      // HOST is 3.11: threads start in the qualified Thread._bootstrap.
      expect(s.frames[1]?.name, 'under the thread root').toMatch(/^(<module>|Thread\._bootstrap)$/);
      byRoot.set(root.label, (byRoot.get(root.label) ?? 0) + s.count);
    }
    const expected = fx.report.threads.map((t) => `thread (${t.native_id}): ${t.name}`).sort();
    expect([...byRoot.keys()].sort()).toEqual(expected);
    // The napper's stacks end in nap; MainThread's in its work.
    for (const s of stacks) {
      if (s.frames[0]!.thread!.name === 'napper') expect(s.frames[s.frames.length - 1]!.name).toBe('nap');
    }
  });

  it('--gil: only the thread holding the GIL, idle or not', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'mixed');
    const { stacks } = await recordRaw(fx, ['--gil', '--idle', '--threads']);
    const byThread = new Map<string, number>();
    for (const s of stacks) {
      const name = s.frames[0]!.thread?.name ?? '?';
      byThread.set(name, (byThread.get(name) ?? 0) + s.count);
    }
    const detail = JSON.stringify(Object.fromEntries(byThread));
    // The napper sleeps in one long time.sleep, which released the GIL.
    expect(byThread.get('napper') ?? 0, detail).toBe(0);
    expect(byThread.get('MainThread') ?? 0, detail).toBeGreaterThan(0.6 * 150);
    expect([...byThread.keys()].filter((k) => k !== 'napper' && k !== 'MainThread'), detail).toEqual([]);
  });

  it('--gil on a program that only sleeps: (near) zero samples', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'sleep');
    // Control: the same target with --idle is sampled all the time.
    const control = await recordRaw(fx, ['--idle'], 1);
    expect(control.summary.samples).toBeGreaterThan(50);
    expect(leafFunctionCounts(control.stacks, fx.script).get('nap')).toBe(control.summary.samples);

    const { res, file } = await recordPid(fx, 'raw', ['--gil'], 2);
    expectNoCrash(res, 'record --gil');
    if (res.code === 0) {
      const summary = parseSummary(res.stderr);
      expect(summary, res.stderr).not.toBeNull();
      expect(summary!.samples, 'samples with --gil of a sleeping program').toBeLessThanOrEqual(5);
      expect(totalCount(parseRaw(readFileSync(file, 'utf8')))).toBe(summary!.samples);
    } else {
      expect(res.code, `exit code; stderr: ${res.stderr}`).toBe(1);
      expect(res.stderr).toMatch(/sample/i);
      expect(existsSync(file), 'no file when there are no samples').toBe(false);
    }
  });

  it('-F labels frames with the function\'s first line, --nolineno with no line', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'ratio');
    const { work_three, work_one } = fx.report.functions;
    const byFunction = await recordRaw(fx, ['-F']);
    const noLines = await recordRaw(fx, ['--nolineno']);

    const labels = (stacks: RawStack[], name: string) =>
      new Set(stacks.flatMap((s) => s.frames.filter((f) => f.name === name).map((f) => f.label)));
    const shortFile = byFunction.stacks[0]!.frames[0]!.file!;
    expect(isPathSuffix(shortFile, fx.script)).toBe(true);
    expect([...labels(byFunction.stacks, 'work_three')]).toEqual([`work_three (${shortFile}:${work_three.first_line})`]);
    expect([...labels(byFunction.stacks, 'work_one')]).toEqual([`work_one (${shortFile}:${work_one.first_line})`]);
    expect([...labels(noLines.stacks, 'work_three')]).toEqual([`work_three (${shortFile})`]);
    expect([...labels(noLines.stacks, 'work_one')]).toEqual([`work_one (${shortFile})`]);
    for (const s of noLines.stacks) for (const f of s.frames) expect(f.line, f.label).toBeNull();
    // One line per distinct stack: without lines, MainThread's stacks collapse to a handful.
    expect(noLines.stacks.length).toBeLessThanOrEqual(6);
  });

  it('--full-filenames: labels carry the path as the interpreter sees it', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'ratio');
    const { stacks } = await recordRaw(fx, ['--full-filenames']);
    const files = new Set(stacks.flatMap((s) => s.frames.map((f) => f.file)));
    expect([...files]).toEqual([fx.script]);
    expect(path.isAbsolute(fx.script)).toBe(true);
  });

  it('--nonblocking: the target is never stopped nor traced (unlike with --blocking)', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'ratio');
    /** Records for 1.5 s while polling the target's state; returns the states seen and how often. */
    const watch = async (extra: string[]) => {
      const file = path.join(outputDir(), 'watched.txt');
      const cli = startCli(['record', '-p', String(fx.pid), '-o', file, '-f', 'raw', '-d', '1.5', ...extra]);
      const seen = new Map<string, number>();
      let exited = false;
      cli.result.then(
        () => (exited = true),
        () => (exited = true),
      );
      while (!exited) {
        const key = `${procStat(fx.pid)?.state}/${tracerPid(fx.pid)}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        await new Promise((r) => setImmediate(r));
      }
      expectWritten(await cli.result, file, 'raw', `record ${extra.join(' ')}`);
      return seen;
    };
    const blocking = await watch(['--blocking']);
    const nonblocking = await watch(['--nonblocking']);
    // Control: the same polling does see the pauses of a --blocking recording (every sample pauses).
    const paused = [...blocking].filter(([k]) => !k.endsWith('/0') || k.startsWith('t') || k.startsWith('T'));
    expect(paused.length, `states seen while recording (--blocking): ${JSON.stringify(Object.fromEntries(blocking))}`).toBeGreaterThan(0);
    const states = JSON.stringify(Object.fromEntries(nonblocking));
    expect([...nonblocking.keys()].every((k) => /^[RS]\/0$/.test(k)), `states seen with --nonblocking: ${states}`).toBe(true);
  });

  it('-d and -r are honoured: samples ≈ duration × rate (60-110%)', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'ratio');
    const started = Date.now();
    const { summary } = await recordRaw(fx, ['-r', '50'], 3);
    const elapsed = Date.now() - started;
    // One busy thread: one sample per attempt.
    expect(summary.samples).toBeGreaterThanOrEqual(0.6 * 150);
    expect(summary.samples).toBeLessThanOrEqual(1.1 * 150);
    // It cannot have stopped before the duration was up.
    expect(elapsed).toBeGreaterThanOrEqual(2900);
    expectTargetReleased(fx.pid, 'after record -d');
  });

  it('no samples (a sleeping program without --idle): a message, exit 1, no file', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'sleep');
    const { res, file } = await recordPid(fx, 'flamegraph', [], 1);
    expectNoCrash(res, 'record');
    expect(res.code, `exit code; stderr: ${res.stderr}`).toBe(1);
    expect(res.stderr).toMatch(/sample/i);
    expect(parseSummary(res.stderr), 'no "Wrote" line').toBeNull();
    expect(existsSync(file), 'no file').toBe(false);
    expect(readdirSync(path.dirname(file)), 'nothing left in the output directory').toEqual([]);
    expectTargetReleased(fx.pid, 'after a recording without samples');
  });
});

describe(`how recording ends (${HOST.id})`, () => {
  afterEach(async () => {
    await cleanupRecord();
    await killAllChildren();
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s while recording by pid: writes the file and exits 0',
    { timeout: TIMEOUT },
    async (signal) => {
      const fx = await startFixture(HOST, 'ratio');
      const file = path.join(outputDir(), 'stopped.txt');
      const cli = startCli(['record', '-p', String(fx.pid), '-o', file, '-f', 'raw']);
      await waitForSampler(cli.pid);
      await sleep(1000);
      expect(cli.child.kill(signal)).toBe(true);
      const res = await cli.result;
      const summary = expectWritten(res, file, 'raw', `record stopped by ${signal}`);
      expect(totalCount(parseRaw(readFileSync(file, 'utf8')))).toBe(summary.samples);
      expectTargetReleased(fx.pid, `after ${signal}`);
    },
  );

  it('Ctrl-C (SIGINT to the process group) while recording a launched command: writes the file, exits with its code', { timeout: TIMEOUT }, async () => {
    const file = path.join(outputDir(), 'ctrl-c.txt');
    const code = [
      'import os, sys',
      'print("READY %d" % os.getpid(), flush=True)',
      'try:',
      '    n = 0',
      // (Not `while True: pass`: 3.11 does not catch a KeyboardInterrupt raised in that loop.)
      '    while True: n += 1',
      'except KeyboardInterrupt:',
      '    sys.exit(4)',
    ].join('\n');
    // Its own process group, like a foreground job in a terminal: Ctrl-C reaches the CLI and the command.
    const cli = startCli(['record', '-o', file, '-f', 'raw', '--', ...HOST.argv, '-c', code], { group: true });
    await waitForSampler(cli.pid);
    while (!/^READY \d+$/m.test(cli.stdout())) {
      if (cli.child.exitCode !== null) break;
      await sleep(20);
    }
    await sleep(1000);
    process.kill(-cli.pid, 'SIGINT');
    const res = await cli.result;
    const summary = expectWritten(res, file, 'raw', 'record -- python (Ctrl-C)', 4);
    expect(totalCount(parseRaw(readFileSync(file, 'utf8')))).toBe(summary.samples);
  });

  it('the target killed (SIGKILL) mid-record: exit 0 and a valid file', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'mixed');
    const file = path.join(outputDir(), 'killed.json');
    const cli = startCli(['record', '-p', String(fx.pid), '-o', file, '-f', 'speedscope', '--idle']);
    await waitForSampler(cli.pid);
    await sleep(1000);
    await fx.kill();
    const res = await cli.result;
    const summary = expectWritten(res, file, 'speedscope', 'record of a target that was killed');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as SpeedscopeFile;
    expect(speedscopeProblems(doc)).toEqual([]);
    // One profile per thread (--idle: the sleeping napper too), named as py-spy names them.
    const names = fx.report.threads.map((t) => `Thread ${t.native_id} "${t.name}"`).sort();
    expect(doc.profiles.map((p) => p.name).sort()).toEqual(names);
    const weight = doc.profiles.reduce((n, p) => n + p.weights.reduce((a, b) => a + b, 0), 0);
    expect(weight * 100).toBeCloseTo(summary.samples, 3);
  });

  it('the launched command\'s exit code passes through (sys.exit(7))', { timeout: TIMEOUT }, async () => {
    const file = path.join(outputDir(), 'exit7.txt');
    const code = 'import sys, time\nt = time.time()\nwhile time.time() - t < 3: pass\nsys.exit(7)';
    const res = await runCli(['record', '-o', file, '-f', 'raw', '--', ...HOST.argv, '-c', code]);
    const summary = expectWritten(res, file, 'raw', 'record -- python -c ...', 7);
    const stacks = parseRaw(readFileSync(file, 'utf8'));
    expect(totalCount(stacks)).toBe(summary.samples);
    // Most in the busy line: the rest catch the interpreter starting up (importing site), which
    // takes a larger share when the machine is loaded.
    const busy = stacks.filter((s) => s.frames.length === 1 && s.frames[0]!.label === '<module> (<string>:3)');
    expect(totalCount(busy), JSON.stringify(stacks.map((s) => [s.frames.map((f) => f.label).join(';'), s.count]))).toBeGreaterThanOrEqual(
      0.6 * summary.samples,
    );
  });
});

describe.each([HOST, CHROOT].map((i) => [i.id, i] as const))('launching a script (%s)', (_id, interp) => {
  afterEach(async () => {
    await cleanupRecord();
    await killAllChildren();
  });

  it('record -- python record_target.py: samples its functions, exits with its code (3)', { timeout: TIMEOUT }, async () => {
    const file = path.join(outputDir(), 'launched.txt');
    const cmd = launchCommand(interp, RECORD_FIXTURE, (scratch) => [
      ...['--mode', 'ratio', '--lifetime', '2.5', '--exit-code', '3', '--report', `${scratch}/report.json`],
    ]);
    const res = await runCli(['record', '-o', file, '-f', 'raw', '--', ...cmd.argv]);
    const summary = expectWritten(res, file, 'raw', `record -- ${cmd.argv.join(' ')}`, 3);
    expect(res.stdout, 'the command\'s own output').toMatch(/^READY /m);
    const stacks = parseRaw(readFileSync(file, 'utf8'));
    expect(totalCount(stacks)).toBe(summary.samples);
    // About 2.5 s of a busy program at 100 Hz (calibration included).
    expect(summary.samples).toBeGreaterThan(100);
    expect(summary.samples).toBeLessThanOrEqual(1.1 * 100 * 4);
    const counts = leafFunctionCounts(stacks, cmd.script);
    expect(counts.get('work_three') ?? 0, JSON.stringify(Object.fromEntries(counts))).toBeGreaterThan(counts.get('work_one') ?? 0);
    expect(counts.get('work_one') ?? 0).toBeGreaterThan(0);
  });
});
