// `record --push`: continuous profiling into a real Grafana Pyroscope server
// (v1.9.0, built once per machine by scripts/pyroscope.mjs, started here on
// 127.0.0.1 with its data in a temporary directory, stopped afterwards).
//
// The record fixture splits its CPU time 3:1 between work_three and
// work_one. Pushed in short windows, the server's merged flame graph for
// the run's labels must show both functions with work_three's share within
// ±5 points of 75% (the accuracy test allows ±3 for one 5 s file; windows
// add cuts, not bias), and the labels must be queryable. A server down at
// start is an error; one killed mid-run costs no samples of the local file,
// warns once, and gets the later windows once it is back.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { FIXTURES_DIR, killAllChildren, loadMatrix, runCli, spawnFixture, spawnPythonCode } from '../helpers/pythons.js';
import {
  eventually,
  functionTotals,
  freePort,
  killPyroscope,
  labelValues,
  newSite,
  PYROSCOPE_BUILD_TIMEOUT_MS,
  pyroscopeBinary,
  runId,
  sleep,
  startPyroscope,
  stopAllPyroscopes,
  type Pyroscope,
} from '../helpers/pyroscope.js';
import {
  cleanupRecord,
  interpreter,
  leafFunctionCounts,
  outputDir,
  parseRaw,
  parseSummary,
  RECORD_FIXTURE,
  startCli,
  totalCount,
  type RecordTargetReport,
} from '../helpers/record.js';

const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
const TOLERANCE = 5; // percentage points
const matrix = loadMatrix();
let server: Pyroscope;

beforeAll(async () => {
  // Builds the server on a fresh machine (once; cached outside the checkout).
  server = await startPyroscope(await newSite(pyroscopeBinary()));
}, PYROSCOPE_BUILD_TIMEOUT_MS);

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

afterAll(async () => {
  await stopAllPyroscopes();
});

/** Resident memory of a process, in KiB. */
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

/** `Pushed N windows (S samples, ...)` from the CLI's summary. */
function pushSummary(stderr: string): { windows: number; samples: number; dropped: number } | null {
  const m = /Pushed (\d+) windows? \((\d+) samples[^)]*\)[^\n]*/.exec(stderr);
  if (!m) return null;
  const dropped = /dropped (\d+)/.exec(m[0]);
  return { windows: Number(m[1]), samples: Number(m[2]), dropped: dropped ? Number(dropped[1]) : 0 };
}


