import { describe, expect, it, vi } from 'vitest';

import { main } from '../src/cli.js';
import { PyspyError } from '../src/errors.js';
import type { DumpOptions, ProcessDump } from '../src/types.js';
import { processDump } from './fixtures.js';

/** Runs the CLI with a fake `dump` and captured output. */
async function run(args: string[], dump: (pid: number, options?: DumpOptions) => Promise<ProcessDump> = async () => processDump) {
  let stdout = '';
  let stderr = '';
  const fake = vi.fn(dump);
  const code = await main(args, {
    dump: fake,
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
  });
  return { code, stdout, stderr, dump: fake };
}

describe('pyspy-node dump', () => {
  it('prints the text dump', async () => {
    const { code, stdout, stderr, dump } = await run(['dump', '--pid', '4242']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^Process 4242: python3 demo.py --fast\nPython v3.12.1 \(\/usr\/bin\/python3.12\)\n\nThread 4242/);
    expect(dump).toHaveBeenCalledWith(4242, { locals: false, nonblocking: false, fullFilenames: false, subprocesses: false, native: false, asyncio: false });
  });

  it('passes -l, --nonblocking and --full-filenames through, and accepts a 0x pid', async () => {
    const { code, dump } = await run(['dump', '-p', '0x1092', '-l', '--nonblocking', '--full-filenames']);
    expect(code).toBe(0);
    expect(dump).toHaveBeenCalledWith(0x1092, { locals: true, nonblocking: true, fullFilenames: true, subprocesses: false, native: false, asyncio: false });
  });

  it('counts repeated -l as py-spy does (-ll, --locals --locals: longer values)', async () => {
    for (const args of [['-ll'], ['--locals', '--locals'], ['-l', '-l']]) {
      const { code, dump } = await run(['dump', '-p', '7', ...args]);
      expect(code).toBe(0);
      expect(dump).toHaveBeenCalledWith(7, expect.objectContaining({ locals: 2 }));
    }
    const { dump } = await run(['dump', '-p', '7', '-lll']);
    expect(dump).toHaveBeenCalledWith(7, expect.objectContaining({ locals: 3 }));
  });

  it('passes --core with --native, --executable and --sysroot to dumpCore', async () => {
    const dumpCore = vi.fn(async () => processDump);
    let stdout = '';
    const code = await main(['dump', '--core', 'core.1', '--native', '--sysroot', '/r', '--executable', '/r/python'], {
      dump: vi.fn(),
      dumpCore,
      stdout: (text) => void (stdout += text),
      stderr: () => undefined,
    });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Process 4242: /);
    expect(dumpCore).toHaveBeenCalledWith('core.1', { locals: false, fullFilenames: false, native: true, asyncio: false, executable: '/r/python', sysroot: '/r' });
  });

  it('prints JSON with --json', async () => {
    const { code, stdout } = await run(['dump', '--pid=4242', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toHaveLength(2);
  });

  it('reports a dump error as one line and exit code 1', async () => {
    const { code, stdout, stderr } = await run(['dump', '--pid', '9'], async () => {
      throw new PyspyError('ENOPROCESS', 'no process with pid 9');
    });
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: 'Error: no process with pid 9\n' });
  });

  it('does not show a stack for an unexpected error', async () => {
    const { code, stderr } = await run(['dump', '--pid', '9'], async () => {
      throw new TypeError('boom');
    });
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^Error: boom \(this is a bug/);
  });

  it.each([
    [['dump', '--pid', 'abc'], 'Error: invalid pid "abc"'],
    [['dump', '--pid', '0'], 'Error: invalid pid "0"'],
    [['dump'], 'Error: dump needs exactly one of --pid and --core'],
    [['dump', '--pid', '1', '--core', 'core.1'], 'Error: dump needs exactly one of --pid and --core'],
    [['dump', '--pid', '1', '--sysroot', '/'], 'Error: --executable and --sysroot apply to --core only'],
    [['dump', '--core', 'core.1', '--subprocesses'], 'Error: --subprocesses and --nonblocking do not apply to --core'],
    [['dump', '--core', 'core.1', '--nonblocking'], 'Error: --subprocesses and --nonblocking do not apply to --core'],
    [['dump', '--pid', '1', '--frob'], "Error: unknown option '--frob'"],
    [['dump', '--pid', '1', '--native', '--nonblocking'], "Error: --native cannot be combined with --nonblocking: a thread's native stack can only be read while the thread is paused"],
    [['top', '--pid', '1', '--native', '--nonblocking'], "Error: --native cannot be combined with --nonblocking: a thread's native stack can only be read while the thread is paused"],
    [['frob'], "Error: unknown command 'frob'"],
  ])('%j fails with one clear line', async (args, message) => {
    const { code, stdout, stderr, dump } = await run(args);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.startsWith(message)).toBe(true);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(dump).not.toHaveBeenCalled();
  });
});

describe('help and version', () => {
  it('--help lists the subcommands and exits 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: pyspy-node /);
    expect(stdout).toMatch(/dump \[options\]/);
    expect(stdout).toMatch(/record \[options\] \[command...\] +Record samples/);
    expect(stdout).toMatch(/top \[options\] \[command...\] +Show a live, top-like view/);
  });

  it('dump --help lists the flags and exits 0', async () => {
    const { code, stdout } = await run(['dump', '--help']);
    expect(code).toBe(0);
    for (const flag of ['--pid', '--json', '--locals', '--full-filenames', '--nonblocking', '--native', '--subprocesses']) {
      expect(stdout).toContain(flag);
    }
  });

  it('--version prints the package version', async () => {
    const { code, stdout } = await run(['--version']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
