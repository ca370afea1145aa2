// `dump --asyncio` against the fixture service (test/fixtures/asyncio_service.py)
// on every matrix interpreter from 3.11 on: every task the fixture reports
// (asyncio.all_tasks() plus a cancelled one it keeps), task by task: name,
// state, thread, coroutine frames (names innermost first; lines of suspended
// frames) and await edges, as the fixture computed them from its own task
// objects. On 3.14+ also against `python3.X -m asyncio pstree PID` run on the
// same process: the same tasks and the same parent/child edges. Older
// interpreters are refused with one line on stderr and exit 0.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { writeGcore, writeKernelCore } from '../helpers/cores.js';
import { extraPath } from '../helpers/extras.js';
import {
  freeThreadedInterpreter,
  killAllChildren,
  loadMatrix,
  runCli,
  spawnFixture,
  supportedInterpreters,
  type Interpreter,
} from '../helpers/pythons.js';

const TIMEOUT = 120_000;

interface Truth {
  pid: number;
  thread_id: number;
  loop: string;
  /** asyncio runs without _asyncio (the fixture's --python-tasks). */
  python_tasks: boolean;
  version: [number, number];
  tasks: { name: string; state: string; frames: [string, number][] }[];
  edges: [string, string][];
}

interface JsonTask {
  id: number;
  name: string;
  state: string;
  thread_id: number | null;
  frames: { name: string; line: number }[];
  awaiting: number[];
  awaited_by: number[];
}

const minor = (i: Interpreter): number => Number(i.version.split('.')[1]);
const interpreters = supportedInterpreters(loadMatrix()).filter((i) => i.version.startsWith('3.'));
const modern = interpreters.filter((i) => minor(i) >= 11);

afterEach(async () => {
  await killAllChildren();
});
afterAll(() => {
  console.log(`asyncio dump e2e ran on ${modern.length} interpreters: ${modern.map((i) => i.id).join(', ')}`);
  console.log(
    `asyncio dump e2e on uvloop: ${uvloopChecked.length} interpreters (${uvloopChecked.join(', ')}); ` +
      `uvloop MISSING on ${uvloopMissing.length}${uvloopMissing.length ? `: ${uvloopMissing.join('; ')}` : ''}`,
  );
});

/** `python3.X -m asyncio pstree PID`'s (parent, child) task edges, run with the root's own loader. */
function pstreeEdges(interp: Interpreter, pid: number): string[] {
  const root = interp.root ?? '/';
  const py = path.join(root, 'usr/bin', `python${interp.version.split('.').slice(0, 2).join('.')}`);
  const out = interp.root
    ? execFileSync(
        path.join(root, 'usr/lib64/ld-linux-x86-64.so.2'),
        ['--library-path', `${root}/usr/lib/x86_64-linux-gnu:${root}/lib/x86_64-linux-gnu`, py, '-m', 'asyncio', 'pstree', String(pid)],
        { env: { ...process.env, PYTHONHOME: path.join(root, 'usr') }, encoding: 'utf8' },
      )
    : execFileSync(interp.argv[0]!, ['-m', 'asyncio', 'pstree', String(pid)], { encoding: 'utf8' });
  const edges: string[] = [];
  const stack: { depth: number; name: string }[] = [];
  for (const line of out.split('\n')) {
    const m = /^(.*?)\(T\) (.*)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    if (stack.length > 0) edges.push(`${stack[stack.length - 1]!.name} -> ${m[2]}`);
    stack.push({ depth, name: m[2]! });
  }
  return edges.sort();
}

const uvloopChecked: string[] = [];
const uvloopMissing: string[] = [];

describe.each(modern.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  it('dump --asyncio --json matches the fixture task by task', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<Truth>(interp, 'asyncio_service.py', [], { via: 'shell' });
    expect(fx.report.loop).toMatch(/^asyncio\./);
    await checkAgainstTruth(interp, fx.pid, fx.report);
  });

  it('pure-Python tasks (no _asyncio, asyncio.tasks._PyTask): the same tasks and edges', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<Truth>(interp, 'asyncio_service.py', ['--python-tasks'], { via: 'shell' });
    expect(fx.report.python_tasks).toBe(true);
    await checkAgainstTruth(interp, fx.pid, fx.report);
  });

  it('on uvloop: the same tasks and edges (its loop, asyncio\'s tasks)', { timeout: TIMEOUT }, async () => {
    const uvloop = extraPath(interp, 'uvloop');
    if ('missing' in uvloop) {
      console.warn(`\n!!! UVLOOP MISSING for ${interp.id} (${interp.version}): ${uvloop.missing}\n`);
      uvloopMissing.push(`${interp.id}: ${uvloop.missing}`);
      return;
    }
    const fx = await spawnFixture<Truth>(interp, 'asyncio_service.py', ['--uvloop'], { via: 'shell', env: { PYTHONPATH: uvloop.path } });
    expect(fx.report.loop).toBe('uvloop.Loop');
    await checkAgainstTruth(interp, fx.pid, fx.report);
    uvloopChecked.push(`${interp.id} (uvloop ${uvloop.version})`);
  });
});

// The free-threaded build (scripts/freethreaded.mjs): its own generated
// layout (every object header 16 bytes longer). No uvloop here: PyPI's
// uvloop wheels are for the GIL build's ABI (cp313, not cp313t).
describe('free-threaded 3.13t', () => {
  const ft = freeThreadedInterpreter();
  it('dump --asyncio --json matches the fixture task by task', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<Truth>(ft, 'asyncio_service.py', [], { via: 'shell' });
    expect(fx.report.loop).toMatch(/^asyncio\./);
    await checkAgainstTruth(ft, fx.pid, fx.report);
  });
});

