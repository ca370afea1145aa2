/**
 * Test helpers for running Python fixtures under every interpreter that
 * `test/pythons/install.sh` provides, and for running the pyspy-node CLI.
 *
 * Every child these helpers start is tracked: call {@link killAllChildren} in
 * `afterEach`, or the `kill()` of the returned handle. As a last resort, any
 * child still alive when the test worker exits is sent SIGKILL.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cleanups, exited, killTracked, procStat, tail, track, untrack } from './children.js';

export { describeProcess, killAllChildren, procStat, settleWithin } from './children.js';

/** The repository root. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where install.sh writes the interpreter list. */
export const MATRIX_PATH = path.join(REPO_ROOT, '.cache/pythons/matrix.json');
/** The fixture scripts; copied whole into a chroot's /tmp when one is used. */
export const FIXTURES_DIR = path.join(REPO_ROOT, 'test/fixtures');
/** The CLI entry point. */
export const CLI_PATH = path.join(REPO_ROOT, 'packages/pyspy-node/bin/pyspy-node.js');

/** Interpreters install.sh must provide; it fails when it cannot. */
export const REQUIRED_INTERPRETERS = [
  'debian-3.11',
  'debian-3.13',
  'debian-3.14',
  'debian-3.15',
  'debian-2.7',
  'debian-3.9',
] as const;

/** Generous limits: they exist to turn a hang into a clear failure, not to time anything. */
const READY_TIMEOUT_MS = 60_000;
const CLI_TIMEOUT_MS = 120_000;

/** One entry of `.cache/pythons/matrix.json`. */
export interface Interpreter {
  /** `debian-3.14`, `pyenv-3.12.1`, ... */
  id: string;
  /** Exact version, e.g. `3.14.10`. */
  version: string;
  /** `debian-inplace`: a bullseye build unpacked under .cache/pythons/roots and run from there (no chroot). */
  /** `freethreaded`: the 3.13t that scripts/freethreaded.mjs builds (see {@link freeThreadedInterpreter}). */
  /** `qemu-arm64`: an arm64 Debian build run under qemu-user (test/arm64, scripts/arm64.mjs). */
  kind: 'debian-chroot' | 'debian-host' | 'debian-inplace' | 'pyenv' | 'freethreaded' | 'qemu-arm64';
  /** Prefix that runs a script: append the script path (as the interpreter sees it) and its args. */
  argv: string[];
  /** Host path of the chroot the interpreter runs in, or `null`. */
  root: string | null;
  /** `static-stripped`, `shared-unstripped`, ... */
  build: string;
  /** Whether `pyspy-node dump` is expected to work on it. */
  supported: boolean;
  /** Whether install.sh must provide it. */
  required: boolean;
  /** Host path of the interpreter executable. */
  binary: string;
  /** Host path of libpython for shared builds, else `null`. */
  libpython: string | null;
  debug: boolean;
  /** Why it is unsupported, when it is. */
  note?: string;
  /** Debian package versions, for chroot interpreters. */
  packages?: Record<string, string>;
}

/**
 * Reads `.cache/pythons/matrix.json`. Runs nothing.
 *
 * @throws Error telling to run `test/pythons/install.sh` when the file is missing or malformed.
 */
export function loadMatrix(): Interpreter[] {
  let text: string;
  try {
    text = readFileSync(MATRIX_PATH, 'utf8');
  } catch {
    throw new Error(`${MATRIX_PATH} is missing: run test/pythons/install.sh first`);
  }
  let matrix: unknown;
  try {
    matrix = JSON.parse(text);
  } catch (err) {
    throw new Error(`${MATRIX_PATH} is not valid JSON (${String(err)}): run test/pythons/install.sh again`);
  }
  if (!Array.isArray(matrix) || matrix.some((e) => typeof e?.id !== 'string' || !Array.isArray(e?.argv))) {
    throw new Error(`${MATRIX_PATH} is not a list of interpreters: run test/pythons/install.sh again`);
  }
  return matrix as Interpreter[];
}

/** The interpreters `dump` supports (CPython 2.7 and 3.6+, GIL build), in matrix order. */
export function supportedInterpreters(matrix: Interpreter[] = loadMatrix()): Interpreter[] {
  return matrix.filter((i) => i.supported);
}

/** Ids of {@link REQUIRED_INTERPRETERS} that are absent from the matrix or whose binary is gone. */
export function missingRequiredInterpreters(matrix: Interpreter[] = loadMatrix()): string[] {
  return REQUIRED_INTERPRETERS.filter((id) => {
    const interp = matrix.find((i) => i.id === id);
    return !interp || !existsSync(interp.binary);
  });
}

