import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { BindingError } from '../binding/binding.cjs';
import { main } from '../src/cli.js';
import { defaultOutputName, exitCodeOf, startLine } from '../src/cli-record.js';
import { fakeBinding, FakeRecorder } from './fake-recorder.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'pyspy-node-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  vi.useRealTimers();
});

interface RunOptions {
  recorder?: FakeRecorder | BindingError;
  tty?: boolean;
  /** Called once the signal handler is installed, with a way to raise a signal. */
  onSignalInstalled?: (raise: (signal: 'SIGINT' | 'SIGTERM') => void) => void;
}

/** Runs the CLI with a fake binding, signals and clock, capturing output. */
async function run(args: string[], { recorder = doneRecorder(), tty = false, onSignalInstalled }: RunOptions = {}) {
  let stdout = '';
  let stderr = '';
  const binding = fakeBinding(recorder);
  const kill = vi.fn();
  let handlers = 0;
  const code = await main(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    binding: () => binding,
    stderrIsTTY: tty,
    kill,
    now: () => new Date(2024, 4, 1, 13, 45, 7),
    onSignal: (handler) => {
      handlers++;
      onSignalInstalled?.(handler);
      return () => void handlers--;
    },
  });
  return { code, stdout, stderr, binding, kill, handlersLeft: handlers };
}

function doneRecorder(finish: Partial<NonNullable<FakeRecorder['finishResult']['finish']>> = {}): FakeRecorder {
  const recorder = new FakeRecorder();
  recorder.done = true;
  recorder.finishResult = { finish: { reason: 'exited', samples: 30, errors: 1, durationMs: 1234.5, exitCode: 0, ...finish } };
  return recorder;
}

