/**
 * Linux arm64 under qemu-user (issue 21): the paths scripts/arm64.mjs
 * prepares, each arm64 Debian CPython (3.11 from bookworm's root, 3.13 from
 * trixie's, 3.14 and 3.15 from sid's) as an {@link Interpreter}, and the CLI
 * run by arm64 Node (bookworm's root) with the cross-built addon. Everything
 * arm64 runs under `qemu-aarch64 -L <root>` (no binfmt registration): the
 * Python process is the qemu process, so its pid, tids and memory addresses
 * (guest base 0) are the host's; qemu adds one OS thread of its own (RCU).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

import { arm64Paths, type Arm64PythonPaths } from '../../scripts/arm64.mjs';

import { CLI_PATH, REPO_ROOT, type CliResult, type Interpreter } from './pythons.js';
import { killChild } from './children.js';

export const ARM64 = arm64Paths();

/** One arm64 Debian CPython of scripts/arm64.mjs and the root (its suite's) it runs from. */
export type Arm64Python = Arm64PythonPaths;

/** Every arm64 Python setup provides: the tests run each of them. */
export const ARM64_PYTHONS: readonly Arm64Python[] = ARM64.pythons;

/** qemu-user's own thread in every emulated process. */
export const QEMU_EXTRA_THREADS = 1;

/**
 * Throws, naming the script, when scripts/arm64.mjs has not made qemu, Node,
 * the addon or `py` (never a silent skip).
 */
export function requireArm64(py?: Arm64Python): void {
  const { qemu, root, node, addon } = ARM64;
  const want: Record<string, string> = { qemu, root, node, addon };
  if (py) want[`python${py.version} (${py.suite})`] = py.python;
  const missing = Object.entries(want).filter(([, p]) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`arm64 prerequisites missing (${missing.map(([k, p]) => `${k}: ${p}`).join(', ')}): run node scripts/arm64.mjs`);
  }
}

/** An arm64 Debian python, run under qemu-user from its suite's root. */
export function arm64Python(py: Arm64Python): Interpreter {
  return {
    id: `qemu-arm64-${py.version}`,
    version: py.version,
    kind: 'qemu-arm64',
    argv: [ARM64.qemu, '-L', py.root, py.python],
    root: null,
    build: 'static-stripped',
    supported: true,
    required: true,
    binary: py.python,
    libpython: null,
    debug: false,
  };
}

/** The command line of `pyspy-node ARGS` run by arm64 Node under qemu-user. */
export function arm64CliArgv(args: string[]): string[] {
  return [ARM64.qemu, '-L', ARM64.root, ARM64.node, CLI_PATH, ...args];
}

/** The environment that makes the package load the cross-built addon. */
export function arm64CliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', NAPI_RS_NATIVE_LIBRARY_PATH: ARM64.addon };
  delete env.FORCE_COLOR;
  return env;
}

/**
 * Runs the CLI under arm64 Node and waits for it; kills it after `timeoutMs`
 * (a generous bound that turns a hang into a failure, not a timing).
 */
export async function runArm64Cli(args: string[], timeoutMs = 150_000): Promise<CliResult> {
  const [cmd, ...rest] = arm64CliArgv(args);
  const child = spawn(cmd!, rest, { cwd: REPO_ROOT, env: arm64CliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      void killChild(child).then(() => reject(new Error(`arm64 pyspy-node ${args.join(' ')}: still running after ${timeoutMs / 1000}s\n${stderr}`)));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
