// Thread status under load (issue 16): a thread waiting to take the GIL back
// is active (`gil_wait`), never idle; a thread blocked on anything else is
// idle; the thread running a garbage collection gets `<GC>` leaf frames.
//
// test/fixtures/gil_contention.py runs 4 pure-Python spinners (each at any
// moment holds the GIL or waits for it), a sleeper (time.sleep(1000)) and a
// thread blocked on a Lock the main thread holds (a futex that is not the
// GIL's). Two CPU-burning shells run for the whole file, so the spinners also
// wait for CPUs. On every interpreter of the matrix:
// - 200 consecutive dumps (paused, the default): no spinner is ever idle,
//   some are seen waiting for the GIL, the sleeper and the lock waiter are
//   idle every time;
// - 100 consecutive nonblocking dumps: the same (the scheduler state plus
//   the futex a blocked thread waits on);
// - `record` without --idle: each spinner gets 20-30% of the samples, the
//   sleeper and the lock waiter none.
// With --gc (3.3+, which has gc.callbacks), the fixture's gc-maker thread
// allocates reference cycles and times each collection with gc.callbacks:
// the share of its samples with a `<GC>` leaf must be within ±5 points of
// the share of wall time it spent collecting; with --no-gc-frames, no `<GC>`.
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { ProcessDump } from 'pyspy-node';

import {
  killAllChildren,
  runCli,
  spawnFixture,
  spawnTracked,
  supportedInterpreters,
  type Interpreter,
  type TrackedChild,
} from '../helpers/pythons.js';
import { cleanupRecord, outputDir, parseRaw, totalCount } from '../helpers/record.js';

interface ContentionReport {
  pid: number;
  thread_count: number;
  tids: Record<string, number | null>;
  gc_stats: string | null;
}

const SPINNERS = ['spinner-0', 'spinner-1', 'spinner-2', 'spinner-3'];
const IDLE_THREADS = ['sleeper', 'lock-waiter'];
const PAUSED_DUMPS = 200;
const NONBLOCKING_DUMPS = 100;
const GC_TOLERANCE = 5; // percentage points
/**
 * On a machine running more than three times as many runnable tasks as it
 * has CPUs, the target and the sampler take turns unevenly and the <GC>
 * share was seen 8 points off (load 13 on 2 CPUs): the comparison then
 * allows twice as much, and says so.
 */
const GC_TOLERANCE_OVERLOADED = 10;
const overloaded = () => loadavg()[0]! > 3 * availableParallelism();
const matrix = supportedInterpreters();

let burners: TrackedChild[] = [];

beforeAll(async () => {
  burners = await Promise.all([0, 1].map(() => spawnTracked('/bin/sh', ['-c', 'while :; do :; done'])));
});

afterAll(async () => {
  await Promise.all(burners.map((b) => b.kill()));
});

/** Fixtures of the running test (the burners live for the whole file). */
const fixtures: { kill(): Promise<void> }[] = [];

afterEach(async () => {
  await cleanupRecord();
  await Promise.all(fixtures.splice(0).map((f) => f.kill()));
});

afterAll(async () => {
  await killAllChildren();
});

async function startFixture(interp: Interpreter, args: string[]) {
  const fx = await spawnFixture<ContentionReport>(interp, 'gil_contention.py', args, { via: 'shell' });
  fixtures.push(fx);
  return fx;
}

/** Thread name by OS tid, from the fixture's report. */
function namesByTid(report: ContentionReport): Map<number, string> {
  return new Map(Object.entries(report.tids).flatMap(([name, tid]) => (tid === null ? [] : [[tid, name] as [number, string]])));
}

interface StatusCounts {
  spinnerIdle: number;
  spinnerGilWait: number;
  spinnerSeen: number;
  idleThreadsActive: string[];
}

