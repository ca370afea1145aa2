/**
 * `pyspy-node top`: py-spy's `top` flags on top of {@link TopFeed}. On a
 * terminal it runs the interactive {@link TopScreen}; otherwise (piped, CI
 * logs) it prints a plain table every refresh.
 *
 * @module
 * @internal
 */
import { readFileSync } from 'node:fs';

import { type Command, InvalidArgumentError } from 'commander';

import { UsageError } from '../cli-error.js';
import type { RecordCliDeps } from '../cli-record.js';
import { parsePid } from '../pid.js';
import { EXIT_GRACE_MS } from '../recording.js';
import { TopAggregator } from './aggregate.js';
import { TopFeed } from './feed.js';
import { plainTable, type ScreenInfo } from './render.js';
import { TopScreen } from './screen.js';
import type { TopTerminal } from './terminal.js';

/**
 * In plain mode, after Ctrl-C, how long a launched command (which got the
 * terminal's SIGINT too) has to exit by itself before it is sent SIGTERM.
 */
const SIGINT_GRACE_MS = 2000;

/** What `top` talks to besides `record`'s {@link RecordCliDeps}; tests pass fakes. */
export interface TopCliDeps {
  /** The terminal to draw on when standard input and output are both terminals; else `undefined`. */
  terminal: () => TopTerminal | undefined;
  /** A running process's command line, for the header; `undefined` when unreadable. */
  commandLine: (pid: number) => string | undefined;
}

/** Everything `top` uses. */
export type TopCommandDeps = Pick<RecordCliDeps, 'binding' | 'onSignal' | 'kill'> &
  TopCliDeps & {
    /** Writes to standard output. */
    stdout: (text: string) => void;
  };

interface TopFlags {
  pid?: number;
  rate: number;
  subprocesses?: boolean;
  fullFilenames?: boolean;
  gil?: boolean;
  idle?: boolean;
  delay: number;
  native?: boolean;
  nonblocking?: boolean;
  asyncio?: boolean;
}

/** Why `top` is stopping, when it was asked to. */
type StopCause = 'quit' | 'SIGINT' | 'SIGTERM' | 'error';

/**
 * Adds the `top` subcommand to `program`.
 *
 * @param program The `pyspy-node` program; it must have positional options enabled.
 * @param deps See {@link TopCommandDeps}.
 * @param setExitCode Receives the exit code of a successful run.
 */
export function addTopCommand(program: Command, deps: TopCommandDeps, setExitCode: (code: number) => void): void {
  program
    .command('top')
    .description('Show a live, top-like view of the functions a Python program spends its time in')
    .usage('[options] [-- <command> [args...]]')
    .argument('[command...]', 'a Python program to launch and watch, with its arguments')
    .passThroughOptions()
    .option('-p, --pid <pid>', 'PID of a running Python program to attach to (decimal or 0x-hex)', (text) => parsePid(text))
    .option('-r, --rate <rate>', 'samples per second', (text) => parsePositive(text, 'rate'), 100)
    .option('-s, --subprocesses', 'also watch Python subprocesses')
    .option('--full-filenames', 'show full Python filenames')
    .option('-g, --gil', 'only sample threads holding the GIL')
    .option('-i, --idle', 'include idle (sleeping, blocked) threads')
    .option('--delay <seconds>', 'seconds between refreshes', (text) => parsePositive(text, 'delay'), 1)
    .option('-n, --native', 'include native frames (C, C++, Cython; Linux x86-64 and arm64): the program is paused for every read')
    .option('--nonblocking', 'never pause the program and never check stacks (they may be torn)')
    .option('-a, --asyncio', 'asyncio tasks as rows: <task NAME> (its total is the time in that task and the tasks it awaits; with --idle, waiting time too; CPython 3.11+)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ pyspy-node top --pid 4242',
        '  $ pyspy-node top --rate 250 --delay 2 -- python3 app.py',
        '',
        'Keys: 1-4 sort by a column (again: reverse), L by line/by function, R reset,',
        'space pause, ? help, q or Control-C quit. When standard input or output is not',
        'a terminal, a plain table is printed every refresh instead.',
        '',
        'Header: GIL is the share of samples that found a thread holding the GIL. On a',
        'free-threaded Python running without a GIL (3.13t+) it is replaced by Attached:',
        'the share of samples in which at least one thread was attached to the',
        'interpreter (running Python).',
        '',
      ].join('\n'),
    )
    .action(async (command: string[], flags: TopFlags) => {
      setExitCode(await runTop(deps, flags, command));
    });
}

/**
 * Runs `top` until the target exits, `q` (or Ctrl-C, SIGTERM) stops it.
 *
 * @returns The exit code: a launched command's own when it exited by itself
 * (128+N when killed by signal N), else 0.
 */