describe('pyspy-node record: arguments', () => {
  it('attaches with py-spy defaults and prints the start and summary lines', async () => {
    const out = path.join(dir, 'out.svg');
    const { code, stdout, stderr, binding, handlersLeft } = await run(['record', '--pid', '4242', '-o', out]);
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(binding.startRecorder).toHaveBeenCalledWith({
      pid: 4242,
      rate: 100,
      gil: false,
      idle: false,
      threads: false,
      function: false,
      nolineno: false,
      nonblocking: false,
      blocking: false,
      subprocesses: false,
      fullFilenames: false,
      native: false,
      gcFrames: true,
      asyncio: false,
      gilWaitFrames: false,
      captureOutput: false,
      batches: false,
      keepProfile: true,
    });
    expect(stderr).toBe(
      'pyspy-node> Sampling process 100 times a second. Press Control-C to exit.\n' +
        'pyspy-node> Stopped sampling because the process exited\n' +
        `pyspy-node> Wrote flamegraph to '${out}'. Samples: 30 Errors: 1\n`,
    );
    expect(readFileSync(out, 'utf8')).toBe('flamegraph|process 4242');
    expect(handlersLeft).toBe(0);
  });

  it('passes every flag through, and the command after --', async () => {
    const out = path.join(dir, 'out.txt');
    const { code, binding, stderr } = await run([
      'record', '-o', out, '-r', '250', '-d', '2', '-t', '-g', '-i', '-F', '--nonblocking', '--full-filenames',
      '--no-gc-frames', '--gil-wait-frames', '--', 'python3', 'app.py', '--port', '80',
    ]);
    expect(code).toBe(0);
    expect(binding.startRecorder).toHaveBeenCalledWith({
      command: ['python3', 'app.py', '--port', '80'],
      rate: 250,
      duration: 2,
      gil: true,
      idle: true,
      threads: true,
      function: true,
      nolineno: false,
      nonblocking: true,
      blocking: false,
      subprocesses: false,
      fullFilenames: true,
      native: false,
      gcFrames: false,
      asyncio: false,
      gilWaitFrames: true,
      captureOutput: false,
      batches: false,
      keepProfile: true,
    });
    expect(stderr).toMatch(/^pyspy-node> Sampling process 250 times a second for 2 seconds\. Press Control-C to exit\.\n/);
    expect(readFileSync(out, 'utf8')).toBe('raw|python3 app.py --port 80');
  });

  it('--capture (hidden, as in py-spy) gives a launched command /dev/null for its streams', async () => {
    const { code, binding, stdout } = await run(['record', '-o', path.join(dir, 'c.svg'), '--capture', '--', 'python3', 'app.py']);
    expect(code).toBe(0);
    expect(binding.startRecorder).toHaveBeenCalledWith(expect.objectContaining({ command: ['python3', 'app.py'], captureOutput: true }));
    const help = await run(['record', '--help']);
    expect(help.stdout + stdout).not.toContain('--capture');
  });

  it('passes the command options through without --', async () => {
    const { code, binding } = await run(['record', '-o', path.join(dir, 'x.svg'), 'python3', 'app.py', '-d', '5']);
    expect(code).toBe(0);
    expect(binding.startRecorder).toHaveBeenCalledWith(expect.objectContaining({ command: ['python3', 'app.py', '-d', '5'] }));
    expect(binding.startRecorder.mock.calls[0]?.[0]).not.toHaveProperty('duration');
  });

  it.each([
    [[], 'Error: give --pid <pid> or a command to launch'],
    [['-p', '1', '--', 'python3'], 'Error: give either --pid or a command to launch, not both'],
    [['-p', 'abc'], 'Error: invalid pid "abc"'],
    [['-p', '1', '-F', '--nolineno'], "Error: option '--nolineno' cannot be used with option '-F, --function'"],
    [['-p', '1', '-n', '--nonblocking'], "Error: --native cannot be combined with --nonblocking: a thread's native stack can only be read while the thread is paused"],
    [['-p', '1', '-f', 'svg'], "Error: option '-f, --format <format>' argument 'svg' is invalid"],
    [['-p', '1', '-r', '0'], "Error: option '-r, --rate <rate>' argument '0' is invalid"],
    [['-p', '1', '-d', 'soon'], "Error: option '-d, --duration <seconds>' argument 'soon' is invalid"],
    [['-p', '1', '--frob'], "Error: unknown option '--frob'"],
    [['-p', '1', '--nonblocking', '--blocking'], "Error: option '--blocking' cannot be used with option '--nonblocking'"],
  ])('%j fails with one clear line and exit code 1', async (args, message) => {
    const { code, stdout, stderr, binding } = await run(['record', ...args]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.startsWith(message)).toBe(true);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it('reports a start error as one line', async () => {
    const { code, stderr } = await run(['record', '-p', '9'], { recorder: { code: 'ENOPROCESS', message: 'no process with pid 9' } });
    expect({ code, stderr }).toEqual({ code: 1, stderr: 'Error: no process with pid 9\n' });
  });

  it('accepts -d unlimited and case-insensitive formats', async () => {
    const out = path.join(dir, 'p');
    const { code, binding, stderr } = await run(['record', '-p', '1', '-d', 'unlimited', '-f', 'SpeedScope', '-o', out]);
    expect(code).toBe(0);
    expect(binding.startRecorder.mock.calls[0]?.[0]).not.toHaveProperty('duration');
    expect(readFileSync(out, 'utf8')).toBe('speedscope|process 1');
    expect(stderr).toContain(`Wrote speedscope profile to '${out}'`);
  });

  it('--help lists every flag and examples', async () => {
    const { code, stdout } = await run(['record', '--help']);
    expect(code).toBe(0);
    for (const flag of [
      '--pid', '--output', '--format', '--duration', '--rate', '--threads', '--gil', '--idle', '--function',
      '--nolineno', '--nonblocking', '--full-filenames', '--subprocesses', '--native',
    ]) {
      expect(stdout).toContain(flag);
    }
    expect(stdout).toMatch(/\nExamples:\n {2}\$ pyspy-node record /);
  });
});

describe('pyspy-node record: output', () => {
  it.each([
    ['flamegraph', 'svg', 'flamegraph'],
    ['speedscope', 'json', 'speedscope profile'],
    ['raw', 'txt', 'raw stacks'],
    ['chrometrace', 'json', 'chrome trace'],
    ['pprof', 'pb.gz', 'pprof profile'],
  ])('-f %s writes <program>-<time>.%s in the cwd and names it "%s"', async (format, extension, description) => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const { code, stderr } = await run(['record', '-f', format, '--', '/usr/bin/python3.11', 'app.py']);
      expect(code).toBe(0);
      const name = `python3.11-2024-05-01T13-45-07.${extension}`;
      expect(readdirSync(dir)).toEqual([name]);
      expect(stderr).toContain(`pyspy-node> Wrote ${description} to '${name}'. Samples: 30 Errors: 1\n`);
    } finally {
      process.chdir(cwd);
    }
  });

  it('names the default file after the pid when attaching', () => {
    expect(defaultOutputName('4242', 'raw', new Date(2024, 11, 31, 9, 5, 0))).toBe('4242-2024-12-31T09-05-00.txt');
  });

  it.each([
    ['p.json', 'speedscope'],
    ['p.txt', 'raw'],
    ['p.pb.gz', 'pprof'],
    ['p.svg', 'flamegraph'],
    ['p.data', 'flamegraph'],
  ])('infers the format from -o %s when -f is not given', async (name, format) => {
    const { code } = await run(['record', '-p', '1', '-o', path.join(dir, name)]);
    expect(code).toBe(0);
    expect(readFileSync(path.join(dir, name), 'utf8')).toBe(`${format}|process 1`);
  });

  it('with no samples, says so, writes nothing and exits 1', async () => {
    const out = path.join(dir, 'none.svg');
    const { code, stderr } = await run(['record', '-o', out, '--', 'python3', 'quick.py'], {
      recorder: doneRecorder({ samples: 0, errors: 0, durationMs: 300, exitCode: 0 }),
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /\nError: No samples were collected \(the process exited after 0\.3s; .*--idle\): no file written\n$/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('reports an output in a missing directory as one line, before recording', async () => {
    const { code, stderr, binding } = await run(['record', '-p', '1', '-o', path.join(dir, 'missing', 'p.svg')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^Error: could not write '.*p\.svg': its directory does not exist\n$/);
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it('draws a progress line on a terminal and clears it', async () => {
    vi.useFakeTimers();
    const recorder = new FakeRecorder();
    const done = run(['record', '-p', '1', '-o', path.join(dir, 'p.svg')], { recorder, tty: true });
    await vi.advanceTimersByTimeAsync(600);
    recorder.done = true;
    await vi.advanceTimersByTimeAsync(300);
    const { code, stderr } = await done;
    expect(code).toBe(0);
    expect(stderr).toContain('\rpyspy-node> 0.3s  Samples: 30  Errors: 1  Rate: 99.5/s  Late: 0.5ms\x1b[K');
    expect(stderr).toContain('\r\x1b[Kpyspy-node> Stopped sampling');
  });

  it('draws no progress when stderr is not a terminal', async () => {
    vi.useFakeTimers();
    const recorder = new FakeRecorder();
    const done = run(['record', '-p', '1', '-o', path.join(dir, 'p.svg')], { recorder });
    await vi.advanceTimersByTimeAsync(600);
    recorder.done = true;
    await vi.advanceTimersByTimeAsync(300);
    const { stderr } = await done;
    expect(stderr).not.toContain('\r');
    expect(stderr.split('\n')).toHaveLength(4);
  });
});

describe('pyspy-node record: stopping and exit codes', () => {
  it('Ctrl-C stops sampling, writes the file and exits 0 when attached', async () => {
    const recorder = new FakeRecorder();
    recorder.finishResult = { finish: { reason: 'stopped', samples: 12, errors: 0, durationMs: 120 } };
    const out = path.join(dir, 'p.svg');
    const { code, stderr, kill } = await run(['record', '-p', '1', '-o', out], {
      recorder,
      onSignalInstalled: (raise) => setTimeout(() => raise('SIGINT'), 30),
    });
    expect(recorder.stop).toHaveBeenCalled();
    expect(code).toBe(0);
    expect(stderr).toContain('pyspy-node> Stopped sampling because Control-C was pressed\n');
    expect(stderr).toContain(`Wrote flamegraph to '${out}'. Samples: 12 Errors: 0`);
    expect(existsSync(out)).toBe(true);
    expect(kill).not.toHaveBeenCalled();
  });

  it("Ctrl-C with a launched command waits for it and exits with its status (128+signal)", async () => {
    const recorder = new FakeRecorder();
    recorder.finishResult = { finish: { reason: 'stopped', samples: 12, errors: 0, durationMs: 120, exitSignal: 2 } };
    const { code, kill } = await run(['record', '-o', path.join(dir, 'p.svg'), '--', 'python3', 'app.py'], {
      recorder,
      onSignalInstalled: (raise) => setTimeout(() => raise('SIGINT'), 30),
    });
    expect(code).toBe(130);
    expect(kill).not.toHaveBeenCalled(); // the command exited within the grace period
  });

  it('SIGTERM is forwarded to a launched command; a second signal kills it', async () => {
    const recorder = new FakeRecorder();
    let exited!: () => void;
    recorder.finishGate = new Promise((resolve) => (exited = resolve));
    recorder.finishResult = { finish: { reason: 'stopped', samples: 12, errors: 0, durationMs: 120, exitSignal: 9 } };
    const result = run(['record', '-o', path.join(dir, 'p.svg'), '--', 'python3', 'app.py'], {
      recorder,
      onSignalInstalled: (raise) => {
        setTimeout(() => raise('SIGTERM'), 20);
        setTimeout(() => raise('SIGTERM'), 40);
        setTimeout(() => exited(), 60);
      },
    });
    const { code, kill, stderr } = await result;
    expect(kill.mock.calls).toEqual([
      [4242, 'SIGTERM'],
      [4242, 'SIGKILL'],
    ]);
    expect(stderr).toContain('pyspy-node> Stopped sampling because pyspy-node received SIGTERM\n');
    expect(code).toBe(137);
  });

  it.each([
    [{ reason: 'exited', exitCode: 3 }, 3],
    [{ reason: 'exited', exitCode: undefined, exitSignal: 15 }, 143],
    [{ reason: 'exited', exitCode: 0 }, 0],
  ])('passes the exit status of a command that exited by itself through: %j → %d', async (finish, expected) => {
    const { code, stderr } = await run(['record', '-o', path.join(dir, 'p.svg'), '--', 'python3', 'app.py'], {
      recorder: doneRecorder(finish),
    });
    expect(code).toBe(expected);
    expect(stderr).toContain('pyspy-node> Stopped sampling because the process exited\n');
  });

  it('exits 0 when --duration ended the recording, with no stop line', async () => {
    const { code, stderr } = await run(['record', '-d', '1', '-o', path.join(dir, 'p.svg'), '--', 'python3', 'app.py'], {
      recorder: doneRecorder({ reason: 'duration', exitCode: undefined, exitSignal: 15 }),
    });
    expect(code).toBe(0);
    expect(stderr).not.toContain('Stopped sampling');
  });

  it('computes exit codes like a shell', () => {
    expect(exitCodeOf({ reason: 'stopped', exitCode: null, exitSignal: null })).toBe(0);
    expect(exitCodeOf({ reason: 'stopped', exitCode: 1, exitSignal: null })).toBe(1);
    expect(exitCodeOf({ reason: 'stopped', exitCode: null, exitSignal: 2 })).toBe(130);
    expect(exitCodeOf({ reason: 'duration', exitCode: null, exitSignal: 15 })).toBe(0);
  });

  it('words the start line like py-spy', () => {
    expect(startLine(100, undefined)).toBe('Sampling process 100 times a second. Press Control-C to exit.');
    expect(startLine(50, 1)).toBe('Sampling process 50 times a second for 1 second. Press Control-C to exit.');
    expect(startLine(50, 0.5)).toBe('Sampling process 50 times a second for 0.5 seconds. Press Control-C to exit.');
  });
});

describe('pyspy-node record --push', () => {
  it('passes the push options, writes no file without -o, prints warnings and the summary', async () => {
    const recorder = doneRecorder();
    recorder.finishResult.finish!.push = {
      pushed: 3, bytes: 2048, samples: 30, dropped: 1, failed: 0, retries: 2, queued: 0, queuedBytes: 0,
      warnings: ['push: http://h:4040 failed (connection refused); retrying with backoff, sampling goes on'],
    };
    const cwd = process.cwd();
    process.chdir(dir);
    let result;
    try {
      result = await run([
        'record', '-p', '7', '--push', 'http://me:pw@h:4040', '--app-name', 'api', '--tag', 'env=prod', '--tag', 'k=a=b',
        '--push-interval', '5', '--push-tenant', 't1', '--push-retry-forever',
      ], { recorder });
    } finally {
      process.chdir(cwd);
    }
    const { code, stderr, binding } = result;
    expect(code, stderr).toBe(0);
    expect(binding.startRecorder.mock.calls[0]?.[0].push).toEqual({
      url: 'http://me:pw@h:4040', appName: 'api', tags: ['env=prod', 'k=a=b'], interval: 5, tenant: 't1', retryForever: true,
    });
    // No file: nothing kept locally, so a long run does not grow.
    expect(binding.startRecorder.mock.calls[0]?.[0].keepProfile).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    expect(stderr).toContain('pyspy-node> push: http://h:4040 failed (connection refused)');
    expect(stderr).toContain('Pushing to http://***@h:4040 every 5 seconds as service_name=api');
    expect(stderr).toContain('Pushed 3 windows (30 samples, 2.0 KiB) to http://***@h:4040; dropped 1; retried sends 2');
    expect(stderr).not.toContain('pw');
  });

  it.each([
    [['--push', 'http://h', '--tag', 'novalue'], "Expected key=value, got 'novalue'"],
    [['--tag', 'a=b'], 'need --push <url>'],
    [['--app-name', 'x'], 'need --push <url>'],
    [['--push-retry-forever'], 'need --push <url>'],
    [['--push', 'http://h', '--push-interval', '0'], 'The push interval must be a number above 0'],
    [['--all-pythons'], '--all-pythons needs --push <url>'],
    [['--all-pythons', '--push', 'http://h'], '--all-pythons cannot be combined with --pid or a command'],
    [['--match', 'x'], '--match and --uid need --all-pythons'],
  ])('%j fails with one clear line and exit code 1', async (args, message) => {
    const { code, stderr, binding } = await run(['record', '-p', '1', ...args]);
    expect(code).toBe(1);
    expect(stderr).toContain(message);
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it('reports a server that cannot be reached as one line', async () => {
    const { code, stderr } = await run(['record', '-p', '9', '--push', 'http://127.0.0.1:1'], {
      recorder: { code: 'EPUSH', message: 'cannot push to http://127.0.0.1:1: the server cannot be reached (connection refused)' },
    });
    expect({ code, stderr }).toEqual({
      code: 1,
      stderr: 'Error: cannot push to http://127.0.0.1:1: the server cannot be reached (connection refused)\n',
    });
  });
});
