#!/usr/bin/env node
// Gets a checkout ready to run: npm dependencies, the native addon (release),
// the TypeScript package, the test interpreters and the tests' extras (zsh,
// numpy wheels, the free-threaded CPython 3.13t, qemu-user with arm64 CPython and Node; not for `npm start`). Safe to run again; each
// step is quick when there is nothing to do. `npm start` and `npm test` call it.
//
//   node scripts/setup.mjs           everything
//   node scripts/setup.mjs --debug   a debug build of the addon instead
import { fileURLToPath } from 'node:url';

import { emulatesArm64, ensureArm64 } from './arm64.mjs';
import { ensureCheckTargets } from './cross-check.mjs';
import { ensureFreeThreaded } from './freethreaded.mjs';
import { canSetUpWindows, ensureWindows } from './windows.mjs';
import { ensureNodeModules, header, installPythons, installTestExtras, main, npmRun, seconds } from './lib.mjs';

/**
 * Runs every setup step (`extras`: also what only the tests need, see
 * test/extras/install.sh); returns whether test/pythons/install.sh ran.
 */
export async function setup({ debug = false, extras = true } = {}) {
  const started = Date.now();
  header('setup: npm dependencies');
  ensureNodeModules();
  header(`setup: native addon (${debug ? 'debug' : 'release'})`);
  npmRun(debug ? 'build:native:debug' : 'build:native');
  header('setup: TypeScript package');
  npmRun('build:ts');
  header('setup: Python interpreters');
  const pythons = installPythons();
  if (extras) {
    header('setup: test extras (zsh, numpy wheels)');
    installTestExtras();
    // Built from source once per machine (5-35 minutes); a failure stops setup.
    header('setup: free-threaded CPython 3.13t');
    console.log(await ensureFreeThreaded());
    // Wine, Windows Node and CPython, and the cross-built addon (issue 20); a failure stops setup.
    header('setup: Windows x64 under Wine');
    if (canSetUpWindows()) ensureWindows();
    else console.log('setup: WINDOWS TESTS CANNOT RUN HERE: Wine needs apt-get, dpkg, go and rustup as root; npm test fails its Windows steps');
    // qemu-user, arm64 CPython and Node, the cross-built addon (npm run test:arm64).
    header('setup: Rust targets of the other platforms, Linux arm64 under qemu-user');
    ensureCheckTargets();
    if (emulatesArm64()) ensureArm64();
    else console.log(`not on x86-64 Linux (${process.platform}-${process.arch}): no arm64 emulation set up; npm test says so`);
  }
  console.log(`\nsetup done in ${seconds(Date.now() - started)}`);
  return pythons;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(() => setup({ debug: process.argv.includes('--debug') }));
}
