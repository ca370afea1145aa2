/**
 * `profileContinuously`: push a process, a launched command or every Python
 * on the host to Grafana Pyroscope until stopped, with a handle to watch
 * and stop it. Unlike {@link record} with `push`, nothing is kept for a
 * local profile: memory stays flat however long it runs.
 *
 * @module
 */
import { EventEmitter } from 'node:events';

import { loadBinding } from './binding.js';
import { PyspyError } from './errors.js';
import type { StopReason } from './profile.js';
import type { PushOptions, PushStats } from './push.js';
import { recordWith, type RecordOptions } from './record.js';
import type { RecordBinding } from './recording.js';

/**
 * Options for {@link profileContinuously}: what to sample (one of `pid`,
 * `command`, `allPythons`), how (as {@link record}), and where to push.
 */
export interface ContinuousOptions
  extends Omit<RecordOptions, 'push' | 'onProgress'>,
    Omit<PushOptions, 'url' | 'onWarning'> {
  /** The Pyroscope server: `http[s]://[user:password@]host[:port][/prefix]`. */
  server: string;
}

/** How a continuous profile ended; {@link ContinuousProfiler.done} resolves with it. */
export interface ContinuousSummary {
  /** Why sampling ended: `stopped` (stop() or the signal), `duration`, or `exited` (the target). */
  reason: StopReason;
  /** Stack samples taken (summed over threads and, host-wide, processes). */
  samples: number;
  /** Sampling attempts that failed. */
  errors: number;
  /** Milliseconds sampling ran. */
  durationMs: number;
  /** The final pushing counts (the last window included). */
  push: PushStats;
}

/** The events of a {@link ContinuousProfiler}. */
export interface ContinuousEvents {
  /** The server accepted one or more windows since the last event; the counts so far. */
  pushed: [stats: PushStats];
  /**
   * A kind of push failure began (server down, HTTP 5xx, refused windows,
   * queue full): one event per kind, again only after a recovery. Sampling
   * goes on. Emitted only while an `error` listener is attached, so an
   * unheard failure never throws.
   */
  error: [error: PyspyError];
  /** Every warning line, recoveries (`... accepts windows again`) included. */
  warning: [line: string];
  /** Sampling and pushing have ended; same value as {@link ContinuousProfiler.done}. */
  end: [summary: ContinuousSummary];
}

const EMPTY_STATS: PushStats = { pushed: 0, bytes: 0, samples: 0, dropped: 0, failed: 0, retries: 0 };

/**
 * A running continuous profile. Stop it with {@link stop} or the `signal`
 * option; it also ends by itself when the target exits (not host-wide) or
 * `duration` runs out.
 */
export class ContinuousProfiler extends EventEmitter<ContinuousEvents> {
  /** The target's pid (the launched command's); 0 host-wide. */
  readonly pid: number;
  /** The target's Python version; empty host-wide. */
  readonly pythonVersion: string;
  /** Settles when sampling and pushing have ended; rejects only on an internal failure. */
  readonly done: Promise<ContinuousSummary>;
  #stats: PushStats = EMPTY_STATS;
  readonly #abort: AbortController;

  /** @internal */
  constructor(target: { pid: number; pythonVersion: string }, abort: AbortController, done: Promise<ContinuousSummary>) {
    super();
    this.pid = target.pid;
    this.pythonVersion = target.pythonVersion;
    this.#abort = abort;
    this.done = done;
  }

  /** The pushing counts so far (updated about every 250 ms). */
  get stats(): PushStats {
    return this.#stats;
  }

  /**
   * Stops sampling, pushes the last window (waiting up to 5 s for a
   * server that fails), and resolves with the final summary.
   */
  stop(): Promise<ContinuousSummary> {
    this.#abort.abort();
    return this.done;
  }

  /** @internal */
  update(stats: PushStats): void {
    const more = stats.pushed > this.#stats.pushed;
    this.#stats = stats;
    if (more) this.emit('pushed', stats);
  }

  /** @internal */
  warn(line: string): void {
    this.emit('warning', line);
    if (!/accepts windows again$/.test(line) && this.listenerCount('error') > 0) {
      this.emit('error', new PyspyError('EPUSH', line));
    }
  }
}

