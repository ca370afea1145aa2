// `pyspy-node completions bash|zsh`: the scripts the CLI prints are loaded
// into real shells. On a terminal (zsh's zpty), a user's Tab keys must
// complete a command line. Then, case by case, they are asked for
// completions the way the shells ask: bash
// calls the registered function with COMP_WORDS/COMP_CWORD set; zsh (after
// compinit, from $fpath and by `source`) calls it with words/CURRENT set, its
// compadd/_describe/_files/_pids replaced by functions that print what they
// were given (keeping, as they do, the words that start with $PREFIX). Every flag `--help` lists must be completed. zsh comes from
// test/extras/install.sh (.cache/extras.json); without it this fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { REPO_ROOT, runCli } from '../helpers/pythons.js';

const EXTRAS = path.join(REPO_ROOT, '.cache/extras.json');
const SUBCOMMANDS = ['dump', 'record', 'top', 'completions'];
const FORMATS = ['flamegraph', 'speedscope', 'raw', 'chrometrace', 'pprof'];
const SHELLS = ['bash', 'zsh', 'fish', 'powershell', 'elvish'];

let dir: string;
const scripts: Record<string, string> = {};
/** Every flag each subcommand's `--help` lists. */
const helpFlags: Record<string, string[]> = {};

function zshPath(): string {
  let extras: { zsh?: string };
  try {
    extras = JSON.parse(readFileSync(EXTRAS, 'utf8')) as { zsh?: string };
  } catch {
    throw new Error(`${EXTRAS} is missing: run test/extras/install.sh (npm test does) to install zsh`);
  }
  if (!extras.zsh) throw new Error(`${EXTRAS} names no zsh: run test/extras/install.sh`);
  return extras.zsh;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'pyspy-completions-'));
  for (const shell of ['bash', 'zsh']) {
    const res = await runCli(['completions', shell]);
    expect(res, `completions ${shell}`).toMatchObject({ code: 0, stderr: '' });
    scripts[shell] = path.join(dir, `pyspy-node.${shell}`);
    writeFileSync(scripts[shell]!, res.stdout);
  }
  mkdirSync(path.join(dir, 'fpath'));
  writeFileSync(path.join(dir, 'fpath', '_pyspy-node'), readFileSync(scripts.zsh!));
  for (const sub of SUBCOMMANDS) {
    const res = await runCli([sub, '--help']);
    expect(res.code).toBe(0);
    // The flag column of the option lines (`  -p, --pid <pid>   PID of ...`).
    const columns = res.stdout.split('\n').flatMap((l) => /^ {2}(-\S.*?)(?: {2,}|$)/.exec(l)?.[1] ?? []);
    helpFlags[sub] = columns.flatMap((c) => c.match(/--?[A-Za-z][\w-]*/g) ?? []);
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What bash completes for `words` (the last one being the word under the cursor). */
function bashComplete(words: string[]): string[] {
  const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const out = execFileSync(
    'bash',
    [
      '-c',
      [
        'source "$1" || exit 3',
        // The registration bash would use for `pyspy-node <TAB>`.
        'complete -p pyspy-node | grep -q -- "-F _pyspy_node" || exit 4',
        `COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMP_LINE="\${COMP_WORDS[*]}"; COMP_POINT=\${#COMP_LINE}`,
        '_pyspy_node pyspy-node "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
        'printf "%s\\n" "${COMPREPLY[@]}"',
      ].join('\n'),
      'bash',
      scripts.bash!,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter((l) => l !== '');
}

/**
 * What zsh completes for `words`: compinit with the script in $fpath (the
 * way it is installed), or sourced after compinit.
 */
function zshComplete(words: string[], how: 'fpath' | 'source' = 'fpath'): string[] {
  const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const load =
    how === 'fpath'
      ? `fpath=(${path.join(dir, 'fpath')} $fpath); autoload -U compinit; compinit -u -D`
      : `autoload -U compinit; compinit -u -D; source ${scripts.zsh}`;
  const out = execFileSync(
    zshPath(),
    [
      '-f',
      '-c',
      [
        load,
        '[[ ${_comps[pyspy-node]} == _pyspy-node ]] || { print -u2 "not registered: ${_comps[pyspy-node]}"; exit 4 }',
        // What the completion system would offer, one per line: like the
        // real ones, these keep only the words starting with $PREFIX.
        'compadd() { while [[ $1 == -* && $1 != -- ]]; do shift; done; [[ $1 == -- ]] && shift; print -rl -- ${(M)@:#${PREFIX}*} }',
        '_describe() { local items=(${(P)${@[-1]}}); items=(${items%%:*}); print -rl -- ${(M)items:#${PREFIX}*} }',
        '_files() { print -r -- "<files>" }',
        '_pids() { print -r -- "<pids>" }',
        `words=(${quoted}); CURRENT=\${#words}; PREFIX=\${words[CURRENT]}`,
        '_pyspy-node',
      ].join('\n'),
    ],
    { encoding: 'utf8', env: { ...process.env, HOME: dir } },
  );
  return out.split('\n').filter((l) => l !== '');
}

describe.each([
  ['bash', bashComplete],
  ['zsh', (w: string[]) => zshComplete(w)],
] as const)('%s completion', (_shell, complete) => {
  it('completes the subcommands', () => {
    expect(complete(['pyspy-node', ''])).toEqual(expect.arrayContaining(SUBCOMMANDS));
    expect(complete(['pyspy-node', 're'])).toEqual(['record']);
    expect(complete(['pyspy-node', 'co'])).toEqual(['completions']);
    expect(complete(['pyspy-node', 'he'])).toEqual(['help']);
    expect(complete(['pyspy-node', 'help', 'r'])).toEqual(['record']);
  });

  it("completes every flag each subcommand's --help lists", () => {
    for (const sub of SUBCOMMANDS) {
      const got = complete(['pyspy-node', sub, '-']);
      expect(got, `pyspy-node ${sub} -<TAB>`).toEqual(expect.arrayContaining(helpFlags[sub]!));
      expect(helpFlags[sub]!.length, `${sub} --help lists flags`).toBeGreaterThan(0);
    }
    expect(complete(['pyspy-node', 'record', '--f']).sort()).toEqual(['--format', '--full-filenames', '--function']);
    expect(complete(['pyspy-node', 'dump', '--l'])).toEqual(['--locals']);
  });

  it('completes values from a fixed set, after flags with values', () => {
    expect(complete(['pyspy-node', 'record', '-f', '']).sort()).toEqual([...FORMATS].sort());
    expect(complete(['pyspy-node', 'record', '--format', 'sp'])).toEqual(['speedscope']);
    expect(complete(['pyspy-node', 'record', '-o', 'x.json', '--format', 'p'])).toEqual(['pprof']);
    expect(complete(['pyspy-node', 'completions', '']).sort()).toEqual([...SHELLS].sort());
    expect(complete(['pyspy-node', 'completions', 'z'])).toEqual(['zsh']);
  });

  it("leaves a launched command's words to the shell", () => {
    const got = complete(['pyspy-node', 'record', '-r', '50', '--', 'python3', '-']);
    expect(got.filter((w) => w.startsWith('--') && w !== '--')).toEqual([]);
    expect(complete(['pyspy-node', 'top', 'python3', '-'])).not.toContain('--rate');
  });
});

/**
 * Types `keys` (Tab included) into an interactive `shell` on a terminal
 * (zsh's zpty module drives it), with the completion script loaded and
 * `pyspy-node` defined as a function that prints its arguments; returns the
 * arguments of the command line the shell ran.
 */
function typeInShell(shell: 'bash' | 'zsh', keys: string): string {
  const setup =
    shell === 'bash'
      ? `PS1="> "; source ${scripts.bash}; pyspy-node() { printf "%s[%s]\\n" ARG"S" "$*"; }`
      : `PS1="> "; fpath=(${path.join(dir, 'fpath')} $fpath); autoload -U compinit; compinit -u -D; pyspy-node() { print -r -- "\${(U):-args}[$*]" }`;
  const start = shell === 'bash' ? 'bash --norc --noprofile -i' : `${zshPath()} -f -i`;
  const driver = [
    'zmodload zsh/zpty',
    `zpty t ${start}`,
    'zpty -w t "$1"',
    'zpty -w -n t "$2"',
    'out=""',
    // Until the function's output shows up (the typed text never contains "ARGS[").
    'for i in {1..100}; do zpty -r -t t chunk && out+=$chunk; [[ $out == *ARGS\\[*\\]* ]] && break; sleep 0.1; done',
    'zpty -d t',
    "print -r -- ${${out//$'\\r'/}}",
  ].join('\n');
  const out = execFileSync(zshPath(), ['-f', '-c', driver, 'zsh', setup, keys], {
    encoding: 'utf8',
    env: { ...process.env, HOME: dir, TERM: 'xterm' },
    timeout: 30_000,
  });
  const m = [...out.matchAll(/ARGS\[([^\]]*)\]/g)].filter((x) => !x[1]!.includes('$'));
  if (m.length === 0) throw new Error(`${shell} ran no pyspy-node command; terminal output:\n${out}`);
  return m.at(-1)![1]!;
}

describe.each(['bash', 'zsh'] as const)('%s on a terminal', (shell) => {
  it('Tab completes subcommands, flags and values as a user types them', () => {
    expect(typeInShell(shell, 'pyspy-node rec\t--form\tspe\t\n')).toBe('record --format speedscope');
    expect(typeInShell(shell, 'pyspy-node du\t--lo\t\n')).toBe('dump --locals');
    expect(typeInShell(shell, 'pyspy-node completions z\t\n')).toBe('completions zsh');
  });
});

describe('bash', () => {
  it('completes --pid with the pids of running processes', () => {
    const got = bashComplete(['pyspy-node', 'dump', '--pid', '']);
    expect(got).toContain(String(process.pid));
    expect(got.every((p) => /^\d+$/.test(p))).toBe(true);
  });
});

describe('zsh', () => {
  it('registers with compdef when sourced, and completes the same', () => {
    expect(zshComplete(['pyspy-node', 're'], 'source')).toEqual(['record']);
    expect(zshComplete(['pyspy-node', 'dump', '-p', ''])).toEqual(['<pids>']);
    expect(zshComplete(['pyspy-node', 'record', '-o', ''])).toEqual(['<files>']);
  });
});
