// Linux arm64 under qemu-user (issue 21), `npm run test:arm64`: arm64 Node
// with the cross-built addon runs the CLI and the library against every arm64
// Debian CPython scripts/arm64.mjs sets up (bookworm's 3.11, trixie's 3.13,
// sid's 3.14 and 3.15, each in its suite's root), all emulated on this x86-64
// machine. Every case runs for every Python; one that setup should have made
// and did not fails its cases, loudly.
//
// qemu-user has no process_vm_readv and no ptrace (ENOSYS): the reader must
// pick /proc/PID/mem and read unpaused by itself, with no flag or variable
// asking for it. What is not covered here: real arm64 kernels (thread status
// through /proc/PID/task/TID/syscall shows the host's x86-64 system call
// numbers under qemu, so waits for the GIL are not told from other waits),
// and --native, which needs ptrace (EPAUSE here; its unwinder is tested on
// captured arm64 stacks: crates/pyspy-native/tests/aarch64_replay.rs).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ARM64_PYTHONS, arm64CliArgv, arm64CliEnv, arm64Python, QEMU_EXTRA_THREADS, requireArm64, runArm64Cli } from '../helpers/arm64.js';
import { killAllChildren, REPO_ROOT, settleWithin, shownName, spawnFixture, type RunningFixture } from '../helpers/pythons.js';
import {
  cleanupRecord,
  outputDir,
  parseRaw,
  parseSummary,
  ratioSplit,
  RECORD_FIXTURE,
  totalCount,
  type RecordTargetReport,
} from '../helpers/record.js';

/** Emulated interpreters start slowly: the limit turns a hang into a failure, nothing more. */
const READY_MS = 150_000;

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

interface SeenThread {
  thread_id: number;
  os_thread_id: number | null;
  thread_name: string | null;
  active: boolean;
  owns_gil: boolean;
  frames: { name: string; filename: string; line: number }[];
}

/** The dump is exactly what the fixture reported from sys._current_frames(), frame by frame. */
function expectMatchesReport(threads: SeenThread[], fx: RunningFixture, where: string): void {
  const { report } = fx;
  expect(threads.map((t) => t.thread_id).sort(), `${where}: thread ids`).toEqual(report.threads.map((t) => t.ident).sort());
  for (const want of report.threads) {
    const got = threads.find((t) => t.thread_id === want.ident)!;
    const label = `${where}: thread "${want.name}"`;
    expect(got.os_thread_id, `${label} os_thread_id`).toBe(want.native_id);
    expect(got.thread_name, `${label} name`).toBe(want.name);
    const actual = got.frames.map(({ name, filename, line }) => ({ name, filename, line }));
    const expected = want.frames.map((f) => ({ name: shownName(f), filename: f.filename, line: f.line }));
    if (want.ident === report.busy.ident) {
      const [lo, hi] = report.busy.line_range;
      expect(actual[0]?.name, `${label} innermost function`).toBe(report.busy.shown);
      expect(actual[0]?.line, `${label} innermost line`).toBeGreaterThanOrEqual(lo);
      expect(actual[0]?.line, `${label} innermost line`).toBeLessThanOrEqual(hi);
      expected[0]!.line = actual[0]!.line;
      expect(got.active, `${label} active`).toBe(true);
    } else {
      expect(got.active, `${label} active`).toBe(false);
      expect(got.owns_gil, `${label} owns_gil`).toBe(false);
    }
    expect(actual, `${label} frames (innermost first)`).toEqual(expected);
  }
}

it('covers an arm64 Python of every Debian suite set up: bookworm 3.11, trixie 3.13, sid 3.14', () => {
  expect(ARM64_PYTHONS.map((p) => `${p.suite} ${p.version}`)).toEqual(expect.arrayContaining(['bookworm 3.11', 'trixie 3.13', 'sid 3.14']));
});

