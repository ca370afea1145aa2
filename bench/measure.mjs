// One measurement at a time, against one running target: the target itself
// (bench/target.py, whose iteration reports give its speed), one profiler's
// record run (CPU per sample from its threads' schedstat, samples, errors,
// wrong stacks, peak RSS, target slowdown), and `dump` latency (CLI and
// library). bench/run.mjs decides what runs when; this measures one of it.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { median } from './stats.mjs';
import { countStacks } from './tools.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);

/** Milliseconds on CLOCK_MONOTONIC, the clock the target prints (time.monotonic_ns). */
export const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const HAVE_SCHEDSTAT = fs.existsSync('/proc/self/schedstat');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
function cpuNs(pid) {
  try {
    if (HAVE_SCHEDSTAT) {
      let sum = 0;
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
          sum += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        } catch {
          // the thread ended
        }
      }
      return sum;
    }
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e9) / CLK_TCK;
  } catch {
    return null;
  }
}

/** The pid of a direct child of `ppid` (the profiler under /usr/bin/time), or null. */
function childOf(ppid) {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) return Number(name);
    } catch {
      // gone
    }
  }
  return null;
}

function kill(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}


export class Target {
  /** Starts target.py under `py` for `workload` and waits until its loop runs. */
  static async start(py, workload, work) {
    const script = work.inner('target.py');
    const argv = [...py.argv, script, workload.kind, String(workload.depth)];
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const t = new Target(child);
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        t.line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => (t.stderr = (t.stderr + d).slice(-4000)));
    const deadline = now() + 20000;
    while (t.pid === null) {
      if (t.exited) throw new Error(`target ${argv.join(' ')} exited: ${t.stderr.trim()}`);
      if (now() > deadline) {
        t.stop();
        throw new Error(`target ${argv.join(' ')} printed no READY line in 20 s`);
      }
      await sleep(20);
    }
    await sleep(500); // warm-up
    return t;
  }

  constructor(child) {
    this.child = child;
    this.pid = null;
    this.version = null;
    this.reports = []; // [ms, iterations]
    this.stderr = '';
    this.exited = false;
    child.on('exit', () => (this.exited = true));
  }

  line(text) {
    const m = /^READY (\d+) (\S+)/.exec(text);
    if (m) {
      this.pid = Number(m[1]);
      this.version = m[2];
      return;
    }
    const [ns, n] = text.split(' ');
    if (n !== undefined) this.reports.push([Number(ns) / 1e6, Number(n)]);
  }

  /** Iterations per second between t0 and t1 (ms), from the reports inside the window. */
  rate(t0, t1) {
    let first = null;
    let last = null;
    for (const r of this.reports) {
      if (r[0] < t0) continue;
      if (r[0] > t1) break;
      first ??= r;
      last = r;
    }
    if (!first || last === first || last[0] - first[0] < 100) return null;
    return ((last[1] - first[1]) * 1000) / (last[0] - first[0]);
  }

  async baseline(seconds) {
    const t0 = now();
    await sleep(seconds * 1000);
    return this.rate(t0, now());
  }

  stop() {
    kill(this.child.pid, 'SIGKILL');
    this.reports = [];
  }
}

/** A scratch directory the target and the samplers both see (inside the chroot for chroot targets). */
export function workDir(root) {
  const innerDir = `/tmp/pyspy-bench-${process.pid}`;
  const hostDir = root ? path.join(root, innerDir) : path.join(os.tmpdir(), `pyspy-bench-${process.pid}`);
  fs.mkdirSync(hostDir, { recursive: true });
  fs.copyFileSync(path.join(HERE, 'target.py'), path.join(hostDir, 'target.py'));
  return {
    host: (name) => path.join(hostDir, name),
    inner: (name) => path.join(root ? innerDir : hostDir, name),
    remove: () => fs.rmSync(hostDir, { recursive: true, force: true }),
  };
}


export const HAVE_TIME = fs.existsSync('/usr/bin/time');
let seq = 0;
/** Start-up time last seen per profiler without a start line, to know when to stop it. */
const startupSeen = {};

/**
 * Runs one profiler attached to the target for `seconds` of sampling, then
 * stops it with SIGINT (as Ctrl-C would), and measures it.
 */
