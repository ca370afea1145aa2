#!/usr/bin/env node
// `npm run package`: builds this machine's native addon (release: LTO,
// stripped) and the TypeScript package, then packs the platform packages
// (npm/<platform>/) and the main package (packages/pyspy-node) as tarballs in
// .cache/pack/, ready for `npm publish <tarball>`.
//
//   node scripts/package.mjs               build, then pack
//   node scripts/package.mjs --no-build    pack what is already built
//   options:
//     --all          every platform package must have its binary (the release
//                    job, after `napi artifacts` put them in npm/)
//     --out DIR      where the tarballs go (default .cache/pack)
//     --npm-dir DIR  the platform package folders (default npm)
//     --allow-debug  accept an unstripped binary (tests only)
//     --json         print a JSON summary instead of the table
//
// The main package's optionalDependencies (one per npm/<platform>/, at the
// main version) are written into the packed package.json only: the source
// package.json leaves them out, so that installing the workspace never asks
// the registry for platform packages (see packMain).
//
// Progress goes to stderr; the summary (table or JSON) to stdout.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { main, ROOT, StepError } from './lib.mjs';

/** The main package. */
export const PACKAGE_DIR = join(ROOT, 'packages', 'pyspy-node');
/** Where `napi build` (npm run build:native) writes this machine's addon. */
const BUILD_DIR = join(PACKAGE_DIR, 'binding');

const win = process.platform === 'win32';

/** Logs a line of progress on stderr. */
function stderrLog(line) {
  console.error(line);
}

/**
 * Runs a command from `cwd` and returns its stdout. With `passthrough`, its
 * output goes to our stderr as it runs; otherwise its stderr is kept and shown
 * only when it fails. Throws StepError on failure.
 */
