/**
 * The arithmetic behind `top`: own and total samples per function (or per
 * line), turned into the rows of a {@link TopSnapshot}. Pure; it knows
 * nothing of terminals or of the native recorder.
 *
 * Like py-spy's `top`, the percentages describe the latest interval (what
 * the program is doing now) while the times add up since the start or the
 * last {@link TopAggregator.reset}.
 *
 * @module
 * @internal
 */
import type { Batch, StackFrame } from '../stacks.js';

/** A column of the `top` table, to sort by. */
export type TopSortKey = 'ownPct' | 'totalPct' | 'ownTime' | 'totalTime';

/** The sort keys in the order of the table's columns (keys `1`–`4`). */
export const TOP_SORT_KEYS: readonly TopSortKey[] = ['ownPct', 'totalPct', 'ownTime', 'totalTime'];

/** One function (or one line of one) in a {@link TopSnapshot}. */
export interface TopRow {
  /** Function name: `co_qualname` on 3.11+ (e.g. `Worker.run`), `co_name` before (`run`); `<module>` for module code. */
  function: string;
  /** Short (package-relative) filename, or the full one with `fullFilenames`. */
  file: string;
  /**
   * By line: the line. By function: the function's first line
   * (`co_firstlineno`), `0` when unknown.
   */
  line: number;
  /** % of the latest interval's sampling attempts that found this on top of a stack. */
  ownPct: number;
  /** % of the latest interval's sampling attempts that found this anywhere on a stack. */
  totalPct: number;
  /** Seconds spent here (on top of a stack) since the start or the last reset. */
  ownTime: number;
  /** Seconds spent here or in what it called since the start or the last reset. */
  totalTime: number;
}

/** What one interval's batch does not say by itself; see {@link TopAggregator.add}. */
export interface IntervalInfo {
  /** Sampling attempts made in the interval (failed ones included); 0 when unknown. */
  attempts: number;
  /** Milliseconds the interval covered; 0 when unknown. */
  elapsedMs: number;
  /** Attempts that found a thread holding the GIL, or `null` when unknown. */
  gil: number | null;
  /**
   * Attempts on a target running without a GIL (free-threaded, GIL disabled
   * at run time); 0 or absent when none or unknown.
   */
  gilFree?: number;
  /** Of those, attempts in which at least one thread was attached (running Python). */
  attached?: number;
  /** Thread-samples of active (running, not idle) threads, or `null` when unknown. */
  active: number | null;
  /** Thread-samples of threads waiting to take the GIL (active too), or `null` when unknown. */
  gilWait?: number | null;
  /** Python threads seen in the interval. */
  threads: number;
  /** Processes whose stacks the interval holds (several with `subprocesses`). */
  processes?: number;
}

/** The figures of a `top` view, without the target's identity. */
export interface TopFigures {
  /** Stack samples counted since the start or the last reset (summed over threads). */
  samples: number;
  /** Sampling attempts that failed since the start or the last reset. */
  errors: number;
  /** Sampling attempts made since the start or the last reset. */
  attempts: number;
  /** Milliseconds sampled since the start or the last reset. */
  elapsedMs: number;
  /** Stack samples in the latest interval. */
  intervalSamples: number;
  /** Sampling attempts per second achieved in the latest interval. */
  rate: number;
  /** % of the latest interval's attempts that failed. */
  errorPct: number;
  /**
   * % of the latest interval's attempts that found a thread holding the GIL;
   * `null` when not measured (only with the `gil` option, without per-batch
   * counts) or when the target has no GIL (a free-threaded Python with the
   * GIL disabled at run time: see `attached`).
   */
  gil: number | null;
  /**
   * Free-threaded targets running without a GIL: % of the latest interval's
   * attempts in which at least one thread was attached to the interpreter
   * (`PyThreadState._status.active`: running Python, not detached in a
   * blocking call), the GIL-free counterpart of `gil`. `null` when the target
   * has a GIL (every other build, or a free-threaded one started with
   * `PYTHON_GIL=1`).
   */
  attached: number | null;
  /**
   * Active (running, not idle) thread-samples per attempt in the latest
   * interval, in %; above 100 when several threads run at once. `null` when
   * not measured (today: with the `gil` or `idle` option).
   */
  active: number | null;
  /**
   * Thread-samples waiting to take the GIL per attempt in the latest
   * interval, in % (part of `active`); `null` when not measured.
   */
  gilWait: number | null;
  /**
   * Python threads seen in the latest interval; without the `idle` option
   * that leaves out threads that were idle all along.
   */
  threads: number;
  /** Processes sampled in the latest interval (several with `subprocesses`). */
  processes: number;
  /** The table, sorted; see {@link TopView}. */
  rows: TopRow[];
}

