// `record --asyncio` and `top --asyncio` against the fixture service
// (test/fixtures/asyncio_service.py) on every matrix interpreter from 3.11 on.
// worker-0 computes forever in cpu_outer -> cpu_middle -> cpu_inner, inside
// the TaskGroup of task "workers", which main ("Task-1") awaits in a gather.
// Checked: the samples of cpu_inner carry, root first, <task Task-1>,
// <task workers>, <task worker-0> (≥ 90% of them, sampling being
// statistical), then the worker's coroutine frames; the loop's frames
// (run_forever...) stay below the root task; with --idle, waiting tasks get
// their own stacks (time per waiting task); speedscope and pprof carry the
// task frames (pprof: a `task name` label); the library's record and top.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { record, top } from 'pyspy-node';

import {
  freeThreadedInterpreter,
  killAllChildren,
  loadMatrix,
  runCli,
  spawnFixture,
  supportedInterpreters,
  type Interpreter,
} from '../helpers/pythons.js';
import { cleanupRecord, decodePprof, outputDir, parseRaw, type RawStack, type SpeedscopeFile } from '../helpers/record.js';

const TIMEOUT = 180_000;
/** Share of cpu_inner's samples that must show the whole chain. */
const MIN_CHAIN_SHARE = 0.9;

const minor = (i: Interpreter): number => Number(i.version.split('.')[1]);
// The free-threaded 3.13t (scripts/freethreaded.mjs) too: a layout of its own.
const modern = [
  ...supportedInterpreters(loadMatrix()).filter((i) => i.version.startsWith('3.') && minor(i) >= 11),
  freeThreadedInterpreter(),
];

afterEach(async () => {
  await killAllChildren();
  await cleanupRecord();
});
afterAll(() => {
  console.log(`asyncio record e2e ran on ${modern.length} interpreters: ${modern.map((i) => i.id).join(', ')}`);
});

const names = (s: RawStack): string[] => s.frames.map((f) => f.name);
const tasksOf = (s: RawStack): string[] => names(s).filter((n) => n.startsWith('<task '));

/** Records the fixture with `args` and returns the output file's path. */
async function recordFile(pid: number, format: string, extra: string[] = []): Promise<string> {
  const out = path.join(outputDir(), `out.${format}`);
  const res = await runCli(['record', '-p', String(pid), '-o', out, '-f', format, '-r', '100', '-d', '2', '--asyncio', ...extra]);
  expect(res.code, res.stderr).toBe(0);
  return out;
}

/** raw: cpu_inner's samples rebuilt along the await chain; --idle: every waiting task sampled. */
async function checkRawAndIdle(pid: number): Promise<void> {
    // raw: the CPU-bound coroutine's samples rebuilt along the await chain.
    const raw = parseRaw(readFileSync(await recordFile(pid, 'raw'), 'utf8'));
    const cpu = raw.filter((s) => names(s).at(-1) === 'cpu_inner');
    const cpuCount = cpu.reduce((n, s) => n + s.count, 0);
    expect(cpuCount).toBeGreaterThan(20);
    const whole = cpu.filter((s) => {
      const n = names(s);
      const tasks = tasksOf(s);
      const worker = n.indexOf('<task worker-0>');
      const loopAt = n.findIndex((f) => f.endsWith('run_forever'));
      return (
        tasks.join(',') === '<task Task-1>,<task workers>,<task worker-0>' &&
        n.slice(worker + 1).join(',') === 'cpu_entry,cpu_outer,cpu_middle,cpu_inner' &&
        n.indexOf('main') > n.indexOf('<task Task-1>') &&
        n.indexOf('workers') > n.indexOf('<task workers>') &&
        loopAt >= 0 &&
        loopAt < n.indexOf('<task Task-1>')
      );
    });
    const share = whole.reduce((n, s) => n + s.count, 0) / cpuCount;
    expect(share, raw.slice(0, 5).map((s) => names(s).join(';')).join('\n')).toBeGreaterThanOrEqual(MIN_CHAIN_SHARE);

    // --idle: waiting tasks sampled as their own stacks, each about as
    // often as the running one (every sample sees them all).
    const idle = parseRaw(readFileSync(await recordFile(pid, 'raw', ['--idle']), 'utf8'));
    const byTask = new Map<string, number>();
    for (const s of idle) {
      const inner = tasksOf(s).at(-1);
      if (inner !== undefined) byTask.set(inner, (byTask.get(inner) ?? 0) + s.count);
    }
    const running = byTask.get('<task worker-0>') ?? 0;
    expect(running).toBeGreaterThan(20);
    for (const waiting of ['gathered-a', 'gathered-b', 'worker-1', 'worker-3', 'server', 'client']) {
      const n = byTask.get(`<task ${waiting}>`) ?? 0;
      expect(n, `${waiting}: ${JSON.stringify([...byTask])}`).toBeGreaterThan(running * 0.5);
    }
    // gathered-a waits in sleep, under worker-1 and its parents.
    const gathered = idle.find((s) => tasksOf(s).at(-1) === '<task gathered-a>');
    expect(tasksOf(gathered!)).toEqual(['<task Task-1>', '<task workers>', '<task worker-1>', '<task gathered-a>']);
    expect(names(gathered!)).toContain('sleeper');
}

