// `dump --core` / dumpCore(): stacks out of core files. On every supported
// interpreter of the matrix, test/fixtures/dump_target.py is dumped with
// `gcore` (Debian's gdb) while it runs, and the core's stacks must match the
// fixture's own report frame for frame (the chroot builds' cores name paths
// inside their root: read with --sysroot). A kernel core (SIGABRT under
// `ulimit -c unlimited`) of a program aborting inside a Python call, a
// gzip-compressed core, and bad inputs (not a core, an executable, a core of
// a non-Python program, a truncated core, a core whose binaries are missing)
// each give the stated result or a clear, coded error. `--native`: the
// native fixture (test/fixtures/native, a C extension that spins and calls
// back into Python) is dumped live with `dump --native`, then cored; the
// core's merged stacks must be the live ones, on shared, static, Debian and
// chroot builds, from gcore and from kernel cores. A core whose thread stack
// is zeros, or whose extension binary is gone, still dumps, saying where and
// why the native frames end.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import type { ProcessDump, PyspyError } from 'pyspy-node';

import {
  killAllChildren,
  runCli,
  shownName,
  spawnFixture,
  spawnTracked,
  supportedInterpreters,
  type Interpreter,
  type RunningFixture,
} from '../helpers/pythons.js';

import { writeGcore, writeKernelCore } from '../helpers/cores.js';
import {
  buildExtension,
  expectMergedStacks,
  EXT_FILE,
  fromCliJson,
  NATIVE_FIXTURE,
  pythonAndExtension,
  thread,
  type BuiltExtension,
  type Fixture,
  type NativeTargetReport,
  type SeenFrame,
  type SeenThread,
} from './native-helpers.js';

const TIMEOUT = 180_000;
const interpreters = supportedInterpreters();
const work = mkdtempSync(path.join(tmpdir(), 'pyspy-core-'));

afterEach(killAllChildren);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Writes a core of running process `pid` with gcore; returns its path. */
const gcore = (pid: number, name: string): string => writeGcore(work, pid, name);
/** Has the kernel dump a core of `pid` (whose cwd is `cwd`); returns its path. */
const kernelCore = (pid: number, cwd: string): Promise<string> => writeKernelCore(work, pid, cwd);

/** The core options for `interp`'s cores: the chroot as sysroot. */
function coreOptions(interp: Interpreter): { sysroot?: string } {
  return interp.root ? { sysroot: interp.root } : {};
}

/** The core's stacks must be the fixture's own, frame for frame. */
function expectMatchesFixture(dump: ProcessDump, fx: RunningFixture, where: string): void {
  const { report } = fx;
  expect(dump.pid, `${where}: pid`).toBe(fx.pid);
  expect(dump.pythonVersion, `${where}: version`).toBe(report.version_info.join('.'));
  expect(dump.threads.map((t) => t.threadId).sort(), `${where}: thread ids`).toEqual(report.threads.map((t) => t.ident).sort());
  for (const want of report.threads) {
    const got = dump.threads.find((t) => t.threadId === want.ident)!;
    const label = `${where}: thread "${want.name}"`;
    expect(got.osThreadId, `${label} os_thread_id`).toBe(want.native_id);
    expect(got.threadName, `${label} name`).toBe(want.name);
    const actual = got.frames.map(({ name, filename, line }) => ({ name, filename, line }));
    const expected = want.frames.map((f) => ({ name: shownName(f), filename: f.filename, line: f.line }));
    if (want.ident === report.busy.ident) {
      expect(actual[0]?.name, `${label} innermost function`).toBe(report.busy.shown);
      const [lo, hi] = report.busy.line_range;
      expect(actual[0]!.line, `${label} busy line`).toBeGreaterThanOrEqual(lo);
      expect(actual[0]!.line, `${label} busy line`).toBeLessThanOrEqual(hi);
      expected[0]!.line = actual[0]!.line;
      expect(got.active, `${label} active`).toBe(true);
    } else {
      expect(got.status, `${label} status`).toBe('idle');
    }
    expect(actual, `${label} frames (innermost first)`).toEqual(expected);
  }
}

