/**
 * `top`: the live aggregation behind `pyspy-node top`, as an async iterator
 * of snapshots for Node code (a dashboard, a test, a log line).
 *
 * @module
 */
import { loadBinding } from './binding.js';
import { PyspyError } from './errors.js';
import type { RecordBinding, RecordHooks } from './recording.js';
import {
  TOP_SORT_KEYS,
  TopAggregator,
  type TopFigures,
  type TopRow,
  type TopSortKey,
  type TopView,
} from './top/aggregate.js';
import { TopFeed, type FeedOptions } from './top/feed.js';

export type { TopRow, TopSortKey };

/**
 * Options for {@link top}: the target and sampling options of
 * {@link sample} (without `threads`, `function` and `nolineno`), plus how to
 * present the rows.
 */
export interface TopOptions extends FeedOptions, TopView {
  /** Milliseconds between snapshots. @default 1000 */
  interval?: number;
}

/**
 * What {@link top} yields once per interval: py-spy `top`'s header figures
 * and table. Percentages are of the latest interval; times and `samples`
 * add up since the start.
 */
export interface TopSnapshot extends TopFigures {
  /** The target's pid (the launched command's, when launching). */
  pid: number;
  /** The target's Python version, e.g. `3.12.1`. */
  pythonVersion: string;
}

/**
 * Samples a Python program and yields a {@link TopSnapshot} every `interval`
 * milliseconds: per function (or per line, with `lines: true`), the share of
 * the latest interval spent in it (`ownPct`) and in it or what it called
 * (`totalPct`), and the seconds spent so far (`ownTime`, `totalTime`).
 *
 * Nothing starts until the first `next()`. The iteration ends when the
 * target exits (after a last snapshot) or `signal` aborts; leaving a
 * `for await` loop early stops sampling (a launched command is then sent
 * SIGTERM). Always iterate to the end or call `return()`.
 *
 * @param options The target (`pid` or `command`), how to sample and how to present rows; see {@link TopOptions}.
 * @returns An async iterator of snapshots.
 * @throws {@link PyspyError} from `next()`, with the codes of {@link record}
 * (`EINVAL` also for a bad `sort` or `limit`).
 * @example
 * import { top } from 'pyspy-node';
 * for await (const snap of top({ pid: 4242, limit: 5 })) {
 *   console.log(snap.rows.map((r) => `${r.function} ${r.ownPct.toFixed(1)}%`).join(', '));
 * }
 */
export function top(options: TopOptions): AsyncIterableIterator<TopSnapshot> {
  return topWith(() => loadBinding(), options);
}

/**
 * {@link top} with the binding (loaded on the first `next()`) and hooks passed in, for tests.
 *
 * @internal
 */
export function topWith(binding: () => RecordBinding, options: TopOptions, hooks: RecordHooks = {}): AsyncIterableIterator<TopSnapshot> {
  return new SnapshotIterator(binding, options, hooks);
}

class SnapshotIterator implements AsyncIterableIterator<TopSnapshot> {
  readonly #feed: TopFeed;
  readonly #aggregator: TopAggregator;
  readonly #view: TopView;
  #invalid: PyspyError | undefined;

  constructor(binding: () => RecordBinding, options: TopOptions, hooks: RecordHooks) {
    this.#invalid = checkView(options);
    const { lines, sort, ascending, limit, ...feedOptions } = options;
    this.#view = { lines, sort, ascending, limit };
    this.#aggregator = new TopAggregator({ fullFilenames: options.fullFilenames, rate: options.rate });
    this.#feed = new TopFeed(binding, feedOptions, hooks);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<TopSnapshot, undefined>> {
    if (this.#invalid) {
      const error = this.#invalid;
      this.#invalid = undefined;
      await this.#feed.return();
      throw error;
    }
    const result = await this.#feed.next();
    if (result.done) return result;
    this.#aggregator.add(result.value.batch, result.value.info);
    const target = this.#feed.target ?? { pid: 0, pythonVersion: '' };
    return { done: false, value: { pid: target.pid, pythonVersion: target.pythonVersion, ...this.#aggregator.figures(this.#view) } };
  }

  return(): Promise<IteratorReturnResult<undefined>> {
    return this.#feed.return();
  }
}

function checkView(view: TopView): PyspyError | undefined {
  if (view.sort !== undefined && !TOP_SORT_KEYS.includes(view.sort)) {
    return new PyspyError('EINVAL', `sort must be one of ${TOP_SORT_KEYS.join(', ')}, got ${String(view.sort)}`);
  }
  if (view.limit !== undefined && !(Number.isInteger(view.limit) && view.limit >= 0)) {
    return new PyspyError('EINVAL', `limit must be an integer of at least 0, got ${String(view.limit)}`);
  }
  return undefined;
}
