// Types for scripts/leftovers.mjs, which test/tmp-scope.ts imports.

/** Set while a run's temporary directory is in force: its path. */
export const TMP_SCOPE: string;
/** A run's temporary directory and what the system's held before it. */
export interface TmpScope {
  system: string;
  dir: string;
  before: Set<string>;
  previous: Record<string, string | undefined>;
}
/** Gives this process (and all it starts) a temporary directory of its own: sets TMPDIR. */
export function scopeTmp(): TmpScope;
/** Removes the run's directory, restores TMPDIR; returns the `pyspy-*` entries new in the system's (left in place). */
export function endTmpScope(scope: TmpScope): string[];
