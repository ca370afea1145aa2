/**
 * Vitest's global setup: a run started by vitest itself (a targeted
 * `npx vitest run FILE`) gets a temporary directory of its own, as
 * scripts/test.mjs gives `npm test`: TMPDIR points there for the test
 * workers and everything they start (Python's tempfile honours it), and it
 * is removed at the end with whatever killed fixtures left in it. A
 * `pyspy-*` entry that appears in the system's temporary directory meanwhile
 * fails the run (see scripts/leftovers.mjs), unless PYSPY_NODE_TMP_WARN is
 * set: on a machine where other checkouts run their tests at the same time,
 * their files cannot be told from this run's.
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
      console.error(
        `${left.length} pyspy-* file(s) appeared in ${scope.system} during the tests, past their TMPDIR (left for a look; another run on this machine may have made them):\n    ${left.join('\n    ')}`,
      );
      // An error thrown here is printed, but leaves vitest's exit status 0.
      if (!process.env.PYSPY_NODE_TMP_WARN) process.exitCode = 1;
    }
  };
}
