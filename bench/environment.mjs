// What `npm run bench` needs around its measurements: the machine's
// description, the project's setup, py-spy in a virtualenv of its own, the
// targets from the interpreter matrix, and proc mounted in the chroots that
// CPython's sampler runs in (undone at the end). bench/run.mjs drives them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freeThreadedPython } from '../scripts/freethreaded.mjs';

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trimEnd() : null;
}

function isMountPoint(dir) {
  const real = fs.realpathSync(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === real);
}

export function describeMachine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: Number(sh('nproc', [])) || os.availableParallelism(),
    cpuModel: model,
    memory: sh('free', ['-h']) ?? `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: sh('uname', ['-srvm']) ?? `${os.type()} ${os.release()}`,
    os: /PRETTY_NAME="(.*)"/.exec(fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '')?.[1] ?? os.type(),
    node: process.version,
  };
}

/** The checkout's revision, marked when the measured code has uncommitted changes. */
export function gitRevision(root) {
  const head = sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  if (!head) return null;
  const dirty = sh('git', ['-C', root, 'status', '--porcelain', '--', 'crates', 'packages/pyspy-node/src']);
  return dirty ? `${head} + uncommitted changes in crates/ or packages/pyspy-node/src` : head;
}

export function runSetup({ root, log, die }) {
  log('setup: node scripts/setup.mjs (npm deps, release addon, TypeScript, test interpreters)');
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'setup.mjs')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) die('`node scripts/setup.mjs` failed; see its output above');
}

/** py-spy `version` from PyPI in a virtualenv under `cache`: { bin, version } or { error }. */
export function ensurePySpy({ cache, version: wanted, root, log }) {
  const venv = path.join(cache, 'venv');
  const bin = path.join(venv, 'bin', 'py-spy');
  const version = () => sh(bin, ['--version'])?.replace(/^py-spy\s*/, '');
  if (fs.existsSync(bin) && version() === wanted) return { bin, version: wanted };
  const pythons = ['/usr/bin/python3', 'python3', ...['3.12.1', '3.11.7'].map((v) => `${os.homedir()}/.pyenv/versions/${v}/bin/python3`)];
  const errors = [];
  for (const py of pythons) {
    fs.rmSync(venv, { recursive: true, force: true });
    fs.mkdirSync(cache, { recursive: true });
    const mk = spawnSync(py, ['-m', 'venv', venv], { encoding: 'utf8' });
    if (mk.status !== 0) {
      errors.push(`${py} -m venv: ${(mk.stderr || mk.error?.message || '').trim().split('\n').pop()}`);
      continue;
    }
    log(`py-spy: pip install py-spy==${wanted} into ${path.relative(root, venv)}`);
    const pip = spawnSync(path.join(venv, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', `py-spy==${wanted}`], {
      encoding: 'utf8',
    });
    if (pip.status !== 0) {
      errors.push(`pip install py-spy==${wanted}: ${(pip.stderr || '').trim().split('\n').slice(-2).join(' ')}`);
      break; // the network, not the interpreter
    }
    if (version() === wanted) return { bin, version: wanted };
    errors.push(`${bin} --version did not print ${wanted}`);
  }
  return { error: `py-spy ${wanted} could not be installed: ${errors.join('; ')}` };
}

/** Picks the targets from .cache/pythons/matrix.json (`freeThreaded`: the id of the 3.13t build). */
export function pickTargets(wanted, { root, freeThreaded, die }) {
  const file = path.join(root, '.cache', 'pythons', 'matrix.json');
  if (!fs.existsSync(file)) die(`${path.relative(root, file)} is missing: run \`bash test/pythons/install.sh\` (or drop --no-setup)`);
  const matrix = JSON.parse(fs.readFileSync(file, 'utf8')).filter((e) => e.supported !== false);
  const byId = new Map(matrix.map((e) => [e.id, e]));
  const notes = [];
  let ids = wanted;
  if (!ids) {
    const pyenv312 = matrix.find((e) => e.kind === 'pyenv' && /^3\.12\./.test(e.version));
    ids = [pyenv312 ? pyenv312.id : 'debian-3.11', 'debian-3.15', freeThreaded];
    if (!pyenv312) notes.push('no pyenv 3.12 in the matrix: the host target is Debian 3.11');
  }
  const targets = [];
  for (const id of ids) {
    if (id === freeThreaded) {
      const binary = freeThreadedPython();
      if (fs.existsSync(binary)) targets.push({ id, version: '3.13.5t', kind: 'freethreaded', argv: [binary], root: null, workloads: ['depth42'], maxOnly: true });
      else notes.push(`target ${id}: ${binary} is missing (node scripts/freethreaded.mjs builds it): skipped`);
      continue;
    }
    const e = byId.get(id);
    if (!e) {
      notes.push(`target ${id} is not in ${path.relative(root, file)} (run test/pythons/install.sh): skipped`);
      continue;
    }
    if (!fs.existsSync(e.binary)) {
      notes.push(`target ${id}: ${e.binary} is missing: skipped`);
      continue;
    }
    targets.push({ id: e.id, version: e.version, kind: e.kind, argv: e.argv, root: e.root });
  }
  return { targets, notes };
}

/** proc mounted on ROOT/proc for the samplers run inside a chroot; all undone by release(). */
export class ProcMounts {
  #mounts = [];
  #log;

  constructor(log) {
    this.#log = log;
  }

  ensure(root) {
    const dir = path.join(root, 'proc');
    let created = false;
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir);
      created = true;
    }
    if (isMountPoint(dir)) return;
    const r = spawnSync('mount', ['-t', 'proc', 'proc', dir], { encoding: 'utf8' });
    if (r.status !== 0) {
      if (created) fs.rmdirSync(dir);
      throw new Error(`mount -t proc proc ${dir}: ${(r.stderr || r.error?.message || '').trim()}`);
    }
    this.#mounts.push({ dir, created });
    this.#log(`mounted proc on ${dir} (CPython's sampler reads /proc inside the chroot); unmounted at the end`);
  }

  release() {
    while (this.#mounts.length) {
      const { dir, created } = this.#mounts.pop();
      const r = spawnSync('umount', [dir], { encoding: 'utf8' });
      if (r.status !== 0) spawnSync('umount', ['-l', dir]);
      if (created) {
        try {
          fs.rmdirSync(dir);
        } catch {
          // leave it
        }
      }
    }
  }
}
