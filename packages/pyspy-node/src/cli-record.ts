/**
 * `pyspy-node record`: py-spy's `record` flags, messages and exit codes on
 * top of {@link recordWith}. The CLI adds the output file name, the
 * start/progress/summary lines on stderr, and Ctrl-C/SIGTERM handling.
 *
 * @module
 * @internal
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

import { type Command, InvalidArgumentError, Option } from 'commander';

import { UsageError } from './cli-error.js';
import { addPushOptions, checkPushFlags, pushLine, pushOptionsOf, pushTarget, type PushFlags } from './cli-push.js';
import { parsePid } from './pid.js';
import { formatFromPath, PROFILE_FORMATS, type Profile, type ProfileFormat } from './profile.js';
import { recordWith, type Progress, type RecordOptions } from './record.js';
import { EXIT_GRACE_MS, type RecordBinding } from './recording.js';

/** Prefix of the CLI's own lines, which share the terminal with the profiled program's. */
const PREFIX = 'pyspy-node> ';
/**
 * After Ctrl-C, how long a launched command (which got the terminal's SIGINT
 * too) has to exit by itself before it is sent SIGTERM.
 */
const SIGINT_GRACE_MS = 2000;

/** What `record` talks to; tests pass fakes. */
export interface RecordCliDeps {
  /** The native binding, loaded on first use. */
  binding: () => RecordBinding;
  /** Writes to standard error. */
  stderr: (text: string) => void;
  /** Whether standard error is a terminal: the progress line is drawn only then. */
  stderrIsTTY: boolean;
  /** Calls `handler` on SIGINT and SIGTERM until the returned function is called. */
  onSignal: (handler: (signal: 'SIGINT' | 'SIGTERM') => void) => () => void;
  /** Sends a signal to a process, ignoring a process that is gone. */
  kill: (pid: number, signal: NodeJS.Signals) => void;
  /** The current time, for default output file names. */
  now: () => Date;
}

interface RecordFlags extends PushFlags {
  pid?: number;
  hideprogress?: boolean;
  output?: string;
  format?: ProfileFormat;
  duration?: number;
  rate: number;
  threads?: boolean;
  gil?: boolean;
  idle?: boolean;
  function?: boolean;
  nolineno?: boolean;
  nonblocking?: boolean;
  blocking?: boolean;
  fullFilenames?: boolean;
  subprocesses?: boolean;
  native?: boolean;
  gcFrames?: boolean;
  gilWaitFrames?: boolean;
  asyncio?: boolean;
  capture?: boolean;
}

/**
 * Adds the `record` subcommand to `program`.
 *
 * @param program The `pyspy-node` program; it must have positional options enabled.
 * @param deps See {@link RecordCliDeps}.
 * @param setExitCode Receives the exit code of a successful run (the
 * launched command's, when it is passed through).
 */
