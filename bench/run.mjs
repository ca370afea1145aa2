#!/usr/bin/env node
// `npm run bench`: pyspy-node side by side with py-spy and CPython's own
// sampler (`python3.15 -m profiling.sampling`), on the same targets, in one run.
// Issue 9 describes what is measured and why; bench/README.md describes how.
//
//   node bench/run.mjs                 setup, then the full measurement (about 15 minutes)
//   node bench/run.mjs --smoke         one short pass, written under .cache/bench/smoke/
//   node bench/run.mjs --help          every option
//
// Node built-ins only: it runs before anything else is known to work.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { measureAsyncio } from './asyncio.mjs';
import { buildFloorHelper, measureFloor } from './floor.mjs';
import { measureHostWide } from './host-wide.mjs';
import { HAVE_TIME, measureDump, measureLibraryDump, measureRecord, now, Target, workDir } from './measure.mjs';
import { describeMachine, ensurePySpy, gitRevision, pickTargets, ProcMounts, runSetup } from './environment.mjs';
import { renderMarkdown } from './render.mjs';
import { median } from './stats.mjs';
import { summarizeAll } from './summary.mjs';
import { makeTools } from './tools.mjs';
import { measureWakeFloor } from './wake.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);
const CACHE = path.join(ROOT, '.cache', 'bench');
const PYSPY_VERSION = '0.4.2';
const ALL_WORKLOADS = {
  depth10: { id: 'depth10', label: 'recursion, depth 10', kind: 'depth', depth: 10, slowdown: false },
  // long100: also nonblocking at 100 Hz over a longer window (issue 22's 100 Hz goal).
  depth42: { id: 'depth42', label: 'recursion, depth 42', kind: 'depth', depth: 42, slowdown: true, long100: true },
  depth200: { id: 'depth200', label: 'recursion, depth 200', kind: 'depth', depth: 200, slowdown: false },
  threads: { id: 'threads', label: '32 idle threads + 1 busy (depth 10)', kind: 'threads', depth: 10, slowdown: true },
};
const MODES = ['nonblocking', 'default'];
/** The free-threaded 3.13t of scripts/freethreaded.mjs (not in matrix.json): a target of the depth-42 workload, max rate only. */
const FREE_THREADED = 'freethreaded-3.13t';
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
                     later than MIN minutes after the start (17)
  --workloads LIST   comma-separated: ${Object.keys(ALL_WORKLOADS).join(',')} (all)
  --tools LIST       comma-separated: pyspy-node,py-spy,cpython (all)
  --targets LIST     comma-separated matrix ids, or ${FREE_THREADED} (default:
                     pyenv-3.12.* when present, else debian-3.11; debian-3.15;
                     and ${FREE_THREADED} when built, depth 42 at max rate only)
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
    budget: 17,
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

const T0 = now();
const log = (msg) => console.log(`[${((now() - T0) / 1000).toFixed(0).padStart(4)}s] ${msg}`);

