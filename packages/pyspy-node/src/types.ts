/**
 * The plain data {@link dump} resolves with. Field meanings follow py-spy.
 *
 * @module
 */

/** Options for {@link dump}. Every field defaults to `false`. */
export interface DumpOptions {
  /**
   * Also read each frame's arguments and local variables (`Frame.locals`).
   * A number is py-spy's `--locals` count: each value's rendering may be 128
   * characters per level (`2` is `-ll`); `true` is `1`.
   */
  locals?: boolean | number;
  /**
   * Do not pause the target while reading it. Cheaper for the target, but a
   * stack may come out torn.
   */
  nonblocking?: boolean;
  /** Keep full filenames rather than package-relative ones. */
  fullFilenames?: boolean;
  /**
   * Also dump the target's Python descendants (`ProcessDump.subprocesses`).
   * A non-Python or vanishing child is skipped, never an error.
   */
  subprocesses?: boolean;
  /**
   * Also unwind each thread's native stack and merge it with the Python
   * frames: C, C++ and Cython frames appear with their `module`, each
   * interpreter evaluation frame is replaced by the Python frames it runs,
   * and interpreter internals are hidden (Linux x86-64 and arm64). The target is
   * paused while it is read; not with `nonblocking` (`EINVAL`).
   */
  native?: boolean;
  /**
   * Also read the asyncio tasks (CPython 3.11-3.15): `ProcessDump.asyncioTasks`
   * and `ProcessDump.asyncio`. Tasks that cannot be read never fail the dump:
   * `asyncio.error` says why.
   */
  asyncio?: boolean;
}

/** One asyncio task of a dump (`dump(pid, { asyncio: true })`). */
export interface AsyncTask {
  /** Its index in `asyncioTasks` (stable within one dump). */
  id: number;
  /** `task.get_name()`. */
  name: string;
  /** `running` (its loop's current task), `pending`, `done` or `cancelled`. */
  state: 'pending' | 'running' | 'done' | 'cancelled';
  /** `ThreadStack.threadId` of the thread whose loop runs it, or `null` when unknown. */
  threadId: number | null;
  /** Its coroutine chain's frames, innermost first (a running task's come from its thread's stack). */
  frames: Frame[];
  /** Ids of the tasks it awaits. */
  awaiting: number[];
  /** Ids of the tasks that await it. */
  awaitedBy: number[];
}

/** How reading asyncio tasks went (`dump(pid, { asyncio: true })`). */
export interface AsyncioStatus {
  /** Whether some thread runs an event loop. */
  loopFound: boolean;
  /** Tasks that could not be read (freed or changing while read) and were left out. */
  skipped: number;
  /**
   * Why no task could be read, or `null`: `EUNSUPPORTED` (Python 3.10 and
   * older), `ELAYOUT` (the target's objects do not match the known layout),
   * `ENOASYNCIO` (pure-Python tasks, a missing debug section), `EREAD`.
   */
  error: { code: string; message: string } | null;
  /** Remarks about partial reads. */
  notes: string[];
}

/** Every thread's Python stack of one process, read once. */
export interface ProcessDump {
  /** The target's pid. */
  pid: number;
  /**
   * Its pid in its own PID namespace (inside a container, as it sees itself),
   * when that namespace is not the profiler's; else `null`.
   */
  namespacePid: number | null;
  /** The target's command line, space-joined. */
  commandLine: string;
  /** The interpreter executable as the target sees it. */
  executable: string;
  /** The Python version, e.g. `3.12.1`. */
  pythonVersion: string;
  /** A free-threaded build (`--disable-gil`, 3.13t and later). */
  freeThreaded: boolean;
  /**
   * Whether the GIL was on when read: always `true` on a build with a GIL; on
   * a free-threaded build `false` unless turned on at run time (`PYTHON_GIL=1`,
   * or an extension module that needs it). `null` when unknown (not a Python
   * process, or the flag could not be read).
   */
  gilEnabled: boolean | null;
  /** Threads, in the interpreter's list order (newest first). */
  threads: ThreadStack[];
  /** The parent's pid, for a process dumped as a subprocess; else `null`. */
  parentPid: number | null;
  /**
   * With `subprocesses`: the Python descendants, parents before children
   * (each with an empty list of its own). Empty otherwise.
   */
  subprocesses: ProcessDump[];
  /** With `asyncio: true`: the tasks (empty when none could be read); else `null`. */
  asyncioTasks: AsyncTask[] | null;
  /** With `asyncio: true`: whether a loop was found, and any reason tasks could not be read; else `null`. */
  asyncio: AsyncioStatus | null;
}

