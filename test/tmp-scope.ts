/**
 * Vitest's global setup: a run started by vitest itself (a targeted
 * `npx vitest run FILE`) gets a temporary directory of its own, as
 * scripts/test.mjs gives `npm test`: TMPDIR points there for the test
 * workers and everything they start (Python's tempfile honours it), and it
 * is removed at the end with whatever killed fixtures left in it. A
 * `pyspy-*` entry that appears in the system's temporary directory meanwhile
 * fails the run (see scripts/leftovers.mjs).
 *
 * @module
 */
import { endTmpScope, scopeTmp, TMP_SCOPE } from '../scripts/leftovers.mjs';

export default function setup(): (() => void) | undefined {
  // Inside `npm test`: the whole run's directory is in force already, and the run checks it.
  if (process.env[TMP_SCOPE]) return undefined;
  const scope = scopeTmp();
  return () => {
    const left = endTmpScope(scope);
    if (left.length > 0) {
      throw new Error(`the tests left ${left.length} file(s) in ${scope.system}, past TMPDIR (now removed):\n    ${left.join('\n    ')}`);
    }
  };
}
