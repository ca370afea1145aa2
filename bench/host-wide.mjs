// The host-wide mode's cost (issue 19): `record --all-pythons --push` over
// 20 and 50 idle-ish Python processes at 100 Hz, pushing to a real
// Pyroscope server, next to the one-process paths (pyspy-node without and
// with push, py-spy) on one such process. Called by bench/run.mjs; runs
// alone too: `node bench/host-wide.mjs [--smoke] [--py-spy BIN]`.
//
// CPU is read from the profiler's threads' schedstat over a window that
// starts after a warm-up (so attaching and start-up are not counted) and
// ends before it is stopped (so is the final flush), divided by the number
// of processes it samples: the CPU share one more Python process costs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ensurePyroscope, pyroscopeArgs } from '../scripts/pyroscope.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(path.dirname(HERE), 'packages', 'pyspy-node', 'bin', 'pyspy-node.js');
const RATE = 100;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Mostly asleep: ~0.5 ms of work every 50 ms (~1% of a CPU), plus a thread blocked on an event. */
const IDLE_ISH = (mark) =>
  [
    'import os, threading, time',
    `${mark} = 1`,
    'threading.Thread(target=threading.Event().wait, name="waiter", daemon=True).start()',
    "print('READY', flush=True)",
    'while True:',
    '    sum(range(30000))',
    '    time.sleep(0.05)',
  ].join('\n');

function cpuNs(pid) {
  let sum = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        sum += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended
      }
    }
  } catch {
    return null;
  }
  return sum;
}

function rssKiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return null;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startServer(log) {
  const bin = ensurePyroscope();
  const site = { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'pyspy-bench-pyroscope-')), http: await freePort(), grpc: await freePort(), memberlist: await freePort() };
  const child = spawn(bin, pyroscopeArgs(site), { cwd: site.dir, stdio: 'ignore' });
  const url = `http://127.0.0.1:${site.http}`;
  const stop = () => {
    child.kill('SIGKILL');
    fs.rmSync(site.dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(`${url}/ready`);
      if (res.ok && (await res.text()).trim() === 'ready') {
        log(`host-wide: Pyroscope ready at ${url}`);
        return { url, stop };
      }
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  stop();
  throw new Error('the Pyroscope server did not become ready');
}

/** Starts `count` idle-ish Pythons marked `mark`; resolves once each printed READY. */
async function startTargets(python, count, mark) {
  const children = [];
  await Promise.all(
    Array.from({ length: count }, () => {
      const child = spawn(python, ['-c', IDLE_ISH(mark)], { stdio: ['ignore', 'pipe', 'ignore'] });
      children.push(child);
      return new Promise((resolve, reject) => {
        child.stdout.once('data', resolve);
        child.once('exit', () => reject(new Error(`a target exited early (${python})`)));
      });
    }),
  );
  return children;
}

/**
 * Runs `argv` for `warmSeconds + seconds`, measures its CPU over the last
 * `seconds`, then stops it with SIGINT and returns the numbers and stderr.
 */
async function measure(argv, warmSeconds, seconds) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let spawnError = null;
  const exited = new Promise((resolve) => {
    child.once('exit', resolve);
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
  });
  await sleep(warmSeconds * 1000);
  const c0 = cpuNs(child.pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = cpuNs(child.pid);
  const wall = (performance.now() - t0) / 1000;
  const rss = rssKiB(child.pid);
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
  if (spawnError) return { status: `failed: ${spawnError.message}` };
  if (c0 === null || c1 === null) return { status: `failed: the profiler exited early: ${stderr.trim().split('\n').pop()}` };
  return { status: 'ok', cpuSeconds: (c1 - c0) / 1e9, wallSeconds: wall, rssKiB: rss, stderr };
}

async function seriesCount(url, mark) {
  try {
    const res = await fetch(`${url}/querier.v1.QuerierService/LabelValues`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'pid', matchers: [`{service_name="${mark}"}`], start: Date.now() - 3600_000, end: Date.now() + 60_000 }),
    });
    return ((await res.json()).names ?? []).length;
  } catch {
    return null;
  }
}

/**
 * Measures the host-wide mode and the one-process paths.
 *
 * @param {{ python: string, pyspyBin?: string, counts?: number[], seconds?: number, log?: (m: string) => void }} o
 */
