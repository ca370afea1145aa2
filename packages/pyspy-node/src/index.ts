/**
 * pyspy-node: a sampling profiler for CPython programs, from Node.
 *
 * - {@link dump} / {@link dumpSync}: every thread's Python stack, read once.
 * - {@link record}: sample a program until it exits, a duration runs out or
 *   a signal aborts; resolves with a {@link Profile} to encode or write as a
 *   flame graph, speedscope, raw, chrome trace or pprof file; with `push`,
 *   also streamed to a Grafana Pyroscope server window by window.
 * - {@link profileContinuously}: push a process, a command or every Python
 *   on the host to Grafana Pyroscope until stopped, with a handle (stats,
 *   `pushed`/`error` events, `stop()`).
 * - {@link sample}: the same sampling, streamed as per-interval batches.
 * - {@link top}: live per-function (or per-line) shares and times, as
 *   snapshots: what `pyspy-node top` shows.
 *
 * Every error is a {@link PyspyError} with a stable `code`.
 *
 * @example
 * import { dump, formatText, record } from 'pyspy-node';
 * process.stdout.write(formatText(await dump(4242)));
 * const profile = await record({ pid: 4242, duration: 10 });
 * await profile.writeFile('profile.svg');
 *
 * @module
 */
export {
  ContinuousProfiler,
  profileContinuously,
  type ContinuousEvents,
  type ContinuousOptions,
  type ContinuousSummary,
} from './continuous.js';
export { dump, dumpSync } from './dump.js';
export { dumpCore, type DumpCoreOptions } from './dump-core.js';
export { PyspyError, type ErrorCode } from './errors.js';
export { formatText, type TextFormatOptions } from './format/text.js';
export { formatJson, toJsonAsyncio, toJsonTraces, type JsonAsyncioDump, type JsonAsyncTask, type JsonFrame, type JsonStackTrace } from './format/json.js';
export { formatAsyncio } from './format/asyncio.js';
export { parsePid } from './pid.js';
export { Profile, type ProfileFormat, type StopReason, type TextProfileFormat } from './profile.js';
export { type PushOptions, type PushStats } from './push.js';
export { record, type Progress, type RecordOptions } from './record.js';
export { sample, type SampleOptions } from './sample.js';
export type { Batch, Stack, StackFrame, Stacks } from './stacks.js';
export { top, type TopOptions, type TopRow, type TopSnapshot, type TopSortKey } from './top.js';
export type { AsyncioStatus, AsyncTask, DumpOptions, Frame, LocalVariable, ProcessDump, ThreadStack, ThreadStatus } from './types.js';