function countStatuses(dumps: ProcessDump[], byTid: Map<number, string>): StatusCounts {
  const c: StatusCounts = { spinnerIdle: 0, spinnerGilWait: 0, spinnerSeen: 0, idleThreadsActive: [] };
  dumps.forEach((d, i) => {
    for (const t of d.threads) {
      const name = t.osThreadId === null ? undefined : byTid.get(t.osThreadId);
      if (name === undefined) continue;
      if (SPINNERS.includes(name)) {
        c.spinnerSeen++;
        if (!t.active) c.spinnerIdle++;
        if (t.status === 'gil_wait') {
          c.spinnerGilWait++;
          // A GIL wait is a futex wait (or its restart after one of our pauses).
          expect(['futex', 'restart_syscall']).toContain(t.syscall);
        }
        expect(t.active).toBe(t.status !== 'idle');
      } else if (IDLE_THREADS.includes(name) && (t.active || t.status !== 'idle')) {
        c.idleThreadsActive.push(`dump ${i}: ${name} ${t.status}`);
      } else if (name === 'sleeper' && !['clock_nanosleep', 'nanosleep', 'select', 'pselect6', 'restart_syscall'].includes(t.syscall ?? '')) {
        c.idleThreadsActive.push(`dump ${i}: the sleeper waits in ${t.syscall}, not a sleep`);
      } else if (name === 'lock-waiter' && !['futex', 'restart_syscall'].includes(t.syscall ?? '')) {
        c.idleThreadsActive.push(`dump ${i}: the lock waiter waits in ${t.syscall}, not a futex`);
      }
    }
  });
  return c;
}