export function addRecordCommand(program: Command, deps: RecordCliDeps, setExitCode: (code: number) => void): void {
  const record = program
    .command('record')
    .description('Record samples of a Python program and write them to a flame graph or another profile file')
    .usage('[options] [-- <command> [args...]]')
    .argument('[command...]', 'a Python program to launch and profile, with its arguments')
    .passThroughOptions()
    .option('-p, --pid <pid>', 'PID of a running Python program to attach to (decimal or 0x-hex)', (text) => parsePid(text))
    .option(
      '-o, --output <file>',
      'output file (default: <program or pid>-<YYYY-MM-DDTHH-MM-SS>.<svg|json|txt|pb.gz> in the current directory)',
    )
    .option(
      '-f, --format <format>',
      'flamegraph, speedscope, raw, chrometrace or pprof (default: flamegraph, or as implied by --output: .svg .json .txt .pb.gz .pprof)',
      parseFormat,
    )
    .option('-d, --duration <seconds>', 'seconds to record (default: unlimited)', parseDuration)
    .option('-r, --rate <rate>', 'samples per second', (text) => parsePositive(text, 'rate'), 100)
    .option('-t, --threads', 'add a root frame per thread: thread (TID): name')
    .option('-g, --gil', 'only sample threads holding the GIL')
    .option('-i, --idle', 'include idle (sleeping, blocked) threads')
    .option('-F, --function', "label frames with the function's first line, not the current line")
    .addOption(new Option('--nolineno', 'no line numbers in frame labels').conflicts('function'))
    .option('--nonblocking', 'never pause the program and never check stacks (they may be torn)')
    .addOption(
      new Option(
        '--blocking',
        "pause the program for every sample, like py-spy's default (by default stacks are read without pausing, checked, and read again when torn)",
      ).conflicts('nonblocking'),
    )
    .option('--full-filenames', 'show full Python filenames')
    .option('-s, --subprocesses', 'also profile Python subprocesses (each gets a root frame process PID:"CMD")')
    .option('-n, --native', 'include native frames (C, C++, Cython; Linux x86-64 and arm64): the program is paused for every read')
    .option('--no-gc-frames', 'no <GC> leaf frame on samples taken while a garbage collection runs')
    .option('--gil-wait-frames', 'a <GIL wait> leaf frame on samples of threads waiting to take the GIL (shows contention per function)')
    .option('-a, --asyncio', 'rebuild samples along asyncio await chains: <task NAME> frames from the root task down to the running one (with --idle, every waiting task too; CPython 3.11+)')
    // Hidden in py-spy too.
    .addOption(new Option('--hideprogress', 'do not show the progress line').hideHelp())
    .addOption(new Option('--capture', "give a launched command /dev/null for its output instead of the terminal").hideHelp());
  addPushOptions(record, parsePositive)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ pyspy-node record -o profile.svg -- python3 app.py --port 8080',
        '  $ pyspy-node record --pid 4242 --duration 30 --format speedscope -o profile.json',
        '  $ pyspy-node record -p 4242 --idle --threads --rate 250',
        '  $ pyspy-node record -p 4242 --push http://localhost:4040 --app-name api --tag env=prod',
        '',
        'Press Control-C to stop recording; the file is written then. With a launched',
        "command, the exit code is the command's own (128+N when killed by signal N).",
        'With --push and no --duration it runs until Control-C, SIGTERM or the program',
        'exits, then pushes the last window. A server that cannot be reached at start is',
        'an error (exit code 1) unless --push-retry-forever; one that fails later is',
        'retried with backoff while sampling goes on (warnings once per kind of',
        'failure; summary at the end). Without -o nothing is kept locally, so memory',
        'stays flat however long it runs.',
        '',
      ].join('\n'),
    )
    .action(async (command: string[], flags: RecordFlags) => {
      setExitCode(await runRecord(deps, flags, command));
    });
}

/**
 * Records as `flags` ask, writes the file and prints the summary.
 *
 * @returns The exit code.
 */
