#!/usr/bin/env node
// Gets a checkout ready to run: npm dependencies, the native addon (release),
// the TypeScript package, and the test interpreters. Safe to run again; each
// step is quick when there is nothing to do. `npm start` and `npm test` call it.
//
//   node scripts/setup.mjs           everything
//   node scripts/setup.mjs --debug   a debug build of the addon instead
import { fileURLToPath } from 'node:url';

import { ensureNodeModules, header, installPythons, main, npmRun, seconds } from './lib.mjs';

/** Runs every setup step; returns whether test/pythons/install.sh ran. */
export async function setup({ debug = false } = {}) {
  const started = Date.now();
  header('setup: npm dependencies');
  ensureNodeModules();
  header(`setup: native addon (${debug ? 'debug' : 'release'})`);
  npmRun(debug ? 'build:native:debug' : 'build:native');
  header('setup: TypeScript package');
  npmRun('build:ts');
  header('setup: Python interpreters');
  const pythons = installPythons();
  console.log(`\nsetup done in ${seconds(Date.now() - started)}`);
  return pythons;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(() => setup({ debug: process.argv.includes('--debug') }));
}
