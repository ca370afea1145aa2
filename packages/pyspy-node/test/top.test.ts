// `top()` of the library (src/top.ts) and `pyspy-node top` (src/top/cli.ts)
// against a fake native recorder and a fake terminal: options, snapshots,
// stopping, plain tables, keys, and the terminal restored however it ends.
import { describe, expect, it, vi } from 'vitest';

import type { BindingError, BindingProgress, BindingStacks } from '../binding/binding.cjs';
import { main } from '../src/cli.js';
import { PyspyError } from '../src/errors.js';
import { topWith } from '../src/top.js';
import type { TopTerminal } from '../src/top/terminal.js';
import { bindingStacks, fakeBinding, FakeRecorder } from './fake-recorder.js';

/**
 * A recorder that yields `batches` copies of the fake stacks (20 samples
 * of `spin`, 10 of `<module>`), then ends as if the target exited. Each
 * batch covers 30 attempts over 300 ms.
 */
function endingRecorder(batches = 3): FakeRecorder {
  const recorder = new FakeRecorder();
  let taken = 0;
  recorder.takeBatch.mockImplementation((): BindingStacks => {
    if (taken >= batches) return { samples: 0, errors: 0, stacks: [] };
    taken++;
    if (taken >= batches) recorder.done = true;
    return structuredClone(bindingStacks);
  });
  const base = recorder.progress();
  recorder.progress.mockImplementation(
    (): BindingProgress => ({
      ...base,
      samples: 30 * taken,
      attempts: 30 * taken,
      errors: taken,
      elapsedMs: 300 * taken,
      latenessMs: 0.2,
      rate: 100,
    }),
  );
  return recorder;
}

/** A recorder that samples until stopped. */
function endlessRecorder(): FakeRecorder {
  const recorder = endingRecorder(Number.POSITIVE_INFINITY);
  recorder.finishResult = { finish: { reason: 'stopped', samples: 30, errors: 0, durationMs: 100, exitCode: 143 } };
  return recorder;
}

