// The arithmetic of `top` (src/top/aggregate.ts): own and total samples per
// function and per line, latest-interval percentages, accumulated times,
// reset and sorting.
import { describe, expect, it } from 'vitest';

import type { Batch, Stack, StackFrame } from '../src/stacks.js';
import { sortRows, TopAggregator, type IntervalInfo, type TopRow } from '../src/top/aggregate.js';

function frame(name: string, line: number, firstLine = line, file = 'app.py'): StackFrame {
  return { name, filename: `/srv/app/${file}`, shortFilename: file, line, firstLine };
}

const MODULE = frame('<module>', 40, 1);
const MAIN = frame('main', 30, 28);

function stack(frames: StackFrame[], count: number, threadId = 1): Stack {
  return { pid: 7, threadId, osThreadId: 7, threadName: 'MainThread', interpreterId: 0, frames, count };
}

function batch(stacks: Stack[], errors = 0): Batch {
  return { samples: stacks.reduce((n, s) => n + s.count, 0), errors, stacks };
}

function info(attempts: number, elapsedMs = attempts * 10, extra: Partial<IntervalInfo> = {}): IntervalInfo {
  return { attempts, elapsedMs, gil: null, active: null, threads: 1, ...extra };
}

function row(rows: TopRow[], name: string, line?: number): TopRow {
  const found = rows.find((r) => r.function === name && (line === undefined || r.line === line));
  if (!found) throw new Error(`no row ${name}${line === undefined ? '' : `:${line}`} in ${JSON.stringify(rows)}`);
  return found;
}

