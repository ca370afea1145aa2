// --subprocesses: a process tree profiled as one (issue 6). Each test uses the
// Debian host interpreter (static, stripped): the tree logic is the same for
// every version.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { dump } from 'pyspy-node';

import { cleanups, track } from '../helpers/children.js';
import { FIXTURES_DIR, killAllChildren, runCli } from '../helpers/pythons.js';

afterEach(killAllChildren);

const PYTHON = '/usr/bin/python3.11';
const FIXTURE = path.join(FIXTURES_DIR, 'subprocess_tree.py');
const TIMEOUT = 120_000;

/** The `threads` fixture: a parent with 4 parked threads and one child. */
async function startThreadsFixture(): Promise<{ parent: ChildProcess; parentPid: number; childPid: number }> {
  const parent = spawn(PYTHON, [FIXTURE, 'threads'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<string>((resolve, reject) => {
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => {
      out += String(d);
      const m = /READY (\d+) (\d+)/.exec(out);
      if (m) resolve(m[0]);
    });
    parent.once('exit', () => reject(new Error('fixture exited')));
  });
  const [, parentPid, childPid] = ready.split(' ').map(Number) as [number, number, number];
  // The child outlives a SIGKILLed parent (daemon processes are only ended
  // by a parent that exits normally): both are killed after each test.
  track(parent);
  const cleanup = async (): Promise<void> => {
    cleanups.delete(cleanup);
    killQuietly(childPid);
  };
  cleanups.add(cleanup);
  return { parent, parentPid, childPid };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function outFile(name: string): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'pyspy-subproc-')), name);
}

/** The pids named by `process PID:"..."` root frames, and the raw lines. */
function processRoots(file: string): { pids: Set<number>; lines: string[]; samples: number } {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const pids = new Set<number>();
  let samples = 0;
  for (const line of lines) {
    samples += Number(line.slice(line.lastIndexOf(' ') + 1));
    for (const m of line.matchAll(/(?:^|;)process (\d+):"/g)) pids.add(Number(m[1]));
  }
  return { pids, lines, samples };
}

describe('record --subprocesses', () => {
  it('a multiprocessing Pool of 3 workers: samples from at least 4 pids', { timeout: TIMEOUT }, async () => {
    const file = outFile('pool.txt');
    const res = await runCli(['record', '-s', '-f', 'raw', '-o', file, '--', PYTHON, FIXTURE, 'pool', '3']);
    expect(res.code, res.stderr).toBe(0);
    const { pids, lines } = processRoots(file);
    expect(pids.size, [...pids].join(',')).toBeGreaterThanOrEqual(4);
    // Workers' stacks sit under the parent's root frame and run `burn`.
    expect(lines.some((l) => /^process \d+:"[^"]*";process \d+:"[^"]*";.*burn \(subprocess_tree\.py:\d+\)/.test(l))).toBe(true);
  });

  it('a child that exits at once (a zombie) does not stop the recording', { timeout: TIMEOUT }, async () => {
    const file = outFile('zombie.txt');
    const res = await runCli(['record', '-s', '-f', 'raw', '-o', file, '--', PYTHON, FIXTURE, 'zombie', '2']);
    expect(res.code, res.stderr).toBe(0);
    const { pids, samples } = processRoots(file);
    expect(samples).toBeGreaterThan(50);
    expect(pids.size).toBe(1);
  });

  it('a shell that starts Python after 0.5 s: the Python process is found and sampled', { timeout: TIMEOUT }, async () => {
    const file = outFile('shell.txt');
    const script = `sleep 0.5; ${PYTHON} ${FIXTURE} busy 2; true`;
    const res = await runCli(['record', '-s', '-f', 'raw', '-o', file, '--', 'bash', '-c', script]);
    expect(res.code, res.stderr).toBe(0);
    const { pids, lines, samples } = processRoots(file);
    expect(samples).toBeGreaterThan(50);
    // Most samples in the busy function (the rest catch start-up and exit).
    const inBurn = lines.filter((l) => l.includes('burn (subprocess_tree.py:')).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(inBurn / samples).toBeGreaterThan(0.5);
    // The shell is not Python: every stack belongs to its Python child.
    expect(pids.size).toBeGreaterThanOrEqual(2);
  });

  it('a child killed mid-record: the record goes on and the file is valid', { timeout: TIMEOUT }, async () => {
    const { parent, parentPid, childPid } = await startThreadsFixture();
    try {
      const file = outFile('killed.txt');
      setTimeout(() => process.kill(childPid, 'SIGKILL'), 1000);
      const res = await runCli(['record', '-s', '-i', '-d', '3', '-f', 'raw', '-o', file, '-p', String(parentPid)]);
      expect(res.code, res.stderr).toBe(0);
      const { pids, samples } = processRoots(file);
      expect(pids.has(parentPid)).toBe(true);
      expect(pids.has(childPid)).toBe(true);
      expect(samples).toBeGreaterThan(100);
    } finally {
      parent.kill('SIGKILL');
      killQuietly(childPid);
      parent.stdout?.destroy();
    }
  });
});

describe('dump --subprocesses', () => {
  it('a parent with 4 threads and one child: each process printed exactly once', { timeout: TIMEOUT }, async () => {
    const { parent, parentPid, childPid } = await startThreadsFixture();
    try {
      const res = await runCli(['dump', '-s', '--pid', String(parentPid)]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout.match(new RegExp(`^Process ${parentPid}: `, 'gm'))).toHaveLength(1);
      expect(res.stdout.match(new RegExp(`^Process ${childPid}: `, 'gm'))).toHaveLength(1);
      expect(res.stdout.match(/^Thread \d+ \(idle\): "parked-\d"$/gm)).toHaveLength(4);

      const lib = await dump(parentPid, { subprocesses: true });
      expect(lib.threads).toHaveLength(5);
      expect(lib.subprocesses.map((s) => [s.pid, s.parentPid])).toEqual([[childPid, parentPid]]);
    } finally {
      parent.kill('SIGKILL');
      killQuietly(childPid);
      parent.stdout?.destroy();
    }
  });
});