describe('top (library)', () => {
  it('starts the recorder with batches and yields snapshots until the target exits', async () => {
    const binding = fakeBinding(endingRecorder(2));
    const snapshots = [];
    for await (const snap of topWith(() => binding, { pid: 4242, interval: 5, rate: 250, idle: true })) snapshots.push(snap);
    expect(binding.startRecorder).toHaveBeenCalledWith(
      expect.objectContaining({
        pid: 4242,
        rate: 250,
        gil: false,
        idle: true,
        threads: false,
        function: false,
        nolineno: false,
        nonblocking: false,
        fullFilenames: false,
        batches: true,
      }),
    );
    expect(snapshots).toHaveLength(2);
    const last = snapshots[1]!;
    expect(last).toMatchObject({ pid: 4242, pythonVersion: '3.12.1', samples: 60, errors: 2, threads: 1, gil: null, active: null });
    expect(last.rows.map((r) => [r.function, r.file, r.line, r.ownPct, r.totalPct])).toEqual([
      ['spin', 'demo.py', 7, (100 * 20) / 30, (100 * 20) / 30],
      ['<module>', 'demo.py', 1, (100 * 10) / 30, 100],
    ]);
    expect(last.rows[0]!.ownTime).toBeCloseTo(0.4);
    expect(last.rows[1]!.totalTime).toBeCloseTo(0.6);
  });

  it('measures the active share without idle, the GIL share with gil', async () => {
    const active = await first(topWith(() => fakeBinding(endingRecorder(1)), { pid: 1, interval: 5 }));
    expect(active).toMatchObject({ gil: null, active: 100 });
    const gil = await first(topWith(() => fakeBinding(endingRecorder(1)), { pid: 1, interval: 5, gil: true }));
    expect(gil).toMatchObject({ gil: 100, active: null });
  });

  it('presents rows as asked: by line, sorted, limited', async () => {
    const snap = await first(
      topWith(() => fakeBinding(endingRecorder(1)), { pid: 1, interval: 5, lines: true, sort: 'totalPct', limit: 3 }),
    );
    // By line, <module> at line 30 (calling spin) and at line 31 are two rows.
    expect(snap.rows.map((r) => [r.function, r.line, Math.round(r.totalPct)])).toEqual([
      ['spin', 9, 67],
      ['<module>', 30, 67],
      ['<module>', 31, 33],
    ]);
  });

  it('stops sampling when the loop is left', async () => {
    const binding = fakeBinding(endlessRecorder());
    for await (const snap of topWith(() => binding, { pid: 4242, interval: 5 })) {
      expect(snap.samples).toBe(30);
      break;
    }
    expect(binding.recorder.stop).toHaveBeenCalled();
    expect(binding.recorder.finish).toHaveBeenCalled();
  });

  it('stops at an abort', async () => {
    const binding = fakeBinding(endlessRecorder());
    const controller = new AbortController();
    let count = 0;
    for await (const _ of topWith(() => binding, { pid: 4242, interval: 5, signal: controller.signal })) {
      if (++count === 2) controller.abort();
    }
    expect(count).toBeGreaterThanOrEqual(2);
    expect(binding.recorder.finish).toHaveBeenCalled();
  });

  it('rejects bad options with EINVAL before starting anything', async () => {
    const binding = fakeBinding();
    const bad = [{ sort: 'name' as never }, { limit: -1 }, { limit: 1.5 }, { interval: 0 }];
    for (const options of bad) {
      await expect(topWith(() => binding, { pid: 1, ...options }).next()).rejects.toMatchObject({ code: 'EINVAL' });
    }
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it("passes the binding's errors through", async () => {
    const error: BindingError = { code: 'ENOPROCESS', message: 'no process with pid 1' };
    const it = topWith(() => fakeBinding(error), { pid: 1 });
    await expect(it.next()).rejects.toEqual(new PyspyError('ENOPROCESS', 'no process with pid 1'));
    await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
  });
});

async function first<T>(iterator: AsyncIterableIterator<T>): Promise<T> {
  const result = await iterator.next();
  await iterator.return?.();
  if (result.done) throw new Error('no snapshot');
  return result.value;
}

/** A terminal that records what is done to it; keys are typed with `press`. */
class FakeTerminal implements TopTerminal {
  columns = 100;
  rows = 20;
  active = false;
  output = '';
  entered = 0;
  /** Called once entered and drawn, with the terminal. */
  onEnter: ((term: FakeTerminal) => void) | undefined;
  readonly #keys = new Set<(key: string) => void>();
  readonly #resizes = new Set<() => void>();
  enter(): void {
    this.active = true;
    this.entered++;
  }
  leave(): void {
    this.active = false;
  }
  write(text: string): void {
    this.output += text;
    if (this.entered === 1 && this.onEnter) {
      const onEnter = this.onEnter;
      this.onEnter = undefined;
      setTimeout(() => onEnter(this), 20);
    }
  }
  onKey(handler: (key: string) => void): () => void {
    this.#keys.add(handler);
    return () => void this.#keys.delete(handler);
  }
  onResize(handler: () => void): () => void {
    this.#resizes.add(handler);
    return () => void this.#resizes.delete(handler);
  }
  press(key: string): void {
    for (const handler of [...this.#keys]) handler(key);
  }
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    for (const handler of [...this.#resizes]) handler();
  }
  get listeners(): number {
    return this.#keys.size + this.#resizes.size;
  }
}

interface RunOptions {
  recorder?: FakeRecorder | BindingError;
  terminal?: FakeTerminal;
  onSignalInstalled?: (raise: (signal: 'SIGINT' | 'SIGTERM') => void) => void;
}

/** Runs the CLI with fakes, capturing output. */
async function run(args: string[], { recorder = endingRecorder(), terminal, onSignalInstalled }: RunOptions = {}) {
  let stdout = '';
  let stderr = '';
  const binding = fakeBinding(recorder);
  const kill = vi.fn();
  let handlers = 0;
  const code = await main(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    binding: () => binding,
    stderrIsTTY: false,
    kill,
    onSignal: (handler) => {
      handlers++;
      onSignalInstalled?.(handler);
      return () => void handlers--;
    },
    terminal: () => terminal,
    commandLine: (pid) => `python3 demo.py --pid-was ${pid}`,
  });
  return { code, stdout, stderr, binding, kill, handlersLeft: handlers };
}

describe('pyspy-node top: plain mode', () => {
  it('prints a table every refresh, then that the process ended', async () => {
    const { code, stdout, stderr, binding, handlersLeft } = await run(['top', '--pid', '4242', '--delay', '0.005']);
    expect({ code, stderr, handlersLeft }).toEqual({ code: 0, stderr: '', handlersLeft: 0 });
    expect(binding.startRecorder).toHaveBeenCalledWith(expect.objectContaining({ pid: 4242, rate: 100, batches: true, keepProfile: false }));
    const tables = stdout.split('\n\n');
    expect(tables).toHaveLength(4);
    expect(tables[0]!.split('\n')).toEqual([
      "Collecting samples from 'python3 demo.py --pid-was 4242' (python v3.12.1)",
      'Total Samples 30   Rate: 100.0/s',
      'GIL: n/a, Active: 100.00%, Threads: 1',
      '    %Own  %Total  OwnTime TotalTime  Function (filename)',
      '  66.67%  66.67%    0.20s     0.20s  spin (demo.py)',
      '  33.33% 100.00%    0.10s     0.30s  <module> (demo.py)',
    ]);
    expect(tables[2]).toContain('Total Samples 90');
    expect(tables[3]).toBe('process 4242 ended\n');
  });

  it("passes py-spy's flags on", async () => {
    const { binding } = await run([
      'top',
      '-r',
      '250',
      '-g',
      '-i',
      '--nonblocking',
      '--full-filenames',
      '--delay',
      '0.005',
      '--',
      'python3',
      'app.py',
      '-r',
    ]);
    expect(binding.startRecorder).toHaveBeenCalledWith(
      expect.objectContaining({
        command: ['python3', 'app.py', '-r'],
        rate: 250,
        gil: true,
        idle: true,
        threads: false,
        function: false,
        nolineno: false,
        nonblocking: true,
        fullFilenames: true,
        batches: true,
      }),
    );
  });

  it("exits with a launched command's exit code once it exits", async () => {
    const recorder = endingRecorder(1);
    recorder.finishResult = { finish: { reason: 'exited', samples: 30, errors: 0, durationMs: 1, exitCode: 3 } };
    const { code, stdout } = await run(['top', '--delay', '0.005', '--', 'python3', 'app.py'], { recorder });
    expect(code).toBe(3);
    expect(stdout).toContain("Collecting samples from 'python3 app.py'");
    expect(stdout).toMatch(/process 4242 ended\n$/);
  });

  it('stops at Ctrl-C with exit code 0', async () => {
    const { code, stdout } = await run(['top', '--pid', '4242', '--delay', '0.005'], {
      recorder: endlessRecorder(),
      onSignalInstalled: (raise) => setTimeout(() => raise('SIGINT'), 30),
    });
    expect(code).toBe(0);
    expect(stdout).toContain('Total Samples');
    expect(stdout).not.toContain('ended');
  });

  it.each([
    [['top', '--pid', '1', '--native', '--nonblocking'], "Error: --native cannot be combined with --nonblocking: a thread's native stack can only be read while the thread is paused\n"],
    [['top', '--pid', '1', '--', 'python3'], 'Error: give either --pid or a command to launch, not both\n'],
    [['top'], 'Error: give --pid <pid> or a command to launch, e.g. `pyspy-node top -- python3 app.py`\n'],
    [['top', '--pid', '1', '--delay', '0'], "Error: option '--delay <seconds>' argument '0' is invalid. The delay must be a number above 0.\n"],
    [['top', '--pid', '1', '--rate', 'x'], "Error: option '-r, --rate <rate>' argument 'x' is invalid. The rate must be a number above 0.\n"],
  ])('rejects %j', async (args, message) => {
    const { code, stderr, binding } = await run(args);
    expect(code).toBe(1);
    expect(stderr).toBe(message);
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it('reports an attach failure as an error line', async () => {
    const { code, stderr } = await run(['top', '--pid', '1'], { recorder: { code: 'EPERM', message: 'not allowed' } });
    expect(code).toBe(1);
    expect(stderr).toBe('Error: not allowed\n');
  });
});

describe('pyspy-node top: on a terminal', () => {
  it('draws on the alternate screen, answers keys, and quits on q with exit code 0', async () => {
    const terminal = new FakeTerminal();
    const recorder = endlessRecorder();
    // The real finish() waits for the launched command to exit.
    recorder.finishGate = new Promise((resolve) => setTimeout(resolve, 100));
    terminal.onEnter = (term) => {
      term.press('4');
      term.resize(50, 10);
      setTimeout(() => term.press('q'), 30);
    };
    const { code, stdout, stderr, kill } = await run(['top', '--delay', '0.005', '--', 'python3', 'app.py'], {
      recorder,
      terminal,
    });
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(terminal.entered).toBe(1);
    expect(terminal.active).toBe(false);
    expect(terminal.listeners).toBe(0);
    expect(terminal.output).toContain('sorted by TotalTime');
    expect(recorder.stop).toHaveBeenCalled();
    // The launched command is ended at once: no Ctrl-C reached it.
    expect(kill).toHaveBeenCalledWith(4242, 'SIGTERM');
  });

  it('restores the terminal when the target exits, then leaves the last view and says so', async () => {
    const terminal = new FakeTerminal();
    const { code, stdout } = await run(['top', '--pid', '4242', '--delay', '0.005'], { terminal });
    expect(code).toBe(0);
    expect(terminal.active).toBe(false);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe("Collecting samples from 'python3 demo.py --pid-was 4242' (python v3.12.1)");
    expect(lines[1]).toBe('Total Samples 90   Rate: 100.0/s');
    expect(lines[3]).toBe('    %Own  %Total  OwnTime TotalTime  Function (filename)');
    expect(lines[4]).toContain('spin (demo.py)');
    expect(stdout).toMatch(/\nprocess 4242 ended\n$/);
  });

  it('restores the terminal on an error, then reports it', async () => {
    const terminal = new FakeTerminal();
    const recorder = endingRecorder(1);
    recorder.finishResult = { error: { code: 'EREAD', message: 'reading failed' } };
    const { code, stdout, stderr } = await run(['top', '--pid', '4242', '--delay', '0.005'], { recorder, terminal });
    expect(terminal.entered).toBe(1);
    expect(terminal.active).toBe(false);
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: 'Error: reading failed\n' });
  });

  it('never takes the terminal over when attaching fails', async () => {
    const terminal = new FakeTerminal();
    const { code } = await run(['top', '--pid', '1'], { terminal, recorder: { code: 'ENOPROCESS', message: 'gone' } });
    expect(code).toBe(1);
    expect(terminal.entered).toBe(0);
  });

  it('quits on SIGTERM', async () => {
    const terminal = new FakeTerminal();
    const { code } = await run(['top', '--pid', '4242', '--delay', '0.005'], {
      terminal,
      recorder: endlessRecorder(),
      onSignalInstalled: (raise) => setTimeout(() => raise('SIGTERM'), 40),
    });
    expect(code).toBe(0);
    expect(terminal.active).toBe(false);
  });
});
