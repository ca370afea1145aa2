#!/usr/bin/env node
// `npm run bench`: pyspy-node side by side with py-spy and CPython's own
// sampler (`python3.15 -m profiling.sampling`), on the same targets, in one run.
// Issue 9 describes what is measured and why; bench/README.md describes how.
//
//   node bench/run.mjs                 setup, then the full measurement (about 11 minutes)
//   node bench/run.mjs --smoke         one short pass, written under .cache/bench/smoke/
//   node bench/run.mjs --help          every option
//
// Node built-ins only: it runs before anything else is known to work.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { measureAsyncio, renderAsyncio } from './asyncio.mjs';
import { renderCounts } from './counts.mjs';
import { buildFloorHelper, FLOOR_FIELDS, measureFloor } from './floor.mjs';
import { measureHostWide, renderHostWide } from './host-wide.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);
const CACHE = path.join(ROOT, '.cache', 'bench');
const CLI = path.join(ROOT, 'packages', 'pyspy-node', 'bin', 'pyspy-node.js');
const PYSPY_VERSION = '0.4.2';
const ALL_WORKLOADS = {
  depth10: { id: 'depth10', label: 'recursion, depth 10', kind: 'depth', depth: 10, slowdown: false },
  depth42: { id: 'depth42', label: 'recursion, depth 42', kind: 'depth', depth: 42, slowdown: true },
  depth200: { id: 'depth200', label: 'recursion, depth 200', kind: 'depth', depth: 200, slowdown: false },
  threads: { id: 'threads', label: '32 idle threads + 1 busy (depth 10)', kind: 'threads', depth: 10, slowdown: true },
};
const MODES = ['nonblocking', 'default'];
const FIXED_RATES = [100, 1000];

const HELP = `Usage: node bench/run.mjs [options]     (npm run bench -- [options])

Runs pyspy-node, py-spy ${PYSPY_VERSION} (from PyPI, in .cache/bench/venv) and CPython's own
sampler (python3.15 -m profiling.sampling, on the 3.15 target) against the
same targets, and writes RESULTS.md and results.json.

Options:
  --smoke            one short pass (1 rep, 1 s windows) for developing the
                     harness; output goes to .cache/bench/smoke/ unless --out
  --no-setup         skip \`node scripts/setup.mjs\` (npm deps, release addon,
                     TypeScript, test interpreters)
  --reps N           repetitions of every measurement; medians are reported (3)
  --duration S       seconds each profiler samples per measurement (1.5)
  --baseline S       seconds of each unprofiled window between runs (0.8)
  --budget MIN       stop starting new repetitions when the next one would end
                     later than MIN minutes after the start (14)
  --workloads LIST   comma-separated: ${Object.keys(ALL_WORKLOADS).join(',')} (all)
  --tools LIST       comma-separated: pyspy-node,py-spy,cpython (all)
  --targets LIST     comma-separated matrix ids (default: pyenv-3.12.* when
                     present, else debian-3.11; and debian-3.15)
  --no-host-wide     skip the host-wide mode (record --all-pythons --push over
                     20 and 50 idle-ish processes; bench/host-wide.mjs)
  --no-asyncio       skip record --asyncio on the ~100-task asyncio fixture,
                     with CPython 3.15's --async-aware (bench/asyncio.mjs)
  --out DIR          where RESULTS.md and results.json go (bench/)
  -h, --help         this help
`;

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = {
    smoke: false,
    setup: true,
    reps: 3,
    duration: 1.5,
    baseline: 0.8,
    budget: 14,
    workloads: Object.keys(ALL_WORKLOADS),
    tools: ['pyspy-node', 'py-spy', 'cpython'],
    targets: null,
    out: null,
    hostWide: true,
    asyncio: true,
  };
  const explicit = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) die(`${a} needs a value (see --help)`);
      return v;
    };
    const number = () => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) die(`${a} needs a positive number`);
      return v;
    };
    const list = () => value().split(',').map((s) => s.trim()).filter(Boolean);
    switch (a) {
      case '-h':
      case '--help':
        process.stdout.write(HELP);
        process.exit(0);
        break;
      case '--smoke': o.smoke = true; break;
      case '--no-setup': o.setup = false; break;
      case '--no-host-wide': o.hostWide = false; break;
      case '--no-asyncio': o.asyncio = false; break;
      case '--reps': o.reps = Math.round(number()); explicit.add('reps'); break;
      case '--duration': o.duration = number(); explicit.add('duration'); break;
      case '--baseline': o.baseline = number(); explicit.add('baseline'); break;
      case '--budget': o.budget = number(); break;
      case '--workloads': o.workloads = list(); break;
      case '--tools': o.tools = list(); break;
      case '--targets': o.targets = list(); break;
      case '--out': o.out = path.resolve(value()); break;
      default: die(`unknown option '${a}' (see --help)`);
    }
  }
  if (o.smoke) {
    if (!explicit.has('reps')) o.reps = 1;
    if (!explicit.has('duration')) o.duration = 1;
    if (!explicit.has('baseline')) o.baseline = 0.6;
  }
  for (const w of o.workloads) if (!ALL_WORKLOADS[w]) die(`unknown workload '${w}'`);
  for (const t of o.tools) if (!['pyspy-node', 'py-spy', 'cpython'].includes(t)) die(`unknown tool '${t}'`);
  o.out ??= o.smoke ? path.join(CACHE, 'smoke') : HERE;
  return o;
}

function die(message) {
  console.error(`bench: error: ${message}`);
  process.exit(2);
}

// ---------------------------------------------------------------- small helpers

/** Milliseconds on CLOCK_MONOTONIC, the clock the target prints (time.monotonic_ns). */
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const T0 = now();
const log = (msg) => console.log(`[${((now() - T0) / 1000).toFixed(0).padStart(4)}s] ${msg}`);

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trimEnd() : null;
}

function isMountPoint(dir) {
  const real = fs.realpathSync(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === real);
}

