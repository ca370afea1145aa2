/**
 * Aggregated stacks: what {@link Profile.stacks} returns and {@link sample}
 * yields, converted from the native binding's shape.
 *
 * @module
 */
import type { BindingStacks } from '../binding/binding.cjs';

/** Stack samples counted over some time, one entry per unique stack of a thread. */
export interface Stacks {
  /** Stack samples counted (after `idle`/`gil` filtering, summed over threads). */
  samples: number;
  /** Sampling attempts that failed. */
  errors: number;
  /** The unique stacks with their counts, in no particular order. */
  stacks: Stack[];
}

/** What {@link sample} yields: the stacks of one interval. */
export type Batch = Stacks;

/** One unique stack of one thread, and how many samples saw it. */
export interface Stack {
  /** The process. */
  pid: number;
  /** Python's thread id (`threading.get_ident()`). */
  threadId: number;
  /** The OS thread id (the Linux tid), or `null` when unknown. */
  osThreadId: number | null;
  /** `threading.Thread.name`, or `null` when unknown. */
  threadName: string | null;
  /**
   * The id of the interpreter the thread belongs to: `0` for the main one;
   * a sub-interpreter's stacks start with a synthetic `interpreter N` frame.
   */
  interpreterId: number;
  /**
   * Frames, root (outermost) first; roots, outermost first: `process PID`
   * (subprocesses), `interpreter N` (sub-interpreters), `thread (…)`
   * (with `threads: true`).
   */
  frames: StackFrame[];
  /** Samples that saw this stack. */
  count: number;
}

/** One frame of a {@link Stack}, labelled as the recording options asked. */
export interface StackFrame {
  /** Function name (`co_qualname` on 3.11+, `co_name` before), or a synthetic root's text. */
  name: string;
  /** Full filename; empty for synthetic frames. */
  filename: string;
  /** Short (package-relative) filename. */
  shortFilename: string;
  /** The line shown: the current line, the function's first line with `function: true`, or `0` (none). */
  line: number;
  /** The function's first line (`co_firstlineno`); `0` when unknown. */
  firstLine: number;
}

/**
 * Converts the binding's stacks into the public {@link Stacks}.
 *
 * @internal
 */
export function toStacks(stacks: BindingStacks): Stacks {
  return {
    samples: stacks.samples,
    errors: stacks.errors,
    stacks: stacks.stacks.map((stack) => ({
      pid: stack.pid,
      threadId: stack.threadId,
      osThreadId: stack.osThreadId ?? null,
      threadName: stack.threadName ?? null,
      interpreterId: stack.interpreterId,
      frames: stack.frames.map((frame) => ({
        name: frame.name,
        filename: frame.filename,
        shortFilename: frame.shortFilename,
        line: frame.line,
        firstLine: frame.firstLine,
      })),
      count: stack.count,
    })),
  };
}