/** How to present the rows of a {@link TopFigures}. */
export interface TopView {
  /** Aggregate by line rather than by function. @default false */
  lines?: boolean;
  /** The column to sort by, largest first. @default 'ownTime' */
  sort?: TopSortKey;
  /** Smallest first instead. @default false */
  ascending?: boolean;
  /** At most this many rows (the first ones in sort order). @default all */
  limit?: number;
}

interface Entry {
  function: string;
  file: string;
  line: number;
  own: number;
  total: number;
  ownTime: number;
  totalTime: number;
  /** Own and total samples in the latest interval. */
  nowOwn: number;
  nowTotal: number;
  /** The interval `nowOwn`/`nowTotal` belong to; older values read as 0. */
  nowSerial: number;
}

/** Adds up batches into `top`'s rows, by function and by line at once. */
export class TopAggregator {
  readonly #fullFilenames: boolean;
  readonly #fallbackPeriod: number;
  #byFunction = new Map<string, Entry>();
  #byLine = new Map<string, Entry>();
  #samples = 0;
  #errors = 0;
  #attempts = 0;
  #elapsedMs = 0;
  #serial = 0;
  #latest: { samples: number; denominator: number; info: IntervalInfo; errors: number } | undefined;

  /**
   * @param options `fullFilenames`: label rows with full filenames;
   * `rate`: the requested sampling rate, for the time a sample stands for
   * when an interval does not say (default 100).
   */
  constructor(options: { fullFilenames?: boolean; rate?: number } = {}) {
    this.#fullFilenames = options.fullFilenames ?? false;
    this.#fallbackPeriod = 1 / (options.rate ?? 100);
  }