describe.each(ARM64_PYTHONS.map((py) => [`${py.version} (${py.suite})`, py] as const))('arm64 CPython %s and arm64 Node under qemu-user', (label, arm64) => {
  const PY = arm64Python(arm64);
  const [major, minor] = arm64.version.split('.').map(Number);
  // Fails every case of this Python, each counted, when setup did not make it (or qemu, Node, the addon).
  beforeEach(() => requireArm64(arm64));

  it('the emulated processes are arm64, the GIL holder is found, and the reader falls back to /proc/PID/mem by itself', async () => {
    const fx = await spawnFixture(PY, 'dump_target.py', [], { via: 'shell', readyTimeoutMs: READY_MS, extraOsThreads: QEMU_EXTRA_THREADS });
    expect(fx.report.version_info.slice(0, 2)).toEqual([major, minor]);
    // The interpreter's ELF header: EM_AARCH64 (183) at offset 18.
    expect(readFileSync(PY.binary).readUInt16LE(18)).toBe(183);
    // The GIL holder is found (3.11: behind a GIL state 16 bytes larger on aarch64, see
    // crates/pyspy-cpython/src/arch.rs; 3.13+: where the target's _Py_DebugOffsets say).
    const holders: (boolean | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await runArm64Cli(['dump', '--pid', String(fx.pid), '--json']);
      expect(res.code, res.stderr).toBe(0);
      holders.push((JSON.parse(res.stdout) as SeenThread[]).find((t) => t.thread_id === fx.report.busy.ident)?.owns_gil);
    }
    expect(holders, 'busy-worker holds the GIL in some of 3 dumps').toContain(true);
    const debug = await runArm64CliWith(['dump', '--pid', String(fx.pid)], { PYSPY_NODE_DEBUG: '1' });
    // The reader decided by itself: no PYSPY_NODE_PROC_MEM, no --nonblocking.
    expect(debug.stderr).toMatch(/memory reads through pread on \/proc\/\d+\/mem \(process_vm_readv refused: ENOSYS\)/);
    expect(debug.code, debug.stderr).toBe(0);
  });

  it('dump --json (CLI) is the fixture\'s own report, frame by frame', async () => {
    const fx = await spawnFixture(PY, 'dump_target.py', [], { via: 'shell', readyTimeoutMs: READY_MS, extraOsThreads: QEMU_EXTRA_THREADS });
    const res = await runArm64Cli(['dump', '--pid', String(fx.pid), '--json']);
    expect(res.stderr).not.toMatch(/panicked|stack backtrace/);
    expect(res.code, res.stderr).toBe(0);
    const parsed = JSON.parse(res.stdout) as SeenThread[];
    expectMatchesReport(parsed, fx, 'arm64 CLI');
  });

  it('dump() (library, in arm64 Node) is the fixture\'s own report, frame by frame', async () => {
    const fx = await spawnFixture(PY, 'dump_target.py', [], { via: 'shell', readyTimeoutMs: READY_MS, extraOsThreads: QEMU_EXTRA_THREADS });
    const code = `import('pyspy-node').then((m) => m.dump(${fx.pid})).then((d) => process.stdout.write(JSON.stringify(d)))`;
    const res = await runArm64Node(['-e', code]);
    expect(res.code, res.stderr).toBe(0);
    const d = JSON.parse(res.stdout) as {
      pid: number;
      pythonVersion: string;
      executable: string;
      threads: { threadId: number; osThreadId: number | null; threadName: string | null; active: boolean; ownsGil: boolean; frames: SeenThread['frames'] }[];
    };
    expect(d.pid).toBe(fx.pid);
    expect(d.pythonVersion).toBe(fx.report.version_info.join('.'));
    // The interpreter, not the emulator running it.
    expect(d.executable).toBe(PY.binary);
    const threads: SeenThread[] = d.threads.map((t) => ({
      thread_id: t.threadId,
      os_thread_id: t.osThreadId,
      thread_name: t.threadName,
      active: t.active,
      owns_gil: t.ownsGil,
      frames: t.frames,
    }));
    expectMatchesReport(threads, fx, 'arm64 library');
  });

  it('native: true needs ptrace, which qemu-user lacks: EPAUSE saying so, not EUNSUPPORTED', async () => {
    const fx = await spawnFixture(PY, 'dump_target.py', [], { via: 'shell', readyTimeoutMs: READY_MS, extraOsThreads: QEMU_EXTRA_THREADS });
    const code = `import('pyspy-node').then((m) => m.dump(${fx.pid}, { native: true })).then(() => process.stdout.write('{}'), (e) => process.stdout.write(JSON.stringify({ code: e.code, message: e.message })))`;
    const res = await runArm64Node(['-e', code]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ code: 'EPAUSE', message: expect.stringMatching(/cannot pause it: ptrace is not available here \(ENOSYS\)/) });
  });

  it('record splits work_three:work_one 3:1 within ±5 points', async () => {
    const fx = await spawnFixture<RecordTargetReport>(PY, RECORD_FIXTURE, ['--mode', 'ratio'], {
      via: 'shell',
      readyTimeoutMs: READY_MS,
      extraOsThreads: QEMU_EXTRA_THREADS,
    });
    const file = path.join(outputDir(), 'ratio.txt');
    const res = await runArm64Cli(['record', '-p', String(fx.pid), '-o', file, '-f', 'raw', '-r', '100', '-d', '5']);
    expect(res.code, `record: ${res.stderr}`).toBe(0);
    const summary = parseSummary(res.stderr);
    expect(summary, `summary line in: ${res.stderr}`).not.toBeNull();
    const stacks = parseRaw(readFileSync(file, 'utf8'));
    expect(totalCount(stacks)).toBe(summary!.samples);
    const { three, one, shareThree: share, detail } = ratioSplit(stacks, fx.script, summary!.samples);
    // Emulated, the sampler reaches fewer than 100 a second; enough for ±5 points still.
    expect(three + one, detail).toBeGreaterThanOrEqual(150);
    expect(three + one, detail).toBeGreaterThanOrEqual(0.97 * summary!.samples);
    console.log(`arm64 ${label} record: work_three ${share.toFixed(2)}% (${detail})`);
    expect(share, detail).toBeGreaterThanOrEqual(70);
    expect(share, detail).toBeLessThanOrEqual(80);
  });

  it('top prints the busy functions until SIGINT, and leaves the target running', async () => {
    const fx = await spawnFixture(PY, 'top_target.py', [], { via: 'shell', readyTimeoutMs: READY_MS, extraOsThreads: QEMU_EXTRA_THREADS });
    const [cmd, ...args] = arm64CliArgv(['top', '--pid', String(fx.pid), '--delay', '1']);
    const child = spawn(cmd!, args, { cwd: REPO_ROOT, env: arm64CliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const tables = () => stdout.split('\n\n').filter((b) => b.startsWith('Collecting samples'));
    try {
      const deadline = Date.now() + 120_000;
      while (tables().length < 3 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGINT');
      const code = await settleWithin(closed, 60_000, 'arm64 pyspy-node top after SIGINT', fx.pid);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const all = tables();
    expect(all.length, stdout).toBeGreaterThanOrEqual(3);
    const last = all.at(-1)!.split('\n');
    expect(last[0]).toMatch(new RegExp(`^Collecting samples from '.+' \\(python v${major}\\.${minor}\\.\\d+\\)$`));
    // The first row is the function with the most own time: hot_three (3:1 against hot_one).
    const rows = last.slice(4).map((l) => /^\s*\d+\.\d\d%\s+\d+\.\d\d%\s+\d+\.\d\ds\s+\d+\.\d\ds\s+(\S+)/.exec(l)?.[1]);
    expect(rows.slice(0, 2), all.at(-1)).toEqual(['hot_three', 'hot_one']);
    expect(process.kill(fx.pid, 0)).toBe(true);
  });
});

/** Runs arm64 Node with `args` under qemu-user (the library test). */
function runArm64Node(args: string[]) {
  return runArm64CliRaw(args, {});
}

/** The CLI with extra environment variables. */
function runArm64CliWith(args: string[], env: Record<string, string>) {
  return runArm64CliRaw([arm64CliArgv([])[4]!, ...args], env);
}

async function runArm64CliRaw(nodeArgs: string[], env: Record<string, string>) {
  const [qemu, l, root, node] = arm64CliArgv([]);
  const child = spawn(qemu!, [l!, root!, node!, ...nodeArgs], { cwd: REPO_ROOT, env: { ...arm64CliEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await settleWithin(
    new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c))),
    150_000,
    `arm64 node ${nodeArgs.join(' ')}`,
    child.pid!,
  ).finally(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { code, stdout, stderr };
}
