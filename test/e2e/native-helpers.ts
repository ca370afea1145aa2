/**
 * Helpers for the `--native` end-to-end tests: building the fixture's C
 * extension (test/fixtures/native/pyspy_native_ext.c) with gcc against the
 * target interpreter's own headers, and checking merged stacks.
 *
 * Headers: a pyenv build's `include/pythonX.Y`; the host's
 * `/usr/include/pythonX.Y` for Debian's own 3.11; for the other Debian
 * builds (2.7 and 3.9 in place, 3.13+ in chroots), the `libpythonX.Y-dev` packages that
 * `crates/pyspy-cpython/scripts/lib.sh` unpacks under
 * `.cache/pyspy-cpython-offsets/debian/root/` (fetched with its
 * `debian_headers` when not cached yet).
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'vitest';

import { FIXTURES_DIR, REPO_ROOT, type Interpreter, type RunningFixture } from '../helpers/pythons.js';

/** The extension's source, and the module name Python imports. */
export const EXT_SOURCE = path.join(FIXTURES_DIR, 'native', 'pyspy_native_ext.c');
/** The file the extension is built into (what `dump --native` reports as a frame's module). */
export const EXT_FILE = 'pyspy_native_ext.so';
/** The fixture script, relative to test/fixtures. */
export const NATIVE_FIXTURE = 'native/native_target.py';

/** `X.Y` of an interpreter. */
export function minorVersion(interp: Interpreter): string {
  return interp.version.split('.').slice(0, 2).join('.');
}

/** The interpreters the native tests run on: every one `dump` supports (2.7, 3.6-3.15). */
export function nativeInterpreters(matrix: Interpreter[]): Interpreter[] {
  return matrix.filter((i) => i.supported && !i.debug);
}

const DEBIAN_DEV_ROOT = path.join(REPO_ROOT, '.cache/pyspy-cpython-offsets/debian/root');

/** `-I` directories with `Python.h` for `interp`, fetching Debian's headers if needed. */
export function includeDirs(interp: Interpreter): string[] {
  const ver = minorVersion(interp);
  if (interp.kind === 'pyenv') {
    // 3.6 and 3.7 carry their ABI flag: include/python3.6m.
    const base = path.join(path.dirname(path.dirname(interp.binary)), 'include', `python${ver}`);
    const dir = [base, `${base}m`].find((d) => existsSync(path.join(d, 'Python.h')));
    if (dir) return [dir];
    throw new Error(`${interp.id}: no Python.h in ${base}(m)`);
  }
  if (interp.kind === 'debian-host' && existsSync(`/usr/include/python${ver}/Python.h`)) {
    return [`/usr/include/python${ver}`];
  }
  const root = debianDevRoot(interp) ?? fetchDebianHeaders(interp);
  // Debian's pythonX.Y/pyconfig.h includes <x86_64-linux-gnu/pythonX.Y/pyconfig.h>.
  return [path.join(root, 'usr/include', `python${ver}`), path.join(root, 'usr/include')];
}

/** An unpacked `pythonX.Y-dev` root: the exact package version when there, else any of that minor. */
function debianDevRoot(interp: Interpreter): string | null {
  const ver = minorVersion(interp);
  if (!existsSync(DEBIAN_DEV_ROOT)) return null;
  const roots = readdirSync(DEBIAN_DEV_ROOT)
    .filter((d) => d.startsWith(`python${ver}-dev-`))
    .filter((d) => existsSync(path.join(DEBIAN_DEV_ROOT, d, 'usr/include', `python${ver}`, 'Python.h')));
  const exact = interp.packages?.[`python${ver}-minimal`];
  const pick = roots.find((d) => exact !== undefined && d === `python${ver}-dev-${exact.replace(/:/g, '%3a')}`) ?? roots.sort().at(-1);
  return pick === undefined ? null : path.join(DEBIAN_DEV_ROOT, pick);
}

