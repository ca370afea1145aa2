/**
 * {@link Profile}: a finished recording, and the file formats it encodes to.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import type { BindingFinish, BindingRecorder } from '../binding/binding.cjs';
import { fromBindingError, PyspyError } from './errors.js';
import { fromBindingPushStats, type PushStats } from './push.js';
import { toStacks, type Stacks } from './stacks.js';

/**
 * The formats a {@link Profile} encodes to, as py-spy names them:
 *
 * - `flamegraph`: an interactive SVG flame graph (icicle: root at the top).
 * - `speedscope`: JSON for https://www.speedscope.app/.
 * - `raw`: collapsed stacks, one `root;…;leaf COUNT` line per stack (for
 *   `flamegraph.pl` and the like).
 * - `chrometrace`: Chrome trace-event JSON (chrome://tracing, ui.perfetto.dev).
 * - `pprof`: a gzipped pprof protobuf (`go tool pprof`).
 */
export type ProfileFormat = 'flamegraph' | 'speedscope' | 'raw' | 'chrometrace' | 'pprof';

/** The formats that are text, which {@link Profile.toString} can return. */
export type TextProfileFormat = Exclude<ProfileFormat, 'pprof'>;

/** Why a recording ended: stopped (aborted), its duration ran out, or the target exited. */
export type StopReason = 'stopped' | 'duration' | 'exited';

/**
 * For each format: the file extension py-spy gives it and the name the CLI's
 * summary line uses.
 *
 * @internal
 */
export const PROFILE_FORMATS: Readonly<Record<ProfileFormat, { extension: string; description: string }>> = {
  flamegraph: { extension: 'svg', description: 'flamegraph' },
  speedscope: { extension: 'json', description: 'speedscope profile' },
  raw: { extension: 'txt', description: 'raw stacks' },
  chrometrace: { extension: 'json', description: 'chrome trace' },
  pprof: { extension: 'pb.gz', description: 'pprof profile' },
};

/**
 * The format a file name implies: `.svg` flamegraph, `.json` speedscope,
 * `.txt` raw, `.pb.gz` or `.pprof` pprof (case-insensitive).
 *
 * @param file A file name or path.
 * @returns The format, or `undefined` for any other extension.
 * @internal
 */
export function formatFromPath(file: string): ProfileFormat | undefined {
  const name = path.basename(file).toLowerCase();
  if (name.endsWith('.svg')) return 'flamegraph';
  if (name.endsWith('.json')) return 'speedscope';
  if (name.endsWith('.txt')) return 'raw';
  if (name.endsWith('.pb.gz') || name.endsWith('.pprof')) return 'pprof';
  return undefined;
}

/**
 * Checks a format name given at run time.
 *
 * @throws {@link PyspyError} with code `EFORMAT` for an unknown one.
 * @internal
 */
export function assertFormat(format: unknown): asserts format is ProfileFormat {
  if (typeof format !== 'string' || !Object.hasOwn(PROFILE_FORMATS, format)) {
    throw new PyspyError(
      'EFORMAT',
      `unknown profile format ${JSON.stringify(format)}: use ${Object.keys(PROFILE_FORMATS).join(', ')}`,
    );
  }
}

/** The part of the native recorder a finished {@link Profile} uses. */
type FinishedRecorder = Pick<BindingRecorder, 'pid' | 'pythonVersion' | 'stacks' | 'encode'>;

/**
 * A finished recording, as {@link record} resolves with it: its summary, its
 * aggregated stacks, and encoders for every {@link ProfileFormat}.
 *
 * @example
 * const profile = await record({ pid: 4242, duration: 5 });
 * console.log(`${profile.samples} samples in ${profile.durationMs} ms`);
 * await profile.writeFile('profile.svg');
 */
export class Profile {
  /** Stack samples recorded (after `idle`/`gil` filtering, summed over threads). */
  readonly samples: number;
  /** Sampling attempts that failed. */
  readonly errors: number;
  /** Milliseconds from the first to the last sampling attempt. */
  readonly durationMs: number;
  /** Why the recording ended. */
  readonly reason: StopReason;
  /** A launched command's exit code; `null` when it was killed by a signal, or when attached by pid. */
  readonly exitCode: number | null;
  /** The signal number (e.g. `15` for SIGTERM) that killed a launched command, else `null`. */
  readonly exitSignal: number | null;
  /** The target's pid (the launched command's, when one was launched). */
  readonly pid: number;
  /** The target's Python version, e.g. `3.12.1`. */
  readonly pythonVersion: string;
  /** What was pushed to Pyroscope (`push` option), else `null`. */
  readonly push: PushStats | null;

