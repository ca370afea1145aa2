/**
 * Test helpers that keep track of every child process a test starts, so that
 * none outlives it: tracking, bounded killing, `/proc` state for failure
 * messages, and {@link settleWithin} to turn a hang into a clear failure.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Generous: it exists to turn a hang into a clear failure, not to time anything. */
const KILL_TIMEOUT_MS = 10_000;

/** A process these helpers started: `pid` is `child.pid`, or a child of it (`via: 'shell'`). */
export interface Tracked {
  child: ChildProcess;
  pid: number;
}

const live = new Set<Tracked>();
/** Cleanups (fixture copies) run by {@link killAllChildren}. */
export const cleanups = new Set<() => Promise<void>>();
let exitHookInstalled = false;

/** Tracks `child` (or its child `pid`) until {@link killAllChildren}. */
export function track(child: ChildProcess, pid = child.pid!): Tracked {
  const t = { child, pid };
  live.add(t);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort when a test forgot to clean up: the worker is exiting.
    process.once('exit', () => {
      for (const x of live) {
        if (x.pid !== x.child.pid && procStat(x.pid)?.ppid === x.child.pid) killQuietly(x.pid);
        if (ours(x.child)) killQuietly(x.child.pid!);
      }
    });
  }
  return t;
}

/** State letter and parent pid from /proc/PID/stat, or null when there is no such process. */
export function procStat(pid: number): { state: string; ppid: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, ppid: Number(fields[1]) };
}

/** `State:` and `TracerPid:` of /proc/PID/status, for failure messages. */
export function describeProcess(pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return status
      .split('\n')
      .filter((l) => /^(State|TracerPid):/.test(l))
      .map((l) => l.replace(/\s+/g, ' '))
      .join(', ');
  } catch {
    return 'no such process';
  }
}

/** Stops tracking `t` (it ended, or is tracked under another pid now). */
export function untrack(t: Tracked): void {
  live.delete(t);
}

/** Whether Node saw `child` exit. */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Whether `child` is still a live (non-zombie) child of this process. Checked
 * in /proc rather than trusted from Node: libuv may have mistaken a ptrace
 * stop of the child for its exit.
 */
export function ours(child: ChildProcess): boolean {
  const st = child.pid === undefined ? null : procStat(child.pid);
  return st !== null && st.ppid === process.pid && st.state !== 'Z';
}

async function waitGone(pid: number, parent: number): Promise<void> {
  const deadline = Date.now() + KILL_TIMEOUT_MS;
  for (;;) {
    const st = procStat(pid);
    if (!st || st.state === 'Z' || st.ppid !== parent || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sends SIGKILL and waits (bounded) until it is gone. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  if (!exited(child)) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, KILL_TIMEOUT_MS);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!child.kill('SIGKILL')) {
        clearTimeout(timer);
        resolve();
      }
    });
  } else if (ours(child)) {
    // Node reported an exit that did not happen (see `ours`).
    killQuietly(child.pid);
    await waitGone(child.pid, process.pid);
  }
}

/** Kills a tracked process (and the shell it runs under) and forgets it. */
export async function killTracked(t: Tracked): Promise<void> {
  if (t.pid !== t.child.pid && procStat(t.pid)?.ppid === t.child.pid) {
    // It may exit between the look and the kill.
    killQuietly(t.pid);
    await waitGone(t.pid, t.child.pid!);
  }
  await killChild(t.child);
  live.delete(t);
}

/**
 * Kills every process these helpers started that is still alive, and removes
 * fixture copies. Use in `afterEach`/`afterAll`.
 */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...cleanups].map((c) => c()));
  await Promise.all([...live].map((t) => killTracked(t)));
}

/**
 * Resolves like `promise`, or rejects after `ms` with a message naming `what`
 * and the state of process `pid` (is it stopped? traced by whom?), so that a
 * hang fails clearly instead of as a bare test timeout.
 */
export async function settleWithin<T>(promise: Promise<T>, ms: number, what: string, pid?: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const state = pid === undefined ? '' : `; process ${pid}: ${describeProcess(pid)}`;
      reject(new Error(`${what} did not settle within ${ms / 1000}s${state}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILL to `pid`; one that is already gone (ESRCH) is fine. */
function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** The last `max` characters of `text`, for failure messages. */
export function tail(text: string, max = 4000): string {
  return text.length > max ? `...${text.slice(-max)}` : text;
}
