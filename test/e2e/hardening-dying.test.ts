// Hardening: dying targets and a dying profiler (issue 10).
//
// - The target is killed (SIGKILL) at random moments while dump() calls run
//   back to back (paused and nonblocking, ptrace-paused and own-child
//   SIGSTOP-paused targets): every call settles, and every failure is
//   EEXITED or ENOPROCESS.
// - The target is killed while record() samples it (and while the CLI's
//   `record` does): the recording ends with reason 'exited' and a valid
//   profile of the samples taken, in every format.
// - The profiler itself is killed (SIGTERM, SIGINT, SIGKILL) while it keeps
//   a target paused: the target always runs again, untraced. (A target that
//   is not the profiler's child is paused with ptrace, and the kernel
//   detaches a dead tracer's tracees. A target that is the profiler's own
//   child is paused with SIGSTOP instead, which the kernel does not undo:
//   a helper process that outlives the profiler does, see pyspy-process's
//   resumer.rs. Both kinds are tested.)
//
// Kill moments come from a seeded generator; the seed is printed, and
// PYSPY_HARDENING_SEED replays it. Counts are small for `npm test`; raise
// them locally with PYSPY_HARDENING_KILL_LOOPS (scales every loop).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  describeProcess,
  FIXTURES_DIR,
  killAllChildren,
  loadMatrix,
  procStat,
  REPO_ROOT,
  runCli,
  settleWithin,
  spawnFixture,
  type RunningFixture,
} from '../helpers/pythons.js';
import {
  cleanupRecord,
  interpreter,
  outputDir,
  parseRaw,
  sleep,
  speedscopeProblems,
  totalCount,
  tracerPid,
  type SpeedscopeFile,
} from '../helpers/record.js';

const TIMEOUT = 240_000;
const SCALE = Number(process.env.PYSPY_HARDENING_KILL_LOOPS ?? 1);
/** Profilers killed while they pause their own child: SIGTERM, SIGINT, SIGKILL in turn. */
const OWN_CHILD_KILLS = Math.round(6 * SCALE);
/** Targets killed during dump() calls. */
const DUMP_KILLS = Math.round(20 * SCALE);
/** Targets killed during record(). */
const RECORD_KILLS = Math.round(8 * SCALE);
/** Profilers killed while they pause a target: SIGTERM, SIGINT, SIGKILL in turn. */
const PROFILER_KILLS = Math.round(12 * SCALE);
const SEED = Number(process.env.PYSPY_HARDENING_SEED ?? Date.now() % 2 ** 31);

const HOST = interpreter(loadMatrix(), 'debian-3.11');
const FIXTURE = 'hardening_snapshot.py';

interface HardeningReport {
  pid: number;
  thread_count: number;
}
type Fixture = RunningFixture<HardeningReport>;

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

async function library() {
  return import('pyspy-node');
}

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function start(via: 'child' | 'shell', busy: boolean): Promise<Fixture> {
  return spawnFixture<HardeningReport>(HOST, FIXTURE, [...(busy ? ['--busy'] : []), '--lifetime', '300', '--depth', '50'], {
    via,
  });
}

/** user + system CPU ticks of `pid`, or null when it is gone. */
function cpuTicks(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

/** Waits (bounded) until `pid` is neither stopped nor traced; returns what it last saw. */
async function waitRunning(pid: number, ms = 3000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const st = procStat(pid);
    if (st && !['t', 'T'].includes(st.state) && tracerPid(pid) === 0) return 'running';
    if (Date.now() > deadline) return describeProcess(pid);
    await sleep(10);
  }
}

/** Polls (busily, at most `ms`) until `pid` is in a stop; returns whether it was seen stopped. */
function catchPaused(pid: number, ms: number): boolean {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (['t', 'T'].includes(procStat(pid)?.state ?? '')) return true;
  }
  return false;
}

/** Resolves with the exit of `child` (code or signal), bounded. */
function exitOf(child: ChildProcess, what: string): Promise<string> {
  return settleWithin(
    new Promise<string>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(String(child.signalCode ?? child.exitCode));
      else child.once('exit', (code, signal) => resolve(String(signal ?? code)));
    }),
    20_000,
    what,
  );
}