  readonly #recorder: FinishedRecorder;

  private constructor(recorder: FinishedRecorder, finish: BindingFinish) {
    this.#recorder = recorder;
    this.samples = finish.samples;
    this.errors = finish.errors;
    this.durationMs = finish.durationMs;
    this.reason = finish.reason as StopReason;
    this.exitCode = finish.exitCode ?? null;
    this.exitSignal = finish.exitSignal ?? null;
    this.pid = recorder.pid;
    this.pythonVersion = recorder.pythonVersion;
    this.push = finish.push ? fromBindingPushStats(finish.push).stats : null;
  }

  /**
   * Wraps a native recorder whose `finish()` resolved with `finish`.
   *
   * @internal
   */
  static fromRecorder(recorder: FinishedRecorder, finish: BindingFinish): Profile {
    return new Profile(recorder, finish);
  }

  /**
   * The whole profile's aggregated stacks.
   *
   * @returns One entry per unique stack of each thread, with its sample count.
   */
  stacks(): Stacks {
    return toStacks(this.#recorder.stacks() ?? { samples: this.samples, errors: this.errors, stacks: [] });
  }

  /**
   * Encodes the profile.
   *
   * @param format See {@link ProfileFormat}.
   * @param options `title`: the flame graph's title (default `pyspy-node`).
   * @returns The file's bytes (gzipped for `pprof`).
   * @throws {@link PyspyError} with code `ENOSAMPLES` when nothing was sampled,
   * `EFORMAT` for an unknown format.
   * @example
   * const svg = profile.encode('flamegraph', { title: 'my app' });
   */
  encode(format: ProfileFormat, options: { title?: string } = {}): Buffer {
    assertFormat(format);
    if (this.samples === 0) {
      throw new PyspyError('ENOSAMPLES', 'no samples were collected, so there is no profile to encode');
    }
    const result = this.#recorder.encode(format, options.title);
    if (Buffer.isBuffer(result)) return result;
    // The encoder calls an empty profile EEMPTY; keep one code for it.
    throw fromBindingError(result.code === 'EEMPTY' ? { ...result, code: 'ENOSAMPLES' } : result);
  }

  /**
   * Encodes the profile in a text format.
   *
   * @param format Any format but `pprof`; `raw` (collapsed stacks) by default.
   * @returns The text.
   * @throws {@link PyspyError} as {@link Profile.encode} does; `EFORMAT` for `pprof`.
   */
  toString(format: TextProfileFormat = 'raw'): string {
    if ((format as ProfileFormat) === 'pprof') {
      throw new PyspyError('EFORMAT', 'pprof is a binary format: use encode("pprof") or writeFile()');
    }
    return this.encode(format).toString('utf8');
  }

  /**
   * Writes the profile to a file, atomically: it is written under a temporary
   * name in the same directory and then renamed, so a half-written file never
   * appears under `file`.
   *
   * @param file Where to write; an existing file is replaced.
   * @param format The format; by default inferred from the extension (`.svg`
   * flamegraph, `.json` speedscope, `.txt` raw, `.pb.gz`/`.pprof` pprof),
   * else `flamegraph`.
   * @param options `title`: the flame graph's title, as for {@link Profile.encode}.
   * @throws {@link PyspyError} as {@link Profile.encode} does; Node's own
   * file-system errors (`ENOENT`, `EACCES`, ...) as they are.
   * @example
   * await profile.writeFile('out.json'); // speedscope
   * await profile.writeFile('out.trace.json', 'chrometrace');
   */
  async writeFile(
    file: string,
    format: ProfileFormat = formatFromPath(file) ?? 'flamegraph',
    options: { title?: string } = {},
  ): Promise<void> {
    await writeFileAtomic(file, this.encode(format, options));
  }
}

/**
 * Writes `data` to a temporary file beside `file`, then renames it over `file`.
 *
 * @internal
 */
export async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, data, { flag: 'wx' });
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
