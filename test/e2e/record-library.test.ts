// `record()` and `sample()` from the pyspy-node library, against
// test/fixtures/record_target.py under the host's static 3.11 (and
// `record()` of a launched command in the 3.14 chroot): stopping with an
// AbortSignal, durations, launched commands, the `Profile` API, the sample
// iterator and what breaking out of it leaves behind, unsupported options,
// and a Node process that must exit by itself once it is done.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  killAllChildren,
  loadMatrix,
  procStat,
  REPO_ROOT,
  settleWithin,
  spawnFixture,
  type Interpreter,
  type RunningFixture,
} from '../helpers/pythons.js';
import {
  cleanupRecord,
  interpreter,
  isPathSuffix,
  launchCommand,
  leafFunctionCounts,
  outputDir,
  parseRaw,
  RECORD_FIXTURE,
  sleep,
  speedscopeProblems,
  threadNames,
  totalCount,
  tracerPid,
  type RecordTargetReport,
  type SpeedscopeFile,
} from '../helpers/record.js';

const TIMEOUT = 120_000;
const matrix = loadMatrix();
const HOST = interpreter(matrix, 'debian-3.11');
const CHROOT = interpreter(matrix, 'debian-3.14');

type Fixture = RunningFixture<RecordTargetReport>;

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

async function library() {
  // Imported in the tests so that a package that fails to load fails them, not the file.
  return import('pyspy-node');
}

function startFixture(interp: Interpreter, mode: 'ratio' | 'mixed' | 'sleep'): Promise<Fixture> {
  return spawnFixture<RecordTargetReport>(interp, RECORD_FIXTURE, ['--mode', mode], { via: 'shell' });
}

/** Waits (bounded) until this process has a pyspy-sampler thread, i.e. is really sampling. */
async function waitForOwnSampler(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!threadNames(process.pid).includes('pyspy-sampler')) {
    if (Date.now() > deadline) throw new Error('no pyspy-sampler thread in this process after 60 s');
    await sleep(20);
  }
}

/** Waits (bounded, 10 s) until this process has no pyspy-sampler thread; returns whether it got there. */
async function samplerGone(): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (threadNames(process.pid).includes('pyspy-sampler')) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** The rejection of `promise`, or a failure if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: unknown }> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return err as Error & { code?: unknown };
  }
  throw new Error('expected a rejection, but it resolved');
}

