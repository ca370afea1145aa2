// `pyspy-node dump` (CLI and library) against test/fixtures/dump_target.py,
// under every supported interpreter of .cache/pythons/matrix.json. The
// fixture reports its own stacks from sys._current_frames(); the dump must
// match them frame for frame.
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import type { ProcessDump } from 'pyspy-node';

import {
  killAllChildren,
  loadMatrix,
  missingRequiredInterpreters,
  procCmdline,
  procStat,
  runCli,
  settleWithin,
  shownName,
  spawnFixture,
  supportedInterpreters,
  type DumpTargetReport,
  type Interpreter,
  type RunningFixture,
} from '../helpers/pythons.js';

const TIMEOUT = 180_000;
const matrix = loadMatrix();
const interpreters = supportedInterpreters(matrix);
/** Interpreters the text form is checked on: the host's static one and a chroot one. */
const TEXT_FORM = ['debian-3.11', 'debian-3.14'];
const covered = new Map<string, string[]>();

function cover(interp: Interpreter, what: string): void {
  const key = `${interp.id} (${interp.version}, ${interp.build})`;
  covered.set(key, [...(covered.get(key) ?? []), what]);
}

afterEach(killAllChildren);
afterAll(() => {
  const lines = [...covered].map(([id, what]) => `  ${id}: ${what.join(', ')}`);
  console.log(`dump e2e covered ${covered.size} of ${interpreters.length} supported interpreters:\n${lines.join('\n')}`);
});

/** A thread in one shape, whichever output it came from. */
interface SeenThread {
  pid: number;
  threadId: number;
  osThreadId: number | null;
  threadName: string | null;
  active: boolean;
  ownsGil: boolean;
  frames: {
    name: string;
    filename: string;
    shortFilename: string | null;
    line: number;
    module: string | null;
    locals: unknown[] | null;
  }[];
}

const JSON_THREAD_KEYS = ['pid', 'thread_id', 'os_thread_id', 'thread_name', 'active', 'owns_gil', 'frames'];
const JSON_FRAME_KEYS = ['name', 'filename', 'short_filename', 'line', 'module', 'locals'];

/** Parses `dump --json` output, checking py-spy's field names on the way. */
function fromCliJson(stdout: string): SeenThread[] {
  const parsed: unknown = JSON.parse(stdout);
  expect(Array.isArray(parsed), 'dump --json prints a JSON array').toBe(true);
  return (parsed as Record<string, unknown>[]).map((t) => {
    expect(Object.keys(t)).toEqual(expect.arrayContaining(JSON_THREAD_KEYS));
    const frames = t.frames as Record<string, unknown>[];
    for (const f of frames) expect(Object.keys(f)).toEqual(expect.arrayContaining(JSON_FRAME_KEYS));
    return {
      pid: t.pid as number,
      threadId: t.thread_id as number,
      osThreadId: t.os_thread_id as number | null,
      threadName: t.thread_name as string | null,
      active: t.active as boolean,
      ownsGil: t.owns_gil as boolean,
      frames: frames.map((f) => ({
        name: f.name as string,
        filename: f.filename as string,
        shortFilename: f.short_filename as string | null,
        line: f.line as number,
        module: f.module as string | null,
        locals: f.locals as unknown[] | null,
      })),
    };
  });
}

/** `short` is `full` or a trailing run of its path segments. */
function isPathSuffix(short: string, full: string): boolean {
  return short === full || full.endsWith(`/${short}`);
}

/** The fixture's busy thread's innermost line, checked against its range. */
function expectBusyLine(report: DumpTargetReport, line: number | undefined, where: string): void {
  const [lo, hi] = report.busy.line_range;
  expect(line, `${where}: busy-worker's innermost line`).toBeGreaterThanOrEqual(lo);
  expect(line, `${where}: busy-worker's innermost line`).toBeLessThanOrEqual(hi);
}

