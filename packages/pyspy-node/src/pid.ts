/**
 * Checking and parsing process ids.
 *
 * @module
 */
import { PyspyError } from './errors.js';

/** The largest pid a Linux `pid_t` can hold. */
const PID_MAX = 2 ** 31 - 1;

/**
 * Throws unless `pid` is an integer from 1 to 2^31 - 1.
 *
 * @param pid The value to check.
 * @throws {@link PyspyError} with code `EINVAL`.
 */
export function assertPid(pid: unknown): asserts pid is number {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > PID_MAX) {
    throw new PyspyError('EINVAL', `invalid pid ${describe(pid)}: expected an integer from 1 to ${PID_MAX}`);
  }
}

/**
 * Parses a pid typed by a person: decimal (`4242`) or hexadecimal (`0x1092`).
 *
 * @param text The text to parse; surrounding spaces are ignored.
 * @returns The pid.
 * @throws {@link PyspyError} with code `EINVAL` for anything else.
 */
export function parsePid(text: string): number {
  const trimmed = text.trim();
  let pid = Number.NaN;
  if (/^[0-9]+$/.test(trimmed)) pid = Number.parseInt(trimmed, 10);
  else if (/^0[xX][0-9a-fA-F]+$/.test(trimmed)) pid = Number.parseInt(trimmed.slice(2), 16);
  if (!(pid >= 1 && pid <= PID_MAX)) {
    throw new PyspyError(
      'EINVAL',
      `invalid pid ${JSON.stringify(text)}: expected a positive integer up to ${PID_MAX}, in decimal or 0x-hex`,
    );
  }
  return pid;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  return String(value);
}