export async function measureRecord(tool, target, t, workload, mode, rate, seconds, work, { procMem = false, noIdle = false, warmSeconds = 0.2 } = {}) {
  const n = ++seq;
  const out = { host: work.host(`out-${n}.txt`), inner: work.inner(`out-${n}.txt`) };
  const timeFile = work.host(`time-${n}.txt`);
  const spec = tool.record({ target, pid: t.pid, rate, mode, out, workload, procMem, noIdle });
  const argv = HAVE_TIME ? ['/usr/bin/time', '-o', timeFile, '-f', '%U %S %M %e', ...spec.argv] : spec.argv;
  const t0 = now();
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: spec.env ?? process.env, cwd: ROOT });
  let text = '';
  let tStartLine = null;
  const onData = (d) => {
    text += d;
    if (tStartLine === null && spec.startLine && spec.startLine.test(text)) tStartLine = now();
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  let exit = null;
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve((exit = { code, signal, t: now() }))));
  let pid = HAVE_TIME ? null : child.pid;
  const polls = [];
  let tSig = null;
  let killed = false;
  // Without a start line (CPython's sampler), stop after a fixed start-up allowance; its own elapsed time is used.
  const allowance = Math.max(500, (startupSeen[tool.id] ?? 600) + 150);
  const stopAt = () => (spec.startLine ? (tStartLine === null ? null : tStartLine + seconds * 1000) : t0 + allowance + seconds * 1000);
  while (exit === null) {
    if (pid === null) pid = childOf(child.pid);
    if (pid !== null) {
      const c = cpuNs(pid);
      if (c !== null) polls.push([now(), c]);
    }
    const at = stopAt();
    if (tSig === null && ((at !== null && now() >= at) || now() > t0 + 20000 + seconds * 1000)) {
      tSig = now();
      kill(pid ?? child.pid, 'SIGINT');
    }
    if (tSig !== null && now() > tSig + 30000 && !killed) {
      killed = true;
      kill(pid ?? child.pid, 'SIGKILL');
      kill(child.pid, 'SIGKILL');
    }
    await Promise.race([exited, sleep(100)]);
  }
  const r = { tool: tool.id, mode, rate, workload: workload.id, target: target.id, load: os.loadavg()[0], ...(procMem ? { procMem } : {}), ...(noIdle ? { noIdle } : {}) };
  let rusage = null;
  if (HAVE_TIME && fs.existsSync(timeFile)) {
    const last = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    if (last.length === 4 && last.every(Number.isFinite)) rusage = { user: last[0], sys: last[1], maxRssKiB: last[2], wall: last[3] };
  }
  const reported = tool.parse(text);
  const stacks = countStacks(out.host, tool.names, workload.depth);
  if (!reported || !stacks) {
    r.status = /Unsupported version/i.test(text)
      ? `unsupported: ${/Unsupported version[^\n]*/i.exec(text)[0]}`
      : `failed (exit ${exit.code ?? exit.signal}): ${lastLines(text)}`;
    return r;
  }
  r.status = 'ok';
  const samples = stacks.good + stacks.wrong;
  // When sampling ran: from the start line (or, for CPython, its own elapsed time) to SIGINT.
  const tStop = tSig ?? exit.t;
  const tStart = spec.startLine ? tStartLine : tStop - reported.elapsedSeconds * 1000;
  const sampling = (tStop - tStart) / 1000;
  if (!spec.startLine) startupSeen[tool.id] = tStart - t0;
  // Steady-state CPU: from `warmSeconds` (0.2 s) after sampling began to the stop, so start-up and
  // writing the file are left out.
  const a = polls.find((p) => p[0] >= tStart + warmSeconds * 1000);
  const b = [...polls].reverse().find((p) => p[0] <= tStop);
  const steady = a && b && b[0] - a[0] > 200 ? { cpuMs: (b[1] - a[1]) / 1e6, windowMs: b[0] - a[0] } : null;
  const attempts = tool.id === 'cpython' ? reported.reportedSamples : samples + reported.errors;
  Object.assign(r, {
    samples,
    wrongStacks: stacks.wrong,
    reportedSamples: reported.reportedSamples,
    errors: reported.errors,
    attempts,
    samplingSeconds: sampling,
    samplesPerSecond: samples / sampling,
    startupMs: tStart - t0,
    cpuUsPerSample: steady && samples > 0 ? (steady.cpuMs * 1000) / ((samples * steady.windowMs) / (sampling * 1000)) : null,
    cpuShare: steady ? steady.cpuMs / steady.windowMs : null,
    totalCpuSeconds: rusage ? rusage.user + rusage.sys : null,
    totalCpuUsPerSample: rusage && samples > 0 ? ((rusage.user + rusage.sys) * 1e6) / samples : null,
    maxRssKiB: rusage?.maxRssKiB ?? null,
    errorPct: attempts > 0 ? (100 * reported.errors) / attempts : null,
    wrongPct: samples > 0 ? (100 * stacks.wrong) / samples : null,
    // The target's speed while sampled: from 0.1 s after sampling began to the stop.
    window: [tStart + 100, tStop],
    targetRate: t.rate(tStart + 100, tStop),
  });
  fs.rmSync(out.host, { force: true });
  fs.rmSync(timeFile, { force: true });
  return r;
}

function lastLines(text) {
  return text.trim().split('\n').filter((l) => !/^\s+\d+: /.test(l) && l.trim()).slice(-3).join(' | ').slice(0, 300);
}

/** Wall time of one CLI dump, spawn to exit. */
export async function measureDump(argv, env) {
  const t0 = now();
  const r = await new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, cwd: ROOT });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (text += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (text += d));
    child.on('error', (err) => resolve({ code: -1, text: err.message }));
    child.on('close', (code) => resolve({ code, text }));
  });
  const ms = now() - t0;
  if (r.code !== 0) {
    return /Unsupported version/i.test(r.text)
      ? { status: `unsupported: ${/Unsupported version[^\n]*/i.exec(r.text)[0]}` }
      : { status: `failed (exit ${r.code}): ${lastLines(r.text)}` };
  }
  return { status: 'ok', ms };
}

export async function measureLibraryDump(pid) {
  const r = spawnSync(process.execPath, [path.join(HERE, 'lib-dump.mjs'), String(pid), '6'], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) return { status: `failed: ${lastLines(r.stderr || r.stdout)}` };
  const { times } = JSON.parse(r.stdout.trim().split('\n').pop());
  return { status: 'ok', firstMs: times[0], warmMs: median(times.slice(1)) };
}