/** The host's /usr/bin/python3.11 (`debian-3.11`), which install.sh always provides. */
export function hostInterpreter(): Interpreter {
  const interp = loadMatrix().find((i) => i.id === 'debian-3.11');
  if (!interp) throw new Error('debian-3.11 is missing from the matrix: run test/pythons/install.sh');
  return interp;
}

/**
 * The free-threaded CPython 3.13t that `scripts/freethreaded.mjs` builds once
 * per machine (setup runs it; the same path rules: $PYSPY_PYTHON_313T, else
 * the XDG cache). Not in matrix.json: only the free-threaded tests use it.
 *
 * @throws Error telling to run setup when the build is missing.
 */
export function freeThreadedInterpreter(): Interpreter {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const binary = process.env.PYSPY_PYTHON_313T || path.join(cache, 'pyspy-node', 'cpython-3.13.5t', 'bin', 'python3.13t');
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run node scripts/setup.mjs (it builds the free-threaded 3.13t)`);
  return {
    id: 'freethreaded-3.13t',
    version: '3.13.5',
    kind: 'freethreaded',
    argv: [binary],
    root: null,
    build: 'static-unstripped',
    supported: true,
    required: true,
    binary,
    libpython: null,
    debug: false,
  };
}

/** A frame as the dump fixture reports it (from `sys._current_frames()`). */
export interface FixtureFrame {
  name: string;
  /** `co_qualname` on 3.11+, else `null`. */
  qualname: string | null;
  filename: string;
  line: number;
}

/** The name pyspy-node shows for a fixture frame: `co_qualname` on 3.11+, `co_name` before. */
export function shownName(frame: FixtureFrame): string {
  return frame.qualname ?? frame.name;
}

/** A thread as the dump fixture reports it. */
export interface FixtureThread {
  /** `threading.get_ident()`. */
  ident: number;
  /** `threading.get_native_id()`; before 3.8 the thread's own /proc/thread-self (`null` if unreadable). */
  native_id: number | null;
  name: string | null;
  /** Innermost first. */
  frames: FixtureFrame[];
}

/** What `test/fixtures/dump_target.py` writes before printing READY. */
export interface DumpTargetReport {
  pid: number;
  /** `sys.version`. */
  version: string;
  /** `[major, minor, micro]`. */
  version_info: [number, number, number];
  executable: string;
  argv: string[];
  /** Threads alive once the reporter thread has gone; `threads.length`. */
  thread_count: number;
  threads: FixtureThread[];
  /** The spinning thread: its innermost frame moves within `line_range` (inclusive). */
  /** `function` is `co_name`; `shown` is what pyspy-node names it (`co_qualname` on 3.11+). */
  busy: { ident: number; name: string; function: string; shown: string; filename: string; line_range: [number, number] };
  features: string[];
}

/** A fixture started by {@link spawnFixture}, already settled. */
export interface RunningFixture<Report = DumpTargetReport> {
  interp: Interpreter;
  child: ChildProcess;
  /**
   * The Python process's pid, never a wrapper's: `chroot` execs the interpreter,
   * and with `via: 'shell'` it is the pid the fixture reported (checked to be the `sh`'s child).
   */
  pid: number;
  /** The parsed JSON the fixture wrote. */
  report: Report;
  /** The script path as the interpreter sees it. */
  script: string;
  /** Translates a path as the interpreter sees it into a host path. */
  hostPath(p: string): string;
  /** Everything the fixture wrote to stderr so far. */
  stderr(): string;
  /** Kills the fixture (SIGKILL), waits for it, removes its copies and report. Idempotent. */
  kill(): Promise<void>;
}

export interface SpawnFixtureOptions {
  /** How long to wait for `READY <path>` (default 60 s). */
  readyTimeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * `child` (default): the interpreter is this process's child.
   * `shell`: it is the child of a `sh` that waits for it, so not ours. A
   * profiler that pauses its target with ptrace meets the first case when a
   * Node program profiles a Python it spawned itself (then libuv's waitpid for
   * its children can see ptrace stops); the second keeps that out of the way.
   */
  via?: 'child' | 'shell';
  /** OS threads the interpreter's runner adds to the fixture's own (qemu-user: 1, its RCU thread). */
  extraOsThreads?: number;
}

/** Environment for a Python child: no user site hooks, UTF-8, no .pyc files in the repo. */
function pythonEnv(interp: Interpreter, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONWARNINGS', 'PYTHONINSPECT']) delete env[k];
  Object.assign(env, {
    PYTHONDONTWRITEBYTECODE: '1',
    PYTHONUNBUFFERED: '1',
    PYTHONIOENCODING: 'utf-8',
    PYTHONUTF8: '1',
    LC_ALL: 'C.UTF-8',
  });
  // Inside a chroot the host's TMPDIR may not exist; the fixtures write to the chroot's /tmp.
  if (interp.root) env.TMPDIR = '/tmp';
  return Object.assign(env, extra);
}

/**
 * Starts a fixture under `interp` and waits until it is settled.
 *
 * For chroot interpreters the whole `test/fixtures` directory is copied into
 * a fresh `ROOT/tmp/pyspy-fixtures-XXXXXX/` first. The fixture must print
 * `READY <report path>` on stdout once its report (JSON, a path as the
 * interpreter sees it) is complete. If the report has a `thread_count`, this
 * also waits until the process has exactly that many OS threads, so helper
 * threads that ended just after READY are really gone.
 *
 * @param interp An entry of the matrix.
 * @param fixture A file in `test/fixtures`, e.g. `dump_target.py`.
 * @param args Arguments for the fixture.
 * @throws Error naming the interpreter, with the fixture's stdout/stderr, when
 *   it exits or stays silent before READY (the child is killed first).
 */
export async function spawnFixture<Report = DumpTargetReport>(
  interp: Interpreter,
  fixture: string,
  args: string[] = [],
  options: SpawnFixtureOptions = {},
): Promise<RunningFixture<Report>> {
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  if (!existsSync(path.join(FIXTURES_DIR, fixture))) throw new Error(`no fixture ${fixture} in ${FIXTURES_DIR}`);

  let copyDir: string | null = null;
  let script = path.join(FIXTURES_DIR, fixture);
  if (interp.root) {
    copyDir = mkdtempSync(path.join(interp.root, 'tmp', 'pyspy-fixtures-'));
    cpSync(FIXTURES_DIR, copyDir, { recursive: true });
    script = `/tmp/${path.basename(copyDir)}/${fixture}`;
  }
  const hostPath = (p: string): string => (interp.root && path.isAbsolute(p) ? path.join(interp.root, p) : p);

  const via = options.via ?? 'child';
  const argv = [...interp.argv, script, ...args];
  const [command, ...rest] = via === 'shell' ? ['/bin/sh', '-c', '"$@" & wait $!', 'sh', ...argv] : argv;
  const child = spawn(command!, rest, {
    cwd: interp.root ? '/' : FIXTURES_DIR,
    env: pythonEnv(interp, options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tracked = track(child);

  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr = tail(stderr + d, 64_000);
  });

  let reportPath: string | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      cleanups.delete(cleanup);
      await killTracked(tracked);
      if (reportPath) rmSync(hostPath(reportPath), { force: true });
      if (copyDir) rmSync(copyDir, { recursive: true, force: true });
    })());
  cleanups.add(cleanup);

  const what = `${fixture} under ${interp.id} (${interp.argv.join(' ')})`;
  try {
    reportPath = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => fail(`did not print READY within ${readyTimeoutMs / 1000}s`),
        readyTimeoutMs,
      );
      function fail(why: string): void {
        clearTimeout(timer);
        reject(new Error(`${what} ${why}\n--- stdout:\n${tail(stdout)}\n--- stderr:\n${tail(stderr)}`));
      }
      child.once('error', (err) => fail(`could not start: ${err.message}`));
      child.once('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before READY`));
      child.stdout!.on('data', (d: string) => {
        stdout = tail(stdout + d, 64_000);
        const m = /^READY (.+)$/m.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!.trim());
        }
      });
    });

    const report = JSON.parse(readFileSync(hostPath(reportPath), 'utf8')) as Report & {
      pid?: number;
      thread_count?: number;
    };
    let pid = child.pid!;
    if (via === 'shell') {
      if (typeof report.pid !== 'number' || procStat(report.pid)?.ppid !== child.pid) {
        throw new Error(`${what}: fixture says pid ${report.pid}, which is not a child of sh ${child.pid}`);
      }
      pid = report.pid;
      untrack(tracked);
      tracked = track(child, pid);
    } else if (report.pid !== undefined && report.pid !== child.pid) {
      throw new Error(`${what}: fixture says pid ${report.pid} but the spawned pid is ${child.pid} (a wrapper process?)`);
    }
    if (typeof report.thread_count === 'number') {
      await waitForThreadCount(pid, report.thread_count + (options.extraOsThreads ?? 0), readyTimeoutMs, what);
    }
    return {
      interp,
      child,
      pid,
      report,
      script,
      hostPath,
      stderr: () => stderr,
      kill: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Polls /proc/PID/task until the process has `count` threads. */
async function waitForThreadCount(pid: number, count: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  for (;;) {
    const st = procStat(pid);
    if (!st || st.state === 'Z') throw new Error(`${what} exited after READY`);
    try {
      seen = readdirSync(`/proc/${pid}/task`).length;
    } catch {
      seen = -1;
    }
    if (seen === count) return;
    if (Date.now() > deadline) {
      throw new Error(`${what}: expected ${count} threads after READY, /proc shows ${seen}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `/proc/PID/cmdline` joined by spaces, as `dump` prints it. */
export function procCmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0').join(' ');
}

/** What {@link spawnTracked} returns. */
export interface TrackedChild {
  child: ChildProcess;
  pid: number;
  /** Kills it (SIGKILL) and waits for it. Idempotent. */
  kill(): Promise<void>;
}

/**
 * Spawns any program (e.g. `sleep 100` as a non-Python target) so that
 * {@link killAllChildren} cleans it up, and waits until it has exec'd:
 * `/proc/PID/exe` no longer points at this Node binary.
 */
export async function spawnTracked(command: string, args: string[]): Promise<TrackedChild> {
  const child = spawn(command, args, { stdio: 'ignore' });
  const tracked = track(child);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid!;
  const nodeExe = readlinkSync('/proc/self/exe');
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // not yet readable, or already gone
    }
    if (exe && exe !== nodeExe) break;
    if (exited(child) || Date.now() > deadline) {
      await killTracked(tracked);
      throw new Error(`${command} ${args.join(' ')} did not start (exe ${exe || 'unreadable'})`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, pid, kill: () => killTracked(tracked) };
}

/** What {@link runCli} resolves with. */
export interface CliResult {
  /** Exit code, or `null` when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node packages/pyspy-node/bin/pyspy-node.js ...args` from the repo root.
 *
 * @throws Error (after killing it) when it runs longer than `timeoutMs` (default 120 s).
 */
export async function runCli(args: string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? CLI_TIMEOUT_MS;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...options.env };
  delete env.FORCE_COLOR;
  const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tracked = track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      void killTracked(tracked).then(() =>
        reject(new Error(`pyspy-node ${args.join(' ')} did not finish within ${timeoutMs / 1000}s\n--- stderr:\n${tail(stderr)}`)),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' (not 'exit') so that stdout and stderr are complete.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      untrack(tracked);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** What {@link spawnPythonCode} returns. */
export interface PythonCodeChild extends TrackedChild {
  /** Resolves once the Python process has exited (its `sh` parent has reaped it and ended). */
  exited: Promise<void>;
}

/**
 * Runs `python -c CODE` under `interp` (no files to copy, so it works the same
 * in a chroot) as the child of a `sh` that waits for it (so it is not this
 * process's child; see {@link SpawnFixtureOptions.via}). CODE must print a
 * line `READY <os.getpid()>`; this resolves then. For short-lived targets;
 * {@link killAllChildren} cleans up.
 *
 * `execAfterSeconds`: instead, the `sh` itself sleeps that long and then
 * execs the interpreter, so one pid (and start time) is first a shell, then
 * Python (`exec python` in a start-up script; `chroot`, which execs too).
 *
 * @throws Error when it exits or stays silent (60 s) before printing READY.
 */
export async function spawnPythonCode(
  interp: Interpreter,
  code: string,
  { execAfterSeconds }: { execAfterSeconds?: number } = {},
): Promise<PythonCodeChild> {
  const script = execAfterSeconds === undefined ? '"$@" & wait $!' : `sleep ${execAfterSeconds}; exec "$@"`;
  const child = spawn('/bin/sh', ['-c', script, 'sh', ...interp.argv, '-c', code], {
    cwd: interp.root ? '/' : REPO_ROOT,
    env: pythonEnv(interp),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tracked = track(child);
  const exitedPromise = new Promise<void>((resolve) => {
    if (exited(child)) resolve();
    else child.once('exit', () => resolve());
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = tail(stderr + d, 64_000)));
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail('did not print READY within 60s'), READY_TIMEOUT_MS);
    function fail(why: string): void {
      clearTimeout(timer);
      void killTracked(tracked);
      reject(new Error(`python -c under ${interp.id} ${why}\n--- stderr:\n${tail(stderr)}`));
    }
    child.once('error', (err) => fail(`could not start: ${err.message}`));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /^READY (\d+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    // A target that exits right after READY may close stdout and exit in one go:
    // only an exit without READY is a failure.
    child.once('close', () => {
      if (!/^READY \d+$/m.test(stdout)) fail(`exited (code ${child.exitCode}, signal ${child.signalCode}) before READY`);
    });
  });
  untrack(tracked);
  tracked = track(child, pid);
  return { child, pid, kill: () => killTracked(tracked), exited: exitedPromise };
}
