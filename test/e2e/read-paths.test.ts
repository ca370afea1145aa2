// Memory reads where process_vm_readv is refused (issue 17): older Docker
// seccomp profiles answer EPERM, gVisor and qemu-user ENOSYS, while
// /proc/PID/mem can still be read. The profiler runs under a seccomp filter
// (test/helpers/seccomp_exec.py) that makes process_vm_readv fail; dump,
// record and top must still give exact stacks, through pread on
// /proc/PID/mem, and say so in the debug output. With both refused (no
// ptrace rights at all), the error names both refusals and how to get the
// rights in Docker, Kubernetes and on a host.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { runWrappedCli } from '../helpers/container.js';
import {
  REPO_ROOT,
  hostInterpreter,
  killAllChildren,
  runCli,
  shownName,
  spawnFixture,
  type CliResult,
  type DumpTargetReport,
  type RunningFixture,
} from '../helpers/pythons.js';
import { track } from '../helpers/children.js';
import { cleanupRecord, outputDir, parseRaw, parseSummary, totalCount } from '../helpers/record.js';

const TIMEOUT = 120_000;
const HOST = hostInterpreter();
const SECCOMP = path.join(REPO_ROOT, 'test/helpers/seccomp_exec.py');
const DEBUG = { PYSPY_NODE_DEBUG: '1' };

afterEach(async () => {
  await killAllChildren();
  await cleanupRecord();
});

function refusing(errno: string): string[] {
  return [HOST.binary, SECCOMP, `process_vm_readv=${errno}`, '--'];
}

function expectClean(res: CliResult, what: string): void {
  expect({ code: res.code, signal: res.signal }, `${what} (stderr: ${res.stderr})`).toEqual({ code: 0, signal: null });
}

/** `dump --json` gave exactly the fixture's threads, ids, names, states and frames. */
function expectExactDump(stdout: string, fx: RunningFixture<DumpTargetReport>): void {
  const threads = JSON.parse(stdout) as {
    thread_id: number;
    os_thread_id: number | null;
    thread_name: string | null;
    active: boolean;
    frames: { name: string; filename: string; line: number }[];
  }[];
  const { report } = fx;
  expect(threads.map((t) => t.thread_id).sort()).toEqual(report.threads.map((t) => t.ident).sort());
  for (const want of report.threads) {
    const got = threads.find((t) => t.thread_id === want.ident)!;
    expect(got.os_thread_id).toBe(want.native_id);
    expect(got.thread_name).toBe(want.name);
    expect(got.active, `${want.name} active`).toBe(want.ident === report.busy.ident);
    const frames = got.frames.map(({ name, filename, line }) => ({ name, filename, line }));
    const expected = want.frames.map((f) => ({ name: shownName(f), filename: f.filename, line: f.line }));
    if (want.ident === report.busy.ident) {
      expect(frames[0]?.name).toBe(report.busy.shown);
      expect(frames.slice(1)).toEqual(expected.slice(1));
    } else {
      expect(frames, `${want.name} frames`).toEqual(expected);
    }
  }
}

async function fixture(): Promise<RunningFixture<DumpTargetReport>> {
  return spawnFixture(HOST, 'dump_target.py', ['--depth', '20'], { via: 'shell' });
}

