/**
 * pyspy-node: read the Python stacks of a running CPython process from Node.
 *
 * @example
 * import { dump, formatText } from 'pyspy-node';
 * process.stdout.write(formatText(await dump(4242)));
 *
 * @module
 */
export { dump, dumpSync } from './dump.js';
export { PyspyError, type ErrorCode } from './errors.js';
export { formatText, type TextFormatOptions } from './format/text.js';
export { formatJson, toJsonTraces, type JsonFrame, type JsonStackTrace } from './format/json.js';
export { parsePid } from './pid.js';
export type { DumpOptions, Frame, LocalVariable, ProcessDump, ThreadStack } from './types.js';