  /**
   * Counts one interval's stacks; they become the latest interval.
   *
   * Each stack's count goes to its leaf as own samples and, once per stack
   * (recursion counts once), to every function (or line) on it as total
   * samples. A sample stands for `elapsedMs / attempts` of the interval.
   */
  add(batch: Batch, info: IntervalInfo): void {
    const serial = ++this.#serial;
    const period =
      info.attempts > 0 && info.elapsedMs > 0 ? info.elapsedMs / 1000 / info.attempts : this.#fallbackPeriod;
    const seen = new Set<Entry>();
    for (const stack of batch.stacks) {
      const { frames, count } = stack;
      if (count <= 0 || frames.length === 0) continue;
      for (const [map, byLine] of [
        [this.#byFunction, false],
        [this.#byLine, true],
      ] as const) {
        seen.clear();
        for (let i = 0; i < frames.length; i++) {
          const entry = this.#entry(map, frames[i]!, byLine);
          if (entry.nowSerial !== serial) {
            entry.nowSerial = serial;
            entry.nowOwn = entry.nowTotal = 0;
          }
          if (i === frames.length - 1) {
            entry.own += count;
            entry.ownTime += count * period;
            entry.nowOwn += count;
          }
          if (!seen.has(entry)) {
            seen.add(entry);
            entry.total += count;
            entry.totalTime += count * period;
            entry.nowTotal += count;
          }
        }
      }
    }
    this.#samples += batch.samples;
    this.#errors += batch.errors;
    this.#attempts += info.attempts;
    this.#elapsedMs += info.elapsedMs;
    this.#latest = {
      samples: batch.samples,
      // Without a count of attempts, a share of the samples is the best guess.
      denominator: info.attempts > 0 ? info.attempts : batch.samples + batch.errors,
      info,
      errors: batch.errors,
    };
  }

  /** Forgets everything counted so far, like py-spy's `R` key. */
  reset(): void {
    this.#byFunction = new Map();
    this.#byLine = new Map();
    this.#samples = this.#errors = this.#attempts = this.#elapsedMs = 0;
    this.#latest = undefined;
    this.#serial++;
  }

  /** The figures and the table as `view` asks. */
  figures(view: TopView = {}): TopFigures {
    const latest = this.#latest;
    const pct = (n: number) => (latest && latest.denominator > 0 ? (100 * n) / latest.denominator : 0);
    const now = (e: Entry, n: number) => (e.nowSerial === this.#serial ? n : 0);
    const map = view.lines ? this.#byLine : this.#byFunction;
    const rows: TopRow[] = [...map.values()].map((e) => ({
      function: e.function,
      file: e.file,
      line: e.line,
      ownPct: pct(now(e, e.nowOwn)),
      totalPct: pct(now(e, e.nowTotal)),
      ownTime: e.ownTime,
      totalTime: e.totalTime,
    }));
    sortRows(rows, view.sort ?? 'ownTime', view.ascending ?? false);
    const info = latest?.info;
    // No GIL figures when every attempt of the interval found no GIL to hold.
    const gilFree = info?.gilFree ?? 0;
    const noGil = gilFree > 0 && gilFree >= (info?.attempts ?? 0);
    return {
      samples: this.#samples,
      errors: this.#errors,
      attempts: this.#attempts,
      elapsedMs: this.#elapsedMs,
      intervalSamples: latest?.samples ?? 0,
      rate: info && info.elapsedMs > 0 ? (1000 * info.attempts) / info.elapsedMs : 0,
      errorPct: latest ? pct(latest.errors) : 0,
      gil: info?.gil === null || info === undefined || noGil ? null : pct(info.gil),
      attached: info && gilFree > 0 ? pct(info.attached ?? 0) : null,
      active: info?.active === null || info === undefined ? null : pct(info.active),
      gilWait: info?.gilWait === null || info?.gilWait === undefined || noGil ? null : pct(info.gilWait),
      threads: info?.threads ?? 0,
      processes: info?.processes ?? 1,
      rows: view.limit === undefined ? rows : rows.slice(0, Math.max(0, view.limit)),
    };
  }

  #entry(map: Map<string, Entry>, frame: StackFrame, byLine: boolean): Entry {
    const file = this.#fullFilenames || !frame.shortFilename ? frame.filename : frame.shortFilename;
    const line = byLine ? frame.line : frame.firstLine;
    const key = `${frame.name}\0${frame.filename}\0${line}`;
    let entry = map.get(key);
    if (!entry) {
      entry = {
        function: frame.name,
        file,
        line,
        own: 0,
        total: 0,
        ownTime: 0,
        totalTime: 0,
        nowOwn: 0,
        nowTotal: 0,
        nowSerial: 0,
      };
      map.set(key, entry);
    }
    return entry;
  }
}

/**
 * Sorts `rows` in place by `key`, largest first unless `ascending`; ties go
 * by own time, then by name, file and line, so the order is stable between
 * refreshes.
 */
export function sortRows(rows: TopRow[], key: TopSortKey, ascending = false): TopRow[] {
  const sign = ascending ? -1 : 1;
  return rows.sort(
    (a, b) =>
      sign * (b[key] - a[key]) ||
      sign * (b.ownTime - a.ownTime) ||
      compareText(a.function, b.function) ||
      compareText(a.file, b.file) ||
      a.line - b.line,
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
