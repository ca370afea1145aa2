// The "Issue 22 goals" section of RESULTS.md: each "Done means" of issue 22
// as a ✅/❌ row per target (CPU per sample against the read floor, against
// CPython 3.15's sampler, with 32 idle threads against one thread, at 100 Hz
// against flat out), the wake-up floor the 100 Hz figure is read against,
// and whether every new mode (asyncio, free-threaded, /proc/PID/mem, push)
// got its own line in this run. Pure rendering; measures nothing.
import { wakeUs } from './wake.mjs';

const fmt = (v, d) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');

/** The RESULTS.md lines. `targets` are the columns. */
export function renderIssue22(res, targets) {
  const at = (t, w, tool) => res.summary.find((s) => s.target === t && s.workload === w && s.tool === tool && s.status === 'ok');
  const cpu = (t, w, key, tool = 'pyspy-node') => at(t, w, tool)?.runs[key]?.cpuUsPerSample ?? null;
  const L = ['## Issue 22 goals', ''];
  L.push('pyspy-node, CPU per sample (µs) as measured in the tables below; each row is one "Done means" of issue 22.', '');
  L.push('| goal | ' + targets.map((t) => `${t.id} (${t.version})`).join(' | ') + ' |');
  L.push('|---|' + targets.map(() => '---|').join(''));
  // cell(t) returns { value, text } for a measured goal, a string for n/a, or null when not measured.
  const goal = (label, cell, ok) => {
    const cells = targets.map((t) => {
      const c = cell(t);
      if (c === null || c === undefined) return t.maxOnly ? 'n/a (depth 42, max rate only)' : '–';
      if (typeof c === 'string') return c;
      return ok ? `${c.text} ${ok(c.value) ? '✅' : '❌'}` : c.text;
    });
    L.push(`| ${label} | ${cells.join(' | ')} |`);
  };
  const ratio = (a, b, what) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? { value: a / b, text: `${fmt(a / b, 2)}× (${what(a, b)})` } : null);

  goal(
    'depth 42, nonblocking, max rate: ≤ 2× the read floor',
    (t) => {
      const s = at(t.id, 'depth42', 'pyspy-node');
      return s?.floor?.ratio ? { value: s.floor.ratio, text: `${fmt(s.floor.ratio, 2)}× (${fmt(s.runs['nonblocking@max']?.cpuUsPerSample, 1)} / ${fmt(s.floor.floorNs / 1000, 1)} µs)` } : null;
    },
    (v) => v <= 2,
  );
  goal(
    "depth 42, nonblocking, max rate: ≥ 3× cheaper than CPython 3.15's sampler (CPython / pyspy-node)",
    (t) => {
      const theirs = res.availability[t.id]?.cpython;
      if (theirs) return theirs.startsWith('n/a') ? 'n/a (3.15 only)' : theirs.split(':')[0];
      return ratio(cpu(t.id, 'depth42', 'nonblocking@max', 'cpython'), cpu(t.id, 'depth42', 'nonblocking@max'), (a, b) => `${fmt(a, 1)} / ${fmt(b, 1)} µs`);
    },
    (v) => v >= 3,
  );
  // Both ways `record` can run: with --idle (every thread every time, as the other tools do here) and by default (idle threads left out).
  for (const [key, how] of [['nonblocking@max', '`--idle`'], ['nonblocking@max+noidle', 'without `--idle`']]) {
    goal(
      `32 idle + 1 busy threads (busy at depth 10), ${how}, nonblocking, max rate: ≤ 2× one thread at depth 10`,
      (t) => ratio(cpu(t.id, 'threads', key), cpu(t.id, 'depth10', 'nonblocking@max'), (a, b) => `${fmt(a, 1)} / ${fmt(b, 1)} µs`),
      (v) => v <= 2,
    );
  }
  goal(
    'depth 42, nonblocking: 100 Hz ≤ 2× flat out (max rate)',
    (t) => ratio(cpu(t.id, 'depth42', 'nonblocking@100+long'), cpu(t.id, 'depth42', 'nonblocking@max'), (a, b) => `${fmt(a, 1)} / ${fmt(b, 1)} µs`),
    (v) => v <= 2,
  );
  const wake100 = wakeUs(res.wake, 100);
  goal('depth 42, nonblocking: (100 Hz − wake-up floor) / flat out, for reading (no goal)', (t) => {
    const a = cpu(t.id, 'depth42', 'nonblocking@100+long');
    return wake100 === null || a === null ? null : ratio(a - wake100, cpu(t.id, 'depth42', 'nonblocking@max'), (x, b) => `${fmt(x, 1)} / ${fmt(b, 1)} µs`);
  });
  L.push('');

  const wake1k = wakeUs(res.wake, 1000);
  const late = (res.wake?.rates ?? []).filter((w) => !w.error && w.late > 0).map((w) => `${w.late} of ${w.wakes} at ${w.rateHz} Hz`).join(', ');
  if (res.wake?.error) L.push(`Wake-up floor: not measured: ${res.wake.error}`, '');
  else if (res.wake) {
    L.push(
      `Wake-up floor (\`bench/wake_floor.c\`: a bare \`clock_nanosleep\` to the next deadline, nothing else, its thread's CPU time per wake): ` +
        `${fmt(wake100, 1)} µs at 100 Hz, ${fmt(wake1k, 1)} µs at 1 kHz. Any sampler that sleeps between samples pays at least this per sample at a fixed rate.` +
        (late ? ` Wakes that came past the next deadline (a busy machine): ${late}.` : ''),
      '',
    );
  }

  // Every new mode of the other open issues, with where its line is.
  const anyCpu = (key, pred = () => true) => res.summary.some((s) => s.tool === 'pyspy-node' && s.status === 'ok' && pred(s) && typeof s.runs[key]?.cpuUsPerSample === 'number');
  const one = (tool) => res.hostWide?.rows?.find((r) => r.tool === tool && r.processes === 1 && r.status === 'ok');
  const plain = one('pyspy-node record --pid');
  const push = one('pyspy-node record --pid --push');
  const asyncioOk = res.asyncio && !res.asyncio.error && (res.asyncio.rows ?? []).some((r) => !r.error);
  const mark = (ok) => (ok ? '✅' : '❌ not measured in this run');
  L.push('Every new mode has its own line:', '');
  L.push(`- asyncio (\`record --asyncio\`): the "asyncio" section ${mark(asyncioOk)}`);
  L.push(`- free-threaded 3.13t: the \`freethreaded-3.13t\` column and its depth-42 table ${mark(anyCpu('nonblocking@max', (s) => s.target === 'freethreaded-3.13t'))}`);
  L.push(`- \`/proc/PID/mem\` reads: the "/proc/PID/mem" rows of every table ${mark(anyCpu('nonblocking@max+procmem'))}`);
  L.push(
    `- push, one process at 100 Hz (host-wide section; CPU per tick, rate × window): \`record --pid --push\` ${push ? `${fmt(push.usPerProcessSample, 1)} µs` : '–'}, ` +
      `\`record --pid\` ${plain ? `${fmt(plain.usPerProcessSample, 1)} µs` : '–'} ${mark(push && plain)}`,
  );
  L.push('');
  return L;
}
