// The three samplers as the bench runs them (pyspy-node's CLI, py-spy and
// CPython's `profiling.sampling`): how each records and dumps, how its
// summary line reads, and how its collapsed stacks are counted good or wrong.
// Used by bench/run.mjs; measuring them is run.mjs's.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(path.dirname(HERE), 'packages', 'pyspy-node', 'bin', 'pyspy-node.js');
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
export function countStacks(file, names, depth) {
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

export function makeTools(pyspy) {
  return {
    'pyspy-node': {
      id: 'pyspy-node',
      // Flat out means never sleeping: at 100 kHz a sample (~5 µs) beat the
      // 10 µs period and the loop slept ~4,000 times a second, each wake-up
      // charged to the sampler (2-3 µs a sample here). As CPython's: 1 MHz.
      maxRate: 1000000,
      availability: () => (fs.existsSync(CLI) ? null : `missing: ${CLI} (run npm run setup)`),
      // noIdle: the threads workload without --idle, as `record` runs by default (idle threads left out).
      record: ({ pid, rate, mode, out, workload, procMem, noIdle }) => ({
        argv: [process.execPath, CLI, 'record', '--pid', String(pid), '--rate', String(rate), '--format', 'raw', '--output', out.host,
          ...(mode === 'nonblocking' ? ['--nonblocking'] : []), ...(workload.kind === 'threads' && !noIdle ? ['--idle'] : [])],
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
      availability: (target) => {
        if (pyspy.error) return `missing: ${pyspy.error}`;
        // Seen on the 3.13t build: \`py-spy dump\` fails with "failed to get gil_thread_id: Bad address".
        if (target.kind === 'freethreaded') return `n/a: py-spy ${pyspy.version} does not read free-threaded builds (its dump fails: "failed to get gil_thread_id")`;
        return null;
      },
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
