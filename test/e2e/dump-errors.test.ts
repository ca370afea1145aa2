// `pyspy-node dump` on bad targets: a pid that does not exist, a process that
// is not Python, and a Python process that exits while it is read. Each must
// give a stable error code (library) or exit 1 with one line on stderr (CLI),
// never a crash or a stack trace.
import { existsSync, readFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import {
  killAllChildren,
  hostInterpreter,
  runCli,
  settleWithin,
  spawnPythonCode,
  spawnTracked,
  type CliResult,
} from '../helpers/pythons.js';

const TIMEOUT = 120_000;

afterEach(killAllChildren);

/** A pid no process has right now (searched down from pid_max). */
function unusedPid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let pid = max - 1; pid > 300; pid--) if (!existsSync(`/proc/${pid}`)) return pid;
  throw new Error('no unused pid found');
}

function expectOneLineFailure(res: CliResult, what: string): void {
  expect(res.stderr, `${what}: stderr`).not.toMatch(/panicked|stack backtrace|RUST_BACKTRACE|^\s+at /m);
  expect(res.code, `${what}: exit code (stderr: ${res.stderr})`).toBe(1);
  expect(res.stdout, `${what}: stdout`).toBe('');
  const lines = res.stderr.replace(/\n$/, '').split('\n');
  expect(lines, `${what}: stderr lines`).toHaveLength(1);
  expect(lines[0]!.trim(), `${what}: stderr`).not.toBe('');
}

/** The rejection of `promise`, or a failure if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: unknown }> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return err as Error & { code?: unknown };
  }
  throw new Error('expected the promise to reject, but it resolved');
}

async function library() {
  return import('pyspy-node');
}


describe('a pid that does not exist', () => {
  it('CLI: exit 1, one line on stderr', { timeout: TIMEOUT }, async () => {
    const pid = unusedPid();
    expectOneLineFailure(await runCli(['dump', '--pid', String(pid)]), 'dump');
    expectOneLineFailure(await runCli(['dump', '--pid', String(pid), '--json']), 'dump --json');
  });

  it('library: rejects with ENOPROCESS', { timeout: TIMEOUT }, async () => {
    const { dump } = await library();
    const pid = unusedPid();
    const err = await rejection(settleWithin(dump(pid), 30_000, 'dump'));
    expect(err.code).toBe('ENOPROCESS');
    expect(err.message).not.toContain('\n');
  });
});

describe('a process that is not Python (sleep 100)', () => {
  it('CLI: exit 1, one line on stderr', { timeout: TIMEOUT }, async () => {
    const target = await spawnTracked('sleep', ['100']);
    expectOneLineFailure(await runCli(['dump', '--pid', String(target.pid)]), 'dump');
    expectOneLineFailure(await runCli(['dump', '--pid', String(target.pid), '--json']), 'dump --json');
  });

  it('library: rejects with ENOTPYTHON', { timeout: TIMEOUT }, async () => {
    const { dump } = await library();
    const target = await spawnTracked('sleep', ['100']);
    const err = await rejection(settleWithin(dump(target.pid), 30_000, 'dump', target.pid));
    expect(err.code).toBe('ENOTPYTHON');
    expect(err.message).not.toContain('\n');
  });
});

describe('a Python process that exits while being read (best effort)', () => {
  // READY is printed once the interpreter runs; then it lingers for a moment
  // (0 s: exits at once, finalising while we read) and exits.
  const code = (linger: number) =>
    `import os, sys, time\nsys.stdout.write("READY %d\\n" % os.getpid()); sys.stdout.flush()\ntime.sleep(${linger})`;

  it.each([0, 0.02, 0.1])(
    'library: dumps until it rejects, then the code is EEXITED or ENOPROCESS (linger %ss)',
    { timeout: TIMEOUT },
    async (linger) => {
      const { dump } = await library();
      const target = await spawnPythonCode(hostInterpreter(), code(linger));
      let err: (Error & { code?: unknown }) | undefined;
      let dumps = 0;
      // Bounded: the target exits within `linger` seconds, so a dump soon fails.
      for (let i = 0; i < 100_000 && !err; i++) {
        try {
          await settleWithin(dump(target.pid), 30_000, `dump #${dumps + 1}`, target.pid);
          dumps++;
        } catch (e) {
          err = e as Error & { code?: unknown };
        }
      }
      await target.exited;
      expect(err, `no dump failed after ${dumps} successful ones`).toBeDefined();
      expect(err!.message).not.toMatch(/did not settle/);
      expect(err).toBeInstanceOf(Error);
      expect(['EEXITED', 'ENOPROCESS'], `code ${String(err!.code)}: ${err!.message}`).toContain(err!.code);
      expect(err!.message).not.toContain('\n');
    },
  );

  it('CLI: a clean result either way', { timeout: TIMEOUT }, async () => {
    const target = await spawnPythonCode(hostInterpreter(), code(0));
    const res = await runCli(['dump', '--pid', String(target.pid)]);
    await target.exited;
    if (res.code === 0) {
      expect(res.stdout).toMatch(new RegExp(`^Process ${target.pid}: `));
    } else {
      expectOneLineFailure(res, 'dump of an exiting process');
    }
  });
});

describe('bad arguments', () => {
  it('CLI: a pid that is not a number gives exit 1 and one line', { timeout: TIMEOUT }, async () => {
    expectOneLineFailure(await runCli(['dump', '--pid', 'not-a-pid']), 'dump --pid not-a-pid');
  });
});