describe.each(interpreters.map((i) => [i.id, i] as [string, Interpreter]))('%s', (_id, interp) => {
  // gdb cannot read the thread stacks of a process whose C library is newer than the host's
  // (it writes zeros there), so the chroot builds' cores come from the kernel: their paths are
  // then the ones inside the chroot, read with --sysroot.
  const how = interp.root ? 'a kernel core (SIGABRT), read with --sysroot,' : 'a gcore core';
  it(`${how} gives exactly the stacks the fixture reported`, { timeout: TIMEOUT }, async () => {
    const { dumpCore } = await import('pyspy-node');
    const fx = await spawnFixture(interp, 'dump_target.py', [], { via: 'shell' });
    const core = interp.root ? await kernelCore(fx.pid, interp.root) : gcore(fx.pid, `gcore-${interp.id}`);
    await fx.kill();
    try {
      expectMatchesFixture(await dumpCore(core, coreOptions(interp)), fx, `${interp.id} core`);
    } finally {
      rmSync(core, { force: true });
    }
  });
});

describe('core files: CLI, compressed, kernel cores, locals', () => {
  const interp = interpreters.find((i) => i.id === 'debian-3.11')!;

  it('dump --core --json and a gzip-compressed core give the same stacks', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(interp, 'dump_target.py', [], { via: 'shell' });
    const core = gcore(fx.pid, 'cli');
    await fx.kill();
    const res = await runCli(['dump', '--core', core, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const threads = JSON.parse(res.stdout) as { thread_id: number; status: string; frames: { name: string; line: number }[] }[];
    expect(threads.map((t) => t.thread_id).sort()).toEqual(fx.report.threads.map((t) => t.ident).sort());
    const gz = `${core}.gz`;
    writeFileSync(gz, gzipSync(readFileSync(core), { level: 1 }));
    rmSync(core);
    const { dumpCore } = await import('pyspy-node');
    const fromGz = await dumpCore(gz);
    expect(fromGz.threads.map((t) => [t.threadId, t.frames.map((f) => [f.name, f.line])])).toEqual(
      threads.map((t) => [t.thread_id, t.frames.map((f) => [f.name, f.line])]),
    );
    const text = await runCli(['dump', '--core', gz, '--locals']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^Process \d+: /);
    expect(text.stdout).toMatch(/Arguments:|Locals:/);
    rmSync(gz);
  });

  it('a kernel core of a program that aborts inside a Python call', { timeout: TIMEOUT }, async () => {
    const dir = mkdtempSync(path.join(work, 'kernel-'));
    const script = [
      'import os, threading',
      'def crash_here(depth):',
      '    if depth == 0:',
      '        os.abort()',
      '    crash_here(depth - 1)',
      'threading.Thread(target=lambda: __import__("time").sleep(60), name="bystander", daemon=True).start()',
      'crash_here(3)',
    ].join('\n');
    const res = spawnSync('sh', ['-c', `ulimit -c unlimited && exec ${interp.argv.join(' ')} -c '${script}'`], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(res.signal ?? res.status, res.stderr).not.toBe(0);
    const core = readdirSync(dir).find((f) => f === 'core' || f.startsWith('core.'));
    if (core === undefined) {
      throw new Error(
        `the kernel wrote no core into ${dir} (kernel.core_pattern is ${JSON.stringify(readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim())}; this test needs a plain file pattern such as "core")`,
      );
    }
    const { dumpCore } = await import('pyspy-node');
    const result = await dumpCore(path.join(dir, core), { executable: interp.binary });
    const main = result.threads.find((t) => t.threadName === 'MainThread')!;
    expect(main.frames.map((f) => f.name)).toEqual(['crash_here', 'crash_here', 'crash_here', 'crash_here', '<module>']);
    expect(result.threads.map((t) => t.threadName).sort()).toEqual(['MainThread', 'bystander']);
    expect(statSync(path.join(dir, core)).size).toBeGreaterThan(0);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('core files: bad input gets a coded error', () => {
  async function codeOf(file: string, options = {}): Promise<{ code: string; message: string }> {
    const { dumpCore } = await import('pyspy-node');
    try {
      await dumpCore(file, options);
    } catch (err) {
      return { code: (err as PyspyError).code, message: (err as Error).message };
    }
    throw new Error(`dumpCore(${file}) succeeded`);
  }

  it('not a core file: text, an executable, a missing file', { timeout: TIMEOUT }, async () => {
    const text = path.join(work, 'not-a-core.txt');
    writeFileSync(text, 'hello\n');
    expect(await codeOf(text)).toMatchObject({ code: 'EBADCORE', message: expect.stringContaining('not an ELF file') });
    expect(await codeOf('/bin/sleep')).toMatchObject({ code: 'EBADCORE', message: expect.stringContaining('not a core file') });
    expect((await codeOf(path.join(work, 'nowhere'))).code).toBe('EIO');
    const cli = await runCli(['dump', '--core', text]);
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a core of a program that is not Python', { timeout: TIMEOUT }, async () => {
    const sleeper = await spawnTracked('sleep', ['100']);
    const core = gcore(sleeper.pid, 'sleep');
    await sleeper.kill();
    expect((await codeOf(core)).code).toBe('ENOTPYTHON');
    rmSync(core);
  });

  it('a truncated core, and a core whose executable is gone (found again with --executable)', { timeout: TIMEOUT }, async () => {
    const host = interpreters.find((i) => i.id === 'debian-3.11')!;
    // A copy of the interpreter that is deleted once the core is written.
    const gone = path.join(work, 'python-gone');
    copyFileSync(host.binary, gone);
    chmodSync(gone, 0o755);
    const fx = await spawnFixture({ ...host, argv: [gone], binary: gone }, 'dump_target.py', [], { via: 'shell' });
    const core = gcore(fx.pid, 'gone');
    await fx.kill();
    rmSync(gone);
    expect(await codeOf(core)).toMatchObject({ code: 'ENOBINARY', message: expect.stringContaining(gone) });
    expect((await codeOf(core)).message).toContain('--executable');
    const { dumpCore } = await import('pyspy-node');
    const found = await dumpCore(core, { executable: host.binary });
    expect(found.threads.map((t) => t.threadId).sort()).toEqual(fx.report.threads.map((t) => t.ident).sort());
    const half = `${core}.half`;
    writeFileSync(half, readFileSync(core).subarray(0, Math.floor(statSync(core).size / 2)));
    expect(await codeOf(half, { executable: host.binary })).toMatchObject({ code: 'EBADCORE', message: expect.stringContaining('truncated') });
    rmSync(core);
    rmSync(half);
  });
});

// --native: which builds, and how each is cored (the chroot builds by the kernel, as above).
const NATIVE_ON = ['pyenv-2.7.18', 'pyenv-3.11.7', 'pyenv-3.12.1', 'pyenv-3.13.0', 'debian-3.9', 'debian-3.11', 'debian-3.13', 'debian-3.14'];

/** A frame that says why a thread's native frames end early (`<native stack ...>`). */
function isMarker(f: { name: string; module: string | null }): boolean {
  return f.module === '?' && f.name.startsWith('<native stack');
}

/** Frames as compared between a live dump and a core's. */
function shape(t: SeenThread): string[] {
  // A live chroot process's binaries are named by host path (/proc/PID/maps), a core's by the
  // path inside the chroot: native frames without a source file are compared by file name.
  const file = (f: SeenFrame) => (f.module !== null && f.line === 0 ? path.basename(f.filename) : f.filename);
  return t.frames.map((f) => `${f.name} (${file(f)}:${f.line}) [${f.module ?? 'python'}]`);
}

/**
 * The core's merged stacks are the live ones: the idle threads (main, callback) frame for frame,
 * lines and files included; the busy thread, which moved on in between, by its Python and
 * extension frames under the C spin.
 */
function expectSameAsLive(core: SeenThread[], live: SeenThread[], where: string): void {
  for (const name of ['MainThread', 'callback']) {
    expect(shape(thread(core, name)), `${where}: thread ${name}, core vs live`).toEqual(shape(thread(live, name)));
  }
  const spinOnly = (t: SeenThread) => {
    const got = pythonAndExtension(t.frames);
    if (got?.[0] === `pyspy_native_busy [${EXT_FILE}]`) got.shift();
    return got;
  };
  expect(spinOnly(thread(core, 'c-busy')), `${where}: thread c-busy, core vs live`).toEqual(spinOnly(thread(live, 'c-busy')));
  const markers = core.flatMap((t) => t.frames.filter(isMarker).map((f) => `${t.name}: ${f.name}`));
  expect(markers, `${where}: no thread's native frames end early`).toEqual([]);
}

/** The first NT_PRSTATUS of thread `tid` in an ELF core: its stack pointer; and where the core holds that byte. */
function stackInCore(core: Buffer, tid: number): { sp: bigint; offset: number; room: number } {
  const phoff = Number(core.readBigUInt64LE(32));
  const [phentsize, phnum] = [core.readUInt16LE(54), core.readUInt16LE(56)];
  const headers = Array.from({ length: phnum }, (_, i) => {
    const at = phoff + i * phentsize;
    return { type: core.readUInt32LE(at), offset: Number(core.readBigUInt64LE(at + 8)), vaddr: core.readBigUInt64LE(at + 16), filesz: core.readBigUInt64LE(at + 32) };
  });
  let sp: bigint | undefined;
  for (const note of headers.filter((h) => h.type === 4)) {
    for (let at = note.offset; at + 12 <= note.offset + Number(note.filesz) && sp === undefined; ) {
      const [namesz, descsz, type] = [core.readUInt32LE(at), core.readUInt32LE(at + 4), core.readUInt32LE(at + 8)];
      const desc = at + 12 + ((namesz + 3) & ~3);
      // NT_PRSTATUS: pr_pid at 32, pr_reg (user_regs_struct) at 112, rsp its 20th word.
      if (type === 1 && core.readUInt32LE(desc + 32) === tid) sp = core.readBigUInt64LE(desc + 112 + 8 * 19);
      at = desc + ((descsz + 3) & ~3);
    }
  }
  if (sp === undefined) throw new Error(`no NT_PRSTATUS for thread ${tid}`);
  const load = headers.find((h) => h.type === 1 && h.vaddr <= sp && sp < h.vaddr + h.filesz);
  if (!load) throw new Error(`the core holds no memory at thread ${tid}'s stack pointer ${sp.toString(16)}`);
  return { sp, offset: load.offset + Number(sp - load.vaddr), room: Number(load.vaddr + load.filesz - sp) };
}

describe('dump --core --native', () => {
  const chosen = NATIVE_ON.map((id) => interpreters.find((i) => i.id === id)).filter((i): i is Interpreter => i !== undefined);
  it('runs on the builds it is meant to cover', () => {
    expect(chosen.map((i) => i.id), 'interpreters of NATIVE_ON in the matrix').toEqual(NATIVE_ON);
  });

  describe.each(chosen.map((i) => [i.id, i] as [string, Interpreter]))('%s', (_id, interp) => {
    const how = interp.root ? 'a kernel core, read with --sysroot' : 'a gcore core';
    it(`${how}: native and Python frames merged as the live dump --native showed them`, { timeout: TIMEOUT }, async () => {
      const ext = buildExtension(interp);
      try {
        const fx: Fixture = await spawnFixture<NativeTargetReport>(interp, NATIVE_FIXTURE, [ext.dir], { via: 'shell' });
        const live = await runCli(['dump', '--pid', String(fx.pid), '--native', '--json']);
        expect(live.code, live.stderr).toBe(0);
        const liveThreads = fromCliJson(live.stdout);
        expectMergedStacks(liveThreads, fx, `${interp.id} live`, true);
        const core = interp.root ? await kernelCore(fx.pid, interp.root) : gcore(fx.pid, `native-${interp.id}`);
        await fx.kill();
        try {
          const sysroot = interp.root ? ['--sysroot', interp.root] : [];
          const res = await runCli(['dump', '--core', core, '--native', '--json', ...sysroot]);
          expect(res.code, res.stderr).toBe(0);
          const threads = fromCliJson(res.stdout);
          expectMergedStacks(threads, fx, `${interp.id} core`, true);
          expectSameAsLive(threads, liveThreads, `${interp.id} core`);
          if (interp.id === 'debian-3.14' || interp.id === 'pyenv-3.12.1') {
            const { dumpCore } = await import('pyspy-node');
            const result = await dumpCore(core, { ...coreOptions(interp), native: true });
            const seen = result.threads.map((t) => ({ name: t.threadName, osThreadId: t.osThreadId, frames: t.frames }));
            expectSameAsLive(seen, threads, `${interp.id} dumpCore() vs the CLI`);
            const text = await runCli(['dump', '--core', core, '--native', ...sysroot]);
            expect(text.code, text.stderr).toBe(0);
            const block = text.stdout.split('\n\n').find((b) => /^Thread \d+ \(\w+\): "callback"$/m.test(b)) ?? text.stdout;
            expect(block.match(/^ {4}pyspy_native_call_back \(pyspy_native_ext\.c:\d+\) \[pyspy_native_ext\.so\]$/gm), block).toHaveLength(2);
          }
        } finally {
          rmSync(core, { force: true });
        }
      } finally {
        ext.remove();
      }
    });
  });

  it('a thread stack of zeros, and an extension binary that is gone: the dump says where native frames end', { timeout: TIMEOUT }, async () => {
    // 3.10: Python frames are heap objects, so zeroing a C stack leaves them whole.
    const interp = interpreters.find((i) => i.id === 'pyenv-3.10.13')!;
    const ext: BuiltExtension = buildExtension(interp);
    let core = '';
    try {
      const fx: Fixture = await spawnFixture<NativeTargetReport>(interp, NATIVE_FIXTURE, [ext.dir], { via: 'shell' });
      core = gcore(fx.pid, 'native-damaged');
      await fx.kill();
      const dumpOf = async (file: string) => {
        const res = await runCli(['dump', '--core', file, '--native', '--json']);
        expect(res.code, res.stderr).toBe(0);
        return fromCliJson(res.stdout);
      };
      const intact = await dumpOf(core);
      expectMergedStacks(intact, fx, `${interp.id} intact core`, true);

      // The busy thread's stack from its stack pointer up, zeroed (as gdb writes stacks it cannot read; 2 KiB,
      // which keeps glibc's thread descriptor at the stack's top, where 3.10's thread ids are read from).
      const busy = fx.report.threads.find((t) => t.name === 'c-busy')!;
      const bytes = readFileSync(core);
      const { offset, room } = stackInCore(bytes, busy.native_id);
      bytes.fill(0, offset, offset + Math.min(room, 2048));
      const zeroed = `${core}.zeroed`;
      writeFileSync(zeroed, bytes);
      const threads = await dumpOf(zeroed);
      rmSync(zeroed);
      const frames = thread(threads, 'c-busy').frames;
      const at = frames.findIndex(isMarker);
      const shown = frames.map((f) => `${f.name} [${f.module}]`).join('\n    ');
      expect(at, `c-busy: a marker after the frame its registers point at\n    ${shown}`).toBeGreaterThanOrEqual(1);
      expect(frames[at]!.name, `c-busy:\n    ${shown}`).toMatch(/^<native stack is all zeros in the core/);
      expect(frames.slice(at + 1).map((f) => (f.module === null ? f.name : `${f.name} [${f.module}]`)), `c-busy: then its Python frames\n    ${shown}`).toEqual(
        busy.frames.map((f) => f.name),
      );
      for (const name of ['MainThread', 'callback']) {
        expect(shape(thread(threads, name)), `thread ${name} is untouched`).toEqual(shape(thread(intact, name)));
      }

      // The extension deleted: the unwind cannot go past its frames (no unwind tables), which show
      // as addresses; a marker names the file, and the Python frames of calls further out follow it.
      ext.remove();
      const gone = await dumpOf(core);
      const outline = (frames: SeenFrame[]) =>
        frames
          .map((f) => (f.module === null ? f.name : f.module === EXT_FILE && /^0x[0-9a-f]+$/.test(f.name) ? 'ext' : isMarker(f) && f.name.includes(`${EXT_FILE} could not be read`) ? 'marker' : null))
          .filter((x, i, all): x is string => x !== null && !(x === 'ext' && all[i - 1] === 'ext'));
      const python = (name: string) => fx.report.threads.find((t) => t.name === name)!.frames.map((f) => f.name);
      const [inner, ...outer] = python('callback');
      const listing = (name: string) => thread(gone, name).frames.map((f) => `${f.name} [${f.module}]`).join('\n    ');
      expect(outline(thread(gone, 'callback').frames), `callback:\n    ${listing('callback')}`).toEqual([inner, 'ext', 'marker', ...outer]);
      expect(outline(thread(gone, 'c-busy').frames), `c-busy:\n    ${listing('c-busy')}`).toEqual(['ext', 'marker', ...python('c-busy')]);
      expect(shape(thread(gone, 'MainThread')), 'MainThread is untouched').toEqual(shape(thread(intact, 'MainThread')));
    } finally {
      ext.remove();
      if (core) rmSync(core, { force: true });
    }
  });
});
