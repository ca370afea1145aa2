// The cost of `record --asyncio` (issue 14): CPU per sampling tick on the
// asyncio fixture service (test/fixtures/asyncio_service.py with
// --extra-tasks, ~100 tasks; one task computes forever, the rest wait),
// pyspy-node without --asyncio, with it, and with --asyncio --idle, next to
// CPython 3.15's own sampler (`profiling.sampling attach --async-aware`,
// running and `--async-mode all`) on the same 3.15 target. Called by
// bench/run.mjs; runs alone too: `node bench/asyncio.mjs [--smoke]`.
//
// CPU is the profiler process's threads' schedstat over a window that
// starts after a warm-up (attach, start-up and the first full reads are not
// counted) and ends before it is stopped, divided by the ticks in the window
// (rate × window: both tools keep their schedule on this load; the achieved
// rate is reported next to it from their own sample counts).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(HERE);
const CLI = path.join(REPO, 'packages', 'pyspy-node', 'bin', 'pyspy-node.js');
const FIXTURE = path.join(REPO, 'test', 'fixtures', 'asyncio_service.py');
const RATE = 100;
/** The fixture has 14 tasks of its own; this many more make ~100. */
const EXTRA_TASKS = 86;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU of `pid`'s threads (only those named `thread`, when given), in ns. */
function cpuNs(pid, thread) {
  let sum = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        if (thread && fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== thread) continue;
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

/** How to run a matrix interpreter's Python without a chroot: its root's loader and libraries. */
function pythonArgv(interp) {
  if (!interp.root) return interp.argv;
  const root = interp.root;
  const minor = interp.version.split('.').slice(0, 2).join('.');
  return [
    path.join(root, 'usr/lib64/ld-linux-x86-64.so.2'),
    '--library-path',
    `${root}/usr/lib/x86_64-linux-gnu:${root}/lib/x86_64-linux-gnu`,
    path.join(root, 'usr/bin', `python${minor}`),
  ];
}

function pythonEnv(interp) {
  return { PATH: process.env.PATH, LC_ALL: 'C', ...(interp.root ? { PYTHONHOME: path.join(interp.root, 'usr') } : {}) };
}

/** Starts the fixture with ~100 tasks; resolves with its pid once READY. */
async function startFixture(interp, dir) {
  const argv = pythonArgv(interp);
  const report = path.join(dir, `report-${interp.id}.json`);
  const child = spawn(argv[0], [...argv.slice(1), FIXTURE, '--report', report, '--extra-tasks', String(EXTRA_TASKS), '--lifetime', '600'], {
    env: pythonEnv(interp),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${interp.id}: the fixture printed no READY in 60 s`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${interp.id}: the fixture exited (${code}) before READY`)));
  });
  await sleep(500); // the extra tasks park
  return child;
}

/**
 * Runs `argv` for `warm + seconds`, measures its CPU over the last
 * `seconds`, stops it with SIGINT and returns its CPU and output.
 */