describe.each(['EPERM', 'ENOSYS'])('process_vm_readv refused with %s (seccomp)', (errno) => {
  it('the filter does refuse it, and dump falls back to /proc/PID/mem with exact stacks', { timeout: TIMEOUT }, async () => {
    const fx = await fixture();
    const res = await runWrappedCli(refusing(errno), ['dump', '--pid', String(fx.pid), '--json'], { env: DEBUG });
    expectClean(res, 'dump --json');
    expect(res.stderr).toBe(
      `pyspy-node: process ${fx.pid}: memory reads through pread on /proc/${fx.pid}/mem (process_vm_readv refused: ${errno})\n`,
    );
    expectExactDump(res.stdout, fx);
  });

  it('record and top: the spinner sampled, sleepers left out, no errors', { timeout: TIMEOUT }, async () => {
    const fx = await fixture();
    const file = path.join(outputDir(), 'profile.txt');
    const rec = await runWrappedCli(refusing(errno), ['record', '-p', String(fx.pid), '-o', file, '-f', 'raw', '-d', '1.5']);
    expectClean(rec, 'record');
    const summary = parseSummary(rec.stderr)!;
    expect(summary.errors).toBe(0);
    expect(summary.samples).toBeGreaterThan(50);
    const stacks = parseRaw(readFileSync(file, 'utf8'));
    expect(totalCount(stacks)).toBe(summary.samples);
    const spin = stacks.filter((s) => s.frames.at(-1)?.name === fx.report.busy.shown);
    expect(totalCount(spin), 'every sample is the spinner').toBe(summary.samples);
    // Whole stacks: the spinner's frames below its innermost, as reported.
    const busy = fx.report.threads.find((t) => t.ident === fx.report.busy.ident)!;
    const outer = busy.frames.slice(1).map(shownName).reverse();
    for (const s of spin) expect(s.frames.slice(0, -1).map((f) => f.name)).toEqual(outer);

    const top = await topTables(refusing(errno), fx.pid);
    expect(top.at(-1), top.join('\n\n')).toMatch(new RegExp(`\\s${fx.report.busy.shown} \\(`));
    expect(top.at(-1)).not.toMatch(/\snaps \(/);
  });
});

/** Runs `top` under `wrapper` until it printed 3 tables, then Ctrl-C; its tables. */
async function topTables(wrapper: string[], pid: number): Promise<string[]> {
  const [command, ...args] = [...wrapper, process.execPath, path.join(REPO_ROOT, 'packages/pyspy-node/bin/pyspy-node.js')];
  const child = spawn(command!, [...args, 'top', '--pid', String(pid), '--delay', '0.3'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const tables = (): string[] => stdout.split('\n\n').filter((b) => b.startsWith('Collecting samples'));
  for (let i = 0; tables().length < 3 && i < 300 && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGINT');
  expect({ code: await closed, stderr }).toEqual({ code: 0, stderr: '' });
  return tables();
}

// qemu-user has neither call: the dump, asked to pause, reads the target running instead
// (checked and read again while torn) rather than failing with EPAUSE.
describe('process_vm_readv and ptrace both ENOSYS (qemu-user, seccomp)', () => {
  it('dump (pausing by default) reads exact stacks through /proc/PID/mem, unpaused; --native says ptrace is missing', { timeout: TIMEOUT }, async () => {
    const fx = await fixture();
    const wrap = [HOST.binary, SECCOMP, 'process_vm_readv=ENOSYS', 'ptrace=ENOSYS', '--'];
    const res = await runWrappedCli(wrap, ['dump', '--pid', String(fx.pid), '--json'], { env: DEBUG });
    expectClean(res, 'dump --json');
    expect(res.stderr).toContain(`memory reads through pread on /proc/${fx.pid}/mem (process_vm_readv refused: ENOSYS)`);
    expectExactDump(res.stdout, fx);
    // The filter does refuse ptrace: --native, which cannot do without it, says so.
    const native = await runWrappedCli(wrap, ['dump', '--pid', String(fx.pid), '--native']);
    expect(native.code).toBe(1);
    expect(native.stderr).toMatch(/ptrace is not available here \(ENOSYS\)/);
  });
});

describe('/proc/PID/mem forced (PYSPY_NODE_PROC_MEM=1)', () => {
  it('dump reads exactly the same through it', { timeout: TIMEOUT }, async () => {
    const fx = await fixture();
    const res = await runCli(['dump', '--pid', String(fx.pid), '--json'], { env: { ...DEBUG, PYSPY_NODE_PROC_MEM: '1' } });
    expectClean(res, 'dump --json');
    expect(res.stderr).toBe(`pyspy-node: process ${fx.pid}: memory reads through pread on /proc/${fx.pid}/mem (PYSPY_NODE_PROC_MEM is set)\n`);
    expectExactDump(res.stdout, fx);
    // Without it, the normal path.
    const normal = await runCli(['dump', '--pid', String(fx.pid)], { env: DEBUG });
    expectClean(normal, 'dump');
    expect(normal.stderr).toBe(`pyspy-node: process ${fx.pid}: memory reads through process_vm_readv\n`);
  });
});

describe('both refused: no ptrace rights at all', () => {
  it('EPERM naming process_vm_readv and /proc/PID/mem, and the fix for Docker, Kubernetes and a host', { timeout: TIMEOUT }, async () => {
    // A target of another user, and a profiler without CAP_SYS_PTRACE:
    // both paths are refused by the kernel's own checks.
    const code = 'import os, time; print("READY %d" % os.getpid(), flush=True); time.sleep(300)';
    const target = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', HOST.binary, '-c', code], {
      cwd: '/',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    track(target);
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      target.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /^READY (\d+)$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      target.once('exit', () => reject(new Error(`the target exited: ${out}`)));
    });
    const noPtrace = ['setpriv', '--inh-caps=-sys_ptrace', '--bounding-set=-sys_ptrace', '--'];
    for (const wrapper of [noPtrace, [...noPtrace, ...refusing('EPERM')]]) {
      const res = await runWrappedCli(wrapper, ['dump', '--pid', String(pid)]);
      expect(res.code, res.stderr).toBe(1);
      const lines = res.stderr.trimEnd().split('\n');
      expect(lines, 'one line').toHaveLength(1);
      const msg = lines[0]!;
      expect(msg).toContain(`permission denied reading process ${pid} (process_vm_readv: EPERM; /proc/${pid}/mem: EACCES)`);
      for (const fix of [
        'CAP_SYS_PTRACE',
        'kernel.yama.ptrace_scope',
        'docker run --cap-add SYS_PTRACE',
        'securityContext.capabilities.add: [SYS_PTRACE]',
        'shareProcessNamespace: true',
        'kubectl debug',
        '--profile=general',
      ]) {
        expect(msg, fix).toContain(fix);
      }
    }
  });
});