export async function measureHostWide({ python, pyspyBin, counts = [20, 50], seconds = 10, log = console.log }) {
  const rows = [];
  const server = await startServer(log);
  const warm = 4;
  try {
    for (const count of counts) {
      const mark = `pyspy_bench_host_${count}_${process.pid}`;
      const targets = await startTargets(python, count, mark);
      try {
        const argv = [process.execPath, CLI, 'record', '--all-pythons', '--match', mark, '--rate', String(RATE),
          '--push', server.url, '--app-name', mark, '--push-interval', '5'];
        const r = await measure(argv, warm, seconds);
        const pushed = /Pushed (\d+) windows? \((\d+) samples/.exec(r.stderr ?? '');
        rows.push({
          tool: 'pyspy-node --all-pythons --push', processes: count, ...pick(r, count),
          pushedWindows: pushed ? Number(pushed[1]) : null, pushedSamples: pushed ? Number(pushed[2]) : null,
          seriesSeen: await seriesCount(server.url, mark),
        });
        log(`host-wide: ${count} processes: ${describe(rows.at(-1))}`);
      } finally {
        for (const t of targets) t.kill('SIGKILL');
      }
    }
    // One process, for comparison: the old path, the push path, and py-spy.
    const mark = `pyspy_bench_one_${process.pid}`;
    const [one] = await startTargets(python, 1, mark);
    try {
      const out = path.join(os.tmpdir(), `pyspy-bench-host-${process.pid}.txt`);
      const single = [
        ['pyspy-node record --pid', [process.execPath, CLI, 'record', '--pid', String(one.pid), '--rate', String(RATE), '-f', 'raw', '-o', out]],
        ['pyspy-node record --pid --push', [process.execPath, CLI, 'record', '--pid', String(one.pid), '--rate', String(RATE), '--push', server.url, '--app-name', mark, '--push-interval', '5']],
        ...(pyspyBin ? [['py-spy record --pid', [pyspyBin, 'record', '--pid', String(one.pid), '--rate', String(RATE), '-f', 'raw', '-o', out]]] : []),
        ...(pyspyBin ? [['py-spy record --pid --nonblocking', [pyspyBin, 'record', '--pid', String(one.pid), '--rate', String(RATE), '--nonblocking', '-f', 'raw', '-o', out]]] : []),
      ];
      for (const [tool, argv] of single) {
        const r = await measure(argv, 2, seconds);
        rows.push({ tool, processes: 1, ...pick(r, 1) });
        log(`host-wide: ${tool}: ${describe(rows.at(-1))}`);
      }
      fs.rmSync(out, { force: true });
    } finally {
      one.kill('SIGKILL');
    }
  } finally {
    server.stop();
  }
  return { rate: RATE, seconds, target: python, rows };
}

function pick(r, count) {
  if (r.status !== 'ok') return { status: r.status };
  const perProcess = r.cpuSeconds / r.wallSeconds / count;
  return {
    status: 'ok',
    cpuPctPerProcess: 100 * perProcess,
    usPerProcessSample: (1e6 * perProcess) / RATE,
    cpuPctTotal: (100 * r.cpuSeconds) / r.wallSeconds,
    rssKiB: r.rssKiB,
  };
}

function describe(row) {
  if (row.status !== 'ok') return row.status;
  return `${row.cpuPctTotal.toFixed(2)}% CPU in all, ${row.cpuPctPerProcess.toFixed(3)}% per process (${row.usPerProcessSample.toFixed(1)} µs per process-sample), RSS ${row.rssKiB} KiB`;
}

/** The RESULTS.md section. */
export function renderHostWide(res) {
  if (!res) return [];
  if (res.error) return ['## Host-wide mode', '', `Not measured: ${res.error}`, ''];
  const f = (v, d) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '—');
  const lines = [
    '## Host-wide mode (`record --all-pythons --push`)',
    '',
    `Idle-ish targets (\`${path.basename(res.target)}\`: two threads, one waking every 50 ms for ~0.5 ms of work, one blocked),`,
    `${res.rate} Hz, pushing 5 s windows to a local Pyroscope v1.9.0. CPU of the profiler process (all its threads, Node included)`,
    `over ${res.seconds} s after a warm-up, per sampled process; µs per process-sample = that CPU / ${res.rate} samples per second.`,
    '',
    '| profiler | processes | CPU, all | CPU per process | µs per process-sample | RSS | windows pushed | series in Pyroscope |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of res.rows) {
    if (r.status !== 'ok') {
      lines.push(`| ${r.tool} | ${r.processes} | ${r.status} | | | | | |`);
      continue;
    }
    lines.push(
      `| ${r.tool} | ${r.processes} | ${f(r.cpuPctTotal, 2)}% | ${f(r.cpuPctPerProcess, 3)}% | ${f(r.usPerProcessSample, 1)} | ${r.rssKiB ? `${(r.rssKiB / 1024).toFixed(0)} MiB` : '—'} | ${r.pushedWindows ?? '—'} | ${r.seriesSeen ?? '—'} |`,
    );
  }
  lines.push('');
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Alone: bench/HOST-WIDE.md and bench/host-wide.json (the full bench puts
  // the same section into RESULTS.md).
  const args = process.argv.slice(2);
  const smoke = args.includes('--smoke');
  const i = args.indexOf('--py-spy');
  const loadStart = os.loadavg();
  const res = await measureHostWide({
    python: '/usr/bin/python3',
    pyspyBin: i >= 0 ? args[i + 1] : undefined,
    counts: smoke ? [5] : [20, 50],
    seconds: smoke ? 3 : 10,
  });
  const loadEnd = os.loadavg();
  const load = (l) => l.map((x) => x.toFixed(2)).join(' / ');
  const md = [
    '<!-- Generated by `node bench/host-wide.mjs` (also part of `npm run bench`); do not edit. -->',
    '',
    `Measured ${new Date().toISOString()} on ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}); load average (1/5/15 min) at start ${load(loadStart)}, at end ${load(loadEnd)}.`,
    '',
    ...renderHostWide(res),
  ].join('\n');
  console.log(md);
  if (!smoke) {
    fs.writeFileSync(path.join(HERE, 'HOST-WIDE.md'), `${md}\n`);
    fs.writeFileSync(path.join(HERE, 'host-wide.json'), `${JSON.stringify({ loadAverage: { start: loadStart, end: loadEnd }, ...res }, null, 2)}\n`);
  }
}
