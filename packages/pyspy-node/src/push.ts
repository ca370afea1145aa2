/**
 * Continuous profiling into Grafana Pyroscope: the `push` option of
 * {@link record}. The windows are cut, encoded (pprof) and uploaded by
 * native threads; only counters and warning lines come back to JavaScript.
 *
 * @module
 */
import type { BindingPushOptions, BindingPushStats } from '../binding/binding.cjs';
import { PyspyError } from './errors.js';

/**
 * Where and how to push. Every `interval` seconds the samples of that window
 * are encoded as pprof (one series per process, labelled `service_name`,
 * the `tags`, `pid` and `command`) and sent to the server's
 * `push.v1.PusherService/Push` call, from a native thread with a bounded
 * queue (60 windows or 32 MiB; oldest dropped first) and retries with
 * backoff. Sampling never waits for the server.
 */
export interface PushOptions {
  /**
   * The server: `http[s]://[user:password@]host[:port][/prefix]` (user and
   * password: basic auth). `https` is verified against Mozilla's roots
   * (bundled), or only `caFile`'s; Linux builds only (`EUNSUPPORTED`
   * elsewhere).
   */
  url: string;
  /** PEM file of the only certificates to trust for an `https` server (a private CA). */
  caFile?: string;
  /** The `service_name` label. @default 'python' */
  appName?: string;
  /** More labels: names of letters, digits and `_`; not `service_name`, `pid`, `command`. */
  tags?: Record<string, string>;
  /** Seconds per window (0.1-3600). @default 10 */
  interval?: number;
  /** Bearer token (`Authorization: Bearer ...`). Not with credentials in `url`. */
  token?: string;
  /** Tenant id, sent as `X-Scope-OrgID`. */
  tenant?: string;
  /**
   * A server that cannot be reached at start (or answers 5xx) is not an
   * error: sampling starts, a warning says so, and windows are queued and
   * retried until it answers. A refusal (bad URL, 401/403/404) still is.
   * @default false
   */
  retryForever?: boolean;
  /**
   * Called with each warning line: one per kind of failure (server down,
   * HTTP 5xx, refused windows, queue full), again after a recovery.
   */
  onWarning?: (line: string) => void;
}

/** What pushing did; {@link Profile.push} has the final numbers. */
export interface PushStats {
  /** Windows the server accepted. */
  pushed: number;
  /** Request bytes the server accepted. */
  bytes: number;
  /** Stack samples in the accepted windows. */
  samples: number;
  /** Windows dropped unsent: the queue was full, or the server still failed at the end. */
  dropped: number;
  /** Windows the server refused for good (a 4xx answer). */
  failed: number;
  /** Failed sends that were retried. */
  retries: number;
}

/** The default `service_name`. */
export const DEFAULT_APP_NAME = 'python';

/**
 * Checks `push` and converts it for the binding (the native side checks
 * the URL and the label rules again).
 *
 * @throws {@link PyspyError} with code `EINVAL`.
 * @internal
 */
export function toBindingPush(push: PushOptions): BindingPushOptions {
  if (typeof push !== 'object' || push === null || typeof push.url !== 'string' || push.url === '') {
    throw new PyspyError('EINVAL', 'push.url must be the Pyroscope server URL, e.g. http://localhost:4040');
  }
  const tags: string[] = [];
  for (const [key, value] of Object.entries(push.tags ?? {})) {
    if (typeof value !== 'string') throw new PyspyError('EINVAL', `push.tags.${key} must be a string`);
    tags.push(`${key}=${value}`);
  }
  if (push.interval !== undefined && !(typeof push.interval === 'number' && push.interval >= 0.1 && push.interval <= 3600)) {
    throw new PyspyError('EINVAL', `push.interval must be from 0.1 to 3600 seconds, got ${String(push.interval)}`);
  }
  return {
    url: push.url,
    appName: push.appName ?? DEFAULT_APP_NAME,
    tags,
    ...(push.interval !== undefined ? { interval: push.interval } : {}),
    ...(push.token !== undefined ? { token: push.token } : {}),
    ...(push.tenant !== undefined ? { tenant: push.tenant } : {}),
    ...(push.retryForever !== undefined ? { retryForever: push.retryForever } : {}),
    ...(push.caFile !== undefined ? { caFile: push.caFile } : {}),
  };
}

/**
 * Splits the binding's stats into numbers and warning lines.
 *
 * @internal
 */
export function fromBindingPushStats(stats: BindingPushStats): { stats: PushStats; warnings: string[] } {
  const { pushed, bytes, samples, dropped, failed, retries } = stats;
  return { stats: { pushed, bytes, samples, dropped, failed, retries }, warnings: stats.warnings };
}
