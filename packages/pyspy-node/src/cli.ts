/**
 * The `pyspy-node` command line, modelled on py-spy's: `dump`, `record` (in
 * `cli-record.ts`), `top` (in `top/cli.ts`) and `completions` (in
 * `completions.ts`).
 *
 * Every failure prints one `Error: <message>` line on stderr and yields exit
 * code 1; no stack trace is shown (set `PYSPY_NODE_DEBUG=1` to see one; the
 * native side then also says how it reads each target's memory:
 * `process_vm_readv`, or `/proc/PID/mem` where a sandbox refuses it).
 *
 * @module
 */
import { readFileSync } from 'node:fs';

import { Command, CommanderError } from 'commander';

import { loadBinding } from './binding.js';
import { UsageError } from './cli-error.js';
import { addRecordCommand, type RecordCliDeps } from './cli-record.js';
import { addCompletionsCommand } from './completions.js';
import { dumpCore as nativeDumpCore } from './dump-core.js';
import { dump as nativeDump } from './dump.js';
import { PyspyError } from './errors.js';
import { formatJson } from './format/json.js';
import { formatText } from './format/text.js';
import { parsePid } from './pid.js';
import type { ProcessDump } from './types.js';
import { addTopCommand, readCommandLine, type TopCliDeps } from './top/cli.js';
import { processTerminal } from './top/terminal.js';

/**
 * What the CLI talks to; tests pass fakes. `record`'s and `top`'s own needs
 * are in {@link RecordCliDeps} and {@link TopCliDeps}.
 */
export interface CliDeps extends RecordCliDeps, TopCliDeps {
  /** Reads a process; defaults to the native {@link nativeDump | dump}. */
  dump: typeof nativeDump;
  /** Reads a core file; defaults to the native {@link nativeDumpCore | dumpCore}. */
  dumpCore: typeof nativeDumpCore;
  /** Writes to standard output. */
  stdout: (text: string) => void;
  /** Writes to standard error. */
  stderr: (text: string) => void;
}

interface DumpFlags {
  pid?: number;
  core?: string;
  executable?: string;
  sysroot?: string;
  json?: boolean;
  /** How often `-l` was given (py-spy's count: 128 characters per level). */
  locals: number;
  fullFilenames?: boolean;
  nonblocking?: boolean;
  native?: boolean;
  subprocesses?: boolean;
  asyncio?: boolean;
}

/** `--asyncio` whose tasks could not be read: one line on stderr, exit 0. */
function reportAsyncio(dump: ProcessDump, deps: Pick<CliDeps, 'stderr'>): void {
  const error = dump.asyncio?.error;
  if (error) deps.stderr(`asyncio tasks not shown (${error.code}): ${error.message}\n`);
}

/**
 * Builds the commander program. Parse errors throw `CommanderError` (the
 * program uses `exitOverride`), so the caller decides the exit code.
 *
 * @param deps See {@link CliDeps}.
 * @param setExitCode Receives the exit code of a command that succeeds with
 * one other than 0 (`record` passes a launched command's through).
 * @returns The program, ready for `parseAsync(args, { from: 'user' })`.
 */
