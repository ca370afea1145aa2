/**
 * Where `top`'s numbers come from: {@link sampleWith}'s batches, each paired
 * with what the recorder's `progress()` said when it was taken (attempts and
 * elapsed time of the interval), plus the target's identity and how the
 * recording finished.
 *
 * @module
 * @internal
 */
import type { BindingFinish, BindingProgress, BindingRecorder, BindingStacks } from '../../binding/binding.cjs';
import type { RecordBinding, RecordHooks } from '../recording.js';
import { sampleWith, type SampleOptions } from '../sample.js';
import type { Batch } from '../stacks.js';
import type { IntervalInfo } from './aggregate.js';

/** One interval: its stacks and what they do not say by themselves. */
export interface FeedItem {
  batch: Batch;
  info: IntervalInfo;
  /** How far behind schedule sampling was when the batch was taken, in milliseconds. */
  latenessMs: number;
}

/** Options of a {@link TopFeed}: {@link SampleOptions} without the labelling ones `top` fixes. */
export type FeedOptions = Omit<SampleOptions, 'threads' | 'function' | 'nolineno'>;

/** Called when the target is attached (or launched) and sampling has begun. */
export type OnStarted = (target: { pid: number; pythonVersion: string }) => void;

/**
 * Batches of {@link sampleWith} with their {@link IntervalInfo}. Ends, like
 * it, when the target exits or `options.signal` aborts; `return()` stops
 * sampling.
 */
export class TopFeed implements AsyncIterableIterator<FeedItem> {
  readonly #batches: AsyncIterableIterator<Batch>;
  readonly #options: FeedOptions;
  #target: { pid: number; pythonVersion: string } | undefined;
  #finish: BindingFinish | undefined;
  /** `progress()` right after the latest `takeBatch()`: the batch being yielded. */
  #taken: BindingProgress | undefined;
  #counts: BindingStacks | null = null;
  #previous: BindingProgress | undefined;

  /**
   * @param binding The native binding (loaded on the first `next()`).
   * @param options The target and how to sample.
   * @param hooks How a launched command is ended (see {@link RecordHooks}), and `onStarted`.
   */
  constructor(binding: () => RecordBinding, options: FeedOptions, hooks: RecordHooks & { onStarted?: OnStarted } = {}) {
    this.#options = options;
    const { onStarted, ...recordHooks } = hooks;
    const tapped = (): RecordBinding => {
      const inner = binding();
      return {
        startRecorder: async (bindingOptions) => {
          const started = await inner.startRecorder(bindingOptions);
          if (typeof (started as { code?: unknown }).code === 'string') return started;
          const recorder = started as BindingRecorder;
          this.#target = { pid: recorder.pid, pythonVersion: recorder.pythonVersion };
          onStarted?.(this.#target);
          return this.#tap(recorder);
        },
      };
    };
    this.#batches = sampleWith(tapped, { ...options, threads: false, function: false, nolineno: false }, recordHooks);
  }

  /** The target's pid and Python version, once started. */
  get target(): { pid: number; pythonVersion: string } | undefined {
    return this.#target;
  }

  /** How the recording finished, once it has (after the iteration's end). */
  get finish(): BindingFinish | undefined {
    return this.#finish;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<FeedItem, undefined>> {
    const result = await this.#batches.next();
    if (result.done) return result;
    const batch = result.value;
    const progress = this.#taken;
    this.#taken = undefined;
    return { done: false, value: { batch, info: this.#info(batch, progress), latenessMs: progress?.latenessMs ?? 0 } };
  }

  async return(): Promise<IteratorReturnResult<undefined>> {
    await this.#batches.return?.();
    return { done: true, value: undefined };
  }

  /**
   * Wraps the recorder so that each `takeBatch()` is paired with a
   * `progress()` read right after it, and `finish()`'s summary is kept.
   * `sampleWith` owns the recorder's life; this only watches it.
   */
  #tap(recorder: BindingRecorder): BindingRecorder {
    return new Proxy(recorder, {
      get: (target, prop) => {
        if (prop === 'takeBatch') {
          return (): BindingStacks | null => {
            const batch = target.takeBatch();
            this.#taken = target.progress();
            this.#counts = batch;
            return batch;
          };
        }
        if (prop === 'finish') {
          return async () => {
            const result = await target.finish();
            this.#finish = result.finish;
            return result;
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  #info(batch: Batch, progress: BindingProgress | undefined): IntervalInfo {
    const counts = this.#counts;
    this.#counts = null;
    if (typeof counts?.attempts === 'number' && typeof counts.elapsedMs === 'number') {
      // The binding counts each batch's attempts, GIL holders and active
      // threads itself, whatever the filters: exact shares in every mode.
      return {
        attempts: counts.attempts,
        elapsedMs: counts.elapsedMs,
        gil: counts.gilSamples ?? null,
        gilFree: counts.gilFreeSamples ?? 0,
        attached: counts.attachedSamples ?? 0,
        active: counts.activeSamples ?? null,
        gilWait: counts.gilWaitSamples ?? null,
        threads: counts.threads ?? new Set(batch.stacks.map((s) => `${s.pid}:${s.threadId}`)).size,
        processes: new Set(batch.stacks.map((s) => s.pid)).size,
      };
    }
    const previous = this.#previous;
    let attempts = 0;
    let elapsedMs = 0;
    // progress() reads zeros once the recorder has finished: no delta then.
    if (progress && progress.attempts >= (previous?.attempts ?? 0)) {
      attempts = progress.attempts - (previous?.attempts ?? 0);
      elapsedMs = Math.max(0, progress.elapsedMs - (previous?.elapsedMs ?? 0));
      this.#previous = progress;
    }
    const threads = new Set(batch.stacks.map((s) => `${s.pid}:${s.threadId}`)).size;
    const { gil = false, idle = false } = this.#options;
    // Without per-batch counts, the GIL share is known only when only GIL
    // holders are kept, and the active share only when only active threads are.
    return {
      attempts,
      elapsedMs,
      gil: gil ? batch.samples : null,
      active: !gil && !idle ? batch.samples : null,
      gilWait: null,
      threads,
      processes: new Set(batch.stacks.map((s) => s.pid)).size,
    };
  }

}
