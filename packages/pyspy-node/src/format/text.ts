/**
 * py-spy's `dump` text output.
 *
 * @module
 */
import type { Frame, ProcessDump, ThreadStack } from '../types.js';
import { formatAsyncio } from './asyncio.js';

/** Options for {@link formatText}. */
export interface TextFormatOptions {
  /** Print each frame's full filename rather than the package-relative one. */
  fullFilenames?: boolean;
}

/**
 * Renders a dump the way `py-spy dump` prints it:
 *
 * ```text
 * Process 4242: python3 demo.py
 * Python v3.12.1 (/usr/bin/python3.12)
 *
 * Thread 4242 (active+gil): "MainThread"
 *     spin (demo.py:9)
 *     <module> (demo.py:30)
 * ```
 *
 * A free-threaded build says so and whether its GIL was on:
 * `Python v3.13.5, free-threaded, GIL disabled (/usr/local/bin/python3.13t)`.
 *
 * A process in another PID namespace (a container seen from the host) also
 * shows the ids it sees itself: `Process 25100 (ns 1): ...`,
 * `Thread 25112 (ns 2) (idle): "sleeper"`.
 *
 * Threads come oldest first (the reverse of the interpreter's list), with a
 * blank line between them. A process with sub-interpreters (3.12+) names
 * each thread's interpreter: `Thread 4251 (active): "w" [interpreter 1]`. With locals, each frame is followed by
 * `Arguments:` and `Locals:` sections. The result ends with a newline.
 *
 * @param dump What {@link dump} returned.
 * @param options See {@link TextFormatOptions}.
 * @returns The text, ending with a newline.
 */
export function formatText(dump: ProcessDump, options: TextFormatOptions = {}): string {
  const parts = [formatProcess(dump, options)];
  // Each subprocess once, under its own header, as py-spy prints them.
  for (const sub of dump.subprocesses) {
    parts.push(`${'-'.repeat(80)}\nParent Process ${sub.parentPid ?? '?'}\n` + formatProcess(sub, options));
  }
  return parts.join('\n');
}

function formatProcess(dump: ProcessDump, options: TextFormatOptions): string {
  let version = dump.pythonVersion ? `Python v${dump.pythonVersion}` : 'Not a Python process';
  // Whether a GIL exists changes what `active` and `owns_gil` can mean.
  if (dump.freeThreaded) version += `, free-threaded, ${gilState(dump.gilEnabled)}`;
  const lines = [`Process ${dump.pid}${nsSuffix(dump.namespacePid)}: ${dump.commandLine}`, `${version} (${dump.executable})`, ''];
  // The interpreter is named only where there is more than one.
  const several = new Set(dump.threads.map((t) => t.interpreterId)).size > 1;
  [...dump.threads].reverse().forEach((thread, i) => {
    if (i > 0) lines.push('');
    lines.push(...formatThread(thread, options, several));
  });
  if (dump.asyncio !== null) lines.push('', ...formatAsyncio(dump, options));
  return lines.join('\n') + '\n';
}

function gilState(enabled: boolean | null): string {
  if (enabled === null) return 'GIL state unknown';
  return enabled ? 'GIL enabled' : 'GIL disabled';
}

/**
 * The header line's thread id: the OS tid in decimal when known, else
 * Python's pthread id in hex (`0x7F3A...`), as py-spy prints it.
 */
export function formatThreadId(thread: Pick<ThreadStack, 'threadId' | 'osThreadId'>): string {
  if (thread.osThreadId !== null) return String(thread.osThreadId);
  return `0x${thread.threadId.toString(16).toUpperCase()}`;
}

/** ` (ns N)` when an id seen inside the target's PID namespace is known (and differs), else empty. */
function nsSuffix(id: number | null | undefined): string {
  return id === null || id === undefined ? '' : ` (ns ${id})`;
}

/** `idle`, `active`, `active+gil` or `active, waiting for GIL`. */
export function threadStatus(thread: Pick<ThreadStack, 'active' | 'ownsGil' | 'status'>): string {
  if (!thread.active) return 'idle';
  if (thread.status === 'gil_wait') return 'active, waiting for GIL';
  return thread.ownsGil ? 'active+gil' : 'active';
}

function formatThread(thread: ThreadStack, options: TextFormatOptions, interpreter: boolean): string[] {
  const name = thread.threadName === null ? '' : `: ${JSON.stringify(thread.threadName)}`;
  const ns = nsSuffix(thread.namespaceThreadId);
  const interp = interpreter ? ` [interpreter ${thread.interpreterId}]` : '';
  const lines = [`Thread ${formatThreadId(thread)}${ns} (${threadStatus(thread)})${name}${interp}`];
  for (const frame of thread.frames) lines.push(...formatFrame(frame, options));
  return lines;
}

/** A frame's lines (4-space indented; locals below it), as `dump` prints them. */
export function formatFrame(frame: Frame, options: TextFormatOptions): string[] {
  const file = options.fullFilenames ? frame.filename : (frame.shortFilename ?? frame.filename);
  const where = frame.line === 0 ? file : `${file}:${frame.line}`;
  // A native frame with a source line also names its binary.
  const module = frame.module !== null && frame.module !== file ? ` [${frame.module}]` : '';
  const lines = [`    ${frame.name} (${where})${module}`];
  const args = frame.locals?.filter((local) => local.arg) ?? [];
  const locals = frame.locals?.filter((local) => !local.arg) ?? [];
  for (const [title, vars] of [['Arguments', args], ['Locals', locals]] as const) {
    if (vars.length === 0) continue;
    lines.push(`        ${title}:`);
    for (const local of vars) lines.push(`            ${local.name}: ${local.repr ?? '?'}`);
  }
  return lines;
}
