// Running Windows programs under Wine for the Windows tests: Windows Node
// with the cross-built addon (the CLI), and the Windows CPython 3.14; on
// Windows itself, the same programs natively (see NATIVE).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { devNull, tmpdir } from 'node:os';
import path from 'node:path';

// @ts-expect-error -- a plain .mjs script without types
import { toWindowsPath, wineEnv, windowsPaths } from '../../scripts/windows.mjs';

export interface WinPaths {
  wine: string;
  node: string;
  python: string;
  addon: string;
  prefix: string;
}

export const ROOT = path.resolve(import.meta.dirname, '../..');
/**
 * On Windows itself (the release workflow's Windows job) the same tests run
 * natively: this Node, the addon in packages/pyspy-node/binding, and the
 * CPython named by PYSPY_WINDOWS_PYTHON.
 */
export const NATIVE = process.platform === 'win32';
export const paths: WinPaths = NATIVE
  ? { wine: '', node: process.execPath, python: process.env.PYSPY_WINDOWS_PYTHON ?? '', addon: '', prefix: '' }
  : (windowsPaths() as WinPaths);
export const env: NodeJS.ProcessEnv = NATIVE ? process.env : (wineEnv(paths) as NodeJS.ProcessEnv);
/** A path as the Windows programs see it (Wine's Z: drive; itself on Windows). */
export const win: (p: string) => string = NATIVE ? (p) => p : (toWindowsPath as (p: string) => string);
export const CLI = path.join(ROOT, 'packages/pyspy-node/bin/pyspy-node.js');
export const FIXTURES = path.join(ROOT, 'test/fixtures');

/** What is missing for these tests (empty: all there). */
export function missing(): string[] {
  if (NATIVE) return paths.python && existsSync(paths.python) ? [] : [`PYSPY_WINDOWS_PYTHON=${paths.python}`];
  return [paths.wine, paths.node, paths.python, paths.addon].filter((p) => !existsSync(p));
}

/** `exe args` under Wine, or natively on Windows. */
function command(exe: string, args: string[]): [string, string[]] {
  return NATIVE ? [exe, args] : [paths.wine, [exe, ...args]];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in Windows Node under Wine. Its stdout and stderr go to
 * files: Windows Node writes nothing to a pipe under Wine.
 */
export function runCli(args: string[], options: { streams?: boolean } = {}): CliResult {
  return runNode(CLI, args, options);
}

/**
 * Runs a script in Windows Node under Wine, output through files (see
 * runCli); with `streams: false`, stdout and stderr are /dev/null instead.
 */
export function runNode(script: string, args: string[], { streams = true }: { streams?: boolean } = {}): CliResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'pyspy-wine-cli-'));
  const out = openSync(streams ? path.join(dir, 'out') : devNull, 'w');
  const err = openSync(streams ? path.join(dir, 'err') : devNull, 'w');
  try {
    const r = spawnSync(...command(paths.node, [win(script), ...args]), {
      env,
      stdio: ['ignore', out, err],
      timeout: 90_000,
    });
    const read = (name: string) => (streams ? readFileSync(path.join(dir, name), 'utf8') : '');
    return {
      code: r.status,
      stdout: read('out'),
      stderr: read('err') + (r.error ? `\n${r.error.message}` : ''),
    };
  } finally {
    closeSync(out);
    closeSync(err);
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface WinFixture<R> {
  child: ChildProcess;
  /** The Windows pid (Wine's, not Linux's). */
  pid: number;
  report: R;
  reportPath: string;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

/**
 * Starts a fixture in the Windows CPython with `--report FILE` and waits
 * for its READY line. Its stdout is a pipe: the Windows CPython cannot
 * start with a file as stdout under Wine 8 ("init_sys_streams").
 */
export async function spawnFixture<R extends { pid: number }>(script: string, args: string[]): Promise<WinFixture<R>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pyspy-wine-fx-'));
  dirs.push(dir);
  const reportPath = path.join(dir, 'report.json');
  const child = spawn(...command(paths.python, [win(path.join(FIXTURES, script)), ...args, '--report', win(reportPath)]), {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script}: no READY within 60 s; stderr: ${err}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before READY; stderr: ${err}`));
    });
  });
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as R;
  return { child, pid: report.pid, report, reportPath };
}

/**
 * Kills every fixture started (the Wine processes; wineserver -k follows at
 * the end of the run) and removes their report folders.
 */
export async function killFixtures(): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