/** Asserts that `threads` are exactly the threads, frames and states the fixture reported. */
function expectMatchesReport(threads: SeenThread[], fx: RunningFixture, where: string): void {
  const { report } = fx;
  expect(threads.map((t) => t.threadId).sort(), `${where}: thread ids`).toEqual(
    report.threads.map((t) => t.ident).sort(),
  );
  for (const want of report.threads) {
    const got = threads.find((t) => t.threadId === want.ident)!;
    const label = `${where}: thread "${want.name}"`;
    expect(got.pid, `${label} pid`).toBe(fx.pid);
    expect(got.osThreadId, `${label} os_thread_id`).toBe(want.native_id);
    expect(got.threadName, `${label} name`).toBe(want.name);

    const actual = got.frames.map(({ name, filename, line }) => ({ name, filename, line }));
    // Qualified names on 3.11+ (`Worker.spin`, `sleeper_main.<locals>.nested`), plain ones before.
    const expected = want.frames.map((f) => ({ name: shownName(f), filename: f.filename, line: f.line }));
    if (want.ident === report.busy.ident) {
      expect(actual[0]?.name, `${label} innermost function`).toBe(report.busy.shown);
      expectBusyLine(report, actual[0]?.line, label);
      // Its line moves while it spins; the range was checked just above.
      expected[0]!.line = actual[0]!.line;
    }
    expect(actual, `${label} frames (innermost first)`).toEqual(expected);
    for (const f of got.frames) {
      expect(f.shortFilename, `${label} short_filename of ${f.filename}`).toBeTruthy();
      expect(isPathSuffix(f.shortFilename!, f.filename), `${label}: ${f.shortFilename} is a suffix of ${f.filename}`).toBe(true);
      expect(f.module, `${label} module`).toBeNull();
      expect(f.locals, `${label} locals (not asked for)`).toBeNull();
    }

    if (want.name === 'busy-worker') {
      expect(got.active, `${label} active`).toBe(true);
    } else {
      expect(got.active, `${label} active`).toBe(false);
      expect(got.ownsGil, `${label} owns_gil`).toBe(false);
    }
  }
  expect(threads.filter((t) => t.ownsGil).length, `${where}: threads holding the GIL`).toBeLessThanOrEqual(1);
}

function expectCleanSuccess(res: { code: number | null; stderr: string }, what: string): void {
  expect(res.stderr, `${what} stderr`).not.toMatch(/panicked|stack backtrace|^\s+at /m);
  expect(res.code, `${what} exit code; stderr: ${res.stderr}`).toBe(0);
}

it('the matrix has every interpreter install.sh must provide', () => {
  expect(missingRequiredInterpreters(matrix)).toEqual([]);
  expect(interpreters.length).toBeGreaterThan(0);
});

describe.each(interpreters.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  it('dump --json reports exactly the stacks the fixture sees', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(interp, 'dump_target.py');
    const res = await runCli(['dump', '--pid', String(fx.pid), '--json']);
    expectCleanSuccess(res, 'dump --json');
    expectMatchesReport(fromCliJson(res.stdout), fx, `${interp.id} CLI`);
    // `attached` (not in py-spy's JSON) where CPython has the state: 3.12+.
    const [major, minor] = fx.report.version_info;
    const known = major === 3 && minor >= 12;
    for (const t of JSON.parse(res.stdout) as Record<string, unknown>[]) {
      expect(typeof t.attached, `attached on ${interp.id}`).toBe(known ? 'boolean' : 'undefined');
    }
    cover(interp, 'cli --json');
  });

  it('dump() from the library reports the same', { timeout: TIMEOUT }, async () => {
    // Imported here so that the CLI tests above still run if the package fails to load.
    const { dump } = await import('pyspy-node');
    // Not our child: see the own-child test below for that case.
    const fx = await spawnFixture(interp, 'dump_target.py', [], { via: 'shell' });
    const result: ProcessDump = await settleWithin(dump(fx.pid), 60_000, 'dump()', fx.pid);

    expect(result.pid).toBe(fx.pid);
    expect(result.pythonVersion).toBe(fx.report.version_info.join('.'));
    expect(result.commandLine).toBe(procCmdline(fx.pid));
    expectExecutable(result.executable, interp);
    expectMatchesReport(result.threads, fx, `${interp.id} library`);
    cover(interp, 'library');
  });

  it('the busy thread is active in 100 consecutive dumps (waiting for the GIL is not idle)', { timeout: TIMEOUT }, async () => {
    const { dump } = await import('pyspy-node');
    const fx = await spawnFixture(interp, 'dump_target.py', [], { via: 'shell' });
    const statuses: string[] = [];
    for (let i = 0; i < 100; i++) {
      const busy = (await dump(fx.pid)).threads.find((t) => t.threadId === fx.report.busy.ident);
      statuses.push(busy ? `${busy.active ? 'active' : 'idle'}/${busy.status}` : 'missing');
    }
    const wrong = statuses.filter((s) => s !== 'active/running' && s !== 'active/gil_wait');
    expect(wrong, `${interp.id}: busy-worker statuses`).toEqual([]);
  });

  // The text form is the same code on every version: checked on two, and
  // the other interpreters get no test here (rather than a skipped one).
  if (TEXT_FORM.includes(interp.id)) {
    it('dump prints the py-spy text form', { timeout: TIMEOUT }, async () => {
      const fx = await spawnFixture(interp, 'dump_target.py');
      const res = await runCli(['dump', '--pid', String(fx.pid)]);
      expectCleanSuccess(res, 'dump');
      expectTextForm(res.stdout, fx);
      cover(interp, 'cli text');
    });
  }
});

