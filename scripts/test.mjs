#!/usr/bin/env node
// `npm test` (and .ci/run): sets the checkout up, then runs every check in
// order and stops at the first failure.
//
//   npm test                    stop at the first failing step
//   npm test -- --keep-going    run every step, then report all failures
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { emulatesArm64 } from './arm64.mjs';
import { crossCheck } from './cross-check.mjs';
import { endTmpScope, reapLeftovers, markRun, scopeTmp } from './leftovers.mjs';
import { header, main, npxRun, ROOT, run, seconds, StepError } from './lib.mjs';
import { setup } from './setup.mjs';
import { canSetUpWindows, testWindows, windowsPaths } from './windows.mjs';

const vitestReport = join(ROOT, '.cache', 'vitest-report.json');

const steps = [
  ['cargo fmt', () => run('cargo', ['fmt', '--all', '--check'])],
  ['cargo clippy', () => run('cargo', ['clippy', '--workspace', '--all-targets', '--', '-D', 'warnings'])],
  // Linux arm64, macOS and FreeBSD: type-checked and linted, not built (issue 21).
  ['cargo clippy, other platforms', crossCheck],
  // The Windows backend type-checks and lints clean too (cheap once built: the target's artifacts are kept).
  [
    'cargo clippy (x86_64-pc-windows-gnu)',
    () => {
      // A prerequisite that cannot be had fails the run, with the reason.
      if (!canSetUpWindows()) throw new StepError('cargo clippy (x86_64-pc-windows-gnu) needs the Wine set-up: apt-get, dpkg, go and rustup as root');
      run('cargo', ['clippy', '--target', 'x86_64-pc-windows-gnu', '--workspace', '--', '-D', 'warnings'], {
        env: { ...process.env, LIBNODE_PATH: windowsPaths().stub },
      });
    },
  ],
  ['tsc --noEmit', () => npxRun('tsc', ['--noEmit', '-p', 'tsconfig.json'])],
  ['eslint', () => npxRun('eslint', ['.'])],
  ['cargo test', () => run('cargo', ['test', '--workspace'])],
  // Linux arm64 under qemu-user (issue 21); setup has cross-built the addon.
  [
    'arm64 under qemu-user',
    () => {
      if (!emulatesArm64()) throw new StepError(`arm64 under qemu-user needs an x86-64 Linux host, not ${process.platform}-${process.arch}`);
      npxRun('vitest', ['run', '--config', 'vitest.arm64.config.ts']);
    },
  ],
  // The push tests' Grafana Pyroscope server: built once per machine (see the script).
  ['pyroscope server', () => run(process.execPath, ['scripts/pyroscope.mjs'])],
  [
    'vitest',
    () => {
      rmSync(vitestReport, { force: true });
      try {
        npxRun('vitest', ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestReport}`]);
      } finally {
        printVitestTotals();
      }
    },
  ],
  // Windows x64 under Wine (scripts/windows.mjs); says loudly when it cannot run here.
  [
    'windows (Wine)',
    () => {
      if (!canSetUpWindows()) throw new StepError('windows (Wine): this machine cannot set Wine up (needs apt-get, dpkg, go and rustup as root)');
      testWindows();
    },
  ],
];

function printVitestTotals() {
  if (!existsSync(vitestReport)) return;
  const r = JSON.parse(readFileSync(vitestReport, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
}

const keepGoing = process.argv.includes('--keep-going');

await main(async () => {
  const started = Date.now();
  const runId = markRun();
  // Every step's temporary files go to a directory of the run's own, removed at its end.
  const tmp = scopeTmp();
  console.log(`temporary files of this run: ${tmp.dir}`);
  const timings = [];
  const failures = [];
  try {
    await setup();
    for (const [i, [name, step]] of steps.entries()) {
      header(`[${i + 1}/${steps.length}] ${name}`);
      const t = Date.now();
      try {
        step();
      } catch (err) {
        if (!(err instanceof StepError)) throw err;
        failures.push(new StepError(`${name}: ${err.message}`, err.exitCode));
        if (!keepGoing) break;
      } finally {
        timings.push(`${name} ${seconds(Date.now() - t)}`);
      }
    }
  } finally {
    console.log(`\n${timings.join(', ')}`);
    console.log(`total ${seconds(Date.now() - started)}`);
    // The suite must leave no process behind, pass or fail.
    const left = await reapLeftovers(runId);
    if (left.length > 0) {
      failures.push(
        new StepError(
          `the run left ${left.length} process(es) behind (now killed):\n    ${left.map((p) => `${p.pid}: ${p.command}`).join('\n    ')}`,
        ),
      );
    }
    // Only once they are gone (one left behind may still have been writing); pass or fail.
    const files = endTmpScope(tmp);
    if (files.length > 0) {
      failures.push(
        new StepError(`${files.length} pyspy-* file(s) appeared in ${tmp.system} during the run, past its TMPDIR ${tmp.dir} (left for a look; another run on this machine may have made them):\n    ${files.join('\n    ')}`),
      );
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new StepError(`${failures.length} steps failed:\n  ${failures.map((f) => f.message).join('\n  ')}`);
  console.log('all checks passed');
});
