/**
 * `record`: sample a Python program until it exits, a duration runs out or
 * an `AbortSignal` fires, and resolve with the {@link Profile}.
 *
 * @module
 */
import { loadBinding } from './binding.js';
import { Profile } from './profile.js';
import { fromBindingPushStats, type PushOptions } from './push.js';
import {
  finishRecorder,
  Sleeper,
  startRecorder,
  STOP_POLL_MS,
  type RecordBinding,
  type RecordHooks,
} from './recording.js';

/** How often {@link RecordOptions.onProgress} is called while recording. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * Options for {@link record}. Give exactly one of `pid` and `command`; every
 * other field is optional and follows py-spy's `record` flags.
 */
export interface RecordOptions {
  /** A running CPython process to attach to. */
  pid?: number;
  /**
   * A command to launch and profile: the program, then its arguments. It
   * inherits this process's stdin, stdout and stderr. When the recording
   * ends first (duration, abort), the command is sent SIGTERM (SIGKILL 2 s
   * later if it is still running).
   */
  command?: string[];
  /** Samples per second. @default 100 */
  rate?: number;
  /** Seconds to record; unset: until the target exits or `signal` aborts. */
  duration?: number;
  /**
   * Stops sampling when aborted; {@link record} then resolves with what was
   * collected. A signal that is already aborted makes it reject with
   * `signal.reason`, without starting anything.
   */
  signal?: AbortSignal;
  /** Only sample threads holding the GIL. @default false */
  gil?: boolean;
  /** Include idle (sleeping, blocked) threads. @default false */
  idle?: boolean;
  /** Add a root frame per thread: `thread (TID): name`. @default false */
  threads?: boolean;
  /** Label frames with the function's first line rather than the current one. @default false */
  function?: boolean;
  /** No line numbers in frame labels. Not with `function`. @default false */
  nolineno?: boolean;
  /**
   * Never pause the target and never check stacks (they may be torn).
   * By default samples are read without pausing and each stack is checked;
   * a torn one is read again, and only a target that keeps changing under
   * the reader is paused for that sample. @default false
   */
  nonblocking?: boolean;
  /** Pause every thread for every sample, as py-spy does by default. Not with `nonblocking`. @default false */
  blocking?: boolean;
  /** Keep full filenames rather than package-relative ones. @default false */
  fullFilenames?: boolean;
  /**
   * Merge native (C, C++, Cython) frames into the stacks: each interpreter
   * evaluation frame is replaced by the Python frames it runs, interpreter
   * internals are hidden, and other frames are labelled `name (file.c:line)`
   * or `name (module.so)` (Linux x86-64 and arm64). Every sample is then taken with
   * the target paused; not with `nonblocking` (`EINVAL`). @default false
   */
  native?: boolean;
  /**
   * Give samples of the thread running a garbage collection a `<GC>` leaf
   * frame (collection time shows under the code that triggered it).
   * @default true
   */
  gcFrames?: boolean;
  /**
   * Rebuild the samples of a thread running an asyncio task along its await
   * chain: root first, the event loop's frames, then for each task from the
   * root task down to the running one a `<task NAME>` frame and its
   * coroutine frames. With `idle`, every waiting task is sampled too, as its
   * own stack under its `<task NAME>` frame (wall time per waiting task).
   * pprof output labels each sample `task name` (`task_name` when pushing).
   * CPython 3.11–3.15 (`EUNSUPPORTED` before); not with `native` (`EINVAL`).
   * @default false
   */
  asyncio?: boolean;
  /**
   * Give samples of threads waiting to take the GIL a `<GIL wait>` leaf
   * frame, so GIL contention shows per function. Such threads count as
   * active (sampled without `idle`) either way. @default false
   */
  gilWaitFrames?: boolean;
  /**
   * With `command`: give it `/dev/null` for stdin, stdout and stderr instead
   * of this process's (py-spy's hidden `--capture`). @default false
   */
  captureOutput?: boolean;
  /**
   * Also sample the target's Python descendants (multiprocessing workers,
   * `subprocess` children, pre-fork workers, ones started later), each on
   * its own native thread; every stack gets `process PID:"CMD"` root frames.
   * @default false
   */
  subprocesses?: boolean;
  /**
   * Also push the samples to a Grafana Pyroscope server, one window every
   * `push.interval` seconds (the last one when the recording ends); the
   * resolved {@link Profile} still holds everything, and
   * {@link Profile.push} says what was pushed. The server is contacted
   * before the target is attached or launched: `EPUSH` if it cannot be
   * reached or refuses the credentials. See {@link PushOptions}.
   */
  push?: PushOptions;
  /**
   * Host-wide (with `push`, instead of `pid`/`command`): every CPython
   * process on the machine, found within a second of starting and dropped
   * when it exits, each its own series. Runs until `signal` aborts or
   * `duration` ends; the resolved profile holds no stacks (they went to the
   * server). @default false
   */
  allPythons?: boolean;
  /** With `allPythons`: only processes whose command line contains this text. */
  match?: string;
  /** With `allPythons`: only processes of this (real) user id. */
  uid?: number;
  /**
   * Called about every 250 ms while recording, and once more with the final
   * numbers when sampling has ended; never after {@link record} settles. If it
   * throws, sampling stops and {@link record} rejects with that error.
   */
  onProgress?: (progress: Progress) => void;
}

