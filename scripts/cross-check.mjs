#!/usr/bin/env node
// Type-checks and lints the workspace for the platforms this machine cannot
// run (issue 21): Linux arm64 (also run under qemu-user: scripts/arm64.mjs),
// macOS x86-64 and arm64, FreeBSD x86-64. `cargo clippy` only (no linking:
// macOS needs Apple's SDK for that), lib and bin targets (the tests are
// Linux x86-64's). Adds the Rust targets with rustup once (~10 s each).
// A warm run costs about a second; after a change to a crate, up to a
// minute or so (every target re-checks the crates that depend on it).
//
//   node scripts/cross-check.mjs            add missing targets, then clippy each
//   node scripts/cross-check.mjs --install  add missing targets only
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { header, main, run, seconds, StepError } from './lib.mjs';

export const CHECK_TARGETS = ['aarch64-unknown-linux-gnu', 'x86_64-apple-darwin', 'aarch64-apple-darwin', 'x86_64-unknown-freebsd'];

/** Adds the targets rustup lacks. */
export function ensureCheckTargets() {
  const r = spawnSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' });
  if (r.status !== 0) throw new StepError(`rustup target list failed: ${r.stderr ?? r.error?.message}`);
  const missing = CHECK_TARGETS.filter((t) => !r.stdout.split('\n').includes(t));
  if (missing.length > 0) run('rustup', ['target', 'add', ...missing]);
}

/** `cargo clippy --target T --workspace -- -D warnings` for every target. */
export function crossCheck() {
  ensureCheckTargets();
  for (const target of CHECK_TARGETS) {
    const started = Date.now();
    header(`clippy --target ${target}`);
    run('cargo', ['clippy', '--target', target, '--workspace', '--', '-D', 'warnings']);
    console.log(`${target}: clean in ${seconds(Date.now() - started)}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(() => (process.argv.includes('--install') ? ensureCheckTargets() : crossCheck()));
}