/** What a thread was doing when read (see {@link ThreadStack.status}). */
export type ThreadStatus = 'running' | 'gil_wait' | 'idle';

/** One thread's Python stack. */
export interface ThreadStack {
  /** The pid of the process the thread belongs to. */
  pid: number;
  /** Python's thread id (`threading.get_ident()`; a `pthread_t` on Linux). */
  threadId: number;
  /** The OS thread id (the Linux tid, as the profiler sees it), or `null` when unknown. */
  osThreadId: number | null;
  /**
   * The tid the target itself sees (`threading.get_native_id()`) when it runs
   * in another PID namespace (a container) and that differs from
   * {@link osThreadId}; else `null`.
   */
  namespaceThreadId: number | null;
  /** `threading.Thread.name`, or `null` for a thread `threading` does not know. */
  threadName: string | null;
  /**
   * Not idle when read: running on a CPU, or waiting to take the GIL (it
   * wants to run). py-spy's `active`.
   */
  active: boolean;
  /**
   * What the thread was doing: `running` (on a CPU, or holding the GIL),
   * `gil_wait` (blocked taking the GIL) or `idle` (blocked in anything else:
   * I/O, sleep, locks, condition variables).
   */
  status: ThreadStatus;
  /**
   * For a thread that was waiting (`idle` or `gil_wait`): the system call it
   * was blocked in (`futex`, `clock_nanosleep`, `epoll_wait`, ...; `syscall N`
   * for a number without a name), else `null`.
   */
  syscall: string | null;
  /** Held the GIL when read. */
  ownsGil: boolean;
  /**
   * Attached to its interpreter when read (CPython 3.12+'s `_status.active`):
   * running Python, or about to. With a GIL the same as `ownsGil`; on a
   * free-threaded build with the GIL off, what running Python means (any
   * number of threads at once). `null` before 3.12.
   */
  attached: boolean | null;
  /**
   * The id of the interpreter this thread belongs to (CPython 3.12+ reads
   * every interpreter of the process): `0` for the main interpreter. An OS
   * thread that runs code in a sub-interpreter (`interp.exec()`) has a
   * thread state in each, so it is listed once per interpreter; the outer
   * one is `idle` while the inner one runs.
   */
  interpreterId: number;
  /** Frames, innermost first. */
  frames: Frame[];
}

/**
 * One frame: a Python frame, or with `native` a native one (`module` set;
 * `filename` and `line` then name the C source when the binary has line
 * tables, else `filename` is the binary and `line` is 0).
 */
export interface Frame {
  /** Function name: `co_qualname` on 3.11+ (e.g. `Worker.run`), `co_name` before (`run`); `<module>` for module code. */
  name: string;
  /** Source path as the target sees it (`co_filename`). */
  filename: string;
  /** Package-relative form of {@link filename}, or `null` when none was worked out. */
  shortFilename: string | null;
  /** Line number; `0` when unknown. */
  line: number;
  /** Native module (a `.so`) for native frames, else `null`. */
  module: string | null;
  /** Arguments and locals when asked for with `locals: true`, else `null`. */
  locals: LocalVariable[] | null;
}

/** One argument or local variable of a frame. */
export interface LocalVariable {
  /** Variable name. */
  name: string;
  /** Address of the object in the target process. */
  addr: number;
  /** `true` for a function argument, `false` for a local. */
  arg: boolean;
  /** A `repr()`-like rendering, or `null` when the type is not understood. */
  repr: string | null;
}