describe(`record() (${HOST.id})`, () => {
  it('stopped by an AbortSignal: resolves with the samples so far', { timeout: TIMEOUT }, async () => {
    const { record } = await library();
    const fx = await startFixture(HOST, 'ratio');
    const controller = new AbortController();
    const progress: number[] = [];
    const recording = record({ pid: fx.pid, signal: controller.signal, onProgress: (p) => progress.push(p.samples) });
    await waitForOwnSampler();
    await sleep(1000);
    controller.abort();
    const profile = await settleWithin(recording, 30_000, 'record() after abort', fx.pid);

    expect(profile.reason).toBe('stopped');
    expect(profile.samples).toBeGreaterThan(0);
    expect(profile.pid).toBe(fx.pid);
    expect(profile.pythonVersion).toBe(fx.report.version_info.join('.'));
    expect(profile.exitCode ?? null, 'no exit code when attached').toBeNull();
    expect(profile.durationMs).toBeGreaterThan(500);
    expect(progress.length, 'onProgress was called').toBeGreaterThan(0);
    expect(progress.every((n, i) => i === 0 || n >= progress[i - 1]!), `progress never goes back: ${progress}`).toBe(true);

    // stacks(): root first, counts add up, thread identity as the fixture reported it.
    const main = fx.report.threads.find((t) => t.name === 'MainThread')!;
    const stacks = profile.stacks();
    expect(stacks.samples).toBe(profile.samples);
    expect(stacks.errors).toBe(profile.errors);
    expect(totalCount(stacks.stacks)).toBe(profile.samples);
    for (const s of stacks.stacks) {
      expect(s.pid).toBe(fx.pid);
      expect(s.threadId).toBe(main.ident);
      expect(s.osThreadId).toBe(main.native_id);
      expect(s.threadName).toBe('MainThread');
      expect(s.frames[0]!.name, 'root frame first').toBe('<module>');
      for (const f of s.frames) {
        expect(f.filename).toBe(fx.script);
        expect(isPathSuffix(f.shortFilename, f.filename)).toBe(true);
        expect(f.line).toBeGreaterThan(0);
        expect(f.firstLine).toBeGreaterThan(0);
      }
    }
    const leafs = leafFunctionCounts(
      stacks.stacks.map((s) => ({ count: s.count, frames: s.frames.map((f) => ({ name: f.name, file: f.filename })) })),
      fx.script,
    );
    expect(leafs.get('work_three') ?? 0, JSON.stringify(Object.fromEntries(leafs))).toBeGreaterThan(leafs.get('work_one') ?? 0);
    const three = stacks.stacks.flatMap((s) => s.frames).filter((f) => f.name === 'work_three');
    for (const f of three) expect(f.firstLine).toBe(fx.report.functions.work_three.first_line);

    // encode / toString / writeFile agree.
    const raw = profile.encode('raw');
    expect(Buffer.isBuffer(raw)).toBe(true);
    expect(profile.toString('raw')).toBe(raw.toString('utf8'));
    expect(totalCount(parseRaw(raw.toString('utf8')))).toBe(profile.samples);
    const file = path.join(outputDir(), 'profile.json');
    await profile.writeFile(file, 'speedscope');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as SpeedscopeFile;
    expect(speedscopeProblems(doc)).toEqual([]);

    expect(await samplerGone(), 'the sampler thread ended').toBe(true);
    expect(procStat(fx.pid)?.state).toMatch(/^[RS]$/);
    expect(tracerPid(fx.pid)).toBe(0);
  });

  it('duration: ends by itself with about duration × rate samples', { timeout: TIMEOUT }, async () => {
    const { record } = await library();
    const fx = await startFixture(HOST, 'ratio');
    const profile = await settleWithin(record({ pid: fx.pid, duration: 2, rate: 100 }), 60_000, 'record({ duration: 2 })', fx.pid);
    expect(profile.reason).toBe('duration');
    expect(profile.samples).toBeGreaterThanOrEqual(0.6 * 200);
    expect(profile.samples).toBeLessThanOrEqual(1.1 * 200);
    expect(profile.durationMs).toBeGreaterThanOrEqual(1500);
    expect(profile.durationMs).toBeLessThanOrEqual(3000);
  });

  it('options reach the sampler: threads, idle, function, fullFilenames, gil', { timeout: TIMEOUT }, async () => {
    const { record } = await library();
    const fx = await startFixture(HOST, 'mixed');
    const profile = await settleWithin(
      record({ pid: fx.pid, duration: 1, threads: true, idle: true, function: true, fullFilenames: true }),
      60_000,
      'record({ threads, idle, function, fullFilenames })',
      fx.pid,
    );
    const stacks = profile.stacks().stacks;
    expect(totalCount(stacks)).toBe(profile.samples);
    // threads: a synthetic root frame per thread; idle: the sleeping napper is there.
    const roots = new Set(stacks.map((s) => s.frames[0]!.name));
    expect([...roots].sort()).toEqual(fx.report.threads.map((t) => `thread (${t.native_id}): ${t.name}`).sort());
    for (const s of stacks) {
      expect(s.frames[0]!.filename, 'the thread root has no file').toBe('');
      for (const f of s.frames.slice(1)) {
        // function: the line shown is the function's first line; fullFilenames: labels carry the path.
        expect(f.line, `${f.name} line`).toBe(f.firstLine);
        if (f.filename === fx.script) expect(f.shortFilename, `${f.name} shortFilename`).toBe(fx.script);
      }
    }
    const nap = stacks.filter((s) => s.threadName === 'napper');
    expect(totalCount(nap), 'napper samples (idle)').toBeGreaterThan(0);
    expect(nap.every((s) => s.frames[s.frames.length - 1]!.name === 'nap')).toBe(true);

    // gil: only MainThread, which holds it.
    const gil = await settleWithin(record({ pid: fx.pid, duration: 1, gil: true, idle: true }), 60_000, 'record({ gil, idle })', fx.pid);
    const threads = new Set(gil.stacks().stacks.map((s) => s.threadName));
    expect([...threads]).toEqual(['MainThread']);
  });

  it('a pid that does not exist rejects with a PyspyError (ENOPROCESS)', { timeout: TIMEOUT }, async () => {
    const { record, PyspyError } = await library();
    const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    let pid = max - 1;
    while (procStat(pid)) pid--;
    const err = await rejection(settleWithin(record({ pid, duration: 1 }), 30_000, 'record() of a missing pid'));
    expect(err).toBeInstanceOf(PyspyError);
    expect(err.code).toBe('ENOPROCESS');
  });

  // native stacks are read paused: with nonblocking they are refused (test/e2e/native*.test.ts test native itself).
  it('native with nonblocking rejects with EINVAL (record and sample)', { timeout: TIMEOUT }, async () => {
    const { record, sample, PyspyError } = await library();
    const fx = await startFixture(HOST, 'sleep');
    for (const opt of [{ native: true, nonblocking: true }]) {
      const what = JSON.stringify(opt);
      const err = await rejection(settleWithin(record({ pid: fx.pid, duration: 1, ...opt }), 30_000, `record(${what})`));
      expect(err, what).toBeInstanceOf(PyspyError);
      expect(err.code, `record(${what}): ${err.message}`).toBe('EINVAL');
      expect(err.message).toMatch(/paused/);
      const iterate = async () => {
        for await (const _batch of sample({ pid: fx.pid, interval: 100, ...opt })) break;
      };
      const err2 = await rejection(settleWithin(iterate(), 30_000, `sample(${what})`));
      expect(err2.code, `sample(${what}): ${err2.message}`).toBe('EINVAL');
    }
    expect(await samplerGone()).toBe(true);
  });
});