function exec(cmd, args, { cwd = ROOT, passthrough = false, log = stderrLog } = {}) {
  log(`$ ${[cmd, ...args].join(' ')}`);
  // npm is npm.cmd on Windows, which only a shell can start.
  const quoted = win ? args.map((a) => (/[\s"&|<>^]/.test(a) ? `"${a}"` : a)) : args;
  const r = spawnSync(win && cmd === 'npm' ? 'npm.cmd' : cmd, quoted, {
    cwd,
    shell: win,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', passthrough ? 2 : 'pipe', passthrough ? 'inherit' : 'pipe'],
  });
  if (r.error) throw new StepError(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new StepError(`\`${[cmd, ...args].join(' ')}\` failed (exit code ${r.status})\n${r.stderr ?? ''}`);
  }
  return r.stdout ?? '';
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * This machine's platform as napi-rs names it (`linux-x64-gnu`,
 * `darwin-arm64`, `win32-x64-msvc`, ...).
 */
export function hostPlatform() {
  if (process.platform === 'linux') {
    const glibc = process.report?.getReport()?.header?.glibcVersionRuntime;
    return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (process.platform === 'win32') return `win32-${process.arch}-msvc`;
  return `${process.platform}-${process.arch}`;
}

/**
 * The platform packages in `npmDir`, sorted by name: `{ platform, dir,
 * manifest, binary }`, where `binary` is the `.node` file the package ships.
 * Checks each manifest against the main package; throws StepError naming the
 * field to fix.
 */
export function platformPackages(npmDir = join(ROOT, 'npm')) {
  const mainManifest = readJson(join(PACKAGE_DIR, 'package.json'));
  const prefix = mainManifest.napi?.packageName ?? mainManifest.name;
  const binaryName = mainManifest.napi?.binaryName ?? 'index';
  const found = readdirSync(npmDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(npmDir, e.name, 'package.json')))
    .map((e) => e.name)
    .sort();
  if (found.length === 0) throw new StepError(`no platform packages in ${npmDir}`);
  return found.map((platform) => {
    const dir = join(npmDir, platform);
    const manifest = readJson(join(dir, 'package.json'));
    const binary = `${binaryName}.${platform}.node`;
    const expect = (what, actual, wanted) => {
      if (JSON.stringify(actual) !== JSON.stringify(wanted)) {
        throw new StepError(
          `${relative(ROOT, join(dir, 'package.json'))}: ${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}` +
            (what === 'version' ? ' (run `npx napi version --package-json-path packages/pyspy-node/package.json --npm-dir npm`)' : ''),
        );
      }
    };
    expect('name', manifest.name, `${prefix}-${platform}`);
    expect('version', manifest.version, mainManifest.version);
    expect('main', manifest.main, binary);
    expect('files', manifest.files, [binary]);
    expect('engines', manifest.engines, mainManifest.engines);
    return { platform, dir, manifest, binary };
  });
}

/** Section names of an ELF file (empty for anything else). */
function elfSections(bytes) {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1) return [];
  const shoff = Number(bytes.readBigUInt64LE(0x28));
  const shentsize = bytes.readUInt16LE(0x3a);
  const shnum = bytes.readUInt16LE(0x3c);
  const shstrndx = bytes.readUInt16LE(0x3e);
  const header = (i) => shoff + i * shentsize;
  if (shstrndx >= shnum || header(shnum) > bytes.length) return [];
  const strtab = Number(bytes.readBigUInt64LE(header(shstrndx) + 0x18));
  const names = [];
  for (let i = 0; i < shnum; i++) {
    const start = strtab + bytes.readUInt32LE(header(i));
    const end = bytes.indexOf(0, start);
    names.push(bytes.toString('latin1', start, end));
  }
  return names;
}

/**
 * Facts about a built addon: its size and, for an ELF file, whether it still
 * carries symbols or debug info and the newest glibc symbol version it needs
 * (from `objdump -T`, or `readelf --dyn-syms` for a foreign architecture;
 * null when neither tool is on PATH).
 */
export function describeBinary(path) {
  const bytes = readFileSync(path);
  const sections = elfSections(bytes);
  const info = { path, size: bytes.length, elf: sections.length > 0, symtab: false, debugInfo: false, glibc: null };
  if (!info.elf) return info;
  info.symtab = sections.includes('.symtab');
  info.debugInfo = sections.some((s) => s.startsWith('.debug_'));
  const symbols = [['objdump', '-T'], ['readelf', '-W', '--dyn-syms']]
    .map(([tool, ...args]) => spawnSync(tool, [...args, path], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }))
    .find((r) => r.status === 0);
  if (symbols) {
    const versions = [...symbols.stdout.matchAll(/GLIBC_(\d+)\.(\d+)(?:\.(\d+))?/g)].map((m) => [+m[1], +m[2], +(m[3] ?? 0)]);
    versions.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    const max = versions.at(-1);
    if (max) info.glibc = max[2] ? max.join('.') : `${max[0]}.${max[1]}`;
  }
  return info;
}

/**
 * `npm pack --json` of `dir` (or its dry run); returns npm's report for it.
 * `log` receives the command line.
 */
export function npmPack(dir, { outDir, dryRun = false, log = stderrLog } = {}) {
  const args = ['pack', '--json', '--ignore-scripts', dryRun ? '--dry-run' : `--pack-destination=${outDir}`];
  const [report] = JSON.parse(exec('npm', args, { cwd: dir, log }));
  return {
    name: report.name,
    version: report.version,
    file: dryRun ? null : join(outDir, report.filename),
    size: report.size,
    unpackedSize: report.unpackedSize,
    files: report.files.map((f) => f.path).sort(),
  };
}

/**
 * The files of the main package's dist/ that no source explains: left over
 * from a source file that was deleted or renamed since. `tsc` never removes
 * them, so they would be packed.
 */
export function staleBuildOutput(files) {
  return files.filter((f) => {
    if (!f.startsWith('dist/')) return false;
    const stem = f.slice('dist/'.length).replace(/(\.d\.ts|\.js)(\.map)?$/, '');
    return !existsSync(join(PACKAGE_DIR, 'src', `${stem}.ts`));
  });
}

/**
 * Packs the main package into `outDir`. npm decides the files (the `files`
 * field); they are copied to a staging folder with the repository README, and
 * the staged package.json gains `optionalDependencies` on every platform
 * package at the main version.
 */
export function packMain(outDir, platforms, { log = stderrLog } = {}) {
  const listed = npmPack(PACKAGE_DIR, { dryRun: true, log }).files;
  const stale = staleBuildOutput(listed);
  if (stale.length > 0) {
    throw new StepError(
      `stale build output would be packed (${stale.join(', ')}): run \`rm -rf packages/pyspy-node/dist && npm run build:ts\``,
    );
  }
  const stage = mkdtempSync(join(tmpdir(), 'pyspy-node-stage-'));
  try {
    for (const f of listed) {
      mkdirSync(dirname(join(stage, f)), { recursive: true });
      copyFileSync(join(PACKAGE_DIR, f), join(stage, f));
    }
    if (!listed.some((f) => /^readme(\.|$)/i.test(f))) copyFileSync(join(ROOT, 'README.md'), join(stage, 'README.md'));
    const manifest = readJson(join(PACKAGE_DIR, 'package.json'));
    manifest.optionalDependencies = Object.fromEntries(platforms.map((p) => [p.manifest.name, manifest.version]));
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return { ...npmPack(stage, { outDir, log }), optionalDependencies: manifest.optionalDependencies };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Builds (unless `build` is false) and packs. Returns `{ outDir, binaries,
 * packages }`: the binaries packed (see describeBinary) and, per tarball,
 * npm's report (name, version, file, size, unpackedSize, files), the
 * platform packages first. Progress goes to `log` (default: stderr).
 */
export function packageAll({
  build = true,
  all = false,
  outDir = join(ROOT, '.cache', 'pack'),
  npmDir = join(ROOT, 'npm'),
  allowDebug = false,
  log = stderrLog,
} = {}) {
  if (build) {
    exec('npm', ['run', 'build:native'], { passthrough: true, log });
    exec('npm', ['run', 'build:ts'], { passthrough: true, log });
  }
  const platforms = platformPackages(npmDir);

  // This machine's addon, as `npm run build:native` left it.
  const host = platforms.find((p) => p.platform === hostPlatform());
  const built = host && join(BUILD_DIR, host.binary);
  if (host && existsSync(built)) {
    log(`copying ${relative(ROOT, built)} to ${host.dir}`);
    copyFileSync(built, join(host.dir, host.binary));
  } else if (build) {
    throw new StepError(`npm run build:native did not produce ${host ? relative(ROOT, built) : `an addon for ${hostPlatform()}`}`);
  }

  const ready = platforms.filter((p) => existsSync(join(p.dir, p.binary)));
  const missing = platforms.filter((p) => !ready.includes(p)).map((p) => p.platform);
  if (ready.length === 0) throw new StepError(`no platform package in ${npmDir} has its binary: run without --no-build`);
  if (all && missing.length > 0) throw new StepError(`binaries missing for ${missing.join(', ')} (--all)`);
  if (missing.length > 0) log(`not packing ${missing.join(', ')}: no binary (built in CI)`);

  const binaries = ready.map((p) => ({ platform: p.platform, ...describeBinary(join(p.dir, p.binary)) }));
  for (const b of binaries) {
    if (!allowDebug && (b.symtab || b.debugInfo)) {
      throw new StepError(`${b.path} is not a stripped release build (it has ${b.debugInfo ? 'debug info' : 'a symbol table'}): run without --no-build`);
    }
  }

  mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync(outDir)) if (f.endsWith('.tgz')) rmSync(join(outDir, f));
  const packages = ready.map((p) => npmPack(p.dir, { outDir, log }));
  packages.push(packMain(outDir, platforms, { log }));
  return { outDir, binaries, packages };
}

function kib(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function printSummary({ outDir, binaries, packages }) {
  console.log(`tarballs in ${relative(process.cwd(), outDir) || '.'}:`);
  const rows = packages.map((p) => [basename(p.file), kib(p.size), kib(p.unpackedSize), `${p.files.length} files`]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(`  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`);
  for (const b of binaries) {
    const glibc = b.glibc ? `, needs glibc ${b.glibc}` : '';
    console.log(`${b.platform}: ${basename(b.path)} ${kib(b.size)}${glibc}${b.symtab || b.debugInfo ? ' (NOT stripped)' : ''}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(() => {
    const { values } = parseArgs({
      options: {
        'no-build': { type: 'boolean', default: false },
        all: { type: 'boolean', default: false },
        out: { type: 'string' },
        'npm-dir': { type: 'string' },
        'allow-debug': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
    const result = packageAll({
      build: !values['no-build'],
      all: values.all,
      outDir: resolve(values.out ?? join(ROOT, '.cache', 'pack')),
      npmDir: resolve(values['npm-dir'] ?? join(ROOT, 'npm')),
      allowDebug: values['allow-debug'],
    });
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else printSummary(result);
  });
}