// A Node program that profiles a Python it spawned itself is the tracee's real
// parent: if dump() pauses the target with ptrace, libuv's waitpid() for its
// children can consume the ptrace stops (and Node then reports a bogus exit),
// leaving the native side waiting forever. Seen in the first runs: dump()
// hung after a few calls, the target stayed in "t (tracing stop)" and the
// ChildProcess emitted 'exit' with code 0 although the process was alive.
describe('dump() of a process that is this Node process\'s own child', () => {
  const interp = interpreters.find((i) => i.id === 'debian-3.11') ?? interpreters[0]!;

  it(`keeps working and leaves the child running (${interp.id})`, { timeout: TIMEOUT }, async () => {
    const { dump } = await import('pyspy-node');
    const fx = await spawnFixture(interp, 'dump_target.py');
    expect(procStat(fx.pid)?.ppid).toBe(process.pid);
    for (let i = 1; i <= 30; i++) {
      const result = await settleWithin(dump(fx.pid), 30_000, `dump() #${i} of our own child`, fx.pid);
      expect(result.threads).toHaveLength(fx.report.thread_count);
    }
    expect(fx.child.exitCode, 'Node saw no exit').toBeNull();
    expect(fx.child.signalCode, 'Node saw no exit').toBeNull();
    expect(procStat(fx.pid)?.state, 'not left stopped').toMatch(/^[RS]$/);
    expectMatchesReport((await dump(fx.pid)).threads, fx, `${interp.id} own child`);
  });
});

/** The executable as the target sees it (inside its chroot), or its host path. */
function expectExecutable(executable: string, interp: Interpreter): void {
  if (interp.root) {
    expect([interp.binary, interp.argv[interp.argv.length - 1]]).toContain(executable);
  } else {
    expect(executable).toBe(interp.binary);
  }
}

const THREAD_HEADER = /^Thread (\d+|0x[0-9A-F]+) \((idle|active|active\+gil|active, waiting for GIL)\)(?:: "(.*)")?$/;
const FRAME_LINE = /^ {4}(\S.*) \((.+):(\d+)\)$/;

/**
 * Checks the text form:
 *
 *     Process PID: CMDLINE
 *     Python vX.Y.Z (PATH)
 *
 *     Thread TID (idle|active|active+gil): "NAME"
 *         FUNC (SHORT_FILENAME:LINE)
 *     ...
 */
function expectTextForm(stdout: string, fx: RunningFixture): void {
  const { report, interp } = fx;
  const lines = stdout.replace(/\n$/, '').split('\n');
  expect(lines[0]).toBe(`Process ${fx.pid}: ${procCmdline(fx.pid)}`);
  const version = /^Python v(\d+\.\d+\.\d+) \((.+)\)$/.exec(lines[1] ?? '');
  expect(version, `second line: ${lines[1]}`).not.toBeNull();
  expect(version![1]).toBe(report.version_info.join('.'));
  expectExecutable(version![2]!, interp);
  expect(lines[2]).toBe('');

  const blocks = lines.slice(3).join('\n').split('\n\n').map((b) => b.split('\n'));
  expect(blocks).toHaveLength(report.thread_count);
  const seen = new Set<number>();
  for (const block of blocks) {
    const header = THREAD_HEADER.exec(block[0]!);
    expect(header, `thread header: ${block[0]}`).not.toBeNull();
    const [, tid, status, name] = header!;
    const want = report.threads.find((t) =>
      tid!.startsWith('0x') ? t.ident === Number.parseInt(tid!.slice(2), 16) : t.native_id === Number(tid),
    );
    expect(want, `thread ${tid} is one of the fixture's`).toBeDefined();
    seen.add(want!.ident);
    expect(name).toBe(want!.name);
    if (want!.name === 'busy-worker') expect(status).toMatch(/^active/);
    else expect(status).toBe('idle');

    const frames = block.slice(1).map((l) => {
      const m = FRAME_LINE.exec(l);
      expect(m, `frame line: ${JSON.stringify(l)}`).not.toBeNull();
      return { name: m![1]!, file: m![2]!, line: Number(m![3]) };
    });
    expect(frames.map((f) => f.name), `thread "${want!.name}" functions`).toEqual(want!.frames.map(shownName));
    frames.forEach((f, i) => {
      const w = want!.frames[i]!;
      expect(isPathSuffix(f.file, w.filename), `${f.file} is a suffix of ${w.filename}`).toBe(true);
      if (i === 0 && want!.ident === report.busy.ident) expectBusyLine(report, f.line, 'text form');
      else expect(f.line, `thread "${want!.name}" frame ${i} (${w.name}) line`).toBe(w.line);
    });
  }
  expect(seen.size).toBe(report.thread_count);
}
