// Packaging end to end (issue 7). Packs the platform package and the main
// package with scripts/package.mjs from what `npm test` already built (no
// second build), checks what each package would publish, then installs the
// tarballs into a fresh project with no Rust toolchain on PATH and no network,
// and reads a live Python with the installed CLI (`npx pyspy-node dump`) and
// library (`dump()`).
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { bindingLoadError, PREBUILT_PLATFORMS } from '../../packages/pyspy-node/src/binding.js';
import {
  installTarballs,
  isolatedEnv,
  noNetworkPrefix,
  nodeFiles,
  packDependencies,
  runIsolated,
  toolchainOnPath,
  writeLibraryCheck,
} from '../../scripts/package-install.mjs';
import { hostPlatform, npmPack, PACKAGE_DIR, packageAll, platformPackages, type PackReport } from '../../scripts/package.mjs';
import { killAllChildren, loadMatrix, REPO_ROOT, spawnFixture, supportedInterpreters, type Interpreter } from '../helpers/pythons.js';

const NPM_DIR = path.join(REPO_ROOT, 'npm');
/** Keeps the npm command lines out of the test output. */
const quiet = (): void => undefined;
const HOST = hostPlatform();
const mainManifest = JSON.parse(readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  engines: Record<string, string>;
  dependencies?: Record<string, string>;
};

/** What the main package must ship: the compiled JS and types of every source file, the bin shim and the loader. */
function intendedMainFiles(): string[] {
  const src = path.join(PACKAGE_DIR, 'src');
  const sources = (readdirSync(src, { recursive: true }) as string[])
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const dist = sources.flatMap((f) => [`dist/${f.replace(/\.ts$/, '.js')}`, `dist/${f.replace(/\.ts$/, '.d.ts')}`]);
  return [...dist, 'bin/pyspy-node.js', 'binding/binding.cjs', 'binding/binding.d.cts', 'package.json'].sort();
}

/** `package/package.json` inside a tarball. */
function manifestInTarball(file: string): Record<string, unknown> {
  const tar = spawnSync('tar', ['-xzOf', file, 'package/package.json'], { encoding: 'utf8' });
  expect(tar.status, tar.stderr).toBe(0);
  return JSON.parse(tar.stdout) as Record<string, unknown>;
}

/** An interpreter from the matrix: the first of `ids` present, else the first supported one. */
function pickInterpreter(ids: string[]): Interpreter {
  const supported = supportedInterpreters(loadMatrix());
  const interp = ids.map((id) => supported.find((i) => i.id === id)).find(Boolean) ?? supported[0];
  if (!interp) throw new Error('no supported interpreter in the matrix: run test/pythons/install.sh');
  return interp;
}

let work: string;
let packed: ReturnType<typeof packageAll>;
let platformTarball: PackReport;
let mainTarball: PackReport;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'pyspy-node-install-'));
  // A copy of npm/ without binaries, so that packing here never writes into the
  // checkout; the script copies the addon `npm test` built into it.
  const npmDir = path.join(work, 'npm');
  for (const p of readdirSync(NPM_DIR)) {
    mkdirSync(path.join(npmDir, p), { recursive: true });
    for (const f of ['package.json', 'README.md']) copyFileSync(path.join(NPM_DIR, p, f), path.join(npmDir, p, f));
  }
  // allowDebug: on a shared checkout a debug build may have replaced the
  // release addon since setup; the package is the same either way.
  packed = packageAll({ build: false, outDir: path.join(work, 'pack'), npmDir, allowDebug: true, log: quiet });
  const binary = packed.binaries[0]!;
  console.log(
    `packed ${HOST}: addon ${(binary.size / 1024).toFixed(0)} KiB${binary.glibc ? `, needs glibc ${binary.glibc}` : ''}` +
      `${binary.debugInfo || binary.symtab ? ' (a debug build)' : ''}; ` +
      packed.packages.map((p) => `${path.basename(p.file!)} ${(p.size / 1024).toFixed(0)} KiB packed, ${(p.unpackedSize / 1024).toFixed(0)} KiB unpacked`).join('; '),
  );
  platformTarball = packed.packages.find((p) => p.name === `@pyspy-node/binding-${HOST}`)!;
  mainTarball = packed.packages.find((p) => p.name === mainManifest.name)!;
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

