/**
 * What {@link record} and {@link sample} share: checking options, starting
 * the native recorder, and finishing it (ending a launched command that
 * outlives the recording).
 *
 * @module
 * @internal
 */
import type { BindingFinish, BindingRecordOptions, BindingRecorder } from '../binding/binding.cjs';
import type { Binding } from './binding.js';
import { fromBindingError, PyspyError } from './errors.js';
import { assertPid } from './pid.js';
import { toBindingPush, type PushStats } from './push.js';
import type { RecordOptions } from './record.js';

/** The part of the native binding recording needs; tests pass fakes. */
export type RecordBinding = Pick<Binding, 'startRecorder'>;

/** How the recording is run; the CLI and tests adjust these. */
export interface RecordHooks {
  /** Called once the target is attached (or launched) and sampling has begun. */
  onStart?: (target: { pid: number; pythonVersion: string }) => void;
  /**
   * Milliseconds a launched command still running when sampling ends gets to
   * exit by itself before it is sent SIGTERM (and SIGKILL
   * {@link KILL_AFTER_MS} later). Read when sampling ends. Default
   * {@link EXIT_GRACE_MS}.
   */
  exitGraceMs?: () => number;
  /** Sends a signal to a process; default `process.kill`, errors ignored. */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
  /**
   * Keep the whole recording's stacks for the resolved profile (default).
   * Off for a recording that only pushes: its profile then has counts but
   * no stacks, and memory does not grow with the run's length.
   */
  keepProfile?: boolean;
  /** With `push`: the pushing counts, about every 250 ms while recording. */
  onPushStats?: (stats: PushStats) => void;
}

/** Default of {@link RecordHooks.exitGraceMs}: long enough for a command that has just exited to be reaped. */
export const EXIT_GRACE_MS = 250;
/** From SIGTERM to SIGKILL for a launched command that will not exit. */
export const KILL_AFTER_MS = 2000;
/** How often `isDone()` is polled once a stop was asked for. */
export const STOP_POLL_MS = 10;

/**
 * Checks `options`, then starts the native recorder.
 *
 * @throws {@link PyspyError} (`EINVAL`, `EUNSUPPORTED`, or the binding's
 * code), or the reason of an already-aborted `options.signal`.
 */
export async function startRecorder(
  binding: RecordBinding,
  options: Omit<RecordOptions, 'onProgress'>,
  batches: boolean,
  keepProfile = true,
): Promise<BindingRecorder> {
  const bindingOptions = toBindingOptions(options, batches, keepProfile);
  options.signal?.throwIfAborted();
  const started = await binding.startRecorder(bindingOptions);
  if (isBindingError(started)) throw fromBindingError(started);
  return started;
}

/**
 * Waits for the native recorder's `finish()` (sampling must have ended or
 * been stopped). A launched command still running is sent SIGTERM after the
 * grace period and SIGKILL {@link KILL_AFTER_MS} later; it cannot be a
 * stranger's process, since only `finish()` reaps it.
 *
 * @throws {@link PyspyError} with the binding's code.
 */
export async function finishRecorder(
  recorder: BindingRecorder,
  launched: boolean,
  hooks: RecordHooks = {},
): Promise<BindingFinish> {
  const kill = hooks.kill ?? killQuietly;
  const timers: NodeJS.Timeout[] = [];
  if (launched) {
    const pid = recorder.pid;
    const grace = hooks.exitGraceMs?.() ?? EXIT_GRACE_MS;
    timers.push(
      setTimeout(() => {
        kill(pid, 'SIGTERM');
        timers.push(setTimeout(() => kill(pid, 'SIGKILL'), KILL_AFTER_MS));
      }, grace),
    );
  }
  let result;
  try {
    result = await recorder.finish();
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
  if (result.error) throw fromBindingError(result.error);
  if (!result.finish) {
    throw new PyspyError(
      'EINTERNAL',
      'internal error: the native recorder finished with neither a summary nor an error (this is a bug in pyspy-node; please report it)',
    );
  }
  return result.finish;
}

/** A sleep that {@link Sleeper.wake} can cut short. */
export class Sleeper {
  #timer: NodeJS.Timeout | undefined;
  #resolve: (() => void) | undefined;

  /** Resolves after `ms`, or at the next {@link wake}. */
  sleep(ms: number): Promise<void> {
    this.wake();
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => this.wake(), ms);
    });
  }

  /** Ends the current sleep now, if any, and clears its timer. */
  wake(): void {
    clearTimeout(this.#timer);
    const resolve = this.#resolve;
    this.#timer = this.#resolve = undefined;
    resolve?.();
  }
}

