#!/usr/bin/env node
// Builds a free-threaded CPython 3.13t (`--disable-gil`; no Debian package
// ships one) from Debian trixie's source tarball into a per-machine cache
// outside the checkout, for the free-threaded tests (issue 15). Reuses the
// build when it is there; a fresh machine pays a 23 MB download and 5-35
// minutes of compiling (2 CPUs, quiet to busy) once. Fails loudly (non-zero
// exit) when it cannot be built.
//
//   node scripts/freethreaded.mjs       print the interpreter's path (build if missing)
//
// PYSPY_PYTHON_313T=/path/to/python3.13t skips the build and uses that one.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { header, main, seconds, StepError } from './lib.mjs';

/** trixie's python3.13 (the 3.14/3.15 source pools were not served when tried). */
const DEBIAN_VERSION = '3.13.5-2+deb13u5';
const UPSTREAM = '3.13.5';
const POOL = 'http://deb.debian.org/debian/pool/main/p/python3.13';

/** Where the build lives (XDG cache, outside any checkout). */
export function freeThreadedPrefix() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'pyspy-node', `cpython-${UPSTREAM}t`);
}

/** The interpreter's path: $PYSPY_PYTHON_313T, else the cache's (built or not). */
export function freeThreadedPython() {
  return process.env.PYSPY_PYTHON_313T || join(freeThreadedPrefix(), 'bin', 'python3.13t');
}

function sh(script, cwd) {
  console.log(`$ ${script}`);
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, stdio: 'inherit' });
  if (r.error) throw new StepError(`free-threaded build: ${r.error.message}`);
  if (r.status !== 0) throw new StepError(`free-threaded build failed (${r.signal ?? `exit code ${r.status}`}) at: ${script}`);
}

async function download(url, file) {
  const res = await fetch(url).catch((err) => {
    throw new StepError(`cannot download ${url}: ${err.message}`);
  });
  if (!res.ok) throw new StepError(`cannot download ${url}: HTTP ${res.status}`);
  writeFileSync(file, Buffer.from(await res.arrayBuffer()));
}

/** Returns the interpreter's path, building it first when it is missing. */
export async function ensureFreeThreaded() {
  const python = freeThreadedPython();
  if (existsSync(python)) return python;
  if (process.env.PYSPY_PYTHON_313T) throw new StepError(`PYSPY_PYTHON_313T=${python} does not exist`);
  const prefix = freeThreadedPrefix();
  const work = `${prefix}.build`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  header(`free-threaded CPython: building ${UPSTREAM}t once into ${prefix} (5-35 minutes)`);
  const started = Date.now();
  const tarball = `python3.13_${UPSTREAM}.orig.tar.xz`;
  const dsc = `python3.13_${DEBIAN_VERSION}.dsc`;
  await download(`${POOL}/${encodeURIComponent(dsc)}`, join(work, dsc));
  await download(`${POOL}/${tarball}`, join(work, tarball));
  // The .dsc names the tarball's SHA-256: a truncated or altered download stops here.
  const want = new RegExp(`^ ([0-9a-f]{64}) \\d+ ${tarball.replace(/\./g, '\\.')}$`, 'm').exec(readFileSync(join(work, dsc), 'utf8'))?.[1];
  const got = createHash('sha256').update(readFileSync(join(work, tarball))).digest('hex');
  if (!want || want !== got) throw new StepError(`${tarball}: SHA-256 ${got} does not match the .dsc's ${want ?? '(none)'}`);
  sh(
    [
      `tar xJf ${tarball}`,
      `cd Python-${UPSTREAM}`,
      // Into a staging prefix first: a half-built tree is never taken for a cached one.
      `./configure --disable-gil --prefix=${prefix}.stage --without-ensurepip >configure.log`,
      'make -j"$(nproc)" >make.log 2>&1 || { tail -40 make.log; exit 1; }',
      'make install >install.log 2>&1 || { tail -40 install.log; exit 1; }',
    ].join(' && '),
    work,
  );
  const staged = join(`${prefix}.stage`, 'bin', 'python3.13t');
  const check = spawnSync(staged, ['-c', 'import sys; print(sys._is_gil_enabled())'], { encoding: 'utf8' });
  if (check.stdout.trim() !== 'False') throw new StepError(`${staged} is not free-threaded: ${check.stdout}${check.stderr}`);
  rmSync(prefix, { recursive: true, force: true });
  renameSync(`${prefix}.stage`, prefix);
  rmSync(work, { recursive: true, force: true });
  console.log(`free-threaded CPython: built ${python} in ${seconds(Date.now() - started)}`);
  return python;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(async () => {
    console.log(await ensureFreeThreaded());
  });
}