/** Dumps until the sleeper and the lock waiter sit in their waits (they start while the spinners hold the GIL). */
async function settle(pid: number, byTid: Map<number, string>): Promise<void> {
  const { dump } = await import('pyspy-node');
  for (let i = 0; i < 500; i++) {
    const d = await dump(pid);
    const idle = d.threads.filter((t) => t.osThreadId !== null && IDLE_THREADS.includes(byTid.get(t.osThreadId) ?? '') && t.status === 'idle');
    if (idle.length === IDLE_THREADS.length) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the sleeper and the lock waiter never both showed idle');
}

describe.each(matrix.map((i) => [i.id, i] as [string, Interpreter]))('%s', (_id, interp) => {
  it(`${PAUSED_DUMPS} paused and ${NONBLOCKING_DUMPS} nonblocking dumps: spinners never idle, some waiting for the GIL; sleeper and lock waiter always idle`, { timeout: 300_000 }, async () => {
    const fx = await startFixture(interp, []);
    const byTid = namesByTid(fx.report);
    expect(byTid.size).toBe(fx.report.thread_count);
    await settle(fx.pid, byTid);
    const { dump } = await import('pyspy-node');
    for (const [nonblocking, n] of [
      [false, PAUSED_DUMPS],
      [true, NONBLOCKING_DUMPS],
    ] as const) {
      const dumps: ProcessDump[] = [];
      for (let i = 0; i < n; i++) dumps.push(await dump(fx.pid, { nonblocking }));
      const c = countStatuses(dumps, byTid);
      const what = `${interp.id}, ${nonblocking ? 'nonblocking' : 'paused'}`;
      // Before this status existed, a thread waiting for the GIL was idle (it sits in a system
      // call): the share of spinner samples the old rule misclassified, from the same dumps.
      console.log(
        `${what}: ${c.spinnerSeen} spinner samples: idle ${c.spinnerIdle} (${((100 * c.spinnerIdle) / c.spinnerSeen).toFixed(1)}%), ` +
          `waiting for the GIL ${c.spinnerGilWait} (${((100 * c.spinnerGilWait) / c.spinnerSeen).toFixed(1)}%: idle by the old rule); load ${loadavg()[0]!.toFixed(2)}`,
      );
      expect(c.spinnerSeen, what).toBe(SPINNERS.length * n);
      expect(c.spinnerIdle, `${what}: spinner samples reported idle`).toBe(0);
      expect(c.spinnerGilWait, `${what}: spinner samples seen waiting for the GIL`).toBeGreaterThan(0);
      expect(c.idleThreadsActive, what).toEqual([]);
    }
  });

  it('record without --idle: each spinner 20-30% of samples, idle threads absent', { timeout: 180_000 }, async () => {
    const fx = await startFixture(interp, []);
    const file = path.join(outputDir(), `contention-${interp.id}.txt`);
    const res = await runCli(['record', '-p', String(fx.pid), '-o', file, '-f', 'raw', '-r', '100', '-d', '4']);
    expect(res.code, res.stderr).toBe(0);
    const stacks = parseRaw(readFileSync(file, 'utf8'));
    const total = totalCount(stacks);
    expect(total).toBeGreaterThan(500);
    const share = (fn: string) =>
      (100 * totalCount(stacks.filter((s) => s.frames.some((f) => f.name === fn)))) / total;
    for (const fn of ['spin_0', 'spin_1', 'spin_2', 'spin_3']) {
      const pct = share(fn);
      expect(pct, `${interp.id}: ${fn} ${pct.toFixed(1)}% of ${total} samples`).toBeGreaterThanOrEqual(20);
      expect(pct, `${interp.id}: ${fn} ${pct.toFixed(1)}% of ${total} samples`).toBeLessThanOrEqual(30);
    }
    for (const fn of ['sleeper_main', 'lock_waiter_main']) expect(share(fn), `${interp.id}: ${fn}`).toBe(0);
  });

  const hasGcCallbacks = interp.version.startsWith('3.');
  it(`<GC> leaf frames ${hasGcCallbacks ? `within ±${GC_TOLERANCE} points of gc.callbacks' collecting time` : 'appear (2.7 has no gc.callbacks to time collections with)'}; none with --no-gc-frames`, { timeout: 180_000 }, async () => {
    const fx = await startFixture(interp, ['--gc']);
    const file = path.join(outputDir(), `gc-${interp.id}.txt`);
    const readStats = () => {
      const [gc, wall] = readFileSync(fx.hostPath(fx.report.gc_stats!), 'utf8').trim().split(' ').map(Number);
      if (wall === undefined || !Number.isFinite(wall)) throw new Error('no stats yet');
      return { gc: gc!, wall };
    };
    // Let the first stats file appear.
    for (let i = 0; i < 100; i++) {
      try {
        readStats();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const before = readStats();
    // --nonblocking takes each sample at its scheduled moment (the collector's flag and the GIL
    // holder come from one read): the default mode retries a torn read a moment later, and stacks
    // tear only outside collections, which under load tilts samples toward collections; paused
    // reads (--blocking) keep the moment but reach too few samples on a loaded machine.
    const overloadedBefore = overloaded();
    const res = await runCli(['record', '-p', String(fx.pid), '-o', file, '-f', 'raw', '-r', '200', '-d', '8', '--nonblocking']);
    const after = readStats();
    const overloadedDuring = overloadedBefore || overloaded();
    expect(res.code, res.stderr).toBe(0);
    const stacks = parseRaw(readFileSync(file, 'utf8')).filter((s) => s.frames.some((f) => f.name === 'make_cycles'));
    const samples = totalCount(stacks);
    expect(samples).toBeGreaterThan(300);
    const inGc = totalCount(stacks.filter((s) => s.frames.at(-1)!.label === '<GC>'));
    const sampled = (100 * inGc) / samples;
    expect(inGc, `${interp.id}: some <GC> samples`).toBeGreaterThan(0);
    if (hasGcCallbacks) {
      const measured = (100 * (after.gc - before.gc)) / (after.wall - before.wall);
      const tolerance = overloadedDuring ? GC_TOLERANCE_OVERLOADED : GC_TOLERANCE;
      const load = `load ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} CPUs`;
      console.log(`${interp.id}: <GC> in ${sampled.toFixed(1)}% of ${samples} samples; gc.callbacks measured ${measured.toFixed(1)}%; ${load}`);
      if (overloadedDuring) console.warn(`${interp.id}: machine overloaded (${load}): <GC> share compared within ±${tolerance} points, not ±${GC_TOLERANCE}`);
      expect(Math.abs(sampled - measured), `${interp.id}: <GC> ${sampled.toFixed(1)}% vs measured ${measured.toFixed(1)}% (${load})`).toBeLessThanOrEqual(tolerance);
    } else {
      console.warn(`${interp.id}: <GC> in ${sampled.toFixed(1)}% of ${samples} samples; 2.7 has no gc.callbacks, so the share is not compared with a measurement`);
    }

    const off = path.join(outputDir(), `nogc-${interp.id}.txt`);
    const res2 = await runCli(['record', '-p', String(fx.pid), '-o', off, '-f', 'raw', '-r', '200', '-d', '1', '--no-gc-frames']);
    expect(res2.code, res2.stderr).toBe(0);
    expect(readFileSync(off, 'utf8')).not.toContain('<GC>');
  });
});
