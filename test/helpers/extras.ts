/**
 * What test/extras/install.sh provides beyond the interpreters (it writes
 * .cache/extras.json): PyPI wheels unpacked per CPython minor outside the
 * checkout (numpy for the locals test, uvloop for the asyncio tests), with a
 * copy inside each chroot root.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { REPO_ROOT, type Interpreter } from './pythons.js';

const EXTRAS = path.join(REPO_ROOT, '.cache/extras.json');

/** A package of extras.json. */
export type ExtraPackage = 'numpy' | 'uvloop';

type Extras = Record<ExtraPackage, Record<string, { dir: string; version: string } | { error: string }>>;

function extras(): Extras {
  if (!existsSync(EXTRAS)) throw new Error(`${EXTRAS} is missing: run test/extras/install.sh (npm test does)`);
  return JSON.parse(readFileSync(EXTRAS, 'utf8')) as Extras;
}

/**
 * The PYTHONPATH that makes `pkg` importable by `interp` (as the
 * interpreter sees it: inside its root for a chroot), or why there is none
 * (no wheel for that minor on PyPI). Throws when the install step was not run.
 */
export function extraPath(interp: Interpreter, pkg: ExtraPackage): { path: string; version: string } | { missing: string } {
  const minor = interp.version.split('.').slice(0, 2).join('.');
  const entry = extras()[pkg]?.[minor];
  if (!entry) return { missing: `test/extras/install.sh did not consider ${pkg} for ${minor} (run it again)` };
  if ('error' in entry) return { missing: entry.error };
  if (!interp.root) return { path: entry.dir, version: entry.version };
  const inside = `/opt/pyspy-node-${pkg}-${minor}`;
  if (!existsSync(path.join(interp.root, inside, pkg))) {
    throw new Error(`${pkg} is not in the chroot ${interp.root}${inside}: run test/extras/install.sh`);
  }
  return { path: inside, version: entry.version };
}