/** `dump --asyncio` (JSON and text) of `pid` against the fixture's `truth`; on 3.14+ against pstree too. */
async function checkAgainstTruth(interp: Interpreter, pid: number, truth: Truth): Promise<void> {
  const res = await runCli(['dump', '--pid', String(pid), '--asyncio', '--json']);
  expect(res.code, res.stderr).toBe(0);
  const out = JSON.parse(res.stdout) as { threads: unknown[]; asyncio_tasks: JsonTask[] | null; asyncio_loop_found: boolean };
  expect(out.threads.length).toBeGreaterThan(0);
  expect(out.asyncio_loop_found).toBe(true);
  const tasks = out.asyncio_tasks!;
  const byName = new Map(tasks.map((t) => [t.name, t]));
  expect(byName.size).toBe(tasks.length);
  for (const want of truth.tasks) {
    const got = byName.get(want.name);
    // A finished task may be gone from the interpreter's lists (3.14+
    // unlink tasks when they finish); a pending one must be there.
    if (got === undefined && (want.state === 'done' || want.state === 'cancelled')) continue;
    expect(got, `task ${want.name}`).toBeDefined();
    expect(got!.state, want.name).toBe(want.state);
    expect(got!.thread_id, want.name).toBe(truth.thread_id);
    expect(got!.frames.map((f) => f.name), want.name).toEqual(want.frames.map((f) => f[0]));
    // Line 0: not known to the fixture (a frame that moves after the report).
    expect(got!.frames.map((f, i) => (want.frames[i]?.[1] === 0 ? 0 : f.line)), want.name).toEqual(want.frames.map((f) => f[1]));
  }
  // Nothing the fixture does not know.
  const known = new Set(truth.tasks.map((t) => t.name));
  expect(tasks.filter((t) => !known.has(t.name)).map((t) => t.name)).toEqual([]);
  const edges = tasks.flatMap((t) => t.awaiting.map((a) => `${t.name} -> ${tasks[a]!.name}`)).sort();
  expect(edges).toEqual(truth.edges.map(([a, b]) => `${a} -> ${b}`).sort());
  for (const t of tasks) for (const w of t.awaited_by) expect(tasks[w]!.awaiting).toContain(t.id);

  // The text form: the tree, after the threads.
  const text = await runCli(['dump', '--pid', String(pid), '--asyncio']);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/\nasyncio tasks: \d+( \(\d+ skipped\))?\n/);
  expect(text.stdout).toMatch(/\n {8}Task \d+ "worker-0" \(running, thread \d+\)\n {12}cpu_inner \(asyncio_service\.py:\d+\)/);

  // pstree reads _asyncio's own task lists: pure-Python tasks are not there.
  if (minor(interp) >= 14 && !truth.python_tasks) {
    const pstree = pstreeEdges(interp, pid);
    expect(edges).toEqual(pstree);
  }
}

describe('dump --core --asyncio: the same tasks out of a core file', () => {
  // A gcore core (the process goes on) of two builds, and a kernel core of a chroot build.
  const picks = ['debian-3.11', 'pyenv-3.12.1', 'debian-3.14'].flatMap((id) => modern.filter((i) => i.id === id));
  const work = mkdtempSync(path.join(tmpdir(), 'pyspy-asyncio-core-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  it.each(picks.map((i) => [i.id, i] as const))('%s', { timeout: TIMEOUT }, async (_id, interp) => {
    const fx = await spawnFixture<Truth>(interp, 'asyncio_service.py', [], { via: 'shell' });
    const live = await runCli(['dump', '--pid', String(fx.pid), '--asyncio', '--json']);
    expect(live.code, live.stderr).toBe(0);
    const core = interp.root ? await writeKernelCore(work, fx.pid, interp.root) : writeGcore(work, fx.pid, `asyncio-${interp.id}`);
    const res = await runCli(['dump', '--core', core, '--asyncio', '--json', ...(interp.root ? ['--sysroot', interp.root] : [])]);
    expect(res.code, res.stderr).toBe(0);
    const shape = (text: string) => {
      const tasks = (JSON.parse(text) as { asyncio_tasks: JsonTask[] }).asyncio_tasks;
      return tasks
        .map((t) => ({
          name: t.name,
          state: t.state,
          // worker-0 computes on: its innermost lines move between the dump and the core.
          frames: t.frames.map((f) => `${f.name}:${t.name === 'worker-0' ? 0 : f.line}`),
          awaiting: t.awaiting.map((a) => tasks[a]!.name).sort(),
          awaitedBy: t.awaited_by.map((a) => tasks[a]!.name).sort(),
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
    };
    const fromCore = shape(res.stdout);
    expect(fromCore.length).toBeGreaterThan(5);
    expect(fromCore).toEqual(shape(live.stdout));
  });
});

describe('no event loop and old versions', () => {
  const host = interpreters.find((i) => i.id === 'debian-3.11') ?? modern[0];
  it.runIf(host !== undefined)('a process without a loop: threads, then "no asyncio event loop found"', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(host!, 'dump_target.py', []);
    const res = await runCli(['dump', '--pid', String(fx.pid), '--asyncio']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Thread .*\n[\s\S]*\nno asyncio event loop found\n$/);
  });
  const old = interpreters.find((i) => minor(i) <= 10 && minor(i) >= 6);
  it.runIf(old !== undefined)('3.10 and older: threads printed, the reason on stderr, exit 0', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(old!, 'dump_target.py', []);
    const res = await runCli(['dump', '--pid', String(fx.pid), '--asyncio']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Thread /);
    expect(res.stderr).toMatch(/^asyncio tasks not shown \(EUNSUPPORTED\): .*3\.11 to 3\.15/m);
  });
});
