/**
 * `dump --asyncio`'s task tree, after the thread stacks: the shape of
 * `python -m asyncio pstree`, one task per line with its coroutine frames
 * below it and the tasks it awaits indented under it.
 *
 * @module
 */
import type { AsyncTask, ProcessDump } from '../types.js';
import { formatFrame, type TextFormatOptions } from './text.js';

/** What is printed when asyncio is imported but no thread runs a loop, or asyncio is not loaded. */
export const NO_LOOP = 'no asyncio event loop found';

/**
 * The task tree of a dump read with `asyncio: true`, as lines:
 *
 * ```text
 * asyncio tasks: 3
 * Task 0 "main" (running, thread 4242)
 *     main (service.py:40)
 *     Task 2 "worker-1" (pending)
 *         crunch (service.py:12)
 * ```
 *
 * Root tasks (awaited by none) come first, in id order; each task's
 * awaited tasks follow it one level deeper. A task reached again on the
 * same path is a cycle and is named, not followed; tasks left over (only
 * reachable through a cycle) are printed as roots. Empty when the tasks
 * could not be read (the caller reports `asyncio.error`).
 *
 * @param dump What {@link dump} returned with `asyncio: true`.
 * @param options See {@link TextFormatOptions}.
 * @returns The lines, without a trailing newline.
 */
export function formatAsyncio(dump: Pick<ProcessDump, 'asyncio' | 'asyncioTasks'>, options: TextFormatOptions = {}): string[] {
  const tasks = dump.asyncioTasks ?? [];
  if (dump.asyncio === null || dump.asyncio.error !== null) return [];
  if (!dump.asyncio.loopFound && tasks.length === 0) return [NO_LOOP];
  const skipped = dump.asyncio.skipped > 0 ? ` (${dump.asyncio.skipped} skipped)` : '';
  const lines = [`asyncio tasks: ${tasks.length}${skipped}`];
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const printed = new Set<number>();
  const visit = (task: AsyncTask, depth: number, path: Set<number>): void => {
    const pad = '    '.repeat(depth);
    if (path.has(task.id)) {
      lines.push(`${pad}Task ${task.id} ${JSON.stringify(task.name)} (cycle)`);
      return;
    }
    const thread = task.threadId === null ? '' : `, thread ${task.threadId}`;
    lines.push(`${pad}Task ${task.id} ${JSON.stringify(task.name)} (${task.state}${thread})`);
    for (const frame of task.frames) lines.push(...formatFrame(frame, options).map((l) => pad + l));
    if (printed.has(task.id)) return; // awaited by several: its subtree once
    printed.add(task.id);
    path.add(task.id);
    for (const child of task.awaiting) {
      const c = byId.get(child);
      if (c) visit(c, depth + 1, path);
    }
    path.delete(task.id);
  };
  for (const t of tasks) if (t.awaitedBy.length === 0) visit(t, 0, new Set());
  for (const t of tasks) if (!printed.has(t.id)) visit(t, 0, new Set());
  for (const note of dump.asyncio.notes) lines.push(`note: ${note}`);
  return lines;
}
