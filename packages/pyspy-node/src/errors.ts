/**
 * The one error type pyspy-node throws, and the codes it carries.
 *
 * @module
 */

/**
 * Every `code` a {@link PyspyError} can carry. Codes are stable: they are
 * never renamed, though new ones may be added.
 *
 * - `ENOPROCESS`: no process has that pid.
 * - `ENOTPYTHON`: the process is not a CPython interpreter pyspy-node can find.
 * - `EPERM`: the OS denied access to the process (run as root or grant
 *   `CAP_SYS_PTRACE`).
 * - `EUNSUPPORTED`: the Python version, platform or feature is not supported.
 * - `EEXITED`: the process exited while being read.
 * - `EREAD`: reading the process's memory failed.
 * - `EIO`: another OS-level failure inspecting the process.
 * - `EPAUSE`: the process could not be paused for a consistent read (try
 *   `nonblocking`).
 * - `ELAUNCH`: a command to profile could not be started, or exited before a
 *   Python interpreter came up in it.
 * - `ENOSAMPLES`: a profile with no samples cannot be encoded or written.
 * - `EFORMAT`: an unknown profile format.
 * - `EINVAL`: an argument is invalid (for example a pid that is not a
 *   positive integer).
 * - `EPUSH`: the Pyroscope server given to `push` could not be reached, or
 *   refused the first push (credentials, not a Pyroscope server).
 * - `EINTERNAL`: a bug in pyspy-node itself.
 * - `ENOBINDING`: the native addon for this platform is missing or failed to
 *   load.
 * - `EBADCORE`: a file given as a core file is not one, or is damaged or
 *   truncated.
 * - `ENOBINARY`: a binary a core file needs is missing (see `--executable`
 *   and `--sysroot`).
 */
export type ErrorCode =
  | 'ENOPROCESS'
  | 'ENOTPYTHON'
  | 'EPERM'
  | 'EUNSUPPORTED'
  | 'EEXITED'
  | 'EREAD'
  | 'EIO'
  | 'EPAUSE'
  | 'ELAUNCH'
  | 'ENOSAMPLES'
  | 'EFORMAT'
  | 'EINVAL'
  | 'EPUSH'
  | 'EINTERNAL'
  | 'ENOBINDING'
  | 'EBADCORE'
  | 'ENOBINARY';

/**
 * An error from pyspy-node, with a stable machine-readable {@link code}.
 *
 * @example
 * try {
 *   await dump(pid);
 * } catch (err) {
 *   if (err instanceof PyspyError && err.code === 'EPERM') console.error('try sudo');
 *   else throw err;
 * }
 */
export class PyspyError extends Error {
  /** Stable machine-readable code; see {@link ErrorCode}. */
  readonly code: ErrorCode;

  /**
   * @param code The stable code.
   * @param message One line for a person: what went wrong and what to do.
   * @param options `cause`, when this error wraps another.
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PyspyError';
    this.code = code;
  }
}

/**
 * Builds the {@link PyspyError} for an error the native binding returned as
 * data. A code this version does not know yet is kept as it is.
 *
 * @param error The binding's `{ code, message }`.
 * @returns The error to throw.
 */
export function fromBindingError(error: { code: string; message: string }): PyspyError {
  // The native side may learn a code before this union does; keep it
  // rather than hide it behind a generic one.
  return new PyspyError(error.code as ErrorCode, error.message);
}
