import { describe, expect, it } from 'vitest';

import { createProgram, main } from '../src/cli.js';
import { completionScript, describeProgram, SHELLS } from '../src/completions.js';
import { processDump } from './fixtures.js';

async function run(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    dump: async () => processDump,
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
  });
  return { code, stdout, stderr };
}

function program() {
  return createProgram({
    dump: async () => processDump,
    stdout: () => undefined,
    stderr: () => undefined,
  } as unknown as Parameters<typeof createProgram>[0]);
}

describe('describeProgram', () => {
  it('lists every subcommand with its flags, from the commander definitions', () => {
    const specs = describeProgram(program());
    expect(specs.map((s) => s.name)).toEqual(['dump', 'record', 'top', 'completions', 'help']);
    expect(specs.at(-1)!.argChoices).toEqual(['dump', 'record', 'top', 'completions']);
    const record = specs.find((s) => s.name === 'record')!;
    expect(record.launches).toBe(true);
    const format = record.flags.find((f) => f.long === '--format')!;
    expect(format).toMatchObject({ short: '-f', value: { kind: 'choices', values: ['flamegraph', 'speedscope', 'raw', 'chrometrace', 'pprof'] } });
    expect(record.flags.find((f) => f.long === '--idle')!.value).toBeNull();
    expect(record.flags.find((f) => f.long === '--pid')!.value).toEqual({ kind: 'pid' });
    expect(specs.find((s) => s.name === 'completions')!.argChoices).toEqual([...SHELLS]);
  });
});

describe('completionScript', () => {
  it.each(SHELLS)('%s: names every subcommand and every long flag', (shell) => {
    const p = program();
    const script = completionScript(p, shell);
    for (const spec of describeProgram(p)) {
      expect(script, spec.name).toContain(spec.name);
      for (const f of spec.flags) {
        // fish writes `-l pid`; the others the flag itself.
        expect(script, `${spec.name} ${f.long}`).toContain(shell === 'fish' ? `-l ${f.long!.slice(2)}` : f.long!);
      }
    }
  });

  it('quotes descriptions with apostrophes for each shell', () => {
    const p = program();
    expect(completionScript(p, 'fish')).toContain("function\\'s first line");
    expect(completionScript(p, 'powershell')).toContain("function''s first line");
    expect(completionScript(p, 'zsh')).toContain("function'\\''s first line");
  });
});

describe('pyspy-node completions', () => {
  it('prints the script for a shell', async () => {
    const { code, stdout, stderr } = await run(['completions', 'bash']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('complete -o default -F _pyspy_node pyspy-node');
  });

  it('refuses an unknown shell, naming the choices', async () => {
    const { code, stderr } = await run(['completions', 'tcsh']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/tcsh.*bash, zsh, fish, powershell, elvish/s);
  });
});