/** How a recording is going; see {@link RecordOptions.onProgress}. */
export interface Progress {
  /** Stack samples recorded so far (after filtering, summed over threads). */
  samples: number;
  /** Sampling attempts made. */
  attempts: number;
  /** Attempts that failed. */
  errors: number;
  /** Milliseconds since sampling began. */
  elapsedMs: number;
  /** How far behind schedule the last attempt was, in milliseconds. */
  latenessMs: number;
  /** Attempts per second achieved. */
  rate: number;
}

/**
 * Samples a Python program's stacks, `rate` times a second, off the
 * JavaScript thread, until the target exits, `duration` runs out or `signal`
 * aborts. While recording, a timer keeps Node's event loop alive.
 *
 * @param options The target (`pid` or `command`) and how to sample; see {@link RecordOptions}.
 * @returns The finished {@link Profile}; `profile.samples` may be 0.
 * @throws {@link PyspyError} with a stable `code`: `EINVAL` (bad options),
 * `EUNSUPPORTED` (the Python version, or `native` off Linux x86-64 and arm64),
 * `ENOPROCESS`, `ENOTPYTHON`, `EPERM`, `ELAUNCH` (the command could not be
 * started or exited before Python came up), `EREAD`, `EPAUSE`, `ENOBINDING`,
 * `EINTERNAL`; or `signal.reason` when `signal` was already aborted.
 * @example
 * import { record } from 'pyspy-node';
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * const profile = await record({
 *   command: ['python3', 'app.py'],
 *   signal: controller.signal,
 *   onProgress: (p) => console.error(`${p.samples} samples`),
 * });
 * await profile.writeFile('app.svg');
 */
export async function record(options: RecordOptions): Promise<Profile> {
  return recordWith(loadBinding(), options);
}

/**
 * {@link record} with the binding and hooks passed in, for the CLI and tests.
 *
 * @internal
 */
export async function recordWith(binding: RecordBinding, options: RecordOptions, hooks: RecordHooks = {}): Promise<Profile> {
  const recorder = await startRecorder(binding, options, false, hooks.keepProfile ?? true);
  const { signal, onProgress } = options;
  const sleeper = new Sleeper();
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    recorder.stop();
    sleeper.wake();
  };
  let failure: { error: unknown } | undefined;
  const warn = (lines: string[]) => {
    for (const line of lines) options.push?.onWarning?.(line);
  };
  const pollPush = () => {
    const binding = recorder.pushStats();
    if (!binding) return;
    const { stats, warnings } = fromBindingPushStats(binding);
    warn(warnings);
    hooks.onPushStats?.(stats);
  };
  const report = () => {
    if (!onProgress || failure) return;
    try {
      onProgress(recorder.progress());
    } catch (error) {
      failure = { error };
      stop();
    }
  };
  signal?.addEventListener('abort', stop);
  try {
    if (signal?.aborted) stop();
    hooks.onStart?.({ pid: recorder.pid, pythonVersion: recorder.pythonVersion });
    while (!recorder.isDone()) {
      await sleeper.sleep(stopping ? STOP_POLL_MS : PROGRESS_INTERVAL_MS);
      if (!stopping && !recorder.isDone()) report();
      if (options.push) pollPush();
    }
    report();
  } catch (error) {
    // Unexpected (a hook threw): still free the native thread.
    failure ??= { error };
    stop();
  } finally {
    signal?.removeEventListener('abort', stop);
    sleeper.wake();
  }
  const finish = await finishRecorder(recorder, options.command !== undefined, hooks);
  if (finish.push) {
    try {
      warn(fromBindingPushStats(finish.push).warnings);
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
  return Profile.fromRecorder(recorder, finish);
}
