/**
 * The push flags of `pyspy-node record` (`--push URL` and its companions,
 * `--all-pythons`): their definitions, checks, conversion to
 * {@link PushOptions}, and the lines the CLI prints about pushing.
 *
 * @module
 * @internal
 */
import { type Command, InvalidArgumentError } from 'commander';

import { UsageError } from './cli-error.js';
import { DEFAULT_APP_NAME, type PushOptions, type PushStats } from './push.js';

/** The push flags, as commander parses them. */
export interface PushFlags {
  push?: string;
  appName?: string;
  tag: [string, string][];
  pushInterval?: number;
  pushToken?: string;
  pushTenant?: string;
  pushRetryForever?: boolean;
  pushCa?: string;
  allPythons?: boolean;
  match?: string;
  uid?: number;
}

/** Adds the push flags to `record`. */
export function addPushOptions(command: Command, parsePositive: (text: string, what: string) => number): Command {
  return command
    .option(
      '--push <url>',
      'also push the samples to a Grafana Pyroscope server every --push-interval seconds (http[s]://[user:password@]host[:port]); no file is written unless -o is given',
    )
    .option('--app-name <name>', `the service_name label in Pyroscope (default: ${DEFAULT_APP_NAME})`)
    .option('--tag <key=value>', 'an extra label for the pushed series (repeatable)', collectTag, [])
    .option('--push-interval <seconds>', 'seconds per pushed window (default: 10)', (text) => parsePositive(text, 'push interval'))
    .option('--push-token <token>', 'bearer token for the Pyroscope server')
    .option('--push-tenant <id>', 'tenant id for the Pyroscope server (X-Scope-OrgID)')
    .option('--push-ca <file>', 'with an https server: trust only the certificates of this PEM file (a private CA)')
    .option(
      '--push-retry-forever',
      'start even if the server cannot be reached yet (or answers 5xx): windows are queued and retried until it answers',
    )
    .option('--all-pythons', 'with --push: every CPython process on this machine (new ones within a second), each its own series; no file')
    .option('--match <text>', 'with --all-pythons: only processes whose command line contains this text')
    .option('--uid <uid>', 'with --all-pythons: only processes of this user id', parseUid);
}

/** Refuses push companions without `--push`, and host-wide filters without `--all-pythons`. */
export function checkPushFlags(flags: PushFlags): void {
  if (
    flags.push === undefined &&
    (flags.appName !== undefined ||
      flags.tag.length > 0 ||
      flags.pushInterval !== undefined ||
      flags.pushToken !== undefined ||
      flags.pushTenant !== undefined ||
      flags.pushRetryForever !== undefined ||
      flags.pushCa !== undefined)
  ) {
    throw new UsageError('--app-name, --tag, --push-interval, --push-token, --push-tenant, --push-ca and --push-retry-forever need --push <url>');
  }
  if (!flags.allPythons && (flags.match !== undefined || flags.uid !== undefined)) {
    throw new UsageError('--match and --uid need --all-pythons');
  }
}

/** The `push` option for `flags` (which must have `--push`). */
export function pushOptionsOf(flags: PushFlags, onWarning: (line: string) => void): PushOptions {
  return {
    url: flags.push ?? '',
    ...(flags.appName !== undefined ? { appName: flags.appName } : {}),
    tags: Object.fromEntries(flags.tag),
    ...(flags.pushInterval !== undefined ? { interval: flags.pushInterval } : {}),
    ...(flags.pushToken !== undefined ? { token: flags.pushToken } : {}),
    ...(flags.pushTenant !== undefined ? { tenant: flags.pushTenant } : {}),
    ...(flags.pushRetryForever ? { retryForever: true } : {}),
    ...(flags.pushCa !== undefined ? { caFile: flags.pushCa } : {}),
    onWarning,
  };
}

/** `every N seconds as service_name=NAME`, for the start lines. */
export function pushTarget(flags: PushFlags): string {
  const every = flags.pushInterval ?? 10;
  return `${redactUrl(flags.push ?? '')} every ${every} second${every === 1 ? '' : 's'} as service_name=${flags.appName ?? DEFAULT_APP_NAME}`;
}

/** The end-of-run push summary; the URL without credentials. */
export function pushLine(stats: PushStats, url: string): string {
  const where = redactUrl(url);
  const kib = (stats.bytes / 1024).toFixed(1);
  const parts = [`Pushed ${stats.pushed} window${stats.pushed === 1 ? '' : 's'} (${stats.samples} samples, ${kib} KiB) to ${where}`];
  if (stats.dropped > 0) parts.push(`dropped ${stats.dropped}`);
  if (stats.failed > 0) parts.push(`refused ${stats.failed}`);
  if (stats.retries > 0) parts.push(`retried sends ${stats.retries}`);
  return parts.join('; ');
}

/** `url` without the password of `user:password@`. */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/)[^/@]*@/, '$1***@');
}

function parseUid(text: string): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(value)) throw new InvalidArgumentError('The uid must be a non-negative integer.');
  return value;
}

/** Collects repeated `--tag key=value` options. */
function collectTag(text: string, previous: [string, string][]): [string, string][] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`Expected key=value, got '${text}'.`);
  return [...previous, [text.slice(0, eq), text.slice(eq + 1)]];
}