async function measure(argv, env, warm, seconds) {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d) => (text += d));
  child.stderr.on('data', (d) => (text += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await sleep(warm * 1000);
  const a = cpuNs(child.pid);
  const sa = cpuNs(child.pid, 'pyspy-sampler');
  const t0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const b = cpuNs(child.pid);
  const sb = cpuNs(child.pid, 'pyspy-sampler');
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
  if (a === null || b === null) throw new Error(`${argv.join(' ')} ended early:\n${text.slice(-400)}`);
  return { cpuNs: b - a, samplerNs: sb - sa, wall, text };
}

/**
 * Measures each configuration on each target: `targets` are matrix
 * interpreters (3.11+; CPython's sampler runs only on the 3.15 one).
 */
export async function measureAsyncio({ targets, seconds = 10, warm = 3, log = console.log }) {
  const rows = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyspy-bench-asyncio-'));
  try {
    for (const interp of targets) {
      const fixture = await startFixture(interp, dir);
      const pid = fixture.pid;
      try {
        const configs = [
          ['pyspy-node', []],
          ['pyspy-node --asyncio', ['--asyncio']],
          ['pyspy-node --asyncio --idle', ['--asyncio', '--idle']],
        ].map(([name, extra]) => ({
          name,
          argv: [process.execPath, CLI, 'record', '-p', String(pid), '-r', String(RATE), '-f', 'raw', '-o', path.join(dir, 'out.txt'), '--hideprogress', ...extra],
          env: process.env,
          samples: (t) => Number(/Samples: (\d+)/.exec(t)?.[1] ?? NaN),
        }));
        if (/^3\.(1[5-9])/.test(interp.version)) {
          const py = pythonArgv(interp);
          for (const [name, extra] of [
            ['CPython --async-aware', []],
            ['CPython --async-aware --async-mode all', ['--async-mode', 'all']],
          ]) {
            configs.push({
              name,
              argv: [...py, '-m', 'profiling.sampling', 'attach', '-r', String(RATE), '--async-aware', ...extra, '--collapsed', '-o', path.join(dir, 'cpython.txt'), String(pid)],
              env: pythonEnv(interp),
              samples: (t) => Number(/Captured (\d+) samples?/.exec(t)?.[1] ?? NaN),
            });
          }
        }
        for (const c of configs) {
          log(`asyncio: ${interp.id} ${c.name}`);
          try {
            const m = await measure(c.argv, c.env, warm, seconds);
            const ticks = RATE * m.wall;
            rows.push({
              target: interp.id,
              version: interp.version,
              config: c.name,
              cpuPct: (100 * m.cpuNs) / 1e9 / m.wall,
              usPerTick: m.cpuNs / 1e3 / ticks,
              // pyspy-node's sampling thread alone (Node's own threads left out).
              samplerUsPerTick: c.name.startsWith('pyspy-node') ? m.samplerNs / 1e3 / ticks : null,
              samples: c.samples(m.text),
            });
          } catch (err) {
            rows.push({ target: interp.id, version: interp.version, config: c.name, error: err.message.split('\n')[0] });
          }
        }
      } finally {
        fixture.kill('SIGKILL');
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { rate: RATE, tasks: 14 + EXTRA_TASKS, seconds, rows };
}

/** The results as Markdown lines for RESULTS.md. */
export function renderAsyncio(res) {
  if (!res) return [];
  if (res.error) return ['## asyncio (`record --asyncio`)', '', `Not measured: ${res.error}`, ''];
  const f = (v, d) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '—');
  const lines = [
    '## asyncio (`record --asyncio`)',
    '',
    `The asyncio fixture service with ${res.tasks} tasks (one computing, the rest waiting), ${res.rate} Hz, CPU of the profiler over ${res.seconds} s after a warm-up.`,
    '',
    '| target | profiler | CPU % of a core | µs CPU per tick | of which the sampling thread | samples (whole run) |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const r of res.rows) {
    lines.push(
      r.error
        ? `| ${r.target} | ${r.config} | failed: ${r.error} | | | |`
        : `| ${r.target} | ${r.config} | ${f(r.cpuPct, 2)} | ${f(r.usPerTick, 1)} | ${f(r.samplerUsPerTick, 1)} | ${f(r.samples, 0)} |`,
    );
  }
  lines.push('');
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const smoke = process.argv.includes('--smoke');
  const matrix = JSON.parse(fs.readFileSync(path.join(REPO, '.cache', 'pythons', 'matrix.json'), 'utf8'));
  const pick = (id) => matrix.find((i) => i.id === id && i.supported);
  const targets = ['debian-3.11', 'debian-3.15'].map(pick).filter(Boolean);
  const res = await measureAsyncio({ targets, seconds: smoke ? 3 : 10, warm: smoke ? 2 : 3 });
  console.log(renderAsyncio(res).join('\n'));
  console.log(JSON.stringify(res, null, 2));
}
