// Helpers shared by setup.mjs, start.mjs and test.mjs. Node built-ins only:
// these run before `npm ci` on a fresh clone.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** A failed step; `main` prints its message and exits with `exitCode`. */
export class StepError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Prints a step header. */
export function header(title) {
  console.log(`\n==> ${title}`);
}

/** Formats milliseconds as seconds. */
export function seconds(ms) {
  return `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Runs a command with inherited stdio from the repo root; throws StepError
 * when it fails.
 */
export function run(cmd, args, options = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  const result = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', ...options });
  if (result.error) throw new StepError(`${cmd}: ${result.error.message}`);
  if (result.status !== 0) {
    const why = result.signal ? `signal ${result.signal}` : `exit code ${result.status}`;
    throw new StepError(`\`${[cmd, ...args].join(' ')}\` failed (${why})`, result.status || 1);
  }
}

/** Runs an npm script. */
export function npmRun(script, args = []) {
  run(npm, ['run', '--silent', script, ...(args.length ? ['--', ...args] : [])]);
}

/** Runs a binary from node_modules/.bin. */
export function npxRun(bin, args) {
  run(npx, ['--no-install', bin, ...args]);
}

/**
 * Installs the npm dependencies when node_modules is missing or older than
 * package-lock.json (npm records its last install in node_modules/.package-lock.json).
 */
export function ensureNodeModules() {
  const lock = join(ROOT, 'package-lock.json');
  const installed = join(ROOT, 'node_modules', '.package-lock.json');
  const stale =
    !existsSync(installed) ||
    (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs) ||
    statSync(join(ROOT, 'package.json')).mtimeMs > statSync(installed).mtimeMs;
  if (!stale) {
    console.log('node_modules is up to date');
    return;
  }
  run(npm, existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
}

/**
 * Installs the test interpreters with test/pythons/install.sh when it exists.
 * Returns false (after a warning) when there is no such script.
 */
export function installPythons() {
  const script = join(ROOT, 'test', 'pythons', 'install.sh');
  if (!existsSync(script)) {
    console.log('test/pythons/install.sh not found; using the system python3');
    return false;
  }
  run('bash', [script]);
  return true;
}

/** Runs test/extras/install.sh (zsh and numpy for some end-to-end tests), when present. */
export function installTestExtras() {
  const script = join(ROOT, 'test', 'extras', 'install.sh');
  if (!existsSync(script)) return;
  run('bash', [script]);
}

/**
 * Picks an interpreter for the demo: $PYSPY_PYTHON, else the newest
 * supported, unchrooted entry of .cache/pythons/matrix.json, else
 * /usr/bin/python3. Returns the argv prefix to run it.
 */
export function demoPython() {
  if (process.env.PYSPY_PYTHON) return [process.env.PYSPY_PYTHON];
  const matrix = join(ROOT, '.cache', 'pythons', 'matrix.json');
  if (existsSync(matrix)) {
    try {
      const entries = JSON.parse(readFileSync(matrix, 'utf8'));
      const usable = entries
        .filter((e) => e && e.supported !== false && !e.root && Array.isArray(e.argv) && e.argv.length > 0)
        .filter((e) => existsSync(e.argv[0]))
        .sort((a, b) => compareVersions(b.version, a.version));
      if (usable.length > 0) return usable[0].argv;
    } catch (err) {
      console.log(`ignoring ${matrix}: ${err.message}`);
    }
  }
  return ['/usr/bin/python3'];
}

function compareVersions(a = '0', b = '0') {
  const pa = String(a).split('.').map(Number);
  const pb = String(b).split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Starts `argv`, resolves with the child once it prints a line equal to
 * `word` on stdout; rejects if it exits or stays silent for `timeoutMs`.
 */
export function startAndWaitFor(argv, word, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new StepError(`${argv.join(' ')} did not print "${word}" within ${seconds(timeoutMs)}`));
    }, timeoutMs);
    const onExit = (code, signal) => {
      clearTimeout(timer);
      reject(new StepError(`${argv.join(' ')} exited (${signal ?? `code ${code}`}) before printing "${word}"`));
    };
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new StepError(`${argv[0]}: ${err.message}`));
    });
    child.on('exit', onExit);
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      if (buffered.split('\n').some((line) => line.trim() === word)) {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.stdout.resume();
        resolve(child);
      }
    });
  });
}

/** Runs `fn`, printing a StepError's message (not its stack) and setting the exit code. */
export async function main(fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof StepError) {
      console.error(`\nError: ${err.message}`);
      process.exitCode = err.exitCode;
    } else {
      console.error(err);
      process.exitCode = 1;
    }
  }
}
