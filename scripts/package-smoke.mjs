#!/usr/bin/env node
// Smoke test of the packed tarballs on any OS (the release workflow runs it
// on Linux, macOS and Windows): installs this machine's platform package and
// the main package from .cache/pack/ (scripts/package.mjs) into a fresh
// project with no Rust toolchain on PATH and npm offline, then runs
// `npx pyspy-node dump --pid` and the library's dump() on a live python3.
//
// On Linux both must read the stack. Elsewhere they may instead answer
// EUNSUPPORTED (not implemented on this OS yet) or EPERM (macOS without
// root), but the addon must load: ENOBINDING, or any other failure, fails.
//
//   node scripts/package-smoke.mjs [--pack-dir DIR]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { main, ROOT, StepError } from './lib.mjs';
import { hostPlatform, PACKAGE_DIR } from './package.mjs';
import { installTarballs, isolatedEnv, packDependencies, runIsolated, toolchainOnPath, which, writeLibraryCheck } from './package-install.mjs';

const FUNCTION = 'smoke_target_waits';
const PYTHON_CODE = `import os, time
def ${FUNCTION}():
    print("READY", os.getpid(), flush=True)
    while True:
        time.sleep(0.05)
${FUNCTION}()
`;

/** Starts python3 (python on Windows) in a function named FUNCTION; resolves with the child once it is there. */
function startPython() {
  const python = which('python3') ?? which('python');
  if (!python) throw new StepError('no python3 or python on PATH');
  const child = spawn(python, ['-c', PYTHON_CODE], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new StepError(`${python} did not print READY within 30s`)), 30_000);
    child.once('error', reject);
    child.once('exit', (code) => reject(new StepError(`${python} exited (code ${code}) before READY`)));
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (/READY \d+/.test(out)) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolvePromise(child);
      }
    });
  });
}

async function smoke(packDir) {
  const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8'));
  const host = hostPlatform();
  const tarballs = [`pyspy-node-binding-${host}-${manifest.version}.tgz`, `pyspy-node-${manifest.version}.tgz`].map((f) => join(packDir, f));
  const absent = tarballs.filter((t) => !existsSync(t));
  if (absent.length > 0) throw new StepError(`missing ${absent.join(', ')}: run \`npm run package\` first (files: ${readdirSync(packDir).join(', ')})`);

  const work = mkdtempSync(join(tmpdir(), 'pyspy-node-smoke-'));
  let python;
  try {
    const env = isolatedEnv(work);
    const reachable = toolchainOnPath(env);
    if (reachable.length > 0) throw new StepError(`the isolated PATH still reaches ${reachable.join(', ')}`);
    const deps = packDependencies(manifest, work);
    const { project } = await installTarballs(work, [...tarballs, ...deps], env);
    console.log(`installed ${tarballs.length} tarballs and ${deps.length} dependencies offline into ${project}, no Rust toolchain on PATH`);

    const version = await runIsolated('npx', ['--no', '--', 'pyspy-node', '--version'], { cwd: project, env });
    if (version.code !== 0 || version.stdout.trim() !== manifest.version) {
      throw new StepError(`npx pyspy-node --version: exit ${version.code}, printed ${JSON.stringify(version.stdout)}\n${version.stderr}`);
    }

    python = await startPython();
    const pid = String(python.pid);

    writeLibraryCheck(project);
    const lib = await runIsolated('node', ['check.mjs', pid], { cwd: project, env });
    const result = JSON.parse(lib.stdout.trim().split('\n').at(-1) || '{}');
    if (result.ok) {
      const names = result.dump.threads.flatMap((t) => t.frames.map((f) => f.name));
      if (!names.includes(FUNCTION)) throw new StepError(`dump() did not see ${FUNCTION}: ${JSON.stringify(result.dump)}`);
      console.log(`dump(): read ${result.dump.threads.length} thread(s) of Python ${result.dump.pythonVersion}`);
    } else if (process.platform !== 'linux' && ['EUNSUPPORTED', 'EPERM'].includes(result.code)) {
      console.log(`dump(): the addon loaded and answered ${result.code} (${result.message})`);
    } else {
      throw new StepError(`dump() failed: ${lib.stdout}\n${lib.stderr}`);
    }

    const cli = await runIsolated('npx', ['--no', '--', 'pyspy-node', 'dump', '--pid', pid], { cwd: project, env });
    if (cli.code === 0 && cli.stdout.includes(FUNCTION)) {
      console.log('npx pyspy-node dump: read the stack');
    } else if (process.platform !== 'linux' && cli.code === 1 && !/native addon/.test(cli.stderr) && result.code) {
      console.log(`npx pyspy-node dump: the addon loaded and refused: ${cli.stderr.trim()}`);
    } else {
      throw new StepError(`npx pyspy-node dump --pid ${pid}: exit ${cli.code}\n${cli.stdout}\n${cli.stderr}`);
    }
    console.log(`smoke test passed on ${host}`);
  } finally {
    python?.kill();
    rmSync(work, { recursive: true, force: true, maxRetries: 5 });
  }
}

await main(async () => {
  const { values } = parseArgs({ options: { 'pack-dir': { type: 'string' } } });
  await smoke(resolve(values['pack-dir'] ?? join(ROOT, '.cache', 'pack')));
});