describe('TopAggregator', () => {
  it('counts the leaf as own time and every frame once as total time', () => {
    const agg = new TopAggregator();
    agg.add(
      batch([stack([MODULE, MAIN, frame('spin', 10, 8)], 30), stack([MODULE, MAIN, frame('wait', 20, 18)], 10)]),
      info(40, 400),
    );
    const { rows, samples, attempts, elapsedMs, intervalSamples, rate } = agg.figures();
    expect({ samples, attempts, elapsedMs, intervalSamples, rate }).toEqual({
      samples: 40,
      attempts: 40,
      elapsedMs: 400,
      intervalSamples: 40,
      rate: 100,
    });
    expect(row(rows, 'spin')).toMatchObject({ ownPct: 75, totalPct: 75, file: 'app.py', line: 8 });
    expect(row(rows, 'spin').ownTime).toBeCloseTo(0.3);
    expect(row(rows, 'wait')).toMatchObject({ ownPct: 25, totalPct: 25 });
    expect(row(rows, 'main')).toMatchObject({ ownPct: 0, totalPct: 100, ownTime: 0 });
    expect(row(rows, 'main').totalTime).toBeCloseTo(0.4);
    expect(rows.map((r) => r.function)).toEqual(['spin', 'wait', '<module>', 'main']);
  });

  it('counts a recursive function once per stack in its total', () => {
    const agg = new TopAggregator();
    const fib = frame('fib', 5, 3);
    agg.add(batch([stack([MODULE, fib, fib, fib], 10)]), info(10));
    expect(row(agg.figures().rows, 'fib')).toMatchObject({ ownPct: 100, totalPct: 100 });
    expect(row(agg.figures().rows, 'fib').totalTime).toBeCloseTo(0.1);
  });

  it('keeps lines apart by line and merges them by function, keyed by the first line', () => {
    const agg = new TopAggregator();
    agg.add(batch([stack([MODULE, frame('spin', 10, 8)], 6), stack([MODULE, frame('spin', 11, 8)], 4)]), info(10));
    const byFunction = agg.figures().rows.filter((r) => r.function === 'spin');
    expect(byFunction).toEqual([expect.objectContaining({ line: 8, ownPct: 100, totalPct: 100 })]);
    const byLine = agg.figures({ lines: true }).rows.filter((r) => r.function === 'spin');
    expect(byLine.map((r) => [r.line, r.ownPct])).toEqual([
      [10, 60],
      [11, 40],
    ]);
  });

  it('keeps two functions of the same name in one file apart', () => {
    const agg = new TopAggregator();
    agg.add(batch([stack([frame('run', 5, 3)], 1), stack([frame('run', 50, 48)], 1)]), info(2));
    expect(agg.figures().rows.map((r) => r.line).sort()).toEqual([3, 48]);
  });

  it('gives percentages of the latest interval and times since the start', () => {
    const agg = new TopAggregator();
    const spin = frame('spin', 10, 8);
    const wait = frame('wait', 20, 18);
    agg.add(batch([stack([spin], 30)]), info(30));
    agg.add(batch([stack([wait], 10)]), info(10));
    const { rows, samples } = agg.figures();
    expect(samples).toBe(40);
    expect(row(rows, 'spin')).toMatchObject({ ownPct: 0, totalPct: 0 });
    expect(row(rows, 'spin').ownTime).toBeCloseTo(0.3);
    expect(row(rows, 'wait')).toMatchObject({ ownPct: 100 });
    // Sorted by own time by default: spin has more of it.
    expect(rows[0]!.function).toBe('spin');
  });

  it('weighs each sample by the interval it came from', () => {
    const agg = new TopAggregator();
    // 50 attempts over 1 s: one sample stands for 20 ms.
    agg.add(batch([stack([frame('spin', 1)], 50)]), info(50, 1000));
    expect(row(agg.figures().rows, 'spin').ownTime).toBeCloseTo(1);
    expect(agg.figures().rate).toBeCloseTo(50);
  });

  it('falls back to the requested rate and to the samples when attempts are unknown', () => {
    const agg = new TopAggregator({ rate: 50 });
    agg.add(batch([stack([frame('a', 1)], 3), stack([frame('b', 2)], 1)]), info(0, 0));
    const rows = agg.figures().rows;
    expect(row(rows, 'a').ownPct).toBe(75);
    expect(row(rows, 'a').ownTime).toBeCloseTo(0.06);
  });

  it('turns GIL and active counts into percentages of the attempts, and keeps unknowns null', () => {
    const agg = new TopAggregator();
    agg.add(batch([stack([frame('a', 1)], 5)], 2), info(10, 100, { gil: 4, active: 15, threads: 2 }));
    expect(agg.figures()).toMatchObject({ gil: 40, active: 150, threads: 2, errorPct: 20, errors: 2 });
    agg.add(batch([]), info(10));
    expect(agg.figures()).toMatchObject({ gil: null, active: null, threads: 1 });
    expect(new TopAggregator().figures()).toMatchObject({ samples: 0, gil: null, active: null, threads: 0, rows: [] });
  });

  it('replaces the GIL figures by the attached share when no attempt found a GIL', () => {
    const agg = new TopAggregator();
    agg.add(batch([stack([frame('a', 1)], 40)]), info(10, 100, { gil: 0, gilWait: 0, gilFree: 10, attached: 9, active: 40 }));
    expect(agg.figures()).toMatchObject({ gil: null, gilWait: null, attached: 90, active: 400 });
    // A build with a GIL (or PYTHON_GIL=1): GIL figures, no attached share.
    agg.add(batch([stack([frame('a', 1)], 20)]), info(10, 100, { gil: 10, gilWait: 10, gilFree: 0, attached: 0, active: 20 }));
    expect(agg.figures()).toMatchObject({ gil: 100, gilWait: 100, attached: null });
    // Processes with and without a GIL in one interval: both, of all attempts.
    agg.add(batch([]), info(10, 100, { gil: 2, gilWait: 0, gilFree: 5, attached: 5, active: 7 }));
    expect(agg.figures()).toMatchObject({ gil: 20, gilWait: 0, attached: 50 });
    expect(new TopAggregator().figures()).toMatchObject({ attached: null });
  });

  it('labels rows with full filenames when asked', () => {
    const agg = new TopAggregator({ fullFilenames: true });
    agg.add(batch([stack([frame('a', 1)], 1)]), info(1));
    expect(agg.figures().rows[0]!.file).toBe('/srv/app/app.py');
  });

  it('forgets everything on reset', () => {
    const agg = new TopAggregator();
    agg.add(batch([stack([frame('a', 1)], 5)], 1), info(6));
    agg.reset();
    expect(agg.figures()).toMatchObject({ samples: 0, errors: 0, attempts: 0, elapsedMs: 0, rows: [] });
    agg.add(batch([stack([frame('b', 1)], 2)]), info(2));
    expect(agg.figures().rows.map((r) => [r.function, r.ownPct])).toEqual([['b', 100]]);
  });

  it('limits the rows after sorting', () => {
    const agg = new TopAggregator();
    agg.add(batch([stack([frame('a', 1)], 1), stack([frame('b', 2)], 5), stack([frame('c', 3)], 3)]), info(9));
    expect(agg.figures({ limit: 2 }).rows.map((r) => r.function)).toEqual(['b', 'c']);
    expect(agg.figures({ limit: 0 }).rows).toEqual([]);
  });
});

describe('sortRows', () => {
  const rows = (): TopRow[] => [
    { function: 'a', file: 'x.py', line: 1, ownPct: 10, totalPct: 90, ownTime: 5, totalTime: 9 },
    { function: 'b', file: 'x.py', line: 2, ownPct: 30, totalPct: 30, ownTime: 2, totalTime: 2 },
    { function: 'c', file: 'x.py', line: 3, ownPct: 20, totalPct: 20, ownTime: 2, totalTime: 3 },
  ];

  it('sorts by each column, largest first, or smallest first', () => {
    const names = (key: Parameters<typeof sortRows>[1], ascending = false) =>
      sortRows(rows(), key, ascending).map((r) => r.function);
    expect(names('ownPct')).toEqual(['b', 'c', 'a']);
    expect(names('totalPct')).toEqual(['a', 'b', 'c']);
    expect(names('ownTime')).toEqual(['a', 'b', 'c']); // b and c tie: by name
    expect(names('totalTime')).toEqual(['a', 'c', 'b']);
    expect(names('ownPct', true)).toEqual(['a', 'c', 'b']);
  });
});
