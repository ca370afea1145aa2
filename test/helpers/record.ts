/**
 * Helpers for the `record` end-to-end tests: the record fixture, starting the
 * CLI as a process to signal, launching fixtures through the CLI (also in a
 * chroot). The parsers that read every output format back are in
 * `formats.ts`, re-exported here.
 *
 * Processes started here are tracked like those of `pythons.ts`: call
 * {@link cleanupRecord} in `afterEach` (next to `killAllChildren`).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CLI_PATH, FIXTURES_DIR, procStat, REPO_ROOT, type CliResult, type Interpreter } from './pythons.js';
import { killChild } from './children.js';

/** The record fixture, in test/fixtures. */
export const RECORD_FIXTURE = 'record_target.py';

/** A function of the fixture: its `def` line and the lines its body spans. */
export interface FixtureFunction {
  first_line: number;
  body: [number, number];
}

/** What test/fixtures/record_target.py writes before printing READY. */
export interface RecordTargetReport {
  pid: number;
  version_info: [number, number, number];
  executable: string;
  mode: 'ratio' | 'mixed' | 'sleep';
  /** Iterations of work_one (work_three does 3×). */
  n: number;
  thread_count: number;
  threads: { ident: number; native_id: number; name: string }[];
  functions: { work_three: FixtureFunction; work_one: FixtureFunction; nap: FixtureFunction };
}

// --- cleanup ------------------------------------------------------------------

/** CLI processes started here; `group`: it leads its own process group, killed as a whole. */
const children = new Map<ChildProcess, { group: boolean }>();
const dirs = new Set<string>();

/** Kills the CLI processes started by {@link startCli} and removes temporary directories. */
export async function cleanupRecord(): Promise<void> {
  await Promise.all(
    [...children].map(async ([child, { group }]) => {
      if (group) killGroup(child.pid!);
      await killChild(child);
      children.delete(child);
    }),
  );
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** SIGKILL to every process of group `pgid` (a launched command left behind, too). */
function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // no such group any more
  }
}

process.once('exit', () => {
  for (const [c, { group }] of children) {
    if (group) killGroup(c.pid!);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory for output files, removed by {@link cleanupRecord}. */
export function outputDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyspy-record-'));
  dirs.add(dir);
  return dir;
}

// --- processes ----------------------------------------------------------------

/** A CLI process still running; see {@link startCli}. */
export interface RunningCli {
  child: ChildProcess;
  pid: number;
  /** Resolves once it has exited and its output is complete. */
  result: Promise<CliResult>;
  /** Everything it wrote to stdout so far (a launched command's output too). */
  stdout(): string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
}

/**
 * Starts `node packages/pyspy-node/bin/pyspy-node.js ...args` without waiting
 * for it (to signal it while it records). {@link cleanupRecord} kills it.
 *
 * @param options.group Start it as the leader of a new process group, as a
 *   shell starts a foreground job: `process.kill(-pid, 'SIGINT')` is then a
 *   Ctrl-C, reaching a command it launched too. Cleanup kills the whole group.
 */
export function startCli(args: string[], options: { timeoutMs?: number; group?: boolean } = {}): RunningCli {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const group = options.group ?? false;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.FORCE_COLOR;
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  });
  children.set(child, { group });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (group) killGroup(child.pid!);
      child.kill('SIGKILL');
      reject(new Error(`pyspy-node ${args.join(' ')} did not finish within ${timeoutMs / 1000}s\n--- stderr:\n${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (group) killGroup(child.pid!);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, pid: child.pid!, result, stdout: () => stdout, stderr: () => stderr };
}

/** Names (`comm`) of the threads of process `pid`; empty when it is gone. */
export function threadNames(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    });
  } catch {
    return [];
  }
}

/**
 * Waits until process `pid` has a thread named `pyspy-sampler` (the native
 * sampling thread), i.e. until it is really recording.
 *
 * @throws Error when the process exits first or after `timeoutMs`.
 */
export async function waitForSampler(pid: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (threadNames(pid).includes('pyspy-sampler')) return;
    const st = procStat(pid);
    if (!st || st.state === 'Z') throw new Error(`process ${pid} exited before a pyspy-sampler thread appeared`);
    if (Date.now() > deadline) throw new Error(`process ${pid} has no pyspy-sampler thread after ${timeoutMs / 1000}s`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `TracerPid` of /proc/PID/status, or null when there is no such process. */
export function tracerPid(pid: number): number | null {
  try {
    const m = /^TracerPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A command line that runs a fixture script under `interp`, for `record -- CMD`. */
export interface LaunchCommand {
  argv: string[];
  /** The script path as the interpreter sees it. */
  script: string;
  /** An empty directory (as the interpreter sees it) for files the command writes; removed by {@link cleanupRecord}. */
  scratch: string;
}

/**
 * The command that runs `test/fixtures/FIXTURE ARGS` under `interp`. For a
 * chroot interpreter the fixtures are copied into the chroot's /tmp first.
 * `args` may be a function of the scratch directory (e.g. for `--report`).
 */
export function launchCommand(
  interp: Interpreter,
  fixture: string,
  args: string[] | ((scratch: string) => string[]) = [],
): LaunchCommand {
  let script = path.join(FIXTURES_DIR, fixture);
  let scratch: string;
  if (interp.root) {
    const copy = mkdtempSync(path.join(interp.root, 'tmp', 'pyspy-record-fixtures-'));
    dirs.add(copy);
    cpSync(FIXTURES_DIR, path.join(copy, 'fixtures'), { recursive: true });
    mkdirSync(path.join(copy, 'scratch'));
    script = `/tmp/${path.basename(copy)}/fixtures/${fixture}`;
    scratch = `/tmp/${path.basename(copy)}/scratch`;
  } else {
    scratch = outputDir();
  }
  const extra = typeof args === 'function' ? args(scratch) : args;
  return { argv: [...interp.argv, script, ...extra], script, scratch };
}

/** Looks an interpreter up by id; throws (rather than skipping) when the matrix lacks it. */
export function interpreter(matrix: Interpreter[], id: string): Interpreter {
  const interp = matrix.find((i) => i.id === id);
  if (!interp) throw new Error(`interpreter ${id} is missing from the matrix: run test/pythons/install.sh`);
  if (!interp.supported) throw new Error(`interpreter ${id} is marked unsupported in the matrix`);
  return interp;
}

// --- the CLI's summary line ---------------------------------------------------

export * from './formats.js';
