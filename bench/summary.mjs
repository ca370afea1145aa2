// The medians of every run, per target × workload × tool: one entry per
// run kind (`nonblocking@max`, `default@1000`, ...), the dump latencies, and
// the read floor with pyspy-node's CPU per sample as a ratio to it. What
// RESULTS.md and bench/issue22.mjs read; computed from the raw runs only.
import { FLOOR_FIELDS } from './floor.mjs';
import { median } from './stats.mjs';

const METRICS = ['samplesPerSecond', 'cpuUsPerSample', 'totalCpuUsPerSample', 'cpuShare', 'errorPct', 'wrongPct', 'slowdownPct', 'maxRssKiB', 'startupMs', 'targetRate', 'baselineRate'];

/** `nonblocking@max`, `default@1000`, ...; `+procmem` for reads through /proc/PID/mem, `+noidle` for the threads workload without --idle, `+long` for the longer window. */
function runKey(r) {
  return `${r.mode}@${r.kind === 'max' ? 'max' : r.rate}${r.procMem ? '+procmem' : ''}${r.noIdle ? '+noidle' : ''}${r.kind === 'long' ? '+long' : ''}`;
}

export function summarizeAll(targets, workloads, toolIds, runs, dumps, availability, floors) {
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


