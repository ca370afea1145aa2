// A fake native recorder and binding for record/sample/CLI tests that must
// not need the addon. Tests drive it by setting `done` and the results.
import { vi } from 'vitest';

import type {
  BindingError,
  BindingFinishResult,
  BindingProgress,
  BindingPushStats,
  BindingRecordOptions,
  BindingRecorder,
  BindingStacks,
} from '../binding/binding.cjs';
import type { RecordBinding } from '../src/recording.js';

/** Two stacks of one thread, as the binding aggregates them. */
export const bindingStacks: BindingStacks = {
  samples: 30,
  errors: 1,
  stacks: [
    {
      pid: 4242,
      threadId: 0x7f3a1d000740,
      interpreterId: 0,
      osThreadId: 4242,
      threadName: 'MainThread',
      frames: [
        { name: '<module>', filename: '/home/me/demo.py', shortFilename: 'demo.py', line: 30, firstLine: 1 },
        { name: 'spin', filename: '/home/me/demo.py', shortFilename: 'demo.py', line: 9, firstLine: 7 },
      ],
      count: 20,
    },
    {
      pid: 4242,
      threadId: 0x7f3a1d000740,
      interpreterId: 0,
      frames: [{ name: '<module>', filename: '/home/me/demo.py', shortFilename: 'demo.py', line: 31, firstLine: 1 }],
      count: 10,
    },
  ],
};

/** A recorder whose sampling "ends" when `done` is set or `stop()` is called. */
export class FakeRecorder implements BindingRecorder {
  pid = 4242;
  pythonVersion = '3.12.1';
  /** Sampling ended by itself (duration, target exit). */
  done = false;
  stopped = false;
  samples = 30;
  batches: BindingStacks[] = [];
  finishResult: BindingFinishResult = {
    finish: { reason: 'exited', samples: 30, errors: 1, durationMs: 1234.5, exitCode: 0 },
  };
  /** When set, `finish()` waits for it. */
  finishGate: Promise<void> | undefined;
  encoded: BindingError | undefined;

  readonly progress = vi.fn(
    (): BindingProgress => ({ samples: this.samples, attempts: 31, errors: 1, elapsedMs: 300, latenessMs: 0.5, rate: 99.5, tornReads: 0, pausedSamples: 0, processes: 1 }),
  );
  readonly isDone = vi.fn(() => this.done || this.stopped);
  readonly stop = vi.fn(() => void (this.stopped = true));
  readonly takeBatch = vi.fn((): BindingStacks | null => this.batches.shift() ?? { samples: 0, errors: 0, stacks: [] });
  readonly finish = vi.fn(async (): Promise<BindingFinishResult> => {
    if (!(this.done || this.stopped)) throw new Error('finish() called while sampling (the real one would block)');
    await this.finishGate;
    return this.finishResult;
  });
  readonly stacks = vi.fn((): BindingStacks | null => bindingStacks);
  /** What `pushStats()` answers (null: not pushing). */
  pushStatsResult: BindingPushStats | null = null;
  readonly pushStats = vi.fn((): BindingPushStats | null => this.pushStatsResult);
  readonly encode = vi.fn(
    (format: string, title?: string | null): Buffer | BindingError =>
      this.encoded ?? Buffer.from(`${format}|${title ?? 'pyspy-node'}`),
  );
}

/** A binding whose `startRecorder` resolves with `recorder` (or an error). */
export function fakeBinding(): FakeBinding<FakeRecorder>;
export function fakeBinding<R extends FakeRecorder | BindingError>(recorder: R): FakeBinding<R>;
export function fakeBinding(recorder: FakeRecorder | BindingError = new FakeRecorder()): FakeBinding<FakeRecorder | BindingError> {
  const startRecorder = vi.fn(async (_options: BindingRecordOptions) => recorder as BindingRecorder | BindingError);
  return { startRecorder, recorder };
}

/** What {@link fakeBinding} returns: the binding, and the recorder it hands out. */
export interface FakeBinding<R> extends RecordBinding {
  startRecorder: ReturnType<typeof vi.fn<(options: BindingRecordOptions) => Promise<BindingRecorder | BindingError>>>;
  recorder: R;
}