afterEach(killAllChildren);

describe('packages', () => {
  it('npm/ has one package per prebuilt platform, in step with the main package', () => {
    const platforms = platformPackages(NPM_DIR); // also checks name, version, main, files, engines
    expect(platforms.map((p) => p.platform)).toEqual([...PREBUILT_PLATFORMS].sort());
    for (const { platform, manifest } of platforms) {
      const [os, cpu, abi] = platform.split('-');
      expect(manifest.os, platform).toEqual([os]);
      expect(manifest.cpu, platform).toEqual([cpu]);
      if (abi === 'gnu') expect(manifest.libc, platform).toEqual(['glibc']);
      else if (abi === 'musl') expect(manifest.libc, platform).toEqual(['musl']);
      else expect(manifest.libc, platform).toBeUndefined();
      expect(manifest.publishConfig, platform).toEqual({ access: 'public' });
    }
  });

  it('npm pack --dry-run of each platform package lists only its binary, package.json and README', () => {
    for (const { platform, dir, binary } of platformPackages(NPM_DIR)) {
      const files = npmPack(dir, { dryRun: true, log: quiet }).files;
      // The binary is there only where it was built (npm run package) or downloaded (CI).
      expect(files.filter((f) => f !== binary), platform).toEqual(['README.md', 'package.json']);
    }
  });

  it('npm pack --dry-run of the main package lists only the compiled JS, its types, the bin shim and the loader', () => {
    expect(npmPack(PACKAGE_DIR, { dryRun: true, log: quiet }).files).toEqual(intendedMainFiles());
  });

  it('the platform tarball holds the addon, package.json and README', () => {
    expect(platformTarball.files).toEqual(['README.md', 'package.json', `pyspy-node.${HOST}.node`]);
    expect(manifestInTarball(platformTarball.file!)).toMatchObject({ name: `@pyspy-node/binding-${HOST}`, version: mainManifest.version });
  });

  it('the main tarball adds the README and depends optionally on every platform package', () => {
    expect(mainTarball.files).toEqual([...intendedMainFiles(), 'README.md'].sort());
    const manifest = manifestInTarball(mainTarball.file!);
    expect(manifest.optionalDependencies).toEqual(
      Object.fromEntries([...PREBUILT_PLATFORMS].sort().map((p) => [`@pyspy-node/binding-${p}`, mainManifest.version])),
    );
    expect(manifest.dependencies).toEqual(mainManifest.dependencies);
  });
});

