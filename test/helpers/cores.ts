/**
 * Core files of running fixtures, for the `dump --core` tests: with gcore
 * (Debian's gdb; the process goes on) or from the kernel (SIGABRT under a
 * lifted core limit; the process dies). Both fail loudly when they cannot.
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import { expect } from 'vitest';

/** `gcore`'s path; the test fails loudly without it (Debian's `gdb` package). */
function gcorePath(): string {
  const found = spawnSync('sh', ['-c', 'command -v gcore'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error("gcore is missing: install Debian's gdb package (apt-get install gdb) to run the core-file tests");
  return found;
}

/** Writes a core of running process `pid` with gcore into `dir`; returns its path. */
export function writeGcore(dir: string, pid: number, name: string): string {
  const prefix = path.join(dir, name);
  execFileSync(gcorePath(), ['-o', prefix, String(pid)], { stdio: 'ignore', timeout: 120_000 });
  const file = `${prefix}.${pid}`;
  expect(existsSync(file), `gcore wrote ${file}`).toBe(true);
  return file;
}

/**
 * Makes the kernel dump core of `pid`, whose working directory is `cwd` on the host (the
 * chroot's root: the fixtures run from `/` there): lifts its core-size limit, sends SIGABRT,
 * waits for the `core` file (kernel.core_pattern is a plain "core" here, checked), and moves it
 * into `dir`. Returns the new path.
 */
export async function writeKernelCore(dir: string, pid: number, cwd: string): Promise<string> {
  const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  if (pattern.startsWith('|') || pattern.includes('/')) {
    throw new Error(`kernel.core_pattern is ${JSON.stringify(pattern)}: these tests need a plain file name such as "core"`);
  }
  execFileSync('prlimit', ['--pid', String(pid), '--core=unlimited']);
  const file = path.join(cwd, pattern.replace(/%p/g, String(pid)));
  rmSync(file, { force: true });
  process.kill(pid, 'SIGABRT');
  // The file is complete once the process has gone (the kernel writes it while the process exits).
  for (let i = 0; i < 600 && existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(existsSync(file), `the kernel wrote ${file}`).toBe(true);
  const moved = path.join(dir, `kernel-core.${pid}`);
  copyFileSync(file, moved);
  rmSync(file);
  return moved;
}
