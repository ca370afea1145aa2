/**
 * `dump` and `dumpSync`: thin wrappers that check arguments, call the native
 * binding and turn its result into the public types.
 *
 * @module
 */
import type { BindingDumpResult, BindingProcessDump } from '../binding/binding.cjs';
import { loadBinding, type Binding } from './binding.js';
import { fromBindingError, PyspyError } from './errors.js';
import { assertPid } from './pid.js';
import type { AsyncTask, DumpOptions, Frame, ProcessDump, ThreadStatus } from './types.js';

/**
 * Reads the current Python stack of every thread in process `pid`, once.
 * The read runs off the JavaScript thread.
 *
 * @param pid A running CPython process.
 * @param options What to read; see {@link DumpOptions}.
 * @returns The process's threads and their frames, innermost frame first.
 * @throws {@link PyspyError} with a stable `code`: `EINVAL` for a bad `pid`,
 * `ENOPROCESS`, `ENOTPYTHON`, `EPERM`, `EUNSUPPORTED`, `EEXITED`, `EREAD`,
 * `ENOBINDING` or `EINTERNAL`.
 * @example
 * import { dump } from 'pyspy-node';
 * const { threads } = await dump(4242);
 * for (const t of threads) console.log(t.threadName, t.frames[0]?.name);
 */
export async function dump(pid: number, options: DumpOptions = {}): Promise<ProcessDump> {
  return dumpWith(loadBinding(), pid, options);
}

/**
 * Same as {@link dump}, but blocks the calling thread while it reads.
 *
 * @param pid A running CPython process.
 * @param options What to read; see {@link DumpOptions}.
 * @returns The process's threads and their frames.
 * @throws {@link PyspyError}, as {@link dump} rejects.
 */
export function dumpSync(pid: number, options: DumpOptions = {}): ProcessDump {
  assertPid(pid);
  return unwrap(loadBinding().dumpSync(pid, toBindingOptions(options)));
}

/**
 * {@link dump} with the binding passed in, so tests can use a fake one.
 *
 * @internal
 */
export async function dumpWith(binding: Pick<Binding, 'dump'>, pid: number, options: DumpOptions = {}): Promise<ProcessDump> {
  assertPid(pid);
  return unwrap(await binding.dump(pid, toBindingOptions(options)));
}

/**
 * Returns the dump in `result`, or throws its error as a {@link PyspyError}.
 *
 * @internal
 */
export function unwrap(result: BindingDumpResult): ProcessDump {
  if (result.error) throw fromBindingError(result.error);
  if (!result.dump) {
    throw new PyspyError(
      'EINTERNAL',
      'internal error: the native binding returned neither a dump nor an error (this is a bug in pyspy-node; please report it)',
    );
  }
  return toProcessDump(result.dump);
}

/**
 * Converts the binding's dump into the public {@link ProcessDump}.
 *
 * @internal
 */
export function toProcessDump(dump: BindingProcessDump): ProcessDump {
  const asyncio = dump.asyncio ?? null;
  return {
    asyncioTasks: asyncio
      ? asyncio.tasks.map((t): AsyncTask => ({
          id: t.id,
          name: t.name,
          state: t.state as AsyncTask['state'],
          threadId: t.threadId ?? null,
          frames: t.frames.map(toFrame),
          awaiting: t.awaiting,
          awaitedBy: t.awaitedBy,
        }))
      : null,
    asyncio: asyncio
      ? {
          loopFound: asyncio.loopFound,
          skipped: asyncio.skipped,
          error: asyncio.errorCode ? { code: asyncio.errorCode, message: asyncio.errorMessage ?? '' } : null,
          notes: asyncio.notes,
        }
      : null,
    parentPid: dump.parentPid ?? null,
    subprocesses: dump.subprocesses.map(toProcessDump),
    pid: dump.pid,
    namespacePid: dump.namespacePid ?? null,
    commandLine: dump.commandLine,
    executable: dump.executable,
    pythonVersion: dump.pythonVersion,
    freeThreaded: dump.freeThreaded,
    gilEnabled: dump.gilEnabled ?? null,
    threads: dump.threads.map((thread) => ({
      pid: dump.pid,
      threadId: thread.threadId,
      osThreadId: thread.osThreadId ?? null,
      namespaceThreadId: thread.namespaceThreadId ?? null,
      threadName: thread.threadName ?? null,
      active: thread.active,
      status: thread.status as ThreadStatus,
      syscall: thread.syscall ?? null,
      ownsGil: thread.ownsGil,
      attached: thread.attached ?? null,
      interpreterId: thread.interpreterId,
      frames: thread.frames.map(toFrame),
    })),
  };
}

function toFrame(frame: BindingProcessDump['threads'][number]['frames'][number]): Frame {
  return {
    name: frame.name,
    filename: frame.filename,
    shortFilename: frame.shortFilename ?? null,
    line: frame.line,
    module: frame.module ?? null,
    locals:
      frame.locals?.map((local) => ({
        name: local.name,
        addr: local.addr,
        arg: local.arg,
        repr: local.repr ?? null,
      })) ?? null,
  };
}

/** `locals` as a level: a count of 128-character steps (`true` is 1). */
export function localsLevel(locals: DumpOptions['locals']): number {
  if (typeof locals !== 'number') return 1;
  if (!Number.isInteger(locals) || locals < 0 || locals > 512) {
    throw new PyspyError('EINVAL', `locals must be a boolean or an integer from 0 to 512, not ${locals}`);
  }
  return Math.max(1, locals);
}

function toBindingOptions(options: DumpOptions) {
  return {
    locals: options.locals !== undefined && options.locals !== false && options.locals !== 0,
    localsLevel: localsLevel(options.locals),
    nonblocking: options.nonblocking ?? false,
    fullFilenames: options.fullFilenames ?? false,
    subprocesses: options.subprocesses ?? false,
    native: options.native ?? false,
    asyncio: options.asyncio ?? false,
  };
}
