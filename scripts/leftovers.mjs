// Finds processes a test run left behind. scripts/test.mjs puts a marker in
// its own environment before anything starts; every process the run starts
// (tests, fixtures, their children, chroot interpreters) inherits it, so a
// process still carrying it once the run is over was left behind.
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

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