/** Runs lib.sh's `debian_headers` (private apt state, Debian mirror) and returns the root it unpacked. */
function fetchDebianHeaders(interp: Interpreter): string {
  const ver = minorVersion(interp);
  const lib = path.join(REPO_ROOT, 'crates/pyspy-cpython/scripts/lib.sh');
  try {
    return execFileSync('bash', ['-c', `source "$1" && debian_headers "$2" >&2 && echo "$DEB_ROOT"`, 'bash', lib, ver], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(
      `${interp.id}: no Python ${ver} headers under ${DEBIAN_DEV_ROOT} and fetching libpython${ver}-dev failed ` +
        `(crates/pyspy-cpython/scripts/lib.sh debian_headers ${ver}):\n${stderr}`,
    );
  }
}

/** A built extension: where it is for the host and for the interpreter. */
export interface BuiltExtension {
  /** Host directory holding {@link EXT_FILE}. */
  hostDir: string;
  /** The same directory as the interpreter sees it (inside its chroot). */
  dir: string;
  /** The gcc command line, for failure messages. */
  command: string;
  /** Removes the directory. */
  remove(): void;
}

/**
 * Compiles the extension for `interp` into a fresh directory (inside its
 * chroot when it has one). `cflags` default to `-O2 -g` (DWARF line tables);
 * pass `['-O2']` for symbols only.
 */
export function buildExtension(interp: Interpreter, cflags: string[] = ['-O2', '-g']): BuiltExtension {
  const base = interp.root ? path.join(interp.root, 'tmp') : os.tmpdir();
  const hostDir = mkdtempSync(path.join(base, 'pyspy-native-ext-'));
  const dir = interp.root ? `/tmp/${path.basename(hostDir)}` : hostDir;
  const args = [
    '-shared',
    '-fPIC',
    ...cflags,
    ...includeDirs(interp).map((d) => `-I${d}`),
    '-o',
    path.join(hostDir, EXT_FILE),
    EXT_SOURCE,
  ];
  const command = `gcc ${args.join(' ')}`;
  try {
    execFileSync('gcc', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (err) {
    rmSync(hostDir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? String(err);
    throw new Error(`${interp.id}: building the C extension failed: ${command}\n${stderr}`);
  }
  return { hostDir, dir, command, remove: () => rmSync(hostDir, { recursive: true, force: true }) };
}

/** What test/fixtures/native/native_target.py writes before printing READY. */
export interface NativeTargetReport {
  pid: number;
  version_info: [number, number, number];
  /** The extension's path as the interpreter sees it. */
  ext: string;
  thread_count: number;
  threads: {
    name: 'c-busy' | 'callback' | 'churn';
    ident: number;
    native_id: number;
    /** Python frames, innermost first, from `sys._current_frames()`. */
    frames: { name: string; filename: string; line: number }[];
  }[];
}

/** A frame of a dump in the shape both the CLI's JSON and the library give. */
export interface SeenFrame {
  name: string;
  filename: string;
  line: number;
  module: string | null;
}

/** `name` for a Python frame, `name [module]` for a native one: for readable assertions. */
export function describeFrame(f: SeenFrame): string {
  return f.module === null ? f.name : `${f.name} [${f.module}]`;
}

/**
 * The frames of a merged stack that matter to the fixture: every Python
 * frame and every frame of the extension, in order. Native frames of other
 * binaries (the C library's sleep, the vDSO) are dropped, but only before
 * the first Python frame: returns `null` when one sits anywhere else,
 * where only the interpreter (hidden) belongs.
 */
export function pythonAndExtension(frames: SeenFrame[]): string[] | null {
  const firstPython = frames.findIndex((f) => f.module === null);
  const out: string[] = [];
  for (const [i, f] of frames.entries()) {
    if (f.module === null || f.module === EXT_FILE) out.push(describeFrame(f));
    else if (firstPython !== -1 && i > firstPython) return null;
  }
  return out;
}

/** The native fixture, running. */
export type Fixture = RunningFixture<NativeTargetReport>;

/** How the callback thread's C frames are described. */
const CALL_BACK = `pyspy_native_call_back [${EXT_FILE}]`;

/** A thread of a merged dump, from the CLI's JSON or the library. */
export interface SeenThread {
  name: string | null;
  osThreadId: number | null;
  frames: SeenFrame[];
}

/** The threads of `dump --native --json` output. */
export function fromCliJson(stdout: string): SeenThread[] {
  return (JSON.parse(stdout) as Record<string, unknown>[]).map((t) => ({
    name: t.thread_name as string | null,
    osThreadId: t.os_thread_id as number | null,
    frames: (t.frames as Record<string, unknown>[]).map((f) => ({
      name: f.name as string,
      filename: f.filename as string,
      line: f.line as number,
      module: f.module as string | null,
    })),
  }));
}

/** The thread named `name` (which must be there). */
export function thread(threads: SeenThread[], name: string): SeenThread {
  const t = threads.find((x) => x.name === name);
  expect(t, `thread "${name}" in ${JSON.stringify(threads.map((x) => x.name))}`).toBeDefined();
  return t!;
}

/** The fixture's Python frames of a thread, by name, innermost first. */
export function reported(fx: Fixture, name: string): { name: string; filename: string }[] {
  return fx.report.threads.find((t) => t.name === name)!.frames.map(({ name, filename }) => ({ name, filename }));
}

/**
 * Checks the merged stacks of a dump against the fixture's own report:
 * the callback thread is cb_inner, the C callback, cb_middle, the C callback,
 * cb_outer, then threading's frames; the busy thread is in the C spin, under
 * ext_spin, under c_busy_caller. `lines`: the extension has line tables.
 */
export function expectMergedStacks(threads: SeenThread[], fx: Fixture, where: string, lines: boolean): void {
  const cb = thread(threads, 'callback');
  const [inner, middle, outer, ...rest] = reported(fx, 'callback');
  expect([inner!.name, middle!.name, outer!.name], `${where}: the fixture's own view`).toEqual(['cb_inner', 'cb_middle', 'cb_outer']);
  const shown = (cb.frames.map(describeFrame).join('\n    '));
  expect(pythonAndExtension(cb.frames), `${where}: callback thread, innermost first:\n    ${shown}`).toEqual([
    'cb_inner',
    CALL_BACK,
    'cb_middle',
    CALL_BACK,
    'cb_outer',
    ...rest.map((f) => f.name),
  ]);
  // Python frames are the interpreter's own, file for file.
  const python = cb.frames.filter((f) => f.module === null).map(({ name, filename }) => ({ name, filename }));
  expect(python, `${where}: callback thread's Python frames`).toEqual(reported(fx, 'callback'));
  for (const f of cb.frames.filter((x) => x.module === EXT_FILE)) {
    if (lines) {
      expect(path.basename(f.filename), `${where}: ${f.name}'s source file`).toBe('pyspy_native_ext.c');
      expect(f.line, `${where}: ${f.name}'s line`).toBeGreaterThan(0);
    } else {
      expect(path.basename(f.filename), `${where}: ${f.name}'s file (no line tables: the binary)`).toBe(EXT_FILE);
      expect(f.line).toBe(0);
    }
  }

  const busy = thread(threads, 'c-busy');
  const got = pythonAndExtension(busy.frames);
  const busyShown = busy.frames.map(describeFrame).join('\n    ');
  // The spin calls pyspy_native_busy, and reads the clock between calls.
  if (got?.[0] === `pyspy_native_busy [${EXT_FILE}]`) got.shift();
  expect(got, `${where}: c-busy thread, innermost first:\n    ${busyShown}`).toEqual([
    `pyspy_native_spin [${EXT_FILE}]`,
    `ext_spin [${EXT_FILE}]`,
    ...reported(fx, 'c-busy').map((f) => f.name),
  ]);

  const main = thread(threads, 'MainThread');
  expect(main.frames.filter((f) => f.module === null).map((f) => f.name), `${where}: main thread`).toEqual(['main', '<module>']);
  // Asleep in time.sleep: the C library's sleep is on top.
  expect(main.frames[0]!.module, `${where}: main thread's innermost frame`).toMatch(/^libc[.-]/);
}
