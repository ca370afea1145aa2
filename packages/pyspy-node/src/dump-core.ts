/**
 * `dumpCore`: every thread's Python stack out of a core file (`gcore`'s or
 * the kernel's, gzip-compressed or not), as {@link dump} reads a live one;
 * with `native`, merged with each thread's native stack.
 *
 * @module
 */
import { loadBinding, type Binding } from './binding.js';
import { localsLevel, unwrap } from './dump.js';
import { PyspyError } from './errors.js';
import type { ProcessDump } from './types.js';

/** Options for {@link dumpCore}. */
export interface DumpCoreOptions {
  /**
   * Also read each frame's arguments and local variables; a number is
   * py-spy's `--locals` count (128 characters per value per step), as for
   * {@link dump}. @default false
   */
  locals?: boolean | number;
  /** Keep full filenames rather than package-relative ones. @default false */
  fullFilenames?: boolean;
  /** Also read the asyncio tasks, as {@link dump}'s `asyncio`. @default false */
  asyncio?: boolean;
  /**
   * Merge native (C, C++, Cython) frames into the stacks, as {@link dump}'s
   * `native` does: each thread's native stack is unwound from the registers
   * the core recorded and its stack memory in the core. Where the core lacks
   * what that needs (a thread's stack memory, a binary), the thread's frames
   * hold a marker frame saying why its native frames end there (its `name`
   * starts with `<`, its `module` is `?`); the dump does not fail.
   * @default false
   */
  native?: boolean;
  /**
   * The program that dumped core. Binaries the core needs but does not hold
   * (their read-only parts) are read from where the core says they were,
   * else looked for next to this file.
   */
  executable?: string;
  /** The directory the core's paths are relative to (the root of the container the core came from). */
  sysroot?: string;
}

/**
 * Reads every thread's Python stack out of the core file at `path`. The
 * process is the one the core captured: its pid, command line (as the kernel
 * recorded it, at most 80 bytes) and executable; thread status comes from
 * the registers the core holds. The read runs off the JavaScript thread.
 *
 * @param path A Linux x86-64 core file (plain, or gzip-compressed).
 * @param options See {@link DumpCoreOptions}.
 * @throws {@link PyspyError}: `EBADCORE` (not a core file, damaged or
 * truncated), `ENOBINARY` (a binary it needs is missing), `ENOTPYTHON`,
 * `EUNSUPPORTED`, `EIO` (cannot open it), `EINVAL`, `EINTERNAL`.
 * @example
 * import { dumpCore } from 'pyspy-node';
 * const { threads } = await dumpCore('/tmp/core.4242');
 */
export async function dumpCore(path: string, options: DumpCoreOptions = {}): Promise<ProcessDump> {
  return dumpCoreWith(loadBinding(), path, options);
}

/**
 * {@link dumpCore} with the binding passed in, so tests can use a fake one.
 *
 * @internal
 */
export async function dumpCoreWith(binding: Pick<Binding, 'dumpCore'>, path: string, options: DumpCoreOptions = {}): Promise<ProcessDump> {
  if (typeof path !== 'string' || path === '') throw new PyspyError('EINVAL', 'the core file path must be a non-empty string');
  const core = {
    ...(options.executable === undefined ? {} : { executable: options.executable }),
    ...(options.sysroot === undefined ? {} : { sysroot: options.sysroot }),
  };
  return unwrap(
    await binding.dumpCore(path, core, {
      locals: options.locals !== undefined && options.locals !== false && options.locals !== 0,
      localsLevel: localsLevel(options.locals),
      fullFilenames: options.fullFilenames ?? false,
      native: options.native ?? false,
      asyncio: options.asyncio ?? false,
    }),
  );
}
