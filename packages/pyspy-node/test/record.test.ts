import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { PyspyError } from '../src/errors.js';
import { formatFromPath, Profile } from '../src/profile.js';
import { recordWith, type Progress } from '../src/record.js';
import { KILL_AFTER_MS } from '../src/recording.js';
import { sampleWith } from '../src/sample.js';
import { bindingStacks, fakeBinding, FakeRecorder } from './fake-recorder.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('record', () => {
  it('passes options with py-spy defaults and resolves with the profile', async () => {
    const binding = fakeBinding();
    binding.recorder.done = true;
    const profile = await recordWith(binding, { pid: 4242 });
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
    expect(profile).toBeInstanceOf(Profile);
    expect(profile).toMatchObject({
      samples: 30,
      errors: 1,
      durationMs: 1234.5,
      reason: 'exited',
      exitCode: 0,
      exitSignal: null,
      pid: 4242,
      pythonVersion: '3.12.1',
    });
  });

  it('passes a command and every flag through', async () => {
    const binding = fakeBinding();
    binding.recorder.done = true;
    await recordWith(binding, {
      command: ['python3', 'app.py'],
      rate: 250,
      duration: 2.5,
      gil: true,
      idle: true,
      threads: true,
      nolineno: true,
      nonblocking: true,
      blocking: false,
      subprocesses: false,
      fullFilenames: true,
    });
    expect(binding.startRecorder).toHaveBeenCalledWith({
      command: ['python3', 'app.py'],
      rate: 250,
      duration: 2.5,
      gil: true,
      idle: true,
      threads: true,
      function: false,
      nolineno: true,
      nonblocking: true,
      blocking: false,
      subprocesses: false,
      fullFilenames: true,
      native: false,
      gcFrames: true,
      asyncio: false,
      gilWaitFrames: false,
      captureOutput: false,
      batches: false,
      keepProfile: true,
    });
  });

  it.each([
    [{}, 'EINVAL'],
    [{ pid: 1, command: ['python3'] }, 'EINVAL'],
    [{ pid: 0 }, 'EINVAL'],
    [{ command: [] }, 'EINVAL'],
    [{ pid: 1, rate: 0 }, 'EINVAL'],
    [{ pid: 1, duration: -1 }, 'EINVAL'],
    [{ pid: 1, function: true, nolineno: true }, 'EINVAL'],
    [{ pid: 1, native: true, nonblocking: true }, 'EINVAL'],
  ])('rejects %j with %s before starting anything', async (options, code) => {
    const binding = fakeBinding();
    const err = await recordWith(binding, options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PyspyError);
    expect(err).toMatchObject({ code });
    if (code === 'EUNSUPPORTED') expect((err as Error).message).toMatch(/is not supported yet$/);
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it('turns a start error into a PyspyError with its code', async () => {
    const binding = fakeBinding({ code: 'ENOPROCESS', message: 'no process with pid 9' });
    await expect(recordWith(binding, { pid: 9 })).rejects.toMatchObject({
      name: 'PyspyError',
      code: 'ENOPROCESS',
      message: 'no process with pid 9',
    });
  });

  it('turns a finish error into a PyspyError', async () => {
    const binding = fakeBinding();
    binding.recorder.done = true;
    binding.recorder.finishResult = { error: { code: 'EREAD', message: 'reading failed' } };
    await expect(recordWith(binding, { pid: 1 })).rejects.toMatchObject({ code: 'EREAD' });
  });

  it('rejects with the reason of an already-aborted signal, starting nothing', async () => {
    const binding = fakeBinding();
    const reason = new Error('too late');
    await expect(recordWith(binding, { pid: 1, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it('on abort, stops sampling and resolves with what was collected', async () => {
    const binding = fakeBinding();
    binding.recorder.finishResult = { finish: { reason: 'stopped', samples: 7, errors: 0, durationMs: 70 } };
    const controller = new AbortController();
    const started = vi.fn(() => setTimeout(() => controller.abort(), 20));
    const profile = await recordWith(binding, { pid: 1, signal: controller.signal }, { onStart: started });
    expect(started).toHaveBeenCalledWith({ pid: 4242, pythonVersion: '3.12.1' });
    expect(binding.recorder.stop).toHaveBeenCalledTimes(1);
    expect(binding.recorder.finish).toHaveBeenCalledTimes(1);
    expect(profile).toMatchObject({ reason: 'stopped', samples: 7, exitCode: null, exitSignal: null });
  });

  it('calls onProgress every 250 ms and once at the end, never after settling', async () => {
    vi.useFakeTimers();
    const binding = fakeBinding();
    const calls: Progress[] = [];
    const done = recordWith(binding, { pid: 1, onProgress: (p) => calls.push(p) });
    await vi.advanceTimersByTimeAsync(1010);
    expect(calls).toHaveLength(4);
    binding.recorder.samples = 99;
    binding.recorder.done = true;
    await vi.advanceTimersByTimeAsync(250);
    await done;
    expect(calls).toHaveLength(5);
    expect(calls.at(-1)).toEqual({ samples: 99, attempts: 31, errors: 1, elapsedMs: 300, latenessMs: 0.5, rate: 99.5, tornReads: 0, pausedSamples: 0, processes: 1 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toHaveLength(5);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops and rejects with the error onProgress throws', async () => {
    vi.useFakeTimers();
    const binding = fakeBinding();
    const boom = new Error('boom');
    const done = recordWith(binding, {
      pid: 1,
      onProgress: () => {
        throw boom;
      },
    });
    const settled = expect(done).rejects.toBe(boom);
    await vi.advanceTimersByTimeAsync(300);
    await settled;
    expect(binding.recorder.stop).toHaveBeenCalled();
    expect(binding.recorder.finish).toHaveBeenCalled();
  });

  it('ends a launched command that outlives the recording: SIGTERM after the grace, then SIGKILL', async () => {
    vi.useFakeTimers();
    const binding = fakeBinding();
    const recorder = binding.recorder;
    recorder.done = true; // the duration ran out
    let exited!: () => void;
    recorder.finishGate = new Promise<void>((resolve) => (exited = resolve));
    recorder.finishResult = { finish: { reason: 'duration', samples: 5, errors: 0, durationMs: 50, exitSignal: 9 } };
    const kill = vi.fn();
    const done = recordWith(binding, { command: ['python3', 'x.py'], duration: 1 }, { kill, exitGraceMs: () => 100 });
    await vi.advanceTimersByTimeAsync(99);
    expect(kill).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(kill).toHaveBeenCalledWith(4242, 'SIGTERM');
    await vi.advanceTimersByTimeAsync(KILL_AFTER_MS);
    expect(kill).toHaveBeenLastCalledWith(4242, 'SIGKILL');
    exited();
    await expect(done).resolves.toMatchObject({ reason: 'duration', exitSignal: 9 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never signals a process it attached to', async () => {
    vi.useFakeTimers();
    const binding = fakeBinding();
    binding.recorder.done = true;
    let finished!: () => void;
    binding.recorder.finishGate = new Promise<void>((resolve) => (finished = resolve));
    const kill = vi.fn();
    const done = recordWith(binding, { pid: 1 }, { kill });
    await vi.advanceTimersByTimeAsync(10_000);
    finished();
    await done;
    expect(kill).not.toHaveBeenCalled();
  });
});

describe('Profile', () => {
  async function profileOf(recorder = new FakeRecorder()) {
    recorder.done = true;
    return { profile: await recordWith(fakeBinding(recorder), { pid: 1 }), recorder };
  }

  it('returns the stacks in the public shape', async () => {
    const { profile } = await profileOf();
    const stacks = profile.stacks();
    expect(stacks.samples).toBe(30);
    expect(stacks.stacks[0]).toMatchObject({ threadName: 'MainThread', osThreadId: 4242, count: 20 });
    expect(stacks.stacks[0]?.frames.map((f) => f.name)).toEqual(['<module>', 'spin']);
    expect(stacks.stacks[1]).toMatchObject({ threadName: null, osThreadId: null });
    expect(bindingStacks.stacks[1]?.threadName).toBeUndefined();
  });

  it('encodes, with a title, and renders text formats', async () => {
    const { profile, recorder } = await profileOf();
    expect(profile.encode('speedscope', { title: 'my app' }).toString()).toBe('speedscope|my app');
    expect(profile.toString()).toBe('raw|pyspy-node');
    expect(profile.toString('flamegraph')).toBe('flamegraph|pyspy-node');
    expect(() => profile.toString('pprof' as never)).toThrow(expect.objectContaining({ code: 'EFORMAT' }));
    expect(() => profile.encode('svg' as never)).toThrow(expect.objectContaining({ code: 'EFORMAT' }));
    recorder.encoded = { code: 'EEMPTY', message: 'no samples' };
    expect(() => profile.encode('raw')).toThrow(expect.objectContaining({ code: 'ENOSAMPLES' }));
  });

  it('refuses to encode a profile without samples', async () => {
    const recorder = new FakeRecorder();
    recorder.finishResult = { finish: { reason: 'exited', samples: 0, errors: 0, durationMs: 5, exitCode: 0 } };
    const { profile } = await profileOf(recorder);
    expect(() => profile.encode('flamegraph')).toThrow(expect.objectContaining({ code: 'ENOSAMPLES' }));
    expect(recorder.encode).not.toHaveBeenCalled();
  });

  it.each([
    ['out.svg', 'flamegraph'],
    ['OUT.SVG', 'flamegraph'],
    ['dir.json/out.json', 'speedscope'],
    ['out.txt', 'raw'],
    ['out.pb.gz', 'pprof'],
    ['out.pprof', 'pprof'],
    ['out.gz', undefined],
    ['out', undefined],
  ])('infers the format of %s: %s', (file, format) => {
    expect(formatFromPath(file)).toBe(format);
  });

  describe('writeFile', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'pyspy-node-test-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it.each([
      ['p.svg', undefined, 'flamegraph'],
      ['p.json', undefined, 'speedscope'],
      ['p.json', 'chrometrace', 'chrometrace'],
      ['p.txt', undefined, 'raw'],
      ['p.pb.gz', undefined, 'pprof'],
      ['p.out', undefined, 'flamegraph'],
    ] as const)('writes %s as %s → %s, leaving no temporary file', async (name, format, expected) => {
      const { profile } = await profileOf();
      await profile.writeFile(path.join(dir, name), format);
      expect(readFileSync(path.join(dir, name), 'utf8')).toBe(`${expected}|pyspy-node`);
      expect(readdirSync(dir)).toEqual([name]);
    });

    it('leaves nothing behind when the directory does not exist', async () => {
      const { profile } = await profileOf();
      await expect(profile.writeFile(path.join(dir, 'nope', 'p.svg'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(readdirSync(dir)).toEqual([]);
    });
  });
});

describe('sample', () => {
  const batch = (samples: number) => ({ ...bindingStacks, samples, errors: 0 });

  it('yields a batch per interval until the target exits, then finishes', async () => {
    const binding = fakeBinding();
    const recorder = binding.recorder;
    recorder.batches = [batch(3), batch(4), batch(5)];
    const seen: number[] = [];
    for await (const b of sampleWith(() => binding, { pid: 1, interval: 20 })) {
      seen.push(b.samples);
      if (seen.length === 2) recorder.done = true;
    }
    expect(seen).toEqual([3, 4, 5]);
    expect(binding.startRecorder).toHaveBeenCalledWith(expect.objectContaining({ pid: 1, batches: true, keepProfile: false }));
    expect(recorder.finish).toHaveBeenCalledTimes(1);
    expect(recorder.stop).not.toHaveBeenCalled();
  });

  it('starts nothing until the first next()', async () => {
    const binding = fakeBinding();
    const it = sampleWith(() => binding, { pid: 1 });
    await it.return?.();
    expect(binding.startRecorder).not.toHaveBeenCalled();
    await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it('return() (break) stops sampling and waits for finish()', async () => {
    const binding = fakeBinding();
    const recorder = binding.recorder;
    recorder.batches = [batch(3)];
    let finished = false;
    recorder.finishGate = new Promise((resolve) => setTimeout(resolve, 30)).then(() => void (finished = true));
    for await (const b of sampleWith(() => binding, { pid: 1, interval: 10 })) {
      expect(b.samples).toBe(3);
      break;
    }
    expect(recorder.stop).toHaveBeenCalled();
    expect(recorder.finish).toHaveBeenCalledTimes(1);
    expect(finished).toBe(true);
  });

  it('return() during a pending next() ends it promptly', async () => {
    const binding = fakeBinding();
    const it = sampleWith(() => binding, { pid: 1, interval: 60_000 });
    const pending = it.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const t0 = Date.now();
    await it.return?.();
    expect(Date.now() - t0).toBeLessThan(1000);
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(binding.recorder.stop).toHaveBeenCalled();
    expect(binding.recorder.finish).toHaveBeenCalledTimes(1);
  });

  it('ends after a last partial batch when the signal aborts', async () => {
    const binding = fakeBinding();
    binding.recorder.batches = [batch(2), batch(1)];
    const controller = new AbortController();
    const seen: number[] = [];
    for await (const b of sampleWith(() => binding, { pid: 1, interval: 20, signal: controller.signal })) {
      seen.push(b.samples);
      controller.abort();
    }
    expect(seen).toEqual([2, 1]);
    expect(binding.recorder.stop).toHaveBeenCalled();
    expect(binding.recorder.finish).toHaveBeenCalledTimes(1);
  });

  it('rejects next() with the reason of an already-aborted signal', async () => {
    const binding = fakeBinding();
    const reason = new Error('aborted before');
    const it = sampleWith(() => binding, { pid: 1, signal: AbortSignal.abort(reason) });
    await expect(it.next()).rejects.toBe(reason);
    await expect(it.next()).resolves.toMatchObject({ done: true });
    expect(binding.startRecorder).not.toHaveBeenCalled();
  });

  it('rejects next() with start and finish errors as PyspyErrors', async () => {
    const failing = fakeBinding({ code: 'EPERM', message: 'denied' });
    await expect(sampleWith(() => failing, { pid: 1 }).next()).rejects.toMatchObject({ code: 'EPERM' });
    await expect(sampleWith(() => failing, { pid: 1, interval: 0 }).next()).rejects.toMatchObject({ code: 'EINVAL' });

    const binding = fakeBinding();
    binding.recorder.done = true;
    binding.recorder.finishResult = { error: { code: 'EINTERNAL', message: 'bug' } };
    await expect(sampleWith(() => binding, { pid: 1 }).next()).rejects.toMatchObject({ code: 'EINTERNAL' });
  });
});