describe.each(modern.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  it('record --asyncio: raw, --idle, speedscope, pprof; the library; top', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(interp, 'asyncio_service.py', [], { via: 'shell' });

    await checkRawAndIdle(fx.pid);

    // speedscope and pprof carry the task frames; pprof labels the task.
    const speedscope = JSON.parse(readFileSync(await recordFile(fx.pid, 'speedscope'), 'utf8')) as SpeedscopeFile;
    expect(speedscope.shared.frames.map((f) => f.name)).toEqual(expect.arrayContaining(['<task worker-0>', '<task workers>', '<task Task-1>']));
    const pprof = decodePprof(readFileSync(await recordFile(fx.pid, 'pprof')));
    const labelled = pprof.samples.filter((s) => s.functions[0] === 'cpu_inner');
    expect(labelled.length).toBeGreaterThan(0);
    for (const s of labelled) {
      if (s.functions.includes('<task worker-0>')) expect(s.labels['task name']).toBe('worker-0');
    }

    // The library: record({ asyncio: true }).
    const profile = await record({ pid: fx.pid, duration: 1, asyncio: true });
    const frames = profile.stacks().stacks.flatMap((s) => s.frames.map((f) => f.name));
    expect(frames).toContain('<task worker-0>');

    // top({ asyncio: true }): tasks are rows; worker-0's total is its time.
    const it = top({ pid: fx.pid, asyncio: true, interval: 500 });
    let rows: { function: string; totalPct: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const snap = await it.next();
      if (snap.done) break;
      rows = snap.value.rows;
    }
    await it.return?.();
    const worker = rows.find((r) => r.function === '<task worker-0>');
    expect(worker, JSON.stringify(rows.slice(0, 8))).toBeDefined();
    expect(worker!.totalPct).toBeGreaterThan(50);
  });
});

// Pure-Python tasks (asyncio without _asyncio): read per sample through the
// dump reader. One interpreter whose edges come from callbacks (3.12), one
// whose tasks name their waiters (3.14).
describe.each(modern.filter((i) => ['pyenv-3.12.1', 'debian-3.14'].includes(i.id)).map((i) => [i.id, i] as const))(
  'pure-Python tasks on %s',
  (_id, interp) => {
    it('record --asyncio: raw and --idle', { timeout: TIMEOUT }, async () => {
      const fx = await spawnFixture<{ python_tasks: boolean }>(interp, 'asyncio_service.py', ['--python-tasks'], { via: 'shell' });
      expect(fx.report.python_tasks).toBe(true);
      await checkRawAndIdle(fx.pid);
    });
  },
);

describe('refusals', () => {
  const old = supportedInterpreters(loadMatrix()).find((i) => i.version.startsWith('3.') && minor(i) <= 10 && minor(i) >= 6);
  it.runIf(old !== undefined)('3.10 and older: record --asyncio is refused with EUNSUPPORTED', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(old!, 'dump_target.py', []);
    const res = await runCli(['record', '-p', String(fx.pid), '-o', path.join(outputDir(), 'x.txt'), '-f', 'raw', '-d', '1', '--asyncio']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/3\.11 to 3\.15/);
  });
});