export function createProgram(deps: CliDeps, setExitCode: (code: number) => void = () => undefined): Command {
  const program = new Command('pyspy-node')
    .description('Sampling profiler for Python programs (a py-spy work-alike for Node.js)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print help')
    // py-spy's `help [command]` too.
    .helpCommand('help [command]', 'print help for a command')
    // Lets `record` pass options after the command's name through to it.
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: deps.stdout,
      writeErr: deps.stderr,
      // commander prints "error: ..."; match the CLI's "Error: ..." lines.
      outputError: (text, write) => write(text.replace(/^error: /, 'Error: ')),
    });

  program
    .command('dump')
    .description('Dump the current Python stack of every thread of a running program')
    .option('-p, --pid <pid>', 'PID of a running Python program (decimal or 0x-hex)', (text) => parsePid(text))
    .option('-c, --core <file>', 'read the stacks out of a core file instead (gcore or kernel; gzip-compressed too)')
    .option('--executable <path>', 'with --core: the program that dumped core (binaries the core lacks are also looked for next to it)')
    .option('--sysroot <dir>', 'with --core: the root the core\'s paths are relative to (a core taken in a container)')
    .option('-j, --json', 'print the stacks as JSON')
    .option(
      '-l, --locals',
      'show the arguments and local variables of each frame; repeat for longer values (-ll: 256 characters each, 128 per l)',
      (_: string, count: number) => count + 1,
      0,
    )
    .option('--full-filenames', 'show full Python filenames')
    .option('--nonblocking', 'do not pause the program while reading it (less impact, but stacks may be torn)')
    .option('-n, --native', "include native frames (C, C++, Cython; Linux x86-64 and arm64): the program is paused while they are read (with --core: unwound from the core's registers and memory)")
    .option('-s, --subprocesses', 'also dump Python subprocesses (each once, with its own header)')
    .option('-a, --asyncio', 'also print the asyncio tasks (CPython 3.11-3.15): a tree of tasks with their coroutine frames')
    .action(async (flags: DumpFlags) => {
      if (flags.native && flags.nonblocking) throw new UsageError("--native cannot be combined with --nonblocking: a thread's native stack can only be read while the thread is paused");
      if ((flags.pid === undefined) === (flags.core === undefined)) throw new UsageError('dump needs exactly one of --pid and --core');
      if (flags.core === undefined && (flags.executable !== undefined || flags.sysroot !== undefined)) {
        throw new UsageError('--executable and --sysroot apply to --core only');
      }
      if (flags.core !== undefined) {
        if (flags.subprocesses || flags.nonblocking) {
          throw new UsageError('--subprocesses and --nonblocking do not apply to --core');
        }
        const result = await deps.dumpCore(flags.core, {
          locals: flags.locals > 1 ? flags.locals : flags.locals === 1,
          fullFilenames: flags.fullFilenames ?? false,
          native: flags.native ?? false,
          asyncio: flags.asyncio ?? false,
          ...(flags.executable === undefined ? {} : { executable: flags.executable }),
          ...(flags.sysroot === undefined ? {} : { sysroot: flags.sysroot }),
        });
        deps.stdout(flags.json ? formatJson(result) : formatText(result, { fullFilenames: flags.fullFilenames ?? false }));
        reportAsyncio(result, deps);
        return;
      }
      const result = await deps.dump(flags.pid!, {
        // true for -l (the library's plain form), the count for -ll and more.
        locals: flags.locals > 1 ? flags.locals : flags.locals === 1,
        nonblocking: flags.nonblocking ?? false,
        subprocesses: flags.subprocesses ?? false,
        fullFilenames: flags.fullFilenames ?? false,
        native: flags.native ?? false,
        asyncio: flags.asyncio ?? false,
      });
      deps.stdout(flags.json ? formatJson(result) : formatText(result, { fullFilenames: flags.fullFilenames ?? false }));
      reportAsyncio(result, deps);
    });

  addRecordCommand(program, deps, setExitCode);
  addTopCommand(program, deps, setExitCode);
  // Last: its scripts are made from the commands above.
  addCompletionsCommand(program, deps.stdout);

  return program;
}

/**
 * Runs the CLI.
 *
 * @param args The arguments after the program name (`process.argv.slice(2)`).
 * @param deps See {@link CliDeps}; defaults to the real process and binding.
 * @returns The exit code: 0 on success, 1 on any error; `record` with a
 * launched command passes the command's exit code through.
 */
export async function main(args: string[], deps: Partial<CliDeps> = {}): Promise<number> {
  const full: CliDeps = {
    dump: nativeDump,
    dumpCore: nativeDumpCore,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    binding: loadBinding,
    stderrIsTTY: process.stderr.isTTY === true,
    onSignal: subscribeToSignals,
    kill: killQuietly,
    now: () => new Date(),
    terminal: processTerminal,
    commandLine: readCommandLine,
    ...deps,
  };
  let exitCode = 0;
  try {
    await createProgram(full, (code) => void (exitCode = code)).parseAsync(args, { from: 'user' });
    return exitCode;
  } catch (err) {
    // Help and version exit 0; other commander errors were already printed.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    full.stderr(`Error: ${errorMessage(err)}\n`);
    if (process.env.PYSPY_NODE_DEBUG && err instanceof Error && err.stack) full.stderr(`${err.stack}\n`);
    return 1;
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof PyspyError || err instanceof UsageError) return err.message;
  if (err instanceof Error) return `${err.message} (this is a bug in pyspy-node; run with PYSPY_NODE_DEBUG=1 for details)`;
  return String(err);
}

function subscribeToSignals(handler: (signal: 'SIGINT' | 'SIGTERM') => void): () => void {
  const onInt = () => handler('SIGINT');
  const onTerm = () => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