describe('dying targets', () => {
  it(`dump(): the target SIGKILLed at random moments (${DUMP_KILLS} targets)`, { timeout: TIMEOUT }, async () => {
    const { dump } = await library();
    const rand = generator(SEED);
    const codes = new Map<string, number>();
    let ok = 0;
    for (let i = 0; i < DUMP_KILLS; i++) {
      const fx = await start(i % 2 === 0 ? 'shell' : 'child', i % 3 === 0);
      const killAfter = rand() * 40;
      // Three callers at once: two paused reads, one nonblocking.
      const callers = [false, false, true].map(async (nonblocking): Promise<Error & { code?: string }> => {
        for (let j = 0; j < 10_000; j++) {
          try {
            await settleWithin(dump(fx.pid, { nonblocking }), 30_000, `dump of a dying target (seed ${SEED})`, fx.pid);
            ok++;
          } catch (err) {
            return err as Error & { code?: string };
          }
        }
        return new Error('the target never died');
      });
      const timer = setTimeout(() => process.kill(fx.pid, 'SIGKILL'), killAfter);
      const errors = await Promise.all(callers);
      clearTimeout(timer);
      for (const err of errors) {
        const code = String(err.code);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        expect(['EEXITED', 'ENOPROCESS'], `seed ${SEED}, target ${i} (killed after ${killAfter.toFixed(1)} ms): ${code}: ${err.message}`).toContain(code);
        expect(err.message).not.toContain('\n');
      }
      await fx.kill();
    }
    console.log(`dump kills (seed ${SEED}): ${ok} dumps succeeded first; failures ${JSON.stringify(Object.fromEntries(codes))}`);
  });

  it(`record(): the target SIGKILLed while sampled (${RECORD_KILLS} targets): every profile is complete`, { timeout: TIMEOUT }, async () => {
    const { record } = await library();
    const rand = generator(SEED + 1);
    const summary: string[] = [];
    for (let i = 0; i < RECORD_KILLS; i++) {
      const fx = await start(i % 2 === 0 ? 'shell' : 'child', true);
      const blocking = i % 2 === 1;
      const recording = record({ pid: fx.pid, rate: 250, blocking });
      const killAfter = 150 + rand() * 500;
      await sleep(killAfter);
      process.kill(fx.pid, 'SIGKILL');
      const profile = await settleWithin(recording, 30_000, `record() of a killed target (seed ${SEED})`, fx.pid);
      const what = `seed ${SEED}, target ${i} (${blocking ? 'blocking' : 'default'}, killed after ${killAfter.toFixed(0)} ms)`;
      expect(profile.reason, what).toBe('exited');
      expect(profile.samples, what).toBeGreaterThan(0);
      expect(totalCount(profile.stacks().stacks), what).toBe(profile.samples);
      // Every format encodes the samples taken.
      const raw = parseRaw(profile.toString('raw'));
      expect(totalCount(raw), what).toBe(profile.samples);
      expect(raw.every((s) => s.frames.length > 0)).toBe(true);
      const speedscope = JSON.parse(profile.toString('speedscope')) as SpeedscopeFile;
      expect(speedscopeProblems(speedscope), what).toEqual([]);
      expect(profile.toString('flamegraph')).toMatch(/^<\?xml[\s\S]*<svg[\s\S]*<\/svg>\s*$/);
      expect(profile.encode('pprof').length, what).toBeGreaterThan(100);
      expect(JSON.parse(profile.toString('chrometrace'))).toBeTruthy();
      summary.push(`${profile.samples}+${profile.errors}e`);
      await fx.kill();
    }
    console.log(`record kills (seed ${SEED}): samples+errors per profile ${summary.join(' ')}`);
  });

  it('CLI record: the target SIGKILLed while sampled writes a valid file', { timeout: TIMEOUT }, async () => {
    for (const blocking of [false, true]) {
      const fx = await start('shell', true);
      const file = path.join(outputDir(), 'profile.txt');
      const args = ['record', '--pid', String(fx.pid), '--rate', '250', '--format', 'raw', '--output', file];
      const cli = runCli(blocking ? [...args, '--blocking'] : args);
      await sleep(1500);
      process.kill(fx.pid, 'SIGKILL');
      const res = await cli;
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toContain('Stopped sampling because the process exited');
      const stacks = parseRaw(readFileSync(file, 'utf8'));
      expect(totalCount(stacks)).toBeGreaterThan(0);
      await fx.kill();
    }
  });
});