async function runRecord(deps: RecordCliDeps, flags: RecordFlags, command: string[]): Promise<number> {
  if (flags.native && flags.nonblocking) throw new UsageError("--native cannot be combined with --nonblocking: a thread's native stack can only be read while the thread is paused");
  checkPushFlags(flags);
  if (flags.allPythons) return runAllPythons(deps, flags, command);
  if (flags.pid !== undefined && command.length > 0) {
    throw new UsageError('give either --pid or a command to launch, not both');
  }
  if (flags.pid === undefined && command.length === 0) {
    throw new UsageError('give --pid <pid> or a command to launch, e.g. `pyspy-node record -- python3 app.py`');
  }
  const pushing = flags.push !== undefined;
  const format = flags.format ?? (flags.output === undefined ? undefined : formatFromPath(flags.output)) ?? 'flamegraph';
  // With --push the file is optional: written only when -o names it.
  const output =
    pushing && flags.output === undefined
      ? undefined
      : (flags.output ?? defaultOutputName(command[0] === undefined ? String(flags.pid) : command[0], format, deps.now()));
  // Fail now rather than after a long recording.
  if (output !== undefined) {
    try {
      accessSync(path.dirname(path.resolve(output)), constants.W_OK);
    } catch (err) {
      throw new UsageError(`could not write '${output}': ${fsErrorText(err)}`);
    }
  }
  const launched = command.length > 0;
  const duration = flags.duration === Number.POSITIVE_INFINITY ? undefined : flags.duration;

  const controller = new AbortController();
  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  let targetPid: number | undefined;
  const unsubscribe = deps.onSignal((signal) => {
    if (interrupted === undefined) {
      interrupted = signal;
      controller.abort();
      // Ctrl-C reaches the whole foreground process group, SIGTERM usually only us.
      if (signal === 'SIGTERM' && launched && targetPid !== undefined) deps.kill(targetPid, 'SIGTERM');
    } else if (launched && targetPid !== undefined) {
      deps.kill(targetPid, 'SIGKILL'); // asked twice: stop waiting for the command
    }
  });
  const progress = new ProgressLine(deps);
  const options: RecordOptions = {
    ...(launched ? { command } : { pid: flags.pid }),
    rate: flags.rate,
    ...(duration === undefined ? {} : { duration }),
    signal: controller.signal,
    gil: flags.gil ?? false,
    idle: flags.idle ?? false,
    threads: flags.threads ?? false,
    function: flags.function ?? false,
    nolineno: flags.nolineno ?? false,
    nonblocking: flags.nonblocking ?? false,
    blocking: flags.blocking ?? false,
    subprocesses: flags.subprocesses ?? false,
    fullFilenames: flags.fullFilenames ?? false,
    native: flags.native ?? false,
    gcFrames: flags.gcFrames ?? true,
    gilWaitFrames: flags.gilWaitFrames ?? false,
    asyncio: flags.asyncio ?? false,
    captureOutput: flags.capture ?? false,
    ...(deps.stderrIsTTY && !flags.hideprogress ? { onProgress: (p: Progress) => progress.draw(p) } : {}),
    ...(pushing
      ? {
          push: pushOptionsOf(flags, (line) => {
            progress.clear();
            deps.stderr(`${PREFIX}${line}\n`);
          }),
        }
      : {}),
  };
  let profile: Profile;
  try {
    profile = await recordWith(deps.binding(), options, {
      onStart: ({ pid }) => {
        targetPid = pid;
        deps.stderr(`${PREFIX}${startLine(flags.rate, duration)}\n`);
        if (pushing) deps.stderr(`${PREFIX}Pushing to ${pushTarget(flags)}\n`);
      },
      exitGraceMs: () => (interrupted === 'SIGINT' ? SIGINT_GRACE_MS : EXIT_GRACE_MS),
      kill: deps.kill,
      // Pushing without a file: keep nothing locally, however long it runs.
      keepProfile: output !== undefined,
    });
  } finally {
    unsubscribe();
    progress.clear();
  }

  const why = stopLine(interrupted, profile.reason);
  if (why) deps.stderr(`${PREFIX}${why}\n`);
  if (profile.push) deps.stderr(`${PREFIX}${pushLine(profile.push, flags.push ?? '')}\n`);
  if (output === undefined) {
    if (profile.samples === 0) deps.stderr(`${PREFIX}No samples were collected (${noSamplesDetail(profile, flags)})\n`);
    return exitCodeOf(profile);
  }
  if (profile.samples === 0) {
    throw new UsageError(`No samples were collected (${noSamplesDetail(profile, flags)}): no file written`);
  }
  try {
    await profile.writeFile(output, format, { title: launched ? command.join(' ') : `process ${flags.pid}` });
  } catch (err) {
    throw new UsageError(`could not write '${output}': ${fsErrorText(err)}`);
  }
  deps.stderr(
    `${PREFIX}Wrote ${PROFILE_FORMATS[format].description} to '${output}'. Samples: ${profile.samples} Errors: ${profile.errors}\n`,
  );
  return exitCodeOf(profile);
}

/** `record --all-pythons --push URL`: streams until Ctrl-C, SIGTERM or --duration. */
async function runAllPythons(deps: RecordCliDeps, flags: RecordFlags, command: string[]): Promise<number> {
  if (flags.push === undefined) throw new UsageError('--all-pythons needs --push <url>: it only streams to a server');
  if (flags.pid !== undefined || command.length > 0) throw new UsageError('--all-pythons cannot be combined with --pid or a command');
  if (flags.output !== undefined) throw new UsageError('--all-pythons writes no file: leave out --output');
  const controller = new AbortController();
  let interrupted: 'SIGINT' | 'SIGTERM' | undefined;
  const unsubscribe = deps.onSignal((signal) => {
    interrupted ??= signal;
    controller.abort();
  });
  const duration = flags.duration === Number.POSITIVE_INFINITY ? undefined : flags.duration;
  let profile: Profile;
  try {
    profile = await recordWith(
      deps.binding(),
      {
        allPythons: true,
        ...(flags.match !== undefined ? { match: flags.match } : {}),
        ...(flags.uid !== undefined ? { uid: flags.uid } : {}),
        rate: flags.rate,
        ...(duration === undefined ? {} : { duration }),
        signal: controller.signal,
        gil: flags.gil ?? false,
        idle: flags.idle ?? false,
        threads: flags.threads ?? false,
        function: flags.function ?? false,
        nolineno: flags.nolineno ?? false,
        nonblocking: flags.nonblocking ?? false,
        blocking: flags.blocking ?? false,
        fullFilenames: flags.fullFilenames ?? false,
        native: flags.native ?? false,
        gcFrames: flags.gcFrames ?? true,
        gilWaitFrames: flags.gilWaitFrames ?? false,
        push: pushOptionsOf(flags, (line) => deps.stderr(`${PREFIX}${line}\n`)),
      },
      {
        onStart: () => {
          deps.stderr(
            `${PREFIX}Sampling every Python process on this machine ${flags.rate} times a second; pushing to ${pushTarget(flags)}. Press Control-C to exit.\n`,
          );
        },
        keepProfile: false,
      },
    );
  } finally {
    unsubscribe();
  }
  const why = stopLine(interrupted, profile.reason);
  if (why) deps.stderr(`${PREFIX}${why}\n`);
  if (profile.push) deps.stderr(`${PREFIX}${pushLine(profile.push, flags.push)}\n`);
  return 0;
}