/** CPU time (ns) of every thread of a process: /proc/PID/task/* /schedstat, else /proc/PID/stat. */
const HAVE_SCHEDSTAT = fs.existsSync('/proc/self/schedstat');
const CLK_TCK = Number(sh('getconf', ['CLK_TCK'])) || 100;
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

// ---------------------------------------------------------------- machine

function describeMachine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: Number(sh('nproc', [])) || os.availableParallelism(),
    cpuModel: model,
    memory: sh('free', ['-h']) ?? `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: sh('uname', ['-srvm']) ?? `${os.type()} ${os.release()}`,
    os: /PRETTY_NAME="(.*)"/.exec(fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '')?.[1] ?? os.type(),
    node: process.version,
  };
}

function gitRevision() {
  const head = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  if (!head) return null;
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'crates', 'packages/pyspy-node/src']);
  return dirty ? `${head} + uncommitted changes in crates/ or packages/pyspy-node/src` : head;
}

// ---------------------------------------------------------------- setup

function runSetup() {
  log('setup: node scripts/setup.mjs (npm deps, release addon, TypeScript, test interpreters)');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'setup.mjs')], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) die('`node scripts/setup.mjs` failed; see its output above');
}

/** py-spy from PyPI in a virtualenv of its own: { bin, version } or { error }. */
function ensurePySpy() {
  const venv = path.join(CACHE, 'venv');
  const bin = path.join(venv, 'bin', 'py-spy');
  const version = () => sh(bin, ['--version'])?.replace(/^py-spy\s*/, '');
  if (fs.existsSync(bin) && version() === PYSPY_VERSION) return { bin, version: PYSPY_VERSION };
  const pythons = ['/usr/bin/python3', 'python3', ...['3.12.1', '3.11.7'].map((v) => `${os.homedir()}/.pyenv/versions/${v}/bin/python3`)];
  const errors = [];
  for (const py of pythons) {
    fs.rmSync(venv, { recursive: true, force: true });
    fs.mkdirSync(CACHE, { recursive: true });
    const mk = spawnSync(py, ['-m', 'venv', venv], { encoding: 'utf8' });
    if (mk.status !== 0) {
      errors.push(`${py} -m venv: ${(mk.stderr || mk.error?.message || '').trim().split('\n').pop()}`);
      continue;
    }
    log(`py-spy: pip install py-spy==${PYSPY_VERSION} into ${path.relative(ROOT, venv)}`);
    const pip = spawnSync(path.join(venv, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', `py-spy==${PYSPY_VERSION}`], {
      encoding: 'utf8',
    });
    if (pip.status !== 0) {
      errors.push(`pip install py-spy==${PYSPY_VERSION}: ${(pip.stderr || '').trim().split('\n').slice(-2).join(' ')}`);
      break; // the network, not the interpreter
    }
    if (version() === PYSPY_VERSION) return { bin, version: PYSPY_VERSION };
    errors.push(`${bin} --version did not print ${PYSPY_VERSION}`);
  }
  return { error: `py-spy ${PYSPY_VERSION} could not be installed: ${errors.join('; ')}` };
}

/** Picks the targets from .cache/pythons/matrix.json. */
function pickTargets(wanted) {
  const file = path.join(ROOT, '.cache', 'pythons', 'matrix.json');
  if (!fs.existsSync(file)) die(`${path.relative(ROOT, file)} is missing: run \`bash test/pythons/install.sh\` (or drop --no-setup)`);
  const matrix = JSON.parse(fs.readFileSync(file, 'utf8')).filter((e) => e.supported !== false);
  const byId = new Map(matrix.map((e) => [e.id, e]));
  const notes = [];
  let ids = wanted;
  if (!ids) {
    const pyenv312 = matrix.find((e) => e.kind === 'pyenv' && /^3\.12\./.test(e.version));
    ids = [pyenv312 ? pyenv312.id : 'debian-3.11', 'debian-3.15'];
    if (!pyenv312) notes.push('no pyenv 3.12 in the matrix: the host target is Debian 3.11');
  }
  const targets = [];
  for (const id of ids) {
    const e = byId.get(id);
    if (!e) {
      notes.push(`target ${id} is not in ${path.relative(ROOT, file)} (run test/pythons/install.sh): skipped`);
      continue;
    }
    if (!fs.existsSync(e.binary)) {
      notes.push(`target ${id}: ${e.binary} is missing: skipped`);
      continue;
    }
    targets.push({ id: e.id, version: e.version, kind: e.kind, argv: e.argv, root: e.root });
  }
  return { targets, notes };
}

// ---------------------------------------------------------------- chroot /proc

/** Mounts proc on ROOT/proc for the samplers run inside a chroot; undone by release(). */
const procMounts = [];
function ensureProc(root) {
  const dir = path.join(root, 'proc');
  let created = false;
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir);
    created = true;
  }
  if (isMountPoint(dir)) return;
  const r = spawnSync('mount', ['-t', 'proc', 'proc', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    if (created) fs.rmdirSync(dir);
    throw new Error(`mount -t proc proc ${dir}: ${(r.stderr || r.error?.message || '').trim()}`);
  }
  procMounts.push({ dir, created });
  log(`mounted proc on ${dir} (CPython's sampler reads /proc inside the chroot); unmounted at the end`);
}
function releaseProcMounts() {
  while (procMounts.length) {
    const { dir, created } = procMounts.pop();
    const r = spawnSync('umount', [dir], { encoding: 'utf8' });
    if (r.status !== 0) spawnSync('umount', ['-l', dir]);
    if (created) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // leave it
      }
    }
  }
}

// ---------------------------------------------------------------- targets

