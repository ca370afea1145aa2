/**
 * `pyspy-node completions <shell>`: a shell completion script generated from
 * the commander definitions themselves (commander has no generator), so a
 * flag added to a command is completed without touching this file.
 *
 * Every script completes the subcommands, each subcommand's flags, the
 * values of flags that have a fixed set (`record --format`, the shell of
 * `completions`), PIDs after `--pid` (bash, zsh, fish), and files after
 * `--output`; after a launched command's name (`record -- python3 ...`)
 * the shell's own completion takes over.
 *
 * @module
 */
import { Argument, type Command } from 'commander';

import { PROFILE_FORMATS } from './profile.js';

/** The shells `completions` writes a script for (py-spy's list). */
export const SHELLS = ['bash', 'zsh', 'fish', 'powershell', 'elvish'] as const;
export type Shell = (typeof SHELLS)[number];

/** What a value-taking flag completes to. */
type ValueKind = { kind: 'choices'; values: string[] } | { kind: 'pid' } | { kind: 'file' } | { kind: 'none' };

/** One flag of a command, as the generators need it. */
export interface FlagSpec {
  short?: string;
  long?: string;
  description: string;
  /** Null for a switch; else what its value completes to. */
  value: ValueKind | null;
}

/** One subcommand, as the generators need it. */
export interface CommandSpec {
  name: string;
  description: string;
  flags: FlagSpec[];
  /** Choices of its first positional argument (e.g. the shell), if fixed. */
  argChoices: string[] | null;
  /** Whether it takes a command to launch (`record`, `top`): its words are that command's. */
  launches: boolean;
}

/** Values for flags whose parser (not commander's `choices`) knows the set. */
const VALUE_HINTS: Record<string, ValueKind> = {
  '--format': { kind: 'choices', values: Object.keys(PROFILE_FORMATS) },
  '--pid': { kind: 'pid' },
  '--output': { kind: 'file' },
};

const HELP: FlagSpec = { short: '-h', long: '--help', description: 'print help', value: null };

/**
 * The program's visible subcommands and their flags (plus `-h/--help`),
 * then its `help [command]`.
 */
export function describeProgram(program: Command): CommandSpec[] {
  const specs: CommandSpec[] = program.commands
    .filter((c) => !(c as unknown as { _hidden?: boolean })._hidden)
    .map((c) => {
      const flags: FlagSpec[] = c.options
        .filter((o) => !o.hidden)
        .map((o) => ({
          short: o.short,
          long: o.long,
          description: o.description,
          value:
            o.required || o.optional
              ? o.argChoices
                ? { kind: 'choices', values: o.argChoices }
                : (VALUE_HINTS[o.long ?? ''] ?? { kind: 'none' })
              : null,
        }));
      const first = c.registeredArguments[0];
      return {
        name: c.name(),
        description: c.description(),
        flags: [...flags, HELP],
        argChoices: first?.argChoices ?? null,
        launches: first?.variadic === true,
      };
    });
  return [
    ...specs,
    { name: 'help', description: 'print help for a command', flags: [HELP], argChoices: specs.map((s) => s.name), launches: false },
  ];
}

/** The program's top-level flags (help and version). */
function topFlags(): FlagSpec[] {
  return [HELP, { short: '-V', long: '--version', description: 'print the version', value: null }];
}

function names(f: FlagSpec): string[] {
  return [f.short, f.long].filter((n): n is string => n !== undefined);
}

/** POSIX shells: a single-quoted word. */
function sq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

// --- bash --------------------------------------------------------------------

