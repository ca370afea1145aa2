// Finds what a test run left behind: processes and files in the system's
// temporary directory.
//
// Processes: scripts/test.mjs puts a marker in its own environment before
// anything starts; every process the run starts (tests, fixtures, their
// children, chroot interpreters) inherits it, so a process still carrying it
// once the run is over was left behind.
//
// Files: a run works in a temporary directory of its own (TMPDIR, which
// Node's os.tmpdir() and Python's tempfile honour), removed at its end, pass
// or fail: fixtures killed before they clean up leave their files there. A
// `pyspy-*` entry that appears in the system's directory during the run was
// written past TMPDIR.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The environment variable that marks a test run's processes. */
export const MARKER = 'PYSPY_NODE_TEST_RUN';

/** Marks this process's environment (inherited by everything it starts); returns the marker's value. */
export function markRun() {
  const id = randomUUID();
  process.env[MARKER] = id;
  return id;
}

/** `[{ pid, command }]` of live processes (zombies aside) whose environment carries `id`. */
export function markedProcesses(id) {
  const needle = Buffer.from(`\0${MARKER}=${id}\0`);
  const first = Buffer.from(`${MARKER}=${id}\0`);
  const found = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${pid}/environ`);
      if (!(env.includes(needle) || env.subarray(0, first.length).equals(first))) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0').join(' ');
      found.push({ pid, command });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/**
 * Waits up to `graceMs` for marked processes to end, then SIGKILLs what is
 * left and returns it (empty: nothing was left behind).
 */
export async function reapLeftovers(id, graceMs = 5000) {
  const deadline = Date.now() + graceMs;
  let left = markedProcesses(id);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = markedProcesses(id);
  }
  for (const { pid } of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return left;
}

/** Set while a run's temporary directory is in force: its path. */
export const TMP_SCOPE = 'PYSPY_NODE_TMP_SCOPE';
/** What the tests, fixtures and helpers name their temporary files and directories. */
const PREFIX = 'pyspy-';
/** A run's own directory (this run's, or another's running beside it). */
const RUN_DIR = 'pyspy-node-run-';

function ours(dir) {
  try {
    return readdirSync(dir).filter((n) => n.startsWith(PREFIX));
  } catch {
    return [];
  }
}

/**
 * Gives this process (and so all it starts) a temporary directory of its own
 * under the system's: sets TMPDIR and {@link TMP_SCOPE}. Returns what
 * {@link endTmpScope} needs.
 */
export function scopeTmp() {
  const system = tmpdir();
  const before = new Set(ours(system));
  const dir = mkdtempSync(join(system, RUN_DIR));
  const previous = { TMPDIR: process.env.TMPDIR, [TMP_SCOPE]: process.env[TMP_SCOPE] };
  process.env.TMPDIR = dir;
  process.env[TMP_SCOPE] = dir;
  return { system, dir, before, previous };
}

/**
 * Removes the run's directory with all the run left in it, restores TMPDIR,
 * and returns the `pyspy-*` entries that appeared in the system's directory
 * since {@link scopeTmp} (empty: none). They are left in place: another run
 * on the same machine that does not scope its files (a targeted vitest run
 * of another checkout) makes them too, and may still be using them.
 */
export function endTmpScope(scope) {
  rmSync(scope.dir, { recursive: true, force: true });
  for (const [k, v] of Object.entries(scope.previous)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return ours(scope.system)
    .filter((n) => !scope.before.has(n) && !n.startsWith(RUN_DIR))
    .map((n) => join(scope.system, n));
}