describe('a dying profiler', () => {
  // A Node process that keeps the target paused as much as it can: dumpSync
  // in a loop (attach, pause, read, resume), or a 1 kHz blocking recording.
  const profilerCode = (how: 'dumps' | 'record') => `
    import { dumpSync, record } from 'pyspy-node';
    const pid = Number(process.argv[1]);
    dumpSync(pid);
    process.stdout.write('READY\\n');
    if (${JSON.stringify(how)} === 'dumps') for (;;) dumpSync(pid);
    else await record({ pid, rate: 1000, blocking: true });
  `;

  it(`SIGTERM, SIGINT or SIGKILL to the profiler mid-pause: the target runs again (${PROFILER_KILLS} kills)`, { timeout: TIMEOUT }, async () => {
    const rand = generator(SEED + 2);
    // Not the profiler's child: paused with ptrace.
    const fx = await start('shell', true);
    const signals = ['SIGTERM', 'SIGINT', 'SIGKILL'] as const;
    let whilePaused = 0;
    for (let i = 0; i < PROFILER_KILLS; i++) {
      const signal = signals[i % 3]!;
      const how = i % 2 === 0 ? 'dumps' : 'record';
      const profiler = spawn(process.execPath, ['--input-type=module', '-e', profilerCode(how), String(fx.pid)], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      profiler.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      await settleWithin(
        new Promise<void>((resolve, reject) => {
          profiler.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('READY') && resolve());
          profiler.once('exit', (code) => reject(new Error(`profiler exited (${code}) before READY: ${stderr}`)));
        }),
        30_000,
        'profiler start',
      );
      await sleep(20 + rand() * 200);
      // Most times, wait (a bounded busy poll) until the target is seen
      // paused, and kill the profiler right then.
      const paused = i % 4 !== 3 && catchPaused(fx.pid, 1000);
      if (paused) whilePaused++;
      profiler.kill(signal);
      const ended = await exitOf(profiler, `profiler after ${signal}`);
      const what = `seed ${SEED}, kill ${i}: ${how} profiler ended by ${ended}`;
      expect(ended, what).toBe(signal);
      expect(await waitRunning(fx.pid), what).toBe('running');
      const before = cpuTicks(fx.pid)!;
      await sleep(300);
      expect(cpuTicks(fx.pid)! - before, `${what}: the busy target's CPU time moves on`).toBeGreaterThan(0);
    }
    console.log(`profiler kills (seed ${SEED}): ${PROFILER_KILLS}, ${whilePaused} with the target seen paused just before`);
  });
  it(`... and when the target is the profiler's own child, paused with SIGSTOP (${OWN_CHILD_KILLS} kills)`, { timeout: TIMEOUT }, async () => {
    const rand = generator(SEED + 3);
    const signals = ['SIGTERM', 'SIGINT', 'SIGKILL'] as const;
    // The profiler starts the target itself, then keeps it paused as much as it can.
    const code = `
      import { spawn } from 'node:child_process';
      import { dumpSync } from 'pyspy-node';
      const [python, script] = process.argv.slice(1);
      const child = spawn(python, [script, '--busy', '--lifetime', '120', '--depth', '50'], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve) => child.stdout.on('data', (d) => String(d).includes('READY') && resolve()));
      dumpSync(child.pid);
      process.stdout.write('CHILD ' + child.pid + '\\n');
      for (;;) dumpSync(child.pid);
    `;
    const orphans: number[] = [];
    let whilePaused = 0;
    try {
      for (let i = 0; i < OWN_CHILD_KILLS; i++) {
        const signal = signals[i % 3]!;
        const profiler = spawn(process.execPath, ['--input-type=module', '-e', code, HOST.argv[0]!, path.join(FIXTURES_DIR, FIXTURE)], {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        profiler.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const target = await settleWithin(
          new Promise<number>((resolve, reject) => {
            profiler.stdout.setEncoding('utf8').on('data', (d: string) => {
              const m = /CHILD (\d+)/.exec(d);
              if (m) resolve(Number(m[1]));
            });
            profiler.once('exit', (c) => reject(new Error(`profiler exited (${c}) before its child was ready: ${stderr}`)));
          }),
          60_000,
          'profiler start',
        );
        orphans.push(target);
        await sleep(rand() * 100);
        if (catchPaused(target, 1000)) whilePaused++;
        profiler.kill(signal);
        const ended = await exitOf(profiler, `profiler after ${signal}`);
        const what = `seed ${SEED}, kill ${i}: profiler of its own child ${target} ended by ${ended}`;
        expect(ended, what).toBe(signal);
        expect(await waitRunning(target), what).toBe('running');
        const before = cpuTicks(target)!;
        await sleep(300);
        expect(cpuTicks(target)! - before, `${what}: the busy target's CPU time moves on`).toBeGreaterThan(0);
        process.kill(target, 'SIGKILL');
      }
    } finally {
      for (const pid of orphans) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    expect(whilePaused, 'killed while the child was stopped at least once').toBeGreaterThan(0);
    console.log(`own-child profiler kills (seed ${SEED}): ${OWN_CHILD_KILLS}, ${whilePaused} with the child seen stopped just before`);
  });
});
