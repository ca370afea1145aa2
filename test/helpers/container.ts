/**
 * Test helpers for targets in a container: a process in its own PID and
 * mount namespace, with its own root (`container.sh`: `unshare` +
 * `pivot_root` into an extracted Debian root), profiled from the host or
 * from inside its PID namespace (a sidecar).
 *
 * Every container started here is tracked like the other children (see
 * `children.ts`): killing its init (the Python, pid 1 inside) ends the PID
 * namespace, and its mount namespace goes with its last process.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { cleanups, killTracked, procStat, tail, track, untrack, type Tracked } from './children.js';
import { CLI_PATH, FIXTURES_DIR, REPO_ROOT, loadMatrix, type CliResult, type Interpreter } from './pythons.js';

/** The launcher. */
export const CONTAINER_SH = path.join(REPO_ROOT, 'test/helpers/container.sh');
/** Where `container.sh` puts test/fixtures inside the container. */
export const CONTAINER_FIXTURES = '/tmp/fixtures';

const READY_TIMEOUT_MS = 60_000;
const CLI_TIMEOUT_MS = 120_000;

/** The Debian chroot interpreters (3.13+), whose roots are real extracted roots. */
export function containerInterpreters(): Interpreter[] {
  return loadMatrix().filter((i) => i.kind === 'debian-chroot' && i.supported && i.root !== null);
}

/** A process running as init of its own container. */
export interface Container {
  /** The unshare process (our child). */
  child: ChildProcess;
  /** The host pid of the container's init (pid 1 inside): the command run. */
  pid: number;
  /** The interpreter, as seen inside (e.g. `/usr/bin/python3.14`). */
  interp: Interpreter;
  /** A path as the container's init sees it, as the host reaches it (through /proc/PID/root). */
  hostPath(p: string): string;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Kills the container (its init and so every process in it). Idempotent. */
  kill(): Promise<void>;
}

/**
 * Starts `python FIXTURE ARGS` as init of a new container built from
 * `interp`'s root (or, for an interpreter without one, of a new PID
 * namespace on the host's files), and resolves once it printed a line
 * matching `ready`.
 *
 * @throws Error with its output when it exits or stays silent first (it is killed).
 */
export async function startContainer(
  interp: Interpreter,
  fixture: string,
  args: string[],
  ready: RegExp = /^READY .+$/m,
): Promise<Container & { match: RegExpExecArray }> {
  const python = interp.argv[interp.argv.length - 1]!;
  // Without a root of its own: a PID namespace only (the host's files, a
  // /proc of the namespace), as `unshare --pid --fork --mount-proc` gives.
  const argv = interp.root
    ? ['/bin/sh', CONTAINER_SH, interp.root, FIXTURES_DIR, python, `${CONTAINER_FIXTURES}/${fixture}`, ...args]
    : ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', python, path.join(FIXTURES_DIR, fixture), ...args];
  const [command, ...rest] = argv;
  const child = spawn(command!, rest, {
    cwd: '/',
    env: {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      PYTHONUTF8: '1',
      LC_ALL: 'C.UTF-8',
      // A rooted container's /tmp is its own tmpfs; without a root the host's files are seen.
      TMPDIR: interp.root ? '/tmp' : os.tmpdir(),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tracked: Tracked = track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = tail(stderr + d, 64_000)));
  const kill = (): Promise<void> => killTracked(tracked);
  const cleanup = async (): Promise<void> => {
    cleanups.delete(cleanup);
    await kill();
  };
  cleanups.add(cleanup);
  const what = `${fixture} in a ${interp.id} container`;
  try {
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => fail(`did not print READY within ${READY_TIMEOUT_MS / 1000}s`), READY_TIMEOUT_MS);
      function fail(why: string): void {
        clearTimeout(timer);
        reject(new Error(`${what} ${why}\n--- stdout:\n${tail(stdout)}\n--- stderr:\n${tail(stderr)}`));
      }
      child.once('error', (err) => fail(`could not start: ${err.message}`));
      child.once('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before READY`));
      child.stdout!.on('data', (d: string) => {
        stdout = tail(stdout + d, 64_000);
        const m = ready.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      });
    });
    const pid = initPid(child.pid!);
    if (pid === null) throw new Error(`${what}: no init process under unshare ${child.pid}`);
    untrack(tracked);
    tracked = track(child, pid);
    return {
      child,
      pid,
      interp,
      match,
      hostPath: (p: string) => `/proc/${pid}/root${p}`,
      stdout: () => stdout,
      stderr: () => stderr,
      kill: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The one child of `unshare` (the container's init), or null. */
function initPid(unshare: number): number | null {
  try {
    const kids = readFileSync(`/proc/${unshare}/task/${unshare}/children`, 'utf8').trim().split(/\s+/);
    const pid = Number(kids[0]);
    return Number.isInteger(pid) && pid > 0 && procStat(pid)?.ppid === unshare ? pid : null;
  } catch {
    return null;
  }
}

/** Its own tid -> our tid, for every thread of `pid`, from the NSpid lines. */
export function nsThreadIds(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const ids = nspid(`/proc/${pid}/task/${tid}/status`);
    out.set(ids[ids.length - 1]!, ids[0]!);
  }
  return out;
}

/** The NSpid line of /proc/PID[/task/TID]/status: ids from ours to its own. */
export function nspid(statusPath: string): number[] {
  const line = readFileSync(statusPath, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('NSpid:'));
  if (!line) throw new Error(`${statusPath} has no NSpid line`);
  return line.slice('NSpid:'.length).trim().split(/\s+/).map(Number);
}

/**
 * Runs the CLI with `args` under `wrapper` (e.g. `nsenter ... --`, or the
 * seccomp helper): `wrapper... node CLI args...`.
 */
export async function runWrappedCli(
  wrapper: string[],
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? CLI_TIMEOUT_MS;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...options.env };
  delete env.FORCE_COLOR;
  const [command, ...rest] = [...wrapper, process.execPath, CLI_PATH, ...args];
  const child = spawn(command!, rest, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tracked = track(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      void killTracked(tracked).then(() =>
        reject(new Error(`${[...wrapper, 'pyspy-node', ...args].join(' ')} did not finish within ${timeoutMs / 1000}s\n--- stderr:\n${tail(stderr)}`)),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      untrack(tracked);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