function bash(specs: CommandSpec[]): string {
  const subs = specs.map((s) => s.name).join(' ');
  const top = topFlags().flatMap(names).join(' ');
  const cases = specs.map((s) => {
    const valued = s.flags.filter((f) => f.value);
    const valueCases = valued.map((f) => {
      const v = f.value!;
      const reply =
        v.kind === 'choices'
          ? `COMPREPLY=($(compgen -W ${sq(v.values.join(' '))} -- "$cur"))`
          : v.kind === 'pid'
            ? `COMPREPLY=($(compgen -W "$(ps -eo pid= 2>/dev/null)" -- "$cur"))`
            : v.kind === 'file'
              ? `COMPREPLY=($(compgen -f -- "$cur"))`
              : 'COMPREPLY=()';
      return `        ${names(f).join('|')}) ${reply}; return 0 ;;`;
    });
    const valuedNames = valued.flatMap(names).join('|') || '--no-such-flag';
    const positional = s.argChoices
      ? `COMPREPLY=($(compgen -W ${sq(s.argChoices.join(' '))} -- "$cur"))`
      : 'COMPREPLY=()';
    return [
      `    ${s.name})`,
      '      case "$prev" in',
      ...valueCases,
      '      esac',
      // A positional word (or `--`) before the cursor: the rest is the
      // launched command's (record, top) or nothing more is expected.
      `      for ((j = i + 1; j < COMP_CWORD; j++)); do`,
      '        w="${COMP_WORDS[j]}"',
      `        case "$w" in --) return 0 ;; ${valuedNames}) ((j++)) ;; -*) ;; *) return 0 ;; esac`,
      '      done',
      `      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W ${sq(s.flags.flatMap(names).join(' '))} -- "$cur")); else ${positional}; fi`,
      '      return 0 ;;',
    ].join('\n');
  });
  return [
    '# bash completion for pyspy-node (generated by `pyspy-node completions bash`).',
    '# Load it with: source <(pyspy-node completions bash)',
    '_pyspy_node() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" sub="" i j w',
    '  COMPREPLY=()',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    case "${COMP_WORDS[i]}" in -*) ;; *) sub="${COMP_WORDS[i]}"; break ;; esac',
    '  done',
    '  case "$sub" in',
    `    "") COMPREPLY=($(compgen -W ${sq(`${subs} ${top}`)} -- "$cur")); return 0 ;;`,
    ...cases,
    '  esac',
    '}',
    // `-o default`: an empty reply falls back to file names (a launched program's arguments).
    'complete -o default -F _pyspy_node pyspy-node',
    '',
  ].join('\n');
}

// --- zsh ---------------------------------------------------------------------

/** `word:description` items for `_describe`. */
function zshItems(items: [string, string][]): string {
  return items.map(([w, d]) => sq(`${w.replace(/:/g, '\\:')}:${d}`)).join(' ');
}

function zsh(specs: CommandSpec[]): string {
  const subItems = zshItems(specs.map((s) => [s.name, s.description]));
  const topItems = zshItems(topFlags().flatMap((f) => names(f).map((n): [string, string] => [n, f.description])));
  const cases = specs.map((s) => {
    const valued = s.flags.filter((f) => f.value);
    const valueCases = valued.map((f) => {
      const v = f.value!;
      const action =
        v.kind === 'choices'
          ? `compadd -- ${v.values.map(sq).join(' ')}`
          : v.kind === 'pid'
            ? '_pids'
            : v.kind === 'file'
              ? '_files'
              : ':';
      return `        (${names(f).join('|')}) ${action}; return ;;`;
    });
    const valuedNames = valued.flatMap(names).join('|') || '--no-such-flag';
    const flagItems = zshItems(s.flags.flatMap((f) => names(f).map((n): [string, string] => [n, f.description])));
    const positional = s.argChoices ? `compadd -- ${s.argChoices.map(sq).join(' ')}` : s.launches ? '_files' : ':';
    return [
      `    (${s.name})`,
      '      case $prev in',
      ...valueCases,
      '      esac',
      '      for (( j = i + 1; j < CURRENT; j++ )); do',
      `        case \${words[j]} in (--) _files; return ;; (${valuedNames}) (( j++ )) ;; (-*) ;; (*) _files; return ;; esac`,
      '      done',
      `      if [[ $cur == -* ]]; then items=(${flagItems}); _describe -t options option items; else ${positional}; fi`,
      '      ;;',
    ].join('\n');
  });
  return [
    '#compdef pyspy-node',
    '# zsh completion for pyspy-node (generated by `pyspy-node completions zsh`).',
    '# Load it with: source <(pyspy-node completions zsh)  (after compinit), or save it',
    '# as _pyspy-node in a directory of $fpath.',
    '_pyspy-node() {',
    '  local cur=${words[CURRENT]} prev=${words[CURRENT-1]} sub="" i j',
    '  local -a items',
    '  for (( i = 2; i < CURRENT; i++ )); do',
    '    case ${words[i]} in (-*) ;; (*) sub=${words[i]}; break ;; esac',
    '  done',
    '  case $sub in',
    `    ("") if [[ $cur == -* ]]; then items=(${topItems}); _describe -t options option items; else items=(${subItems}); _describe -t commands command items; fi ;;`,
    ...cases,
    '  esac',
    '}',
    // Autoloaded from $fpath, the file's body runs as `_pyspy-node`: call the
    // function just defined; sourced, register it.
    'if [[ ${funcstack[1]} == _pyspy-node ]]; then',
    '  _pyspy-node "$@"',
    'else',
    '  compdef _pyspy-node pyspy-node',
    'fi',
    '',
  ].join('\n');
}