function toBindingOptions(options: Omit<RecordOptions, 'onProgress'>, batches: boolean, keepProfile: boolean): BindingRecordOptions {
  const { pid, command } = options;
  if (options.allPythons) {
    if (pid !== undefined || command !== undefined) {
      throw new PyspyError('EINVAL', 'allPythons cannot be combined with pid or command');
    }
    if (options.push === undefined) throw new PyspyError('EINVAL', 'allPythons needs push: it only streams to a server');
    if (options.uid !== undefined && !(Number.isInteger(options.uid) && options.uid >= 0)) {
      throw new PyspyError('EINVAL', `uid must be a non-negative integer, got ${String(options.uid)}`);
    }
  } else if ((pid === undefined) === (command === undefined)) {
    throw new PyspyError('EINVAL', 'give exactly one of pid (a running process) and command (a program to launch)');
  }
  if (pid !== undefined) assertPid(pid);
  if (
    command !== undefined &&
    !(Array.isArray(command) && command.length > 0 && command.every((arg) => typeof arg === 'string'))
  ) {
    throw new PyspyError('EINVAL', 'command must be a non-empty array of strings: the program, then its arguments');
  }
  assertPositive('rate', options.rate);
  assertPositive('duration', options.duration);
  if (options.nonblocking && options.blocking) {
    throw new PyspyError('EINVAL', 'the nonblocking and blocking options cannot be used together');
  }
  if (options.native && options.nonblocking) {
    throw new PyspyError(
      'EINVAL',
      "the native and nonblocking options cannot be used together: a thread's native stack can only be read while the thread is paused",
    );
  }
  if (batches && options.push !== undefined) {
    throw new PyspyError('EINVAL', 'push is an option of record, not of sample or top');
  }
  if (options.function && options.nolineno) {
    throw new PyspyError('EINVAL', 'the function and nolineno options cannot be used together');
  }
  return {
    ...(options.allPythons
      ? {
          allPythons: true,
          ...(options.match !== undefined ? { matchCommand: options.match } : {}),
          ...(options.uid !== undefined ? { uid: options.uid } : {}),
        }
      : pid !== undefined
        ? { pid }
        : { command: [...(command ?? [])] }),
    rate: options.rate ?? 100,
    ...(options.duration !== undefined ? { duration: options.duration } : {}),
    gil: options.gil ?? false,
    idle: options.idle ?? false,
    threads: options.threads ?? false,
    function: options.function ?? false,
    nolineno: options.nolineno ?? false,
    nonblocking: options.nonblocking ?? false,
    blocking: options.blocking ?? false,
    subprocesses: options.subprocesses ?? false,
    fullFilenames: options.fullFilenames ?? false,
    native: options.native ?? false,
    gcFrames: options.gcFrames ?? true,
    asyncio: options.asyncio ?? false,
    gilWaitFrames: options.gilWaitFrames ?? false,
    captureOutput: options.captureOutput ?? false,
    batches,
    keepProfile,
    ...(options.push !== undefined ? { push: toBindingPush(options.push) } : {}),
  };
}

/**
 * Throws unless `value` is `undefined` or a finite number above 0.
 *
 * @throws {@link PyspyError} with code `EINVAL`.
 */
export function assertPositive(name: string, value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    throw new PyspyError('EINVAL', `${name} must be a number above 0, got ${String(value)}`);
  }
}

function isBindingError(value: BindingRecorder | { code: string; message: string }): value is { code: string; message: string } {
  return typeof (value as { code?: unknown }).code === 'string';
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone: nothing to end.
  }
}
