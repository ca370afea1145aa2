// Containers (issue 17): a Python process in its own PID and mount namespace
// with its own root (container.sh: unshare + pivot_root into an extracted
// Debian root), profiled from the host by its host pid, and from a sidecar
// that shares its PID namespace. CPython stores the tids of its own
// namespace (1, 2, 3, ...); every /proc lookup and ptrace call needs the
// host's, which the NSpid lines give.
//
// Regressions kept here (both seen before the NSpid mapping):
// - `dump` showed the namespace tids as os_thread_id and every thread as
//   active (the status came from /proc/PID/task/<namespace tid>, another
//   thread or none), so `record` without --idle counted sleepers as busy;
// - `dump --native` failed with "reading the registers of thread 3 failed
//   (errno 3)" (ptrace on the namespace tid).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  CONTAINER_FIXTURES,
  containerInterpreters,
  nsThreadIds,
  nspid,
  runWrappedCli,
  startContainer,
  type Container,
} from '../helpers/container.js';
import { killAllChildren, loadMatrix, runCli, shownName, type CliResult, type DumpTargetReport } from '../helpers/pythons.js';
import { cleanupRecord, outputDir, parseRaw, parseSummary, sleep, startCli, totalCount } from '../helpers/record.js';

const TIMEOUT = 180_000;
const interpreters = containerInterpreters();
/** The interpreter the record, native, subprocess, top and sidecar cases run on. */
const MAIN = interpreters.find((i) => i.id === 'debian-3.14') ?? interpreters[0];
const SCRIPT = `${CONTAINER_FIXTURES}/dump_target.py`;

afterEach(async () => {
  await killAllChildren();
  await cleanupRecord();
});

it('the matrix has Debian roots to build containers from', () => {
  expect(interpreters.map((i) => i.id)).toEqual(expect.arrayContaining(['debian-3.13', 'debian-3.14', 'debian-3.15']));
});

/** The dump fixture in a container, settled: its report and its threads' ids. */
async function dumpTarget(interp = MAIN!): Promise<{ c: Container; report: DumpTargetReport; hostTid: Map<number, number> }> {
  const c = await startContainer(interp, 'dump_target.py', ['--lifetime', '300', '--depth', '20']);
  const report = JSON.parse(readFileSync(c.hostPath(c.match[0].slice('READY '.length).trim()), 'utf8')) as DumpTargetReport;
  // The reporter thread ends after READY: wait until only the reported threads are left.
  for (let i = 0; nsThreadIds(c.pid).size !== report.thread_count; i++) {
    if (i > 3000) throw new Error(`expected ${report.thread_count} threads in ${c.pid}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { c, report, hostTid: nsThreadIds(c.pid) };
}

function expectClean(res: CliResult, what: string): void {
  expect({ code: res.code, signal: res.signal }, `${what} (stderr: ${res.stderr})`).toEqual({ code: 0, signal: null });
}

interface JsonThread {
  pid: number;
  /** Only for a target in another PID namespace. */
  namespace_pid?: number;
  thread_id: number;
  os_thread_id: number | null;
  /** Only for a target in another PID namespace. */
  namespace_thread_id?: number | null;
  thread_name: string | null;
  active: boolean;
  frames: { name: string; filename: string; line: number; module: string | null }[];
}

/** Every thread as the fixture reported it: ids, name, status and Python frames. */
function expectMatches(threads: JsonThread[], c: Container, report: DumpTargetReport, hostTid: Map<number, number>, inside: boolean): void {
  expect(threads.map((t) => t.thread_id).sort()).toEqual(report.threads.map((t) => t.ident).sort());
  for (const want of report.threads) {
    const got = threads.find((t) => t.thread_id === want.ident)!;
    const label = `thread "${want.name}"`;
    expect(got.thread_name, `${label} name`).toBe(want.name);
    if (inside) {
      // A sidecar sees the namespace's ids, which are its own too.
      expect(got.os_thread_id, `${label} os_thread_id`).toBe(want.native_id);
      expect(got.namespace_thread_id, `${label} namespace_thread_id`).toBeUndefined();
    } else {
      expect(got.pid, `${label} pid`).toBe(c.pid);
      expect(got.namespace_pid, `${label} namespace_pid`).toBe(1);
      expect(got.os_thread_id, `${label} os_thread_id (host tid)`).toBe(hostTid.get(want.native_id!));
      expect(got.os_thread_id, `${label} os_thread_id`).not.toBe(want.native_id);
      expect(got.namespace_thread_id, `${label} namespace_thread_id`).toBe(want.native_id);
    }
    // Exactly one thread computes; the others sleep or wait on a lock.
    expect(got.active, `${label} active`).toBe(want.ident === report.busy.ident);
    const python = got.frames.filter((f) => f.module === null).map(({ name, filename, line }) => ({ name, filename, line }));
    const expected = want.frames.map((f) => ({ name: shownName(f), filename: f.filename, line: f.line }));
    if (want.ident === report.busy.ident) {
      expect(python[0]?.name, `${label} innermost`).toBe(report.busy.shown);
      expect(python.slice(1), `${label} frames`).toEqual(expected.slice(1));
    } else {
      expect(python, `${label} frames`).toEqual(expected);
    }
  }
}

describe.each(interpreters)('a container of $id, profiled from the host', (interp) => {
  it('dump --json and dump: host tids, namespace tids, names and idle/active exactly right', { timeout: TIMEOUT }, async () => {
    const { c, report, hostTid } = await dumpTarget(interp);
    // The interpreter exists only inside: the host reads it through /proc/PID/root.
    expect(report.executable.startsWith('/usr/bin/python3.1')).toBe(true);
    const json = await runCli(['dump', '--pid', String(c.pid), '--json']);
    expectClean(json, 'dump --json');
    expectMatches(JSON.parse(json.stdout) as JsonThread[], c, report, hostTid, false);

    const text = await runCli(['dump', '--pid', String(c.pid)]);
    expectClean(text, 'dump');
    expect(text.stdout).toContain(`Process ${c.pid} (ns 1): ${report.executable} ${SCRIPT}`);
    for (const t of report.threads) {
      const status = t.ident === report.busy.ident ? 'active' : 'idle';
      const head = `Thread ${hostTid.get(t.native_id!)} (ns ${t.native_id}) (${status}`;
      expect(text.stdout, `${t.name}'s header`).toMatch(new RegExp(`^${head.replace(/[()]/g, '\\$&')}(\\+gil)?\\): "${t.name}"$`, 'm'));
    }
  });
});