describe('record --push', () => {
  it('pushes windows whose merged flame graph keeps the 3:1 split, with queryable labels', { timeout: 180_000 }, async () => {
    const fx = await spawnFixture<RecordTargetReport>(interpreter(matrix, 'debian-3.11'), RECORD_FIXTURE, ['--mode', 'ratio'], {
      via: 'shell',
    });
    const run = runId();
    const file = path.join(outputDir(), 'all.txt');
    const startMs = Date.now() - 1000;
    const res = await runCli([
      'record', '-p', String(fx.pid), '-d', '12', '-o', file, '-f', 'raw',
      '--push', server.url, '--app-name', 'pyspy-e2e', '--tag', `run=${run}`, '--tag', 'env=test', '--push-interval', '2',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const pushed = pushSummary(res.stderr);
    expect(pushed, res.stderr).not.toBeNull();
    // 12 s in 2 s windows: 6 or 7 (the last one cut at the end).
    expect(pushed!.windows, res.stderr).toBeGreaterThanOrEqual(5);
    expect(pushed!.dropped).toBe(0);
    // Every sample of the file went out in some window.
    const local = parseRaw(readFileSync(file, 'utf8'));
    expect(pushed!.samples).toBe(totalCount(local));
    expect(parseSummary(res.stderr)?.samples).toBe(totalCount(local));

    const selector = `{service_name="pyspy-e2e", run="${run}"}`;
    const endMs = Date.now() + 1000;
    const totals = await functionTotals(server.url, CPU, selector, startMs, endMs);
    const three = totals.self.get('work_three') ?? 0;
    const one = totals.self.get('work_one') ?? 0;
    expect(three, [...totals.self.keys()].join(', ')).toBeGreaterThan(0);
    expect(one, [...totals.self.keys()].join(', ')).toBeGreaterThan(0);
    const share = (100 * three) / (three + one);
    expect(Math.abs(share - 75), `work_three ${share.toFixed(1)}%`).toBeLessThanOrEqual(TOLERANCE);
    // The server got every sample: cpu nanoseconds = samples x 10 ms at 100 Hz.
    expect(totals.total / 1e7).toBe(pushed!.samples);
    // The local file saw the same split.
    const leaves = leafFunctionCounts(local, RECORD_FIXTURE);
    const localShare = (100 * (leaves.get('work_three') ?? 0)) / ((leaves.get('work_three') ?? 0) + (leaves.get('work_one') ?? 0));
    expect(Math.abs(localShare - share)).toBeLessThan(0.5);

    expect(await labelValues(server.url, 'pid', selector, startMs, endMs)).toEqual([String(fx.pid)]);
    expect(await labelValues(server.url, 'env', selector, startMs, endMs)).toEqual(['test']);
    // Per-sample thread names become labels too (snake_case: Pyroscope refuses spaces).
    expect(await labelValues(server.url, 'thread_name', selector, startMs, endMs)).toEqual(['MainThread']);
    expect(await labelValues(server.url, 'service_name', `{run="${run}"}`, startMs, endMs)).toEqual(['pyspy-e2e']);
    const command = await labelValues(server.url, 'command', selector, startMs, endMs);
    expect(command.length).toBe(1);
    expect(command[0]).toContain(RECORD_FIXTURE);
  });

  it('-s -- CMD: each process is its own series, and the last window is pushed when the command exits', { timeout: 180_000 }, async () => {
    const run = runId();
    const file = path.join(outputDir(), 'tree.txt');
    const startMs = Date.now() - 1000;
    const res = await runCli([
      'record', '-s', '-o', file, '-f', 'raw',
      '--push', server.url, '--app-name', 'pyspy-tree', '--tag', `run=${run}`, '--push-interval', '1',
      '--', '/usr/bin/python3.11', path.join(FIXTURES_DIR, 'subprocess_tree.py'), 'pool', '3',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const localPids = new Set<string>();
    for (const line of lines) for (const m of line.matchAll(/(?:^|;)process (\d+):"/g)) localPids.add(m[1]!);
    // The parent and its 3 pool workers.
    expect(localPids.size, [...localPids].join(',')).toBeGreaterThanOrEqual(4);
    const pushed = pushSummary(res.stderr);
    expect(pushed?.samples, res.stderr).toBe(totalCount(parseRaw(readFileSync(file, 'utf8'))));

    const selector = `{service_name="pyspy-tree", run="${run}"}`;
    const endMs = Date.now() + 1000;
    const pids = await labelValues(server.url, 'pid', selector, startMs, endMs);
    expect(new Set(pids)).toEqual(localPids);
    // A worker's series holds its own stacks, without the process root frames of the file.
    // A worker: the innermost process root of a stack that runs burn.
    const burning = lines.find((l) => l.includes('burn ('))!;
    const worker = [...burning.matchAll(/(?:^|;)process (\d+):"/g)].pop()![1]!;
    const totals = await functionTotals(server.url, CPU, `{service_name="pyspy-tree", run="${run}", pid="${worker}"}`, startMs, endMs);
    expect(totals.self.get('burn') ?? 0, [...totals.self.keys()].join(', ')).toBeGreaterThan(0);
    expect([...totals.self.keys()].some((name) => name.startsWith('process '))).toBe(false);
  });

  it('--idle pushes wall-clock profiles (idle threads included), named wall', { timeout: 120_000 }, async () => {
    const fx = await spawnFixture<RecordTargetReport>(interpreter(matrix, 'debian-3.11'), RECORD_FIXTURE, ['--mode', 'mixed'], {
      via: 'shell',
    });
    const run = runId();
    const startMs = Date.now() - 1000;
    const res = await runCli([
      'record', '-p', String(fx.pid), '-d', '3', '--idle',
      '--push', server.url, '--app-name', 'pyspy-wall', '--tag', `run=${run}`, '--push-interval', '1',
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toContain('Wrote'); // no -o: no file
    const selector = `{service_name="pyspy-wall", run="${run}"}`;
    const endMs = Date.now() + 1000;
    const wall = await functionTotals(server.url, 'wall:wall:nanoseconds:wall:nanoseconds', selector, startMs, endMs);
    expect(wall.self.get('nap') ?? 0, [...wall.self.keys()].join(', ')).toBeGreaterThan(0);
    expect(wall.self.get('work_three') ?? 0).toBeGreaterThan(0);
    expect((await functionTotals(server.url, CPU, selector, startMs, endMs)).total).toBe(0);
    expect(await labelValues(server.url, 'thread_name', selector, startMs, endMs)).toEqual(['MainThread', 'napper']);
  });

  it('refuses a server that cannot be reached, a bad URL and a bad tag, before attaching', { timeout: 120_000 }, async () => {
    const fx = await spawnFixture<RecordTargetReport>(interpreter(matrix, 'debian-3.11'), RECORD_FIXTURE, ['--mode', 'ratio'], {
      via: 'shell',
    });
    const pid = String(fx.pid);
    const down = await runCli(['record', '-p', pid, '-d', '1', '--push', `http://127.0.0.1:${await freePort()}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^Error: cannot push to http:\/\/127\.0\.0\.1:\d+: the server cannot be reached/m);
    expect(down.stderr).not.toContain('Sampling process');

    const malformed = await runCli(['record', '-p', pid, '-d', '1', '--push', 'localhost:4040']);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toContain("invalid push URL 'localhost:4040'");

    const tls = await runCli(['record', '-p', pid, '-d', '1', '--push', 'https://user:hunter2@example.invalid']);
    expect(tls.code).toBe(1);
    expect(tls.stderr).toMatch(/^Error: cannot push to https:\/\/example\.invalid: the server cannot be reached/m);
    expect(tls.stderr).not.toContain('hunter2');

    const ftp = await runCli(['record', '-p', pid, '-d', '1', '--push', 'ftp://example.invalid']);
    expect(ftp.code).toBe(1);
    expect(ftp.stderr).toContain('the scheme must be http or https');

    const tag = await runCli(['record', '-p', pid, '-d', '1', '--push', server.url, '--tag', 'novalue']);
    expect(tag.code).toBe(1);
    expect(tag.stderr).toContain("Expected key=value, got 'novalue'");

    const badKey = await runCli(['record', '-p', pid, '-d', '1', '--push', server.url, '--tag', 'a-b=c']);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain("invalid tag key 'a-b'");

    const api = await runCli(['record', '-p', pid, '-d', '1', '--push', `${server.url}/not-pyroscope`]);
    expect(api.code).toBe(1);
    expect(api.stderr).toContain('no Pyroscope push API there (HTTP 404');
  });

  it('keeps sampling while the server is down (killed 10 s in, back 10 s later), warns once, stays small, and delivers later windows', { timeout: 240_000 }, async () => {
    const own = await startPyroscope(await newSite(server.site.bin));
    const fx = await spawnFixture<RecordTargetReport>(interpreter(matrix, 'debian-3.11'), RECORD_FIXTURE, ['--mode', 'ratio'], {
      via: 'shell',
    });
    const run = runId();
    const file = path.join(outputDir(), 'all.txt');
    const selector = `{service_name="pyspy-outage", run="${run}"}`;
    const began = Date.now() - 1000;
    const cli = startCli([
      'record', '-p', String(fx.pid), '-o', file, '-f', 'raw',
      '--push', own.url, '--app-name', 'pyspy-outage', '--tag', `run=${run}`, '--push-interval', '1',
    ]);
    const samplesSince = async (url: string, fromMs: number) =>
      (await functionTotals(url, CPU, selector, fromMs, Date.now() + 1000)).total;
    // Windows arrive (a limit, not a timing: it only turns a hang into a failure).
    expect(await eventually(async () => (await samplesSince(own.url, began)) > 0, 60_000), cli.stderr()).toBe(true);
    // The server dies 10 s into the run and comes back 10 s later.
    await sleep(Math.max(0, began + 11_000 - Date.now()));
    const rssBefore = rssKiB(cli.child.pid!);
    await killPyroscope(own);
    const downAt = Date.now();
    // The sends fail, are retried, and queue up.
    expect(await eventually(async () => /failed \(/.test(cli.stderr()), 60_000), cli.stderr()).toBe(true);
    await sleep(Math.max(0, downAt + 10_000 - Date.now()));
    const rssDown = rssKiB(cli.child.pid!);
    const back = await startPyroscope(own.site);
    // Windows cut after the restart arrive (the restarted server may have lost what it held in memory).
    expect(await eventually(async () => /accepts windows again/.test(cli.stderr()), 60_000), cli.stderr()).toBe(true);
    const restartedAt = Date.now();
    expect(await eventually(async () => (await samplesSince(back.url, restartedAt)) > 0, 60_000), cli.stderr()).toBe(true);

    cli.child.kill('SIGINT');
    const res = await cli.result;
    expect(res.code, res.stderr).toBe(0);
    const stderr = res.stderr;
    // One line per kind of failure, not one per window.
    expect(stderr.match(/failed \(/g)?.length, stderr).toBe(1);
    expect(stderr).toContain('retrying with backoff, sampling goes on');
    const pushed = pushSummary(stderr);
    expect(pushed, stderr).not.toBeNull();
    // The local file has every sample, the outage included: pushed ones plus
    // any counted as dropped account for all of them.
    const local = totalCount(parseRaw(readFileSync(file, 'utf8')));
    expect(parseSummary(stderr)?.samples).toBe(local);
    if (pushed!.dropped === 0) expect(pushed!.samples).toBe(local);
    else expect(pushed!.samples).toBeLessThan(local);
    // Sampling went on while the server was down: the file holds more samples
    // than the windows pushed before the kill could (at most those of the run
    // up to then, at 100 Hz, with a 1 s window's slack).
    expect(local).toBeGreaterThan(((downAt - began) / 1000 + 1) * 100);
    // Ten windows queued while the server was down cost next to nothing:
    // the queue is bounded (60 windows / 32 MiB) and each window is small.
    expect(rssDown - rssBefore, `RSS ${rssBefore} -> ${rssDown} KiB`).toBeLessThan(32 * 1024);
  });

  it('--all-pythons: five Pythons of different versions each their own series, three started later found (one a shell that execs Python), a stopped one dropped', { timeout: 240_000 }, async () => {
    const run = runId();
    const mark = `pyspy_host_${run}`;
    // A marker in the command line keeps other Pythons on the machine (other tests') out.
    // About a third of a CPU each (eight of them share two cores with the rest of the suite).
    const code = [
      'import os, time',
      `${mark} = 1`,
      "print('READY %d' % os.getpid(), flush=True)",
      'while True:',
      '    t = time.time()',
      '    while time.time() - t < 0.003: pass',
      '    time.sleep(0.006)',
      '',
    ].join('\n');
    // Five versions (host, pyenv shared builds, chroots), two more started later, one stopped.
    const firstIds = ['debian-3.11', 'pyenv-3.12.1', 'debian-3.14', 'pyenv-3.9.18', 'debian-3.15'];
    const first = await Promise.all(firstIds.map((id) => spawnPythonCode(interpreter(matrix, id), code)));
    const selector = `{service_name="pyspy-host", run="${run}"}`;
    const began = Date.now() - 1000;
    const cli = startCli([
      'record', '--all-pythons', '--match', mark, '--push', server.url, '--app-name', 'pyspy-host', '--tag', `run=${run}`, '--push-interval', '1',
    ]);
    const pidsNow = async () => new Set(await labelValues(server.url, 'pid', selector, began, Date.now() + 1000));
    const has = async (pids: number[]) => {
      const seen = await pidsNow();
      return pids.every((p) => seen.has(String(p)));
    };
    // Limits, not timings: they only turn a hang into a failure.
    expect(await eventually(() => has(first.map((c) => c.pid)), 60_000), cli.stderr()).toBe(true);
    // The third is a shell (its command line already matching) for 1.5 s, then execs Python under the
    // same pid and start time: found once it is Python, not dismissed for good as a shell.
    const lateOnes = await Promise.all([
      spawnPythonCode(interpreter(matrix, 'pyenv-3.10.13'), code),
      spawnPythonCode(interpreter(matrix, 'debian-3.13'), code),
      spawnPythonCode(interpreter(matrix, 'debian-3.11'), code, { execAfterSeconds: 1.5 }),
    ]);
    expect(await eventually(() => has(lateOnes.map((c) => c.pid)), 60_000), cli.stderr()).toBe(true);
    const late = lateOnes[0]!;
    const gone = first[1]!;
    process.kill(gone.pid, 'SIGKILL');
    await gone.exited;
    const goneAt = Date.now();
    // A few more windows, then stop.
    const lateSeries = async (fromMs: number) =>
      (await functionTotals(server.url, CPU, `{service_name="pyspy-host", run="${run}", pid="${late.pid}"}`, fromMs, Date.now() + 1000)).total;
    expect(await eventually(async () => (await lateSeries(goneAt + 2000)) > 0, 60_000), cli.stderr()).toBe(true);
    cli.child.kill('SIGINT');
    const res = await cli.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/Pushed \d+ windows/);
    const all = [...first, ...lateOnes].map((c) => String(c.pid)).sort();
    expect([...(await pidsNow())].sort()).toEqual(all);
    // Nothing of the killed process after it was gone (windows cut 1 s apart, plus slack).
    const after = await functionTotals(server.url, CPU, `{service_name="pyspy-host", run="${run}", pid="${gone.pid}"}`, goneAt + 2000, Date.now() + 1000);
    expect(after.total).toBe(0);
    // The live ones each run their loop.
    const totals = await functionTotals(server.url, CPU, `{service_name="pyspy-host", run="${run}", pid="${late.pid}"}`, began, Date.now() + 1000);
    expect(totals.self.get('<module>') ?? 0, [...totals.self.keys()].join(', ')).toBeGreaterThan(0);
  });
});