/**
 * py-spy's default output name: `{program basename or pid}-{local time}.{ext}`,
 * e.g. `python3-2024-05-01T13-45-07.svg`.
 */
export function defaultOutputName(programOrPid: string, format: ProfileFormat, now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}` +
    `T${pad(now.getHours())}-${pad(now.getMinutes())}-${pad(now.getSeconds())}`;
  return `${path.basename(programOrPid)}-${stamp}.${PROFILE_FORMATS[format].extension}`;
}

/** `Sampling process 100 times a second[ for N seconds]. Press Control-C to exit.` */
export function startLine(rate: number, duration: number | undefined): string {
  const seconds = duration === undefined ? '' : ` for ${duration} second${duration === 1 ? '' : 's'}`;
  return `Sampling process ${rate} times a second${seconds}. Press Control-C to exit.`;
}

/** Why sampling stopped, when that is worth a line (not for `--duration`). */
export function stopLine(interrupted: 'SIGINT' | 'SIGTERM' | undefined, reason: Profile['reason']): string | undefined {
  if (interrupted === 'SIGINT') return 'Stopped sampling because Control-C was pressed';
  if (interrupted === 'SIGTERM') return 'Stopped sampling because pyspy-node received SIGTERM';
  if (reason === 'exited') return 'Stopped sampling because the process exited';
  return undefined;
}

/**
 * The exit code: a launched command's own (128+N for signal N), unless
 * `--duration` ended the recording (and pyspy-node the command); else 0.
 */
export function exitCodeOf(profile: Pick<Profile, 'reason' | 'exitCode' | 'exitSignal'>): number {
  if (profile.reason === 'duration') return 0;
  if (profile.exitCode !== null) return profile.exitCode;
  if (profile.exitSignal !== null) return 128 + profile.exitSignal;
  return 0;
}

function noSamplesDetail(profile: Profile, flags: RecordFlags): string {
  const seconds = `${(profile.durationMs / 1000).toFixed(1)}s`;
  const parts = [
    profile.reason === 'exited'
      ? `the process exited after ${seconds}`
      : profile.reason === 'duration'
        ? `sampled for ${seconds}`
        : `stopped after ${seconds}`,
  ];
  if (profile.errors > 0) parts.push(`${profile.errors} sampling errors`);
  if (flags.gil) parts.push('no thread held the GIL when sampled (--gil)');
  else if (!flags.idle) parts.push('no thread was busy; idle threads are sampled only with --idle');
  return parts.join('; ');
}

/** The one-line, `\r`-redrawn progress display for a terminal. */
class ProgressLine {
  readonly #deps: RecordCliDeps;
  #shown = false;

  constructor(deps: RecordCliDeps) {
    this.#deps = deps;
  }

  draw(p: Progress): void {
    const behind = p.latenessMs >= 1000 ? ` (${(p.latenessMs / 1000).toFixed(1)}s behind: try a lower --rate)` : '';
    this.#deps.stderr(
      `\r${PREFIX}${(p.elapsedMs / 1000).toFixed(1)}s  Samples: ${p.samples}  Errors: ${p.errors}  ` +
        `Rate: ${p.rate.toFixed(1)}/s  Late: ${p.latenessMs.toFixed(1)}ms${behind}\x1b[K`,
    );
    this.#shown = true;
  }

  clear(): void {
    if (this.#shown) this.#deps.stderr('\r\x1b[K');
    this.#shown = false;
  }
}

function parseFormat(text: string): ProfileFormat {
  const format = text.toLowerCase();
  if (!Object.hasOwn(PROFILE_FORMATS, format)) {
    throw new InvalidArgumentError(`Expected one of: ${Object.keys(PROFILE_FORMATS).join(', ')}.`);
  }
  return format as ProfileFormat;
}

/** Seconds; `Infinity` for `unlimited` (commander turns an `undefined` value into `true`). */
function parseDuration(text: string): number {
  return text.trim().toLowerCase() === 'unlimited' ? Number.POSITIVE_INFINITY : parsePositive(text, 'duration');
}

function parsePositive(text: string, what: string): number {
  const value = /^\s*[0-9]*\.?[0-9]+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!(value > 0 && Number.isFinite(value))) throw new InvalidArgumentError(`The ${what} must be a number above 0.`);
  return value;
}

function fsErrorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'its directory does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return err instanceof Error ? err.message : String(err);
}