// ---------------------------------------------------------------- the run

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const deadline = started + opts.budget * 60000;
  if (process.getuid?.() !== 0) die('run as root: it reads other processes\' memory, ptraces them and chroots into the 3.15 root');
  if (opts.setup) runSetup({ root: ROOT, log, die });
  else log('setup skipped (--no-setup)');
  if (!fs.existsSync(path.join(ROOT, 'packages', 'pyspy-node', 'dist', 'index.js'))) die('packages/pyspy-node/dist is missing: run `npm run setup` (or drop --no-setup)');

  const machine = describeMachine();
  const loadStart = os.loadavg();
  const pyspy = opts.tools.includes('py-spy') ? ensurePySpy({ cache: CACHE, version: PYSPY_VERSION, root: ROOT, log }) : { error: 'not selected (--tools)' };
  if (pyspy.error) log(`py-spy: ${pyspy.error}`);
  const tools = makeTools(pyspy);
  const { targets, notes } = pickTargets(opts.targets, { root: ROOT, freeThreaded: FREE_THREADED, die });
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
  const procMounts = new ProcMounts(log);
  const cleanup = () => procMounts.release();
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
              procMounts.ensure(target.root);
            } catch (err) {
              availability[target.id].cpython = `failed: ${err.message}`;
              supported.splice(supported.indexOf('cpython'), 1);
              log(`cpython on ${target.id}: ${err.message}`);
            }
          }
          for (const workload of workloads.filter((w) => !target.workloads || target.workloads.includes(w.id))) {
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
            // The threads workload as `record` runs by default, without --idle: idle threads found and left out (issue 22).
            if (workload.kind === 'threads' && usable.includes('pyspy-node')) plan.push({ id: 'pyspy-node', mode: 'nonblocking', rate: tools['pyspy-node'].maxRate, kind: 'max', noIdle: true });
            // 100 Hz over a longer window: at 100 Hz a short one holds too few samples (issue 22). Its
            // window starts 15 s in: Node's heap is trimmed by a few garbage collections some 8-14 s
            // after start-up (about 40 ms of CPU once), which a 100 Hz window would count as sampling.
            // Once per target (the first repetition): it takes 25 s.
            if (workload.long100 && !target.maxOnly && rep === 0 && usable.includes('pyspy-node')) {
              plan.push({ id: 'pyspy-node', mode: 'nonblocking', rate: 100, kind: 'long', seconds: opts.smoke ? 3 : 25, warmSeconds: opts.smoke ? 0.2 : 15 });
            }
            if (workload.slowdown && !target.maxOnly) {
              for (const rate of FIXED_RATES) for (const id of usable) for (const mode of MODES) plan.push({ id, mode, rate, kind: 'fixed' });
            }
            // Rotate the order from one repetition to the next, so drift does not favour one tool.
            const rotated = plan.map((_, i) => plan[(i + rep * 3) % plan.length]);
            let before = await t.baseline(opts.baseline);
            baselines.push({ target: target.id, workload: workload.id, rep, rate: before });
            for (const p of rotated) {
              const r = await measureRecord(tools[p.id], target, t, workload, p.mode, p.rate, p.seconds ?? opts.duration, work, p);
              const after = await t.baseline(opts.baseline);
              baselines.push({ target: target.id, workload: workload.id, rep, rate: after });
              r.rep = rep;
              r.kind = p.kind;
              r.baselineRate = median([before, after]);
              if (r.status === 'ok' && r.targetRate && r.baselineRate) r.slowdownPct = 100 * (r.baselineRate / r.targetRate - 1);
              runs.push(r);
              if (r.status.startsWith('unsupported')) availability[target.id][p.id] = r.status;
              log(`  ${p.id.padEnd(10)} ${(p.mode + (p.procMem ? '+mem' : '') + (p.noIdle ? '-idle' : '') + (p.kind === 'long' ? '+long' : '')).padEnd(16)} ${String(p.rate).padStart(7)} Hz: ${r.status === 'ok' ? summarize(r) : r.status}`);
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

  // What one bare timed sleep and wake-up costs here: the 100 Hz figure is read against it (issue 22).
  log('--- wake-up floor (bench/wake_floor.c)');
  const wake = measureWakeFloor({ cacheDir: CACHE, seconds: opts.smoke ? 1 : 3, log });

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
    const modern = targets.filter((t) => /^3\.(1[1-9])\./.test(t.version) && !t.maxOnly);
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
      pyspyNode: `${JSON.parse(fs.readFileSync(path.join(ROOT, 'packages', 'pyspy-node', 'package.json'), 'utf8')).version} (${gitRevision(ROOT) ?? 'no git'})`,
      pySpy: pyspy.version ?? null,
      targets: targets.map((t) => ({ id: t.id, version: t.version, kind: t.kind })),
    },
    notes: [...notes, ...(cutNote ? [cutNote] : [])],
    availability,
    summary: summarizeAll(targets, workloads, opts.tools, runs, dumps, availability, floors),
    wake,
    hostWide,
    asyncio,
    runs,
    dumps,
    baselines,
    floors,
  };
  fs.mkdirSync(opts.out, { recursive: true });
  fs.writeFileSync(path.join(opts.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  fs.writeFileSync(path.join(opts.out, 'RESULTS.md'), renderMarkdown(results, targets, workloads, { pyspyVersion: PYSPY_VERSION, haveTime: HAVE_TIME, modes: MODES, fixedRates: FIXED_RATES }));
  log(`wrote ${path.relative(ROOT, path.join(opts.out, 'RESULTS.md'))} and results.json in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
let firstRepStart = 0;

function summarize(r) {
  const f = (x, d = 0) => (x === null || x === undefined ? '?' : x.toFixed(d));
  return `${f(r.samplesPerSecond)} samples/s, ${f(r.cpuUsPerSample, 1)} µs CPU/sample, err ${f(r.errorPct, 2)}%, wrong ${f(r.wrongPct, 2)}%, target ${r.slowdownPct === undefined ? '?' : `${r.slowdownPct >= 0 ? '+' : ''}${r.slowdownPct.toFixed(1)}%`} slower, RSS ${f((r.maxRssKiB ?? NaN) / 1024, 1)} MB`;
}

await main();