class Target {
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
function workDir(root) {
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

// ---------------------------------------------------------------- the profilers

const rawSample = /^(.*) (\d+)$/;
/** Frame names of one collapsed line: "name (file:line)" for pyspy-node and py-spy. */
const pyspyNames = (stack) => stack.split(';').map((f) => f.replace(/ \([^()]*\)$/, ''));
/** CPython: "tid:N;file:func:line;…". */
const cpythonNames = (stack) =>
  stack
    .split(';')
    .filter((f) => !f.startsWith('tid:'))
    .map((f) => {
      const parts = f.split(':');
      return parts.length >= 3 ? parts.slice(1, -1).join(':') : f;
    });

/**
 * Counts the busy thread's samples in a collapsed-stack file: good ones (leaf
 * spin(), exactly `depth` frames, synthetic <GC>/<native> frames aside) and
 * wrong ones (any other stack through recurse() or spin(): torn or misread).
 */
function countStacks(file, names, depth) {
  let good = 0;
  let wrong = 0;
  let total = 0;
  if (!fs.existsSync(file)) return null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = rawSample.exec(line);
    if (!m) continue;
    const n = Number(m[2]);
    total += n;
    const frames = names(m[1]).filter((f) => f === '<module>' || !f.startsWith('<'));
    if (!frames.some((f) => f === 'spin' || f === 'recurse' || f.endsWith('.recurse') || f.endsWith('.spin'))) continue;
    if (frames.length === depth && /(^|\.)spin$/.test(frames[frames.length - 1])) good += n;
    else wrong += n;
  }
  return { good, wrong, total };
}

function makeTools(pyspy) {
  return {
    'pyspy-node': {
      id: 'pyspy-node',
      maxRate: 100000,
      availability: () => (fs.existsSync(CLI) ? null : `missing: ${CLI} (run npm run setup)`),
      record: ({ pid, rate, mode, out, workload, procMem }) => ({
        argv: [process.execPath, CLI, 'record', '--pid', String(pid), '--rate', String(rate), '--format', 'raw', '--output', out.host,
          ...(mode === 'nonblocking' ? ['--nonblocking'] : []), ...(workload.kind === 'threads' ? ['--idle'] : [])],
        // The fallback read path of sandboxes that refuse process_vm_readv (issue 17).
        env: procMem ? { ...process.env, PYSPY_NODE_PROC_MEM: '1' } : undefined,
        startLine: /Sampling process/,
      }),
      parse: (text) => {
        const m = /Samples: (\d+) Errors: (\d+)/.exec(text);
        return m ? { reportedSamples: Number(m[1]), errors: Number(m[2]) } : null;
      },
      names: pyspyNames,
      dump: ({ pid }) => [process.execPath, CLI, 'dump', '--pid', String(pid)],
    },
    'py-spy': {
      id: 'py-spy',
      maxRate: 10000,
      availability: () => (pyspy.error ? `missing: ${pyspy.error}` : null),
      record: ({ pid, rate, mode, out, workload }) => ({
        argv: [pyspy.bin, 'record', '--pid', String(pid), '--rate', String(rate), '--format', 'raw', '--output', out.host,
          ...(mode === 'nonblocking' ? ['--nonblocking'] : []), ...(workload.kind === 'threads' ? ['--idle'] : [])],
        startLine: /Sampling process/,
      }),
      parse: (text) => {
        const m = /Samples: (\d+) Errors: (\d+)/.exec(text);
        return m ? { reportedSamples: Number(m[1]), errors: Number(m[2]) } : null;
      },
      names: pyspyNames,
      dump: ({ pid }) => [pyspy.bin, 'dump', '--pid', String(pid)],
    },
    cpython: {
      id: 'cpython',
      // -r takes a rate; 1,000,000 Hz is its minimum interval, 1 µs.
      maxRate: 1000000,
      availability: (target) => {
        if (!/^3\.(1[5-9]|[2-9]\d)/.test(target.version)) return `n/a: needs a ${'3.15+'} target (it attaches to its own version only)`;
        const r = spawnSync(target.argv[0], [...target.argv.slice(1), '-c', 'import profiling.sampling'], { encoding: 'utf8', env: { PATH: process.env.PATH, LC_ALL: 'C' } });
        return r.status === 0 ? null : `missing: ${target.argv.join(' ')} has no profiling.sampling: ${(r.stderr || '').trim().split('\n').pop()}`;
      },
      record: ({ target, pid, rate, mode, out }) => ({
        argv: [...target.argv, '-m', 'profiling.sampling', 'attach', '-r', String(rate), '-a', '--collapsed', '-o', out.inner,
          ...(mode === 'default' ? ['--blocking'] : []), String(pid)],
        env: { PATH: process.env.PATH, LC_ALL: 'C' },
        startLine: null, // it prints nothing until the end; its own elapsed time dates the start
      }),
      parse: (text) => {
        const m = /Captured (\d+) samples? in ([\d.]+) seconds/.exec(text);
        const e = /Error rate: ([\d.]+)/.exec(text);
        if (!m) return null;
        const attempts = Number(m[1]);
        const pct = e ? Number(e[1]) : 0;
        return { reportedSamples: attempts, errors: Math.round((pct * attempts) / 100), elapsedSeconds: Number(m[2]) };
      },
      names: cpythonNames,
      dump: ({ target, pid }) => [...target.argv, '-m', 'profiling.sampling', 'dump', String(pid)],
      dumpEnv: { PATH: process.env.PATH, LC_ALL: 'C' },
    },
  };
}

const HAVE_TIME = fs.existsSync('/usr/bin/time');
let seq = 0;
/** Start-up time last seen per profiler without a start line, to know when to stop it. */
const startupSeen = {};

/**
 * Runs one profiler attached to the target for `seconds` of sampling, then
 * stops it with SIGINT (as Ctrl-C would), and measures it.
 */
async function measureRecord(tool, target, t, workload, mode, rate, seconds, work, procMem = false) {
  const n = ++seq;
  const out = { host: work.host(`out-${n}.txt`), inner: work.inner(`out-${n}.txt`) };
  const timeFile = work.host(`time-${n}.txt`);
  const spec = tool.record({ target, pid: t.pid, rate, mode, out, workload, procMem });
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
  const r = { tool: tool.id, mode, rate, workload: workload.id, target: target.id, load: os.loadavg()[0], ...(procMem ? { procMem } : {}) };
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
  // Steady-state CPU: from 0.2 s after sampling began to the stop, so start-up and writing the file are left out.
  const a = polls.find((p) => p[0] >= tStart + 200);
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
async function measureDump(argv, env) {
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

async function measureLibraryDump(pid) {
  const r = spawnSync(process.execPath, [path.join(HERE, 'lib-dump.mjs'), String(pid), '6'], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) return { status: `failed: ${lastLines(r.stderr || r.stdout)}` };
  const { times } = JSON.parse(r.stdout.trim().split('\n').pop());
  return { status: 'ok', firstMs: times[0], warmMs: median(times.slice(1)) };
}

// ---------------------------------------------------------------- the run

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const deadline = started + opts.budget * 60000;
  if (process.getuid?.() !== 0) die('run as root: it reads other processes\' memory, ptraces them and chroots into the 3.15 root');
  if (opts.setup) runSetup();
  else log('setup skipped (--no-setup)');
  if (!fs.existsSync(path.join(ROOT, 'packages', 'pyspy-node', 'dist', 'index.js'))) die('packages/pyspy-node/dist is missing: run `npm run setup` (or drop --no-setup)');

  const machine = describeMachine();
  const loadStart = os.loadavg();
  const pyspy = opts.tools.includes('py-spy') ? ensurePySpy() : { error: 'not selected (--tools)' };
  if (pyspy.error) log(`py-spy: ${pyspy.error}`);
  const tools = makeTools(pyspy);
  const { targets, notes } = pickTargets(opts.targets);
  for (const n of notes) log(n);
  if (targets.length === 0) die('no target interpreters: run `bash test/pythons/install.sh`');
  const workloads = opts.workloads.map((w) => ALL_WORKLOADS[w]);
  // The read floor of issue 22, measured on every pyspy-node target.
  const floorHelper = opts.tools.includes('pyspy-node') ? buildFloorHelper(ROOT, log) : { error: 'not selected (--tools)' };
  if (floorHelper.error) log(`floor: ${floorHelper.error}`);

  // Which tool runs on which target.
  const availability = {};
  for (const target of targets) {
    availability[target.id] = {};
    for (const id of opts.tools) availability[target.id][id] = tools[id].availability(target);
  }
  log(`machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.kernel}; load ${loadStart.map((l) => l.toFixed(2)).join(' ')}`);
  log(`targets: ${targets.map((t) => `${t.id} (${t.version})`).join(', ')}; workloads: ${opts.workloads.join(', ')}; ${opts.reps} reps of ${opts.duration} s`);
  for (const target of targets) {
    for (const [id, why] of Object.entries(availability[target.id])) if (why) log(`${id} on ${target.id}: ${why}`);
  }

  const runs = [];
  const dumps = [];
  const baselines = [];
  const floors = [];
  const cleanup = () => releaseProcMounts();
  let liveTarget = null;
  const onSignal = (sig) => {
    liveTarget?.stop();
    cleanup();
    console.error(`bench: ${sig}: stopped`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let repsDone = 0;
  let cutNote = null;
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      const repStart = Date.now();
      if (rep > 0) {
        const perRep = (repStart - firstRepStart) / rep;
        if (repStart + perRep > deadline) {
          cutNote = `stopped after ${rep} of ${opts.reps} repetitions: another would end past the ${opts.budget}-minute budget`;
          log(cutNote);
          break;
        }
      }
      if (rep === 0) firstRepStart = repStart;
      log(`--- repetition ${rep + 1} of ${opts.reps}`);
      for (const target of targets) {
        const work = workDir(target.root);
        try {
          const supported = opts.tools.filter((id) => !availability[target.id][id]);
          if (target.root && supported.includes('cpython')) {
            try {
              ensureProc(target.root);
            } catch (err) {
              availability[target.id].cpython = `failed: ${err.message}`;
              supported.splice(supported.indexOf('cpython'), 1);
              log(`cpython on ${target.id}: ${err.message}`);
            }
          }
          for (const workload of workloads) {
            let t;
            try {
              t = liveTarget = await Target.start(target, workload, work);
            } catch (err) {
              log(`${target.id} ${workload.id}: ${err.message}`);
              runs.push({ target: target.id, workload: workload.id, status: `target failed: ${err.message}` });
              continue;
            }
            log(`${target.id} (${t.version}) ${workload.id}: target pid ${t.pid}`);
            // dump latency first: it also tells whether a profiler reads this version at all
            const usable = [];
            for (const id of supported) {
              const tool = tools[id];
              const d1 = await measureDump(tool.dump({ target, pid: t.pid }), tool.dumpEnv);
              const d2 = d1.status === 'ok' ? await measureDump(tool.dump({ target, pid: t.pid }), tool.dumpEnv) : d1;
              dumps.push({ target: target.id, workload: workload.id, tool: id, rep, ...d1, ms: median([d1.ms, d2.ms]) });
              if (id === 'pyspy-node') dumps.push({ target: target.id, workload: workload.id, tool: 'pyspy-node-library', rep, ...(await measureLibraryDump(t.pid)) });
              if (d1.status.startsWith('unsupported')) {
                availability[target.id][id] = d1.status;
                log(`  ${id}: ${d1.status}`);
              } else usable.push(id);
            }
            if (usable.includes('pyspy-node')) {
              // Same reads as the record runs: --idle on the threads workload.
              const idle = workload.kind === 'threads';
              for (const procMem of [false, true]) {
                const f = measureFloor(floorHelper, t.pid, { idle, procMem });
                floors.push({ target: target.id, workload: workload.id, rep, procMem, load: os.loadavg()[0], ...f });
                log(`  floor${procMem ? ' (/proc/PID/mem)' : ''}: ${f.error ?? `${(f.floorNs / 1000).toFixed(1)} µs per read of ${f.bytesPerSample} B in ${f.floorIovecs} iovecs; ${f.readsPerSample} reads, ${f.allocsPerSample} allocations per sample`}`);
              }
            }
            const plan = [];
            for (const id of usable) for (const mode of MODES) plan.push({ id, mode, rate: tools[id].maxRate, kind: 'max' });
            // pyspy-node again, reading through /proc/PID/mem (PYSPY_NODE_PROC_MEM=1).
            if (usable.includes('pyspy-node')) plan.push({ id: 'pyspy-node', mode: 'nonblocking', rate: tools['pyspy-node'].maxRate, kind: 'max', procMem: true });
            if (workload.slowdown) {
              for (const rate of FIXED_RATES) for (const id of usable) for (const mode of MODES) plan.push({ id, mode, rate, kind: 'fixed' });
            }
            // Rotate the order from one repetition to the next, so drift does not favour one tool.
            const rotated = plan.map((_, i) => plan[(i + rep * 3) % plan.length]);
            let before = await t.baseline(opts.baseline);
            baselines.push({ target: target.id, workload: workload.id, rep, rate: before });
            for (const p of rotated) {
              const r = await measureRecord(tools[p.id], target, t, workload, p.mode, p.rate, opts.duration, work, p.procMem);
              const after = await t.baseline(opts.baseline);
              baselines.push({ target: target.id, workload: workload.id, rep, rate: after });
              r.rep = rep;
              r.kind = p.kind;
              r.baselineRate = median([before, after]);
              if (r.status === 'ok' && r.targetRate && r.baselineRate) r.slowdownPct = 100 * (r.baselineRate / r.targetRate - 1);
              runs.push(r);
              if (r.status.startsWith('unsupported')) availability[target.id][p.id] = r.status;
              log(`  ${p.id.padEnd(10)} ${(p.mode + (p.procMem ? '+mem' : '')).padEnd(15)} ${String(p.rate).padStart(7)} Hz: ${r.status === 'ok' ? summarize(r) : r.status}`);
              before = after;
            }
            t.stop();
            liveTarget = null;
          }
        } finally {
          work.remove();
        }
      }
      repsDone = rep + 1;
    }
  } finally {
    liveTarget?.stop();
    cleanup();
  }

  let hostWide = null;
  if (opts.hostWide) {
    log('--- host-wide mode');
    const host = targets.find((t) => !t.root) ?? targets[0];
    try {
      hostWide = await measureHostWide({
        python: host.argv[0],
        pyspyBin: pyspy.error ? undefined : pyspy.bin,
        counts: opts.smoke ? [5] : [20, 50],
        seconds: opts.smoke ? 3 : 10,
        log,
      });
    } catch (err) {
      hostWide = { error: err.message };
      log(`host-wide: ${err.message}`);
    }
  }

  let asyncio = null;
  if (opts.asyncio) {
    log('--- asyncio (record --asyncio)');
    const modern = targets.filter((t) => /^3\.(1[1-9])\./.test(t.version));
    try {
      asyncio = await measureAsyncio({ targets: modern, seconds: opts.smoke ? 3 : 10, warm: opts.smoke ? 2 : 3, log });
    } catch (err) {
      asyncio = { error: err.message };
      log(`asyncio: ${err.message}`);
    }
  }

  const loadEnd = os.loadavg();
  const results = {
    harness: 'bench/run.mjs',
    issue: 9,
    smoke: opts.smoke,
    options: { reps: opts.reps, repsDone, duration: opts.duration, baseline: opts.baseline, workloads: opts.workloads, tools: opts.tools },
    machine,
    loadAverage: { start: loadStart, end: loadEnd },
    elapsedSeconds: (Date.now() - started) / 1000,
    versions: {
      pyspyNode: `${JSON.parse(fs.readFileSync(path.join(ROOT, 'packages', 'pyspy-node', 'package.json'), 'utf8')).version} (${gitRevision() ?? 'no git'})`,
      pySpy: pyspy.version ?? null,
      targets: targets.map((t) => ({ id: t.id, version: t.version, kind: t.kind })),
    },
    notes: [...notes, ...(cutNote ? [cutNote] : [])],
    availability,
    summary: summarizeAll(targets, workloads, opts.tools, runs, dumps, availability, floors),
    hostWide,
    asyncio,
    runs,
    dumps,
    baselines,
    floors,
  };
  fs.mkdirSync(opts.out, { recursive: true });
  fs.writeFileSync(path.join(opts.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  fs.writeFileSync(path.join(opts.out, 'RESULTS.md'), renderMarkdown(results, targets, workloads));
  log(`wrote ${path.relative(ROOT, path.join(opts.out, 'RESULTS.md'))} and results.json in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
let firstRepStart = 0;

function summarize(r) {
  const f = (x, d = 0) => (x === null || x === undefined ? '?' : x.toFixed(d));
  return `${f(r.samplesPerSecond)} samples/s, ${f(r.cpuUsPerSample, 1)} µs CPU/sample, err ${f(r.errorPct, 2)}%, wrong ${f(r.wrongPct, 2)}%, target ${r.slowdownPct === undefined ? '?' : `${r.slowdownPct >= 0 ? '+' : ''}${r.slowdownPct.toFixed(1)}%`} slower, RSS ${f((r.maxRssKiB ?? NaN) / 1024, 1)} MB`;
}

// ---------------------------------------------------------------- aggregation

const METRICS = ['samplesPerSecond', 'cpuUsPerSample', 'totalCpuUsPerSample', 'cpuShare', 'errorPct', 'wrongPct', 'slowdownPct', 'maxRssKiB', 'startupMs', 'targetRate', 'baselineRate'];

/** `nonblocking@max`, `default@1000`, ...; `+procmem` for reads through /proc/PID/mem. */
function runKey(r) {
  return `${r.mode}@${r.kind === 'max' ? 'max' : r.rate}${r.procMem ? '+procmem' : ''}`;
}

function summarizeAll(targets, workloads, toolIds, runs, dumps, availability, floors) {
  const out = [];
  for (const target of targets) {
    for (const workload of workloads) {
      for (const id of toolIds) {
        const entry = { target: target.id, workload: workload.id, tool: id, status: availability[target.id][id] ?? 'ok', runs: {} };
        const mine = runs.filter((r) => r.target === target.id && r.workload === workload.id && r.tool === id);
        for (const r of mine) {
          const key = runKey(r);
          (entry.runs[key] ??= { mode: r.mode, rate: r.rate, kind: r.kind, n: 0, failures: [] });
          if (r.status !== 'ok') entry.runs[key].failures.push(r.status);
          else entry.runs[key].n++;
        }
        for (const [key, agg] of Object.entries(entry.runs)) {
          const ok = mine.filter((r) => r.status === 'ok' && runKey(r) === key);
          for (const m of METRICS) agg[m] = median(ok.map((r) => r[m]));
          if (agg.failures.length === 0) delete agg.failures;
        }
        const d = dumps.filter((x) => x.target === target.id && x.workload === workload.id && x.tool === id);
        entry.dumpMs = median(d.filter((x) => x.status === 'ok').map((x) => x.ms));
        if (d.length && entry.dumpMs === null) entry.dumpStatus = d[0].status;
        if (id === 'pyspy-node') {
          const lib = dumps.filter((x) => x.target === target.id && x.workload === workload.id && x.tool === 'pyspy-node-library' && x.status === 'ok');
          entry.libraryDumpFirstMs = median(lib.map((x) => x.firstMs));
          entry.libraryDumpWarmMs = median(lib.map((x) => x.warmMs));
          for (const procMem of [false, true]) {
            const f = floors.filter((x) => x.target === target.id && x.workload === workload.id && x.procMem === procMem && !x.error);
            const agg = f.length ? Object.fromEntries(FLOOR_FIELDS.map((k) => [k, median(f.map((x) => x[k]))])) : null;
            const runKind = procMem ? 'nonblocking@max+procmem' : 'nonblocking@max';
            const cpu = entry.runs[runKind]?.cpuUsPerSample;
            // CPU per sample of the CLI run over one read of the same bytes.
            if (agg && typeof cpu === 'number' && agg.floorNs > 0) agg.ratio = (cpu * 1000) / agg.floorNs;
            entry[procMem ? 'floorProcMem' : 'floor'] = agg ?? { error: floors.find((x) => x.target === target.id && x.workload === workload.id)?.error ?? 'not measured' };
          }
        }
        out.push(entry);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- RESULTS.md

const TOOL_LABEL = { 'pyspy-node': 'pyspy-node', 'py-spy': `py-spy ${PYSPY_VERSION}`, cpython: 'CPython sampler' };

function renderMarkdown(res, targets, workloads) {
  const L = [];
  const m = res.machine;
  const noise = baselineNoise(res.baselines);
  const noisy = res.loadAverage.start[0] > 0.5 || res.loadAverage.end[0] > 1.5 || (noise ?? 0) > 3;
  L.push('# pyspy-node benchmark (issue 9)', '');
  L.push(`Generated by \`npm run bench\` (bench/run.mjs) on ${m.date.slice(0, 10)} in ${(res.elapsedSeconds / 60).toFixed(1)} minutes${res.smoke ? ' — **smoke pass** (1 short repetition: for developing the harness, not for quoting)' : ''}.`, '');
  L.push('## Machine', '');
  L.push(`- ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}`);
  L.push(`- kernel: ${m.kernel}; ${m.os}; Node ${m.node}`);
  L.push(`- load average (1/5/15 min) at start: ${res.loadAverage.start.map((x) => x.toFixed(2)).join(' / ')}; at end: ${res.loadAverage.end.map((x) => x.toFixed(2)).join(' / ')}${noisy ? ' — **the machine was busy: treat the numbers as noisy**' : ''}`);
  if (noise !== null) L.push(`- the target's unprofiled speed moved by ${noise.toFixed(1)} % (median) from one unprofiled window to the next: slowdowns within that are noise`);
  L.push(`- date: ${m.date}`);
  L.push('', '```', m.memory, '```', '');
  L.push(`Versions: pyspy-node ${res.versions.pyspyNode}; py-spy ${res.versions.pySpy ?? 'not installed'}; targets ${res.versions.targets.map((t) => `${t.id} (${t.version})`).join(', ')}.`);
  L.push(`Each number is the median of ${res.options.repsDone} repetition(s); each profiler samples for ${res.options.duration} s per measurement, attached by pid to a target it did not start, with ${res.options.baseline} s unprofiled windows in between.`);
  if (!HAVE_TIME) L.push('', '> /usr/bin/time is missing (apt-get install time): no peak RSS and no whole-run CPU.');
  for (const n of res.notes) L.push('', `> ${n}`);
  for (const [target, tools] of Object.entries(res.availability)) {
    for (const [tool, why] of Object.entries(tools)) if (why) L.push('', `> ${TOOL_LABEL[tool]} on ${target}: ${why}`);
  }
  L.push('');

  // Goals of issue 9, at depth 42.
  L.push('## Issue 9 goals (recursion at depth 42)', '');
  L.push('| goal | ' + targets.map((t) => `${t.id} (${t.version})`).join(' | ') + ' |');
  L.push('|---|' + targets.map(() => '---|').join(''));
  const at = (t, w, tool) => res.summary.find((s) => s.target === t && s.workload === w && s.tool === tool);
  const goal = (label, get, ok) => {
    L.push(`| ${label} | ` + targets.map((t) => {
      const s = at(t.id, 'depth42', 'pyspy-node');
      const v = s ? get(s) : null;
      if (v === null || v === undefined) return '–';
      return `${v.text} ${ok(v.value) ? '✅' : '❌'}`;
    }).join(' | ') + ' |');
  };
  const num = (v, d, unit = '') => (v === null || v === undefined ? null : { value: v, text: `${fmt(v, d)}${unit}` });
  goal('≤ 10 µs CPU per sample (nonblocking)', (s) => num(s.runs['nonblocking@max']?.cpuUsPerSample, 1, ' µs'), (v) => v <= 10);
  goal('≥ 50,000 samples/s (nonblocking)', (s) => num(s.runs['nonblocking@max']?.samplesPerSecond, 0, '/s'), (v) => v >= 50000);
  goal('< 0.5% sample errors (nonblocking, max rate)', (s) => num(s.runs['nonblocking@max']?.errorPct, 2, ' %'), (v) => v < 0.5);
  goal('no wrong stacks reported (nonblocking, max rate)', (s) => num(s.runs['nonblocking@max']?.wrongPct, 2, ' %'), (v) => v < 0.5);
  goal('≤ 2× the read floor, CPU per sample (nonblocking, issue 22)', (s) => num(s.floor?.ratio, 2, '×'), (v) => v <= 2);
  goal('≤ 2% target slowdown at 1 kHz (default mode)', (s) => num(s.runs['default@1000']?.slowdownPct, 1, ' %'), (v) => v <= 2);
  goal('`dump` ≤ 50 ms (library call, warm)', (s) => num(s.libraryDumpWarmMs, 1, ' ms'), (v) => v <= 50);
  goal('`dump` ≤ 50 ms (CLI, incl. Node start-up)', (s) => num(s.dumpMs, 0, ' ms'), (v) => v <= 50);
  L.push('');

  L.push('## Results', '');
  L.push('Ratios are pyspy-node / the other tool (below 1: pyspy-node is cheaper, faster or lighter; for samples/s, above 1 is better). Slowdown ratios compare the target\'s time factors (1 + slowdown). "default" is each tool\'s consistent-stack mode: pyspy-node\'s and py-spy\'s default, CPython\'s `--blocking` (CPython\'s own default is nonblocking).', '');
  for (const target of targets) {
    for (const workload of workloads) {
      L.push(`### ${target.id} (${target.version}) — ${workload.label}`, '');
      const tools = res.options.tools;
      const others = tools.filter((t) => t !== 'pyspy-node');
      L.push(`| metric | ${tools.map((t) => TOOL_LABEL[t]).join(' | ')} | ${tools.includes('pyspy-node') ? others.map((o) => `ratio vs ${TOOL_LABEL[o]}`).join(' | ') : ''} |`);
      L.push(`|---|${tools.map(() => '---:|').join('')}${tools.includes('pyspy-node') ? others.map(() => '---:|').join('') : ''}`);
      const rows = [];
      const row = (label, get, digits, kind = 'lower') => rows.push({ label, get, digits, kind });
      for (const mode of MODES) {
        row(`CPU per sample, ${mode}, max rate (µs)`, (s) => s.runs[`${mode}@max`]?.cpuUsPerSample, 1);
      }
      row('floor: one process_vm_readv of the bytes one sample reads (µs)', (s) => (s.floor?.floorNs ?? null) === null ? undefined : s.floor.floorNs / 1000, 1, 'none');
      row('CPU per sample / floor, nonblocking, max rate', (s) => s.floor?.ratio, 2, 'none');
      row('one sample: bytes / iovecs read', (s) => (s.floor?.floorNs ? [s.floor.bytesPerSample, s.floor.floorIovecs] : undefined), 0, 'none');
      row('one sample: remote read calls / allocations', (s) => (s.floor?.floorNs ? [s.floor.readsPerSample, s.floor.allocsPerSample] : undefined), 2, 'none');
      row('CPU per sample / floor, reads through /proc/PID/mem', (s) => s.floorProcMem?.ratio, 2, 'none');
      row('CPU per sample, nonblocking, max rate, reads through /proc/PID/mem (µs)', (s) => s.runs['nonblocking@max+procmem']?.cpuUsPerSample, 1);
      row('samples/s, nonblocking, reads through /proc/PID/mem', (s) => s.runs['nonblocking@max+procmem']?.samplesPerSecond, 0, 'higher');
      if (workload.slowdown) row('CPU per sample, nonblocking, 1 kHz (µs)', (s) => s.runs['nonblocking@1000']?.cpuUsPerSample, 1);
      for (const mode of MODES) {
        row(`samples/s, ${mode}, asked for more than the maximum`, (s) => s.runs[`${mode}@max`]?.samplesPerSecond, 0, 'higher');
      }
      for (const mode of MODES) row(`errors %, ${mode}, max rate`, (s) => s.runs[`${mode}@max`]?.errorPct, 2, 'none');
      for (const mode of MODES) row(`wrong stacks %, ${mode}, max rate`, (s) => s.runs[`${mode}@max`]?.wrongPct, 2, 'none');
      if (workload.slowdown) {
        for (const rate of FIXED_RATES) for (const mode of MODES) row(`target slowdown, ${mode}, ${rate >= 1000 ? `${rate / 1000} kHz` : `${rate} Hz`} (%)`, (s) => s.runs[`${mode}@${rate}`]?.slowdownPct, 1, 'slowdown');
      }
      row('target slowdown, nonblocking, max rate (%)', (s) => s.runs['nonblocking@max']?.slowdownPct, 1, 'slowdown');
      row('`dump`, CLI end to end (ms)', (s) => s.dumpMs, 0);
      row('`dump()`, library, first / later calls (ms)', (s) => (s.tool === 'pyspy-node' ? [s.libraryDumpFirstMs, s.libraryDumpWarmMs] : undefined), 1, 'none');
      row('start-up until sampling (ms)', (s) => s.runs['nonblocking@max']?.startupMs, 0);
      row('sampler peak RSS, nonblocking, max rate (MB)', (s) => (s.runs['nonblocking@max']?.maxRssKiB ?? null) === null ? null : s.runs['nonblocking@max'].maxRssKiB / 1024, 1);
      for (const r of rows) {
        const cells = tools.map((id) => {
          const s = at(target.id, workload.id, id);
          if (!s) return '–';
          if (s.status !== 'ok') return statusText(s.status);
          const v = r.get(s);
          if (Array.isArray(v)) return v.map((x) => fmt(x, r.digits)).join(' / ');
          return v === undefined ? '–' : fmt(v, r.digits);
        });
        const mine = at(target.id, workload.id, 'pyspy-node');
        const ratios = tools.includes('pyspy-node')
          ? others.map((o) => {
              const s = at(target.id, workload.id, o);
              if (!mine || !s || mine.status !== 'ok' || s.status !== 'ok' || r.kind === 'none') return '–';
              const a = r.get(mine);
              const b = r.get(s);
              if (typeof a !== 'number' || typeof b !== 'number') return '–';
              if (r.kind === 'slowdown') return fmt((1 + a / 100) / (1 + b / 100), 2);
              return b > 0 ? fmt(a / b, a / b < 0.1 ? 3 : 2) : '–';
            })
          : [];
        L.push(`| ${r.label} | ${cells.join(' | ')} |${ratios.length ? ` ${ratios.join(' | ')} |` : ''}`);
      }
      const failures = res.summary
        .filter((s) => s.target === target.id && s.workload === workload.id)
        .flatMap((s) => Object.values(s.runs).flatMap((a) => (a.failures ?? []).map((f) => `${s.tool} ${a.mode} ${a.rate} Hz: ${f}`)));
      for (const f of [...new Set(failures)]) L.push('', `> ${f}`);
      L.push('');
    }
  }

  L.push(...renderHostWide(res.hostWide));
  L.push(...renderAsyncio(res.asyncio));
  L.push(...renderCounts());
  L.push('## How it was measured', '');
  L.push(...METHOD);
  return `${L.join('\n')}\n`;
}

/** Median relative change (%) between consecutive unprofiled windows of the same target run. */
function baselineNoise(baselines) {
  const changes = [];
  for (let i = 1; i < baselines.length; i++) {
    const a = baselines[i - 1];
    const b = baselines[i];
    if (a.target === b.target && a.workload === b.workload && a.rep === b.rep && a.rate && b.rate) changes.push((100 * Math.abs(b.rate - a.rate)) / a.rate);
  }
  return median(changes);
}

function statusText(status) {
  if (status.startsWith('unsupported')) return 'unsupported';
  if (status.startsWith('n/a')) return 'n/a';
  if (status.startsWith('missing')) return 'missing';
  return 'failed';
}

function fmt(v, digits) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1000 && digits <= 1) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

const METHOD = [
  '- **Targets** (`bench/target.py`): the main thread recurses to a fixed depth of Python frames and spins there in a small pure-Python loop, printing its iteration count every 50 ms with the CLOCK_MONOTONIC time; "threads" adds 32 threads asleep in a 50 ms `time.sleep` loop, the spinning thread being a 33rd at depth 10. The 3.15 target runs in its Debian chroot; CPython\'s sampler runs in the same chroot (proc is mounted on its /proc for the run and unmounted after).',
  '- **Profilers**: `pyspy-node record --pid P --rate R --format raw` (the CLI, Node start-up included), `py-spy record --pid P --rate R --format raw` and `python3.15 -m profiling.sampling attach -r R -a --collapsed P`, each with `--nonblocking` (pyspy-node, py-spy) or `--blocking` (CPython) as the mode asks, and `--idle` (pyspy-node, py-spy) on the threads workload so that every tool samples every thread each time, as CPython\'s wall mode does. Each samples for the set time after its start line (CPython prints none: its own elapsed time dates the start) and is then stopped with SIGINT, as Ctrl-C would.',
  '- **Samples** are counted in each tool\'s output file: the busy thread\'s stacks. A stack is *wrong* when it goes through `recurse`/`spin` but is not exactly the expected stack (leaf `spin`, the right number of frames): a torn or misread stack reported as real. **Errors** are the failed attempts each tool reports (pyspy-node and py-spy: `Errors: N`; CPython: its `Error rate`), as a share of attempts.',
  '- **CPU per sample**: the sampler\'s CPU time (the sum of `/proc/PID/task/*/schedstat`, user + system) from 0.2 s after sampling began until the stop, divided by the samples taken in that window: start-up and writing the output are left out (results.json also has the whole run\'s `/usr/bin/time` CPU per sample, `totalCpuUsPerSample`). "Max rate" asks for more than each tool can do: 100 kHz (pyspy-node), 10 kHz (py-spy), 1 MHz, i.e. CPython\'s minimum 1 µs interval.',
  '- **Floor** (issue 22; `bench/floor.mjs`): before the record runs of each repetition, `crates/pyspy-sampler/examples/read_floor.rs` (built with `cargo build --release`; a development tool, not in the package) attaches to the same target, takes 5,000 nonblocking samples the way the recorder does (with `--idle` on the threads workload: no `/proc` reads) counting the remote reads, bytes and allocations per sample, records the exact ranges one sample reads, and times (thread CPU time) a tight loop of one `process_vm_readv` of those ranges: the same bytes in the same iovecs. "CPU per sample / floor" divides the CLI\'s CPU per sample (nonblocking, max rate) by that time; the `/proc/PID/mem` line does the same with both read through `/proc/PID/mem`.',
  '- **`/proc/PID/mem` path**: pyspy-node once more per workload and repetition, nonblocking at its maximum rate, with `PYSPY_NODE_PROC_MEM=1`: memory read with `pread`/`preadv` on `/proc/PID/mem` (what sandboxes that refuse `process_vm_readv` leave), measured the same way.',
  '- **Target slowdown**: the target\'s iterations per second while sampled, against the median of the unprofiled windows just before and just after (interleaved, so drift cancels). The host has 2 CPUs: the target has one, the sampler the other.',
  '- **`dump`**: the wall time of one CLI `dump --pid P` from spawn to exit (median of 2 per repetition; default mode); for pyspy-node also `dump(pid)` from `pyspy-node` inside one Node process (`bench/lib-dump.mjs`): the first call, which loads the addon, and the median of the next five.',
  '- **Peak RSS**: `/usr/bin/time -f %M` of the sampler process (for pyspy-node, the whole Node process).',
];

await main();