describe.each([HOST, CHROOT].map((i) => [i.id, i] as const))('record({ command }) (%s)', (_id, interp) => {
  it('records a launched script until it exits, with its exit code', { timeout: TIMEOUT }, async () => {
    const { record } = await library();
    const cmd = launchCommand(interp, RECORD_FIXTURE, (scratch) => [
      ...['--mode', 'ratio', '--lifetime', '2', '--exit-code', '5', '--report', `${scratch}/report.json`],
    ]);
    const profile = await settleWithin(record({ command: cmd.argv }), 60_000, `record({ command: ${cmd.argv.join(' ')} })`);
    expect(profile.reason).toBe('exited');
    expect(profile.exitCode).toBe(5);
    expect(profile.exitSignal ?? null).toBeNull();
    expect(profile.pid).not.toBe(process.pid);
    expect(profile.pythonVersion).toBe(interp.version);
    expect(profile.samples).toBeGreaterThan(50);
    const stacks = profile.stacks().stacks;
    expect(totalCount(stacks)).toBe(profile.samples);
    const leafs = leafFunctionCounts(
      stacks.map((s) => ({ count: s.count, frames: s.frames.map((f) => ({ name: f.name, file: f.filename })) })),
      cmd.script,
    );
    expect(leafs.get('work_three') ?? 0, JSON.stringify(Object.fromEntries(leafs))).toBeGreaterThan(0);
    expect(await samplerGone()).toBe(true);
  });
});

describe(`sample() (${HOST.id})`, () => {
  it('yields batches; breaking the loop stops sampling and releases the target', { timeout: TIMEOUT }, async () => {
    const { sample } = await library();
    const fx = await startFixture(HOST, 'ratio');
    const batches: { samples: number; errors: number; total: number }[] = [];
    const loop = async () => {
      for await (const batch of sample({ pid: fx.pid, interval: 200 })) {
        batches.push({ samples: batch.samples, errors: batch.errors, total: totalCount(batch.stacks) });
        for (const s of batch.stacks) expect(s.frames[0]!.name).toBe('<module>');
        if (batches.length >= 4) break;
      }
    };
    await settleWithin(loop(), 60_000, 'sample() loop', fx.pid);
    expect(batches).toHaveLength(4);
    for (const b of batches) expect(b.total, JSON.stringify(b)).toBe(b.samples);
    expect(batches.reduce((n, b) => n + b.samples, 0), JSON.stringify(batches)).toBeGreaterThan(0);

    // Once the loop is left: the target runs on, untraced, and the sampler is gone.
    expect(procStat(fx.pid)?.state, 'target after the loop').toMatch(/^[RS]$/);
    expect(tracerPid(fx.pid), 'target TracerPid after the loop').toBe(0);
    expect(await samplerGone(), 'the sampler thread ended').toBe(true);
    // And nothing samples it any more: it is never stopped or traced again.
    for (let i = 0; i < 20; i++) {
      await sleep(25);
      expect(tracerPid(fx.pid)).toBe(0);
    }
  });
});

describe('a Node program that records and samples then exits by itself', () => {
  it('exits with code 0, leaving no pyspy-sampler thread behind', { timeout: TIMEOUT }, async () => {
    const fx = await startFixture(HOST, 'ratio');
    const script = `
      import { readdirSync, readFileSync } from 'node:fs';
      import { record, sample } from 'pyspy-node';
      const pid = Number(process.argv[1]);
      const samplers = () => readdirSync('/proc/self/task')
        .filter((t) => { try { return readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'pyspy-sampler'; } catch { return false; } })
        .length;
      const profile = await record({ pid, duration: 1 });
      let batches = 0;
      for await (const batch of sample({ pid, interval: 100 })) {
        if (++batches >= 3) break;
      }
      // Give a finishing thread a moment (at most 2 s).
      for (let i = 0; i < 100 && samplers() > 0; i++) await new Promise((r) => setTimeout(r, 20));
      console.log(JSON.stringify({ samples: profile.samples, reason: profile.reason, batches, samplers: samplers() }));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(fx.pid)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    try {
      const [code, signal] = await settleWithin(
        new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s]))),
        20_000,
        'the Node program (it should exit by itself once done)',
      );
      expect({ code, signal }, `stderr: ${stderr}\nstdout: ${stdout}`).toEqual({ code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { samples: number; reason: string; batches: number; samplers: number };
    expect(result.samples).toBeGreaterThan(0);
    expect(result.reason).toBe('duration');
    expect(result.batches).toBe(3);
    expect(result.samplers, 'pyspy-sampler threads left when the program was done').toBe(0);
    expect(procStat(fx.pid)?.state).toMatch(/^[RS]$/);
    expect(tracerPid(fx.pid)).toBe(0);
  });
});