describe('install without a Rust toolchain or network', () => {
  let env: NodeJS.ProcessEnv;
  let project: string;

  beforeAll(async () => {
    env = isolatedEnv(work);
    const deps = packDependencies(mainManifest, path.join(work, 'pack'));
    ({ project } = await installTarballs(work, [platformTarball.file!, mainTarball.file!, ...deps], env));
  });

  it('has no cargo, rustc or rustup on PATH', () => {
    expect(toolchainOnPath(env)).toEqual([]);
    const shell = spawnSync('/bin/sh', ['-c', 'command -v cargo || command -v rustc || command -v rustup'], { env, encoding: 'utf8' });
    expect(shell.stdout).toBe('');
    expect(shell.status).not.toBe(0);
  });

  it('has no network where a network namespace can be made', async (ctx) => {
    if (noNetworkPrefix().length === 0) ctx.skip('unshare -n is not allowed here; npm ran with --offline and a dead registry');
    const probe = await runIsolated(
      'node',
      ['-e', "fetch('https://registry.npmjs.org/').then(() => console.log('reached'), (e) => console.log('offline', e.cause?.code))"],
      { cwd: project, env },
    );
    expect(probe.stdout).toMatch(/^offline/);
  });

  it('installed the addon from its platform package only', () => {
    const modules = path.join(project, 'node_modules');
    expect(nodeFiles(modules)).toEqual([`@pyspy-node/binding-${HOST}/pyspy-node.${HOST}.node`]);
    expect(readdirSync(path.join(modules, '@pyspy-node'))).toEqual([`binding-${HOST}`]);
  });

  it('npx pyspy-node dump --pid reads a live Python', async () => {
    const fx = await spawnFixture(pickInterpreter(['debian-3.14']), 'dump_target.py', [], { via: 'shell' });
    const r = await runIsolated('npx', ['--no', '--', 'pyspy-node', 'dump', '--pid', String(fx.pid), '--json'], { cwd: project, env });
    expect(r.code, r.stderr).toBe(0);
    const threads = JSON.parse(r.stdout) as { thread_name: string | null; frames: { name: string }[] }[];
    expect(threads).toHaveLength(fx.report.thread_count);
    const busy = threads.find((t) => t.thread_name === fx.report.busy.name);
    expect(busy?.frames.map((f) => f.name)).toContain(fx.report.busy.shown);
  });

  it('the library dump() reads a live Python with the installed addon', async () => {
    const fx = await spawnFixture(pickInterpreter(['debian-3.11']), 'dump_target.py', [], { via: 'shell' });
    writeLibraryCheck(project);
    const r = await runIsolated('node', ['check.mjs', String(fx.pid)], { cwd: project, env: { ...env, NAPI_RS_ENFORCE_VERSION_CHECK: '1' } });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout) as {
      dump: { pid: number; pythonVersion: string; threads: { threadName: string | null; frames: { name: string }[] }[] };
      addons: string[];
    };
    expect(out.addons).toEqual([path.join(project, 'node_modules', `@pyspy-node/binding-${HOST}`, `pyspy-node.${HOST}.node`)]);
    expect(out.dump.pid).toBe(fx.pid);
    expect(out.dump.pythonVersion).toBe(fx.report.version_info.join('.'));
    expect(out.dump.threads).toHaveLength(fx.report.thread_count);
    const busy = out.dump.threads.find((t) => t.threadName === fx.report.busy.name);
    expect(busy?.frames.map((f) => f.name)).toContain(fx.report.busy.shown);
  });
});

describe('when the addon is missing or broken', () => {
  const env = (): NodeJS.ProcessEnv => isolatedEnv(mkdtempSync(path.join(work, 'env-')));
  /** A copy of the installed project, changed by `breakIt`; returns what `pyspy-node dump --pid 1` printed. */
  async function dumpIn(name: string, breakIt: (bindingDir: string) => void): Promise<string> {
    const project = path.join(work, name);
    cpSync(path.join(work, 'project'), project, { recursive: true, verbatimSymlinks: true });
    breakIt(path.join(project, 'node_modules', '@pyspy-node', `binding-${HOST}`));
    const r = await runIsolated('npx', ['--no', '--', 'pyspy-node', 'dump', '--pid', '1'], { cwd: project, env: env() });
    expect(r.code).toBe(1);
    return r.stderr;
  }

  it('names the platform and the package to install when the platform package is missing', async () => {
    const stderr = await dumpIn('no-binding', (dir) => rmSync(dir, { recursive: true }));
    expect(stderr).toContain(`no native addon installed for ${HOST}`);
    expect(stderr).toContain(`install the optional package @pyspy-node/binding-${HOST}`);
    expect(stderr).toContain('--omit=optional');
  });

  it('gives the reason when the installed addon does not load', async () => {
    const stderr = await dumpIn('bad-binding', (dir) => writeFileSync(path.join(dir, `pyspy-node.${HOST}.node`), 'not an addon'));
    expect(stderr).toContain(`native addon for ${HOST}`);
    expect(stderr).toContain(`(@pyspy-node/binding-${HOST}) did not load:`);
    expect(stderr).toMatch(/invalid ELF header|file too short|not a valid/i);
  });

  it('lists the prebuilt platforms on a platform without one', () => {
    const err = bindingLoadError(new Error('Cannot find native binding'), 'freebsd-arm64');
    expect(err.code).toBe('ENOBINDING');
    expect(err.message).toContain('no prebuilt native addon for freebsd-arm64');
    for (const p of PREBUILT_PLATFORMS) expect(err.message).toContain(p);
    expect(err.message).toContain('npm run build');
  });
});