// Before 3.11 the tid comes from glibc's thread descriptor, which holds the
// namespace's tid too: checked at attach against the namespace's tids.
describe.each(loadMatrix().filter((i) => i.id === 'debian-3.9' || i.id === 'debian-2.7'))(
  'a PID namespace only (unshare --mount-proc), $id',
  (interp) => {
    it('dump --json: host tids, namespace tids, names and idle/active exactly right', { timeout: TIMEOUT }, async () => {
      const { c, report, hostTid } = await dumpTarget(interp);
      const json = await runCli(['dump', '--pid', String(c.pid), '--json']);
      expectClean(json, 'dump --json');
      expectMatches(JSON.parse(json.stdout) as JsonThread[], c, report, hostTid, false);
    });
  },
);

describe('a container, profiled from the host', () => {
  it('record without --idle: the spinner only, no sleeper, no lock waiter', { timeout: TIMEOUT }, async () => {
    const { c } = await dumpTarget();
    const file = path.join(outputDir(), 'profile.txt');
    const res = await runCli(['record', '-p', String(c.pid), '-o', file, '-f', 'raw', '-d', '2', '-r', '100']);
    expectClean(res, 'record');
    const summary = parseSummary(res.stderr)!;
    expect(summary.samples).toBeGreaterThan(50);
    const stacks = parseRaw(readFileSync(file, 'utf8'));
    expect(totalCount(stacks)).toBe(summary.samples);
    const leaves = new Map<string, number>();
    for (const s of stacks) leaves.set(s.frames.at(-1)!.name, (leaves.get(s.frames.at(-1)!.name) ?? 0) + s.count);
    const all = JSON.stringify(Object.fromEntries(leaves));
    // Every sample is the spinner's (a sleeper counted as busy was the bug).
    expect(leaves.get('Worker.spin') ?? 0, all).toBe(summary.samples);
    for (const s of stacks) {
      expect(s.frames.map((f) => f.name), 'no sleeper or lock-waiter frame').not.toEqual(
        expect.arrayContaining(['naps']),
      );
    }

    // With --idle the sleepers are sampled too, in (nearly) every sample.
    const idleFile = path.join(outputDir(), 'idle.txt');
    const idle = await runCli(['record', '-p', String(c.pid), '-o', idleFile, '-f', 'raw', '-d', '1', '--idle']);
    expectClean(idle, 'record --idle');
    const withIdle = parseRaw(readFileSync(idleFile, 'utf8'));
    const naps = withIdle.filter((s) => s.frames.some((f) => f.name === 'naps')).reduce((n, s) => n + s.count, 0);
    expect(naps, 'samples of the sleeper with --idle').toBeGreaterThan(0.6 * (parseSummary(idle.stderr)!.samples / 4));
  });

  it('dump --native: registers read by host tid; C frames from binaries that exist only inside', { timeout: TIMEOUT }, async () => {
    const { c, report, hostTid } = await dumpTarget();
    const res = await runCli(['dump', '--pid', String(c.pid), '--native', '--json']);
    expect(res.stderr, 'no "reading the registers of thread N failed"').toBe('');
    expectClean(res, 'dump --native --json');
    const threads = JSON.parse(res.stdout) as JsonThread[];
    expectMatches(threads, c, report, hostTid, false);
    const sleeper = threads.find((t) => t.thread_name === 'sleeper')!;
    const native = sleeper.frames.filter((f) => f.module !== null);
    expect(native.length, `native frames of the sleeper: ${JSON.stringify(sleeper.frames)}`).toBeGreaterThan(0);
    // Binaries are read through /proc/PID/root: the interpreter exists only
    // inside, and the C library is the container's (sid's), not the host's,
    // whose symbols would not name the sleep the thread is in.
    expect(existsSync(report.executable), `the host has no ${report.executable}`).toBe(false);
    expect(native.some((f) => f.module === 'libc.so.6' && /nanosleep/.test(f.name)), JSON.stringify(native)).toBe(true);
  });

  it('top: the spinner only, by its host pid', { timeout: TIMEOUT }, async () => {
    const { c } = await dumpTarget();
    const cli = startCli(['top', '--pid', String(c.pid), '--delay', '0.3']);
    const tables = (): string[] => cli.stdout().split('\n\n').filter((b) => b.startsWith('Collecting samples'));
    for (let i = 0; tables().length < 3 && i < 300; i++) await sleep(100);
    cli.child.kill('SIGINT');
    const res = await cli.result;
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    const last = tables().at(-1) ?? '';
    expect(last, cli.stdout()).toMatch(/Threads: 4$/m);
    const functions = last
      .split('\n')
      .slice(4)
      .map((l) => /\d+\.\d\ds +(\S+) \(/.exec(l)?.[1]);
    expect(functions, last).toContain('Worker.spin');
    expect(functions, last).not.toContain('naps');
  });

  it('--subprocesses: a child started inside is found and labelled with both pids', { timeout: TIMEOUT }, async () => {
    const c = await startContainer(MAIN!, 'subprocess_tree.py', ['threads'], /^READY (\d+) (\d+)$/m);
    expect(Number(c.match[1]), 'the parent is init inside').toBe(1);
    const childNs = Number(c.match[2]);
    const res = await runCli(['dump', '--pid', String(c.pid), '--subprocesses', '--json']);
    expectClean(res, 'dump --subprocesses --json');
    const threads = JSON.parse(res.stdout) as JsonThread[];
    const byPid = new Map<number, JsonThread[]>();
    for (const t of threads) byPid.set(t.pid, [...(byPid.get(t.pid) ?? []), t]);
    expect(byPid.size, `processes: ${[...byPid.keys()].join(', ')}`).toBe(2);
    const childHost = [...byPid.keys()].find((p) => p !== c.pid)!;
    expect(nspid(`/proc/${childHost}/status`)).toEqual([childHost, childNs]);
    expect(byPid.get(childHost)!.every((t) => t.namespace_pid === childNs)).toBe(true);
    expect(byPid.get(c.pid)!.every((t) => t.namespace_pid === 1)).toBe(true);
    expect(byPid.get(c.pid)!.filter((t) => t.thread_name?.startsWith('parked-')).every((t) => !t.active)).toBe(true);

    const text = await runCli(['dump', '--pid', String(c.pid), '--subprocesses']);
    expectClean(text, 'dump --subprocesses');
    expect(text.stdout).toMatch(new RegExp(`^Process ${childHost} \\(ns ${childNs}\\): `, 'm'));

    const file = path.join(outputDir(), 'tree.txt');
    const rec = await runCli(['record', '-p', String(c.pid), '-o', file, '-f', 'raw', '-d', '1', '--idle', '--subprocesses']);
    expectClean(rec, 'record --subprocesses');
    // The child's frames sit under its process frame, under the parent's.
    const labels = new Set(parseRaw(readFileSync(file, 'utf8')).flatMap((st) => st.frames.map((f) => f.name)));
    const processes = [...labels].filter((l) => l.startsWith('process '));
    expect(processes.some((l) => l.startsWith(`process ${c.pid} (ns 1):`)), processes.join('\n')).toBe(true);
    expect(processes.some((l) => l.startsWith(`process ${childHost} (ns ${childNs}):`)), processes.join('\n')).toBe(true);
  });
});

describe('a sidecar: the profiler in the container\'s PID namespace, with its own filesystem', () => {
  it('dump --pid 1 sees the namespace\'s ids as its own; statuses exactly right', { timeout: TIMEOUT }, async () => {
    const { c, report, hostTid } = await dumpTarget();
    // nsenter's child joins the PID namespace; unshare gives it a /proc of that namespace.
    const sidecar = ['nsenter', '--target', String(c.pid), '--pid', '--', 'unshare', '--mount', '--mount-proc'];
    const res = await runWrappedCli(sidecar, ['dump', '--pid', '1', '--json']);
    expectClean(res, 'dump in the sidecar');
    const threads = JSON.parse(res.stdout) as JsonThread[];
    expect(threads.every((t) => t.pid === 1 && t.namespace_pid === undefined)).toBe(true);
    expectMatches(threads, c, report, hostTid, true);
  });
});
