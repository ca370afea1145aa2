/**
 * py-spy's `dump --json` output.
 *
 * @module
 */
import type { Frame, ProcessDump, ThreadStatus } from '../types.js';

/** One thread as py-spy's JSON names it (snake_case). */
export interface JsonStackTrace {
  /** See `ThreadStack.pid`. */
  pid: number;
  /** See `ThreadStack.threadId`. */
  thread_id: number;
  /** See `ThreadStack.threadName`. */
  thread_name: string | null;
  /** See `ThreadStack.osThreadId`. */
  os_thread_id: number | null;
  /**
   * See `ThreadStack.namespaceThreadId`: present only for a target in another
   * PID namespace (a container seen from the host); not in py-spy's output.
   */
  namespace_thread_id?: number | null;
  /** See `ProcessDump.namespacePid`: present only with `namespace_thread_id`'s condition. */
  namespace_pid?: number | null;
  /** See `ThreadStack.active`. */
  active: boolean;
  /** See `ThreadStack.ownsGil`. */
  owns_gil: boolean;
  /** See `ThreadStack.attached` (not in py-spy's JSON); only where known (3.12+). */
  attached?: boolean;
  /** See `ThreadStack.interpreterId` (not in py-spy's JSON). */
  interpreter_id: number;
  /** See `ThreadStack.status` (not in py-spy's JSON). */
  status: ThreadStatus;
  /** See `ThreadStack.syscall` (not in py-spy's JSON); only for a waiting thread whose call is known. */
  syscall?: string;
  /** See `ThreadStack.frames`. */
  frames: JsonFrame[];
  /** Always `null`: py-spy fills it only for subprocesses, which `dump` does not follow yet. */
  process_info: null;
}

/** One frame as py-spy's JSON names it. */
export interface JsonFrame {
  /** See `Frame.name`. */
  name: string;
  /** See `Frame.filename`. */
  filename: string;
  /** See `Frame.module`. */
  module: string | null;
  /** See `Frame.shortFilename`. */
  short_filename: string | null;
  /** See `Frame.line`. */
  line: number;
  /** See `Frame.locals`; each entry has `LocalVariable`'s fields. */
  locals: { name: string; addr: number; arg: boolean; repr: string | null }[] | null;
}

/** A frame (of a thread or of a task) with py-spy's field names. */
function toJsonFrame(frame: Frame): JsonFrame {
  return {
    name: frame.name,
    filename: frame.filename,
    module: frame.module,
    short_filename: frame.shortFilename,
    line: frame.line,
    locals: frame.locals?.map(({ name, addr, arg, repr }) => ({ name, addr, arg, repr })) ?? null,
  };
}

/**
 * Converts a dump into py-spy's JSON shape: an array of threads, in the
 * interpreter's order, with py-spy's field names.
 *
 * @param dump What {@link dump} returned.
 * @returns Plain data, ready for `JSON.stringify`.
 */
export function toJsonTraces(dump: ProcessDump): JsonStackTrace[] {
  // Subprocesses' threads follow the parent's; `pid` tells them apart.
  // py-spy's shape, plus the ids inside a container's PID namespace when
  // they differ (so logs from inside can be matched).
  return [dump, ...dump.subprocesses].flatMap((d) => d.threads.map((thread) => ({
    pid: thread.pid,
    thread_id: thread.threadId,
    thread_name: thread.threadName,
    os_thread_id: thread.osThreadId,
    ...(d.namespacePid === null && thread.namespaceThreadId === null
      ? {}
      : { namespace_thread_id: thread.namespaceThreadId, namespace_pid: d.namespacePid }),
    active: thread.active,
    owns_gil: thread.ownsGil,
    ...(thread.attached === null ? {} : { attached: thread.attached }),
    interpreter_id: thread.interpreterId,
    status: thread.status,
    ...(thread.syscall === null ? {} : { syscall: thread.syscall }),
    frames: thread.frames.map(toJsonFrame),
    process_info: null,
  })));
}

/** One asyncio task in `dump --asyncio --json` (snake_case). */
export interface JsonAsyncTask {
  /** See `AsyncTask.id`. */
  id: number;
  /** See `AsyncTask.name`. */
  name: string;
  /** See `AsyncTask.state`. */
  state: string;
  /** See `AsyncTask.threadId`. */
  thread_id: number | null;
  /** See `AsyncTask.frames`. */
  frames: JsonFrame[];
  /** See `AsyncTask.awaiting`. */
  awaiting: number[];
  /** See `AsyncTask.awaitedBy`. */
  awaited_by: number[];
}

/** `dump --asyncio --json`: the threads as without it, and the tasks. */
export interface JsonAsyncioDump {
  /** What {@link toJsonTraces} gives. */
  threads: JsonStackTrace[];
  /** The tasks; `null` when they could not be read (see `asyncio_error`). */
  asyncio_tasks: JsonAsyncTask[] | null;
  /** Why the tasks could not be read (`code`, `message`), when so. */
  asyncio_error?: { code: string; message: string };
  /** Whether some thread runs an event loop. */
  asyncio_loop_found: boolean;
}

/**
 * The tasks of a dump read with `asyncio: true` in JSON's shape.
 *
 * @param dump What {@link dump} returned.
 * @returns Plain data, ready for `JSON.stringify`.
 */
export function toJsonAsyncio(dump: ProcessDump): JsonAsyncioDump {
  const error = dump.asyncio?.error ?? null;
  return {
    threads: toJsonTraces(dump),
    asyncio_tasks:
      error !== null
        ? null
        : (dump.asyncioTasks ?? []).map((t) => ({
            id: t.id,
            name: t.name,
            state: t.state,
            thread_id: t.threadId,
            frames: t.frames.map(toJsonFrame),
            awaiting: t.awaiting,
            awaited_by: t.awaitedBy,
          })),
    ...(error === null ? {} : { asyncio_error: error }),
    asyncio_loop_found: dump.asyncio?.loopFound ?? false,
  };
}

/**
 * Renders a dump as `py-spy dump --json` does: a pretty-printed JSON array;
 * read with `asyncio: true`, an object of `threads` and `asyncio_tasks`
 * instead ({@link JsonAsyncioDump}).
 *
 * @param dump What {@link dump} returned.
 * @returns The JSON text, ending with a newline.
 */
export function formatJson(dump: ProcessDump): string {
  const data = dump.asyncio === null || dump.asyncio === undefined ? toJsonTraces(dump) : toJsonAsyncio(dump);
  return JSON.stringify(data, null, 2) + '\n';
}