// --- fish --------------------------------------------------------------------

/** fish: a single-quoted word. */
function fq(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function fish(specs: CommandSpec[]): string {
  const lines = [
    '# fish completion for pyspy-node (generated by `pyspy-node completions fish`).',
    '# Load it with: pyspy-node completions fish | source',
    'complete -c pyspy-node -e',
  ];
  for (const f of topFlags()) {
    lines.push(`complete -c pyspy-node -n __fish_use_subcommand -s ${f.short!.slice(1)} -l ${f.long!.slice(2)} -d ${fq(f.description)}`);
  }
  for (const s of specs) {
    lines.push(`complete -c pyspy-node -f -n __fish_use_subcommand -a ${s.name} -d ${fq(s.description)}`);
    const when = `-n ${fq(`__fish_seen_subcommand_from ${s.name}`)}`;
    if (s.argChoices) lines.push(`complete -c pyspy-node -f ${when} -a ${fq(s.argChoices.join(' '))}`);
    for (const f of s.flags) {
      const parts = ['complete -c pyspy-node', when];
      if (f.short) parts.push(`-s ${f.short.slice(1)}`);
      if (f.long) parts.push(`-l ${f.long.slice(2)}`);
      const v = f.value;
      if (v?.kind === 'choices') parts.push(`-x -a ${fq(v.values.join(' '))}`);
      else if (v?.kind === 'pid') parts.push('-x -a "(__fish_complete_pids)"');
      else if (v?.kind === 'file') parts.push('-r -F');
      else if (v) parts.push('-x');
      parts.push(`-d ${fq(f.description)}`);
      lines.push(parts.join(' '));
    }
  }
  return `${lines.join('\n')}\n`;
}

// --- PowerShell --------------------------------------------------------------

/** PowerShell: a single-quoted string. */
function pq(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function powershell(specs: CommandSpec[]): string {
  const entry = (word: string, kind: string, description: string) => `@(${pq(word)}, ${pq(kind)}, ${pq(description)})`;
  const top = [
    ...specs.map((s) => entry(s.name, 'ParameterValue', s.description)),
    ...topFlags().flatMap((f) => names(f).map((n) => entry(n, 'ParameterName', f.description))),
  ];
  const cases = specs.map((s) => {
    const flags = s.flags.flatMap((f) => names(f).map((n) => entry(n, 'ParameterName', f.description)));
    const args = (s.argChoices ?? []).map((a) => entry(a, 'ParameterValue', a));
    const values = s.flags
      .filter((f) => f.value?.kind === 'choices')
      .flatMap((f) => names(f).map((n) => `      ${pq(n)} = @(${(f.value as { values: string[] }).values.map(pq).join(', ')})`));
    return [
      `    ${pq(s.name)} {`,
      '      $values = @{',
      ...values,
      '      }',
      `      if ($prev -and $values.ContainsKey($prev)) { $candidates = $values[$prev] | ForEach-Object { ,@($_, 'ParameterValue', $_) } }`,
      `      else { $candidates = @(${[...flags, ...args].join(', ')}) }`,
      '    }',
    ].join('\n');
  });
  return [
    '# PowerShell completion for pyspy-node (generated by `pyspy-node completions powershell`).',
    '# Load it with: pyspy-node completions powershell | Out-String | Invoke-Expression',
    "Register-ArgumentCompleter -Native -CommandName 'pyspy-node' -ScriptBlock {",
    '  param($wordToComplete, $commandAst, $cursorPosition)',
    '  $words = @($commandAst.CommandElements | ForEach-Object { $_.ToString() })',
    '  $count = if ($wordToComplete) { $words.Count - 1 } else { $words.Count }',
    "  $sub = ''",
    "  for ($i = 1; $i -lt $count; $i++) { if (-not $words[$i].StartsWith('-')) { $sub = $words[$i]; break } }",
    '  $prev = if ($count -ge 2) { $words[$count - 1] } else { $null }',
    '  $candidates = switch ($sub) {',
    `    '' { @(${top.join(', ')}) }`,
    ...cases,
    '  }',
    '  $candidates | Where-Object { $_[0] -like "$wordToComplete*" } | ForEach-Object {',
    '    [System.Management.Automation.CompletionResult]::new($_[0], $_[0], $_[1], $_[2])',
    '  }',
    '}',
    '',
  ].join('\n');
}

// --- elvish ------------------------------------------------------------------

function elvish(specs: CommandSpec[]): string {
  const list = (words: string[]) => `[${words.map(pq).join(' ')}]`;
  const top = [...specs.map((s) => s.name), ...topFlags().flatMap(names)];
  const flags = specs.map((s) => `  &${s.name}=${list([...s.flags.flatMap(names), ...(s.argChoices ?? [])])}`);
  const values = specs.flatMap((s) =>
    s.flags
      .filter((f) => f.value?.kind === 'choices')
      .flatMap((f) => names(f).map((n) => `  &${pq(`${s.name} ${n}`)}=${list((f.value as { values: string[] }).values)}`)),
  );
  return [
    '# elvish completion for pyspy-node (generated by `pyspy-node completions elvish`).',
    '# Load it with: eval (pyspy-node completions elvish | slurp)',
    'var pyspy-node-flags = [',
    ...flags,
    ']',
    ...(values.length > 0 ? ['var pyspy-node-values = [', ...values, ']'] : ['var pyspy-node-values = [&]']),
    'set edit:completion:arg-completer[pyspy-node] = {|@words|',
    '  var n = (count $words)',
    '  if (== $n 2) {',
    `    all ${list(top)}`,
    '  } elif (has-key $pyspy-node-flags $words[1]) {',
    "    var key = $words[1]' '$words[-2]",
    '    if (has-key $pyspy-node-values $key) {',
    '      all $pyspy-node-values[$key]',
    '    } else {',
    '      all $pyspy-node-flags[$words[1]]',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The completion script for `shell`, from `program`'s definitions. */
export function completionScript(program: Command, shell: Shell): string {
  const specs = describeProgram(program);
  switch (shell) {
    case 'bash':
      return bash(specs);
    case 'zsh':
      return zsh(specs);
    case 'fish':
      return fish(specs);
    case 'powershell':
      return powershell(specs);
    case 'elvish':
      return elvish(specs);
  }
}

/**
 * Adds the `completions` subcommand to `program` (after the others, whose
 * definitions the scripts are made from).
 *
 * @param program The `pyspy-node` program.
 * @param stdout Where the script goes.
 */
export function addCompletionsCommand(program: Command, stdout: (text: string) => void): void {
  program
    .command('completions')
    .description('Print a shell completion script (bash, zsh, fish, powershell or elvish)')
    .addArgument(
new Argument('<shell>', 'the shell to complete for').choices(SHELLS))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ source <(pyspy-node completions bash)',
        '  $ pyspy-node completions zsh > "${fpath[1]}/_pyspy-node"',
        '  $ pyspy-node completions fish | source',
      ].join('\n'),
    )
    .action((shell: Shell) => {
      stdout(completionScript(program, shell));
    });
}