async function runTop(deps: TopCommandDeps, flags: TopFlags, command: string[]): Promise<number> {
  if (flags.native && flags.nonblocking) throw new UsageError("--native cannot be combined with --nonblocking: a thread's native stack can only be read while the thread is paused");
  if (flags.pid !== undefined && command.length > 0) {
    throw new UsageError('give either --pid or a command to launch, not both');
  }
  if (flags.pid === undefined && command.length === 0) {
    throw new UsageError('give --pid <pid> or a command to launch, e.g. `pyspy-node top -- python3 app.py`');
  }
  const launched = command.length > 0;
  const term = deps.terminal();
  const aggregator = new TopAggregator({ fullFilenames: flags.fullFilenames ?? false, rate: flags.rate });
  const title = launched ? command.join(' ') : (deps.commandLine(flags.pid!) ?? `process ${flags.pid}`);
  const screen = term ? new TopScreen(term, aggregator, title) : undefined;
  const info: ScreenInfo = { title, pythonVersion: undefined, lines: false, sort: 'ownTime', ascending: false };

  const controller = new AbortController();
  let stopping: StopCause | undefined;
  let failure: { error: unknown } | undefined;
  let targetPid: number | undefined;
  const stop = (cause: StopCause) => {
    if (stopping) return;
    stopping = cause;
    term?.leave(); // at once: ending a launched command may take a moment
    controller.abort();
  };
  const unsubscribe: (() => void)[] = [];
  unsubscribe.push(
    deps.onSignal((signal) => {
      if (!stopping) stop(signal);
      else if (launched && targetPid !== undefined) deps.kill(targetPid, 'SIGKILL'); // asked twice
    }),
  );

  const feed = new TopFeed(
    deps.binding,
    {
      ...(launched ? { command } : { pid: flags.pid }),
      rate: flags.rate,
      gil: flags.gil ?? false,
      idle: flags.idle ?? false,
      nonblocking: flags.nonblocking ?? false,
      native: flags.native ?? false,
      asyncio: flags.asyncio ?? false,
      subprocesses: flags.subprocesses ?? false,
      fullFilenames: flags.fullFilenames ?? false,
      interval: flags.delay * 1000,
      signal: controller.signal,
    },
    {
      kill: deps.kill,
      // Ctrl-C on a terminal in plain mode reached the command too: give it
      // time to exit by itself. Raw mode delivers Ctrl-C to us alone.
      exitGraceMs: () => (stopping === 'SIGINT' && !term ? SIGINT_GRACE_MS : stopping ? 0 : EXIT_GRACE_MS),
      onStarted: (target) => {
        targetPid = target.pid;
        info.pythonVersion = target.pythonVersion;
        if (!term || !screen || stopping) return;
        screen.setTarget(target);
        term.enter();
        unsubscribe.push(
          term.onKey((key) => guard(() => screen.key(key) === 'quit' && stop('quit'))),
          term.onResize(() => guard(() => screen.draw())),
        );
        screen.draw();
      },
    },
  );
  // A bug in drawing must still end in a restored terminal and an error.
  const guard = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      failure ??= { error };
      stop('error');
    }
  };

  try {
    for await (const item of feed) {
      if (screen) {
        guard(() => screen.add(item));
      } else {
        aggregator.add(item.batch, item.info);
        deps.stdout(plainTable(aggregator.figures(), { ...info, latenessMs: item.latenessMs }));
      }
    }
  } finally {
    for (const off of unsubscribe) off();
    term?.leave();
  }
  if (failure) throw failure.error;
  if (stopping) return 0;

  // The target exited: leave its last view on the normal screen.
  if (screen && term) deps.stdout(screen.plainView(term.columns, Math.max(4, term.rows - 2)));
  deps.stdout(`process ${feed.target?.pid ?? flags.pid} ended\n`);
  const finish = feed.finish;
  if (!launched || !finish) return 0;
  if (finish.exitCode !== undefined && finish.exitCode !== null) return finish.exitCode;
  if (finish.exitSignal !== undefined && finish.exitSignal !== null) return 128 + finish.exitSignal;
  return 0;
}

/** `/proc/PID/cmdline`, space-joined; `undefined` when unreadable (not Linux, gone, denied). */
export function readCommandLine(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '');
    return text ? text.split('\0').join(' ') : undefined;
  } catch {
    return undefined;
  }
}

function parsePositive(text: string, what: string): number {
  const value = /^\s*[0-9]*\.?[0-9]+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!(value > 0 && Number.isFinite(value))) throw new InvalidArgumentError(`The ${what} must be a number above 0.`);
  return value;
}
