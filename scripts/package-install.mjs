// Installs packed pyspy-node tarballs (scripts/package.mjs) into a fresh
// project the way a user without Rust would, but with no network at all: for
// the install e2e test (test/e2e/install.test.ts) and the release workflow's
// smoke test (scripts/package-smoke.mjs). Node built-ins only.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

import { ROOT } from './lib.mjs';

const win = process.platform === 'win32';
/** Programs that mean a Rust toolchain is reachable. */
export const TOOLCHAIN = ['cargo', 'rustc', 'rustup'];
/** A registry nobody listens on: any request npm tries fails at once. */
const DEAD_REGISTRY = 'http://127.0.0.1:9/';

/** The full path of `name` on `pathVar` (adding `.exe`/`.cmd` on Windows), or null. */
export function which(name, pathVar = process.env.PATH ?? '') {
  const names = win ? [`${name}.exe`, `${name}.cmd`, name] : [name];
  for (const dir of pathVar.split(delimiter).filter(Boolean)) {
    for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
  }
  return null;
}

/**
 * An environment for `workDir/project` with no Rust toolchain on PATH and no
 * way to reach a registry: HOME, the npm cache and npm's user config all live
 * in `workDir`, every inherited `npm_*`/`CARGO*`/`RUSTUP*` variable is
 * dropped, npm is offline and its registry is a closed port.
 *
 * On Linux and macOS, PATH is one folder holding links to node, npm, npx and
 * sh (npx runs commands through `sh`), nothing else. On Windows it is the inherited PATH without the folders that
 * hold cargo, rustc or rustup.
 */
export function isolatedEnv(workDir) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|cargo|rustup|rustc|rust_|node_options$)/i.test(k)) continue;
    env[k] = v;
  }
  if (win) {
    env.PATH = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((dir) => !TOOLCHAIN.some((t) => existsSync(join(dir, `${t}.exe`))))
      .join(delimiter);
  } else {
    const bin = join(workDir, 'bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(process.execPath, join(bin, 'node'));
    for (const tool of ['npm', 'npx']) {
      const found = which(tool) ?? join(dirname(process.execPath), tool);
      symlinkSync(realpathSync(found), join(bin, tool));
    }
    symlinkSync('/bin/sh', join(bin, 'sh'));
    env.PATH = bin;
  }
  const home = join(workDir, 'home');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(workDir, 'npmrc'), '');
  Object.assign(env, {
    HOME: home,
    USERPROFILE: home,
    npm_config_userconfig: join(workDir, 'npmrc'),
    npm_config_cache: join(workDir, 'npm-cache'),
    npm_config_registry: DEAD_REGISTRY,
    npm_config_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    NO_COLOR: '1',
  });
  return env;
}

/** The toolchain programs that `env` can still find (should be none). */
export function toolchainOnPath(env) {
  return TOOLCHAIN.map((t) => which(t, env.PATH)).filter(Boolean);
}

let unshare;
/**
 * The command prefix that runs a program without any network, where the OS
 * allows it: `unshare -n` (a new, empty network namespace; needs root or
 * CAP_SYS_ADMIN). An empty prefix elsewhere; npm is offline regardless.
 */
export function noNetworkPrefix() {
  if (unshare === undefined) {
    const path = process.platform === 'linux' ? which('unshare') : null;
    unshare = path && spawnSync(path, ['-n', 'true']).status === 0 ? [path, '-n', '--'] : [];
  }
  return unshare;
}

/**
 * Runs `cmd args` in `cwd` with `env`, without network when possible; resolves
 * with `{ code, signal, stdout, stderr }`. Kills it after `timeoutMs`.
 */
export function runIsolated(cmd, args, { cwd, env, timeoutMs = 120_000 }) {
  const prefix = noNetworkPrefix();
  // npm and npx are .cmd files on Windows, which only a shell can start.
  const shell = win && (cmd === 'npm' || cmd === 'npx');
  const argv = [...prefix, cmd, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env, shell, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')} did not finish within ${timeoutMs / 1000}s\n${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Packs the main package's runtime dependencies (and theirs) from the
 * workspace's node_modules into `outDir`, so that an offline install finds
 * them; returns the tarball paths.
 */
export function packDependencies(manifest, outDir) {
  const done = new Set();
  const tarballs = [];
  const visit = (deps) => {
    for (const name of Object.keys(deps ?? {})) {
      if (done.has(name)) continue;
      done.add(name);
      const dir = [join(ROOT, 'packages', 'pyspy-node', 'node_modules', name), join(ROOT, 'node_modules', name)].find((d) =>
        existsSync(join(d, 'package.json')),
      );
      if (!dir) throw new Error(`${name} is not installed in the workspace: run npm ci`);
      const r = spawnSync(win ? 'npm.cmd' : 'npm', ['pack', '--json', '--ignore-scripts', `--pack-destination=${outDir}`], {
        cwd: dir,
        shell: win,
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`npm pack in ${dir} failed:\n${r.stderr}`);
      tarballs.push(join(outDir, JSON.parse(r.stdout)[0].filename));
      visit(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies);
    }
  };
  visit(manifest.dependencies);
  return tarballs;
}

/**
 * Creates `workDir/project` and installs `tarballs` (the platform package,
 * the main package and its dependencies) into it with `npm install
 * --offline`. Resolves with npm's result; throws when npm fails.
 */
export async function installTarballs(workDir, tarballs, env) {
  const project = join(workDir, 'project');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'install-check', private: true, type: 'module' }, null, 2)}\n`);
  const result = await runIsolated('npm', ['install', '--offline', '--no-audit', '--no-fund', ...tarballs], { cwd: project, env });
  if (result.code !== 0) {
    throw new Error(`npm install --offline failed (exit code ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { project, ...result };
}

/** The `.node` files under `dir`, recursively, as paths relative to it. */
export function nodeFiles(dir, prefix = '') {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...nodeFiles(join(dir, e.name), rel));
    else if (e.name.endsWith('.node')) out.push(rel);
  }
  return out;
}

/**
 * Writes `check.mjs` into `project`: `node check.mjs PID` calls the library's
 * `dump(PID)` and prints one JSON line, `{ ok: true, dump, addons }` (addons:
 * the `.node` files this process mapped, on Linux) or `{ ok: false, code,
 * message }` with exit code 1.
 */
export function writeLibraryCheck(project) {
  const path = join(project, 'check.mjs');
  writeFileSync(
    path,
    `import { readFileSync } from 'node:fs';
import { dump } from 'pyspy-node';

try {
  const result = await dump(Number(process.argv[2]));
  const maps = process.platform === 'linux' ? readFileSync('/proc/self/maps', 'utf8').split('\\n') : [];
  const addons = [...new Set(maps.filter((l) => l.endsWith('.node')).map((l) => l.slice(l.indexOf('/'))))];
  console.log(JSON.stringify({ ok: true, dump: result, addons }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, code: err.code, message: err.message }));
  process.exitCode = 1;
}
`,
  );
  return path;
}
