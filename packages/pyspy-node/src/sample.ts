/**
 * `sample`: stream a Python program's stacks as per-interval batches.
 *
 * @module
 */
import type { BindingRecorder } from '../binding/binding.cjs';
import { loadBinding } from './binding.js';
import type { RecordOptions } from './record.js';
import {
  assertPositive,
  finishRecorder,
  Sleeper,
  startRecorder,
  STOP_POLL_MS,
  type RecordBinding,
  type RecordHooks,
} from './recording.js';
import { toStacks, type Batch } from './stacks.js';

/** How often the target's end is checked for within an interval. */
const DONE_POLL_MS = 100;

/**
 * Options for {@link sample}: those of {@link record} without `duration` and
 * `onProgress`, plus `interval`.
 */
export interface SampleOptions extends Omit<RecordOptions, 'duration' | 'onProgress' | 'push'> {
  /** Milliseconds each batch covers. @default 1000 */
  interval?: number;
}

/**
 * Samples a Python program and yields its stacks aggregated per `interval`,
 * as they come. Nothing starts until the first `next()`. The iteration ends
 * when the target exits or `signal` aborts (after a last, partial batch).
 * Leaving a `for await` loop early (its `return()`) stops sampling and frees
 * the native sampling thread before it resolves; a launched command is then
 * sent SIGTERM. Always iterate to the end or call `return()`.
 *
 * @param options The target (`pid` or `command`) and how to sample; see {@link SampleOptions}.
 * @returns An async iterator of {@link Batch}es, one per interval (possibly
 * with 0 samples).
 * @throws {@link PyspyError} from `next()`, with the codes {@link record}
 * uses; `next()` rejects with `signal.reason` when `signal` was already
 * aborted before the first `next()`.
 * @example
 * import { sample } from 'pyspy-node';
 * for await (const batch of sample({ pid: 4242, interval: 500 })) {
 *   const top = batch.stacks.sort((a, b) => b.count - a.count)[0];
 *   console.log(batch.samples, top?.frames.at(-1)?.name);
 *   if (done()) break; // stops sampling
 * }
 */
export function sample(options: SampleOptions): AsyncIterableIterator<Batch> {
  return sampleWith(() => loadBinding(), options);
}

/**
 * {@link sample} with the binding (loaded on the first `next()`) and hooks
 * passed in, for tests.
 *
 * @internal
 */
export function sampleWith(
  binding: () => RecordBinding,
  options: SampleOptions,
  hooks: RecordHooks = {},
): AsyncIterableIterator<Batch> {
  return new BatchIterator(binding, options, hooks);
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** The iterator {@link sample} returns; `next()` calls run one at a time. */
class BatchIterator implements AsyncIterableIterator<Batch> {
  readonly #binding: () => RecordBinding;
  readonly #options: SampleOptions;
  readonly #hooks: RecordHooks;
  readonly #sleeper = new Sleeper();
  /** The previous `next()`, settled either way: the next one waits for it. */
  #queue: Promise<unknown> = Promise.resolve();
  #recorder: BindingRecorder | undefined;
  /** Set once stopping was asked for (abort, `return()`). */
  #stopping = false;
  /** Set once the last batch was taken; the next call finishes. */
  #ending = false;
  #closing: Promise<void> | undefined;
  #done = false;
  #batchStart = 0;
  readonly #stop = () => {
    this.#stopping = true;
    this.#recorder?.stop();
    this.#sleeper.wake();
  };

  constructor(binding: () => RecordBinding, options: SampleOptions, hooks: RecordHooks) {
    this.#binding = binding;
    this.#options = options;
    this.#hooks = hooks;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Batch, undefined>> {
    const result = this.#queue.then(() => this.#next());
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async return(): Promise<IteratorReturnResult<undefined>> {
    this.#stop();
    await this.#queue;
    if (this.#recorder) await this.#close().catch(() => undefined);
    this.#done = true;
    return DONE;
  }

  async #next(): Promise<IteratorResult<Batch, undefined>> {
    if (this.#done) return DONE;
    if (!this.#recorder) {
      try {
        assertPositive('interval', this.#options.interval);
        if (this.#stopping) {
          this.#done = true; // return() came first
          return DONE;
        }
        // Only batches are read: keep no whole-run profile (top may run for days).
        this.#recorder = await startRecorder(this.#binding(), this.#options, true, false);
      } catch (error) {
        this.#done = true;
        throw error;
      }
      this.#options.signal?.addEventListener('abort', this.#stop);
      if (this.#stopping || this.#options.signal?.aborted) this.#stop();
      this.#batchStart = Date.now();
    }
    const recorder = this.#recorder;
    if (!this.#ending) {
      const interval = this.#options.interval ?? 1000;
      for (;;) {
        if (this.#stopping || recorder.isDone()) {
          this.#ending = true;
          break;
        }
        const left = this.#batchStart + interval - Date.now();
        if (left <= 0) break;
        await this.#sleeper.sleep(Math.min(left, DONE_POLL_MS));
      }
      if (this.#ending) {
        // Let sampling end before the last batch is taken, so it is complete.
        while (!recorder.isDone()) await this.#sleeper.sleep(STOP_POLL_MS);
      }
      this.#batchStart = Date.now();
      const batch = toStacks(recorder.takeBatch() ?? { samples: 0, errors: 0, stacks: [] });
      if (!this.#ending || batch.samples > 0 || batch.errors > 0) return { done: false, value: batch };
    }
    try {
      await this.#close();
    } finally {
      this.#done = true;
    }
    return DONE;
  }

  /** Stops sampling (unless it ended) and waits for `finish()`; once. */
  #close(): Promise<void> {
    this.#closing ??= (async () => {
      const recorder = this.#recorder;
      if (!recorder) return;
      this.#options.signal?.removeEventListener('abort', this.#stop);
      if (!recorder.isDone()) recorder.stop();
      this.#sleeper.wake();
      await finishRecorder(recorder, this.#options.command !== undefined, this.#hooks);
    })();
    return this.#closing;
  }
}