/**
 * Samples `pid`, `command` or (`allPythons`) every CPython process on the
 * machine and pushes a window to the Pyroscope `server` every `interval`
 * seconds, from native threads, until stopped. The server is contacted
 * before anything is attached: it must answer unless `retryForever`.
 *
 * @returns A started {@link ContinuousProfiler}.
 * @throws {@link PyspyError}: `EINVAL`, `EUNSUPPORTED`, `EPUSH` (server
 * unreachable or refusing, e.g. HTTP 401), and the attach codes of
 * {@link record} (`ENOPROCESS`, `ENOTPYTHON`, `EPERM`, `ELAUNCH`, ...).
 * @example
 * import { profileContinuously } from 'pyspy-node';
 * const profiler = await profileContinuously({
 *   pid: 4242, server: 'http://pyroscope:4040', appName: 'api', tags: { env: 'prod' },
 * });
 * profiler.on('error', (e) => console.warn(e.message));
 * process.once('SIGTERM', () => void profiler.stop());
 * const summary = await profiler.done;
 */
export async function profileContinuously(options: ContinuousOptions): Promise<ContinuousProfiler> {
  return profileContinuouslyWith(loadBinding(), options);
}

/**
 * {@link profileContinuously} with the binding passed in, for tests.
 *
 * @internal
 */
export async function profileContinuouslyWith(binding: RecordBinding, options: ContinuousOptions): Promise<ContinuousProfiler> {
  if (typeof options !== 'object' || options === null || typeof options.server !== 'string' || options.server === '') {
    throw new PyspyError('EINVAL', 'server must be the Pyroscope server URL, e.g. http://localhost:4040');
  }
  const { server, appName, tags, interval, token, tenant, retryForever, caFile, signal, ...sampling } = options;
  signal?.throwIfAborted();
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  signal?.addEventListener('abort', onAbort);
  // Set once started; the callbacks below may run before that.
  const handle: { profiler?: ContinuousProfiler } = {};
  const early: string[] = [];
  let started!: (target: { pid: number; pythonVersion: string }) => void;
  const startedP = new Promise<{ pid: number; pythonVersion: string }>((resolve) => (started = resolve));
  const push: PushOptions = {
    url: server,
    ...(appName !== undefined ? { appName } : {}),
    ...(tags !== undefined ? { tags } : {}),
    ...(interval !== undefined ? { interval } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(tenant !== undefined ? { tenant } : {}),
    ...(retryForever !== undefined ? { retryForever } : {}),
    ...(caFile !== undefined ? { caFile } : {}),
    onWarning: (line) => (handle.profiler ? handle.profiler.warn(line) : early.push(line)),
  };
  const recording = recordWith(binding, { ...sampling, signal: abort.signal, push }, {
    keepProfile: false,
    onStart: (target) => started(target),
    onPushStats: (stats) => handle.profiler?.update(stats),
  });
  const first = await Promise.race([startedP, recording.then(() => null)]).catch((error: unknown) => {
    signal?.removeEventListener('abort', onAbort);
    throw error;
  });
  if (first === null) {
    throw new PyspyError('EINTERNAL', 'internal error: the recording ended before it started (this is a bug in pyspy-node; please report it)');
  }
  const target = first;
  const done = recording
    .then((profile): ContinuousSummary => {
      const summary: ContinuousSummary = {
        reason: profile.reason,
        samples: profile.samples,
        errors: profile.errors,
        durationMs: profile.durationMs,
        push: profile.push ?? EMPTY_STATS,
      };
      handle.profiler?.update(summary.push);
      handle.profiler?.emit('end', summary);
      return summary;
    })
    .finally(() => signal?.removeEventListener('abort', onAbort));
  // A failure is the caller's to see through `done`; never an unhandled rejection.
  done.catch(() => undefined);
  const profiler = new ContinuousProfiler(target, abort, done);
  handle.profiler = profiler;
  // Lines from before the handle existed (e.g. retryForever's "cannot be
  // reached"), once the caller has had a turn to attach listeners.
  setImmediate(() => {
    for (const line of early.splice(0)) profiler.warn(line);
  });
  return profiler;
}
