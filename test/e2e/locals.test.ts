// `dump --locals` against test/fixtures/local_vars.py (py-spy's local_vars
// scenario: the same kinds of values, plus sets, complex, bytearray and a
// class instance) on every CPython 3.9+ of the matrix, with numpy from PyPI
// (test/extras/install.sh: a wheel per minor, unpacked outside the checkout
// and copied into chroot roots). Each rendering is compared with what the
// interpreter itself says: repr() for built-in values, str() for numpy
// scalars (which py-spy prints the same way where it prints them at all).
// A minor with no numpy wheel is reported loudly and counted, and its
// other locals are still checked.
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  killAllChildren,
  loadMatrix,
  runCli,
  spawnFixture,
  supportedInterpreters,
  type Interpreter,
} from '../helpers/pythons.js';
import { extraPath } from '../helpers/extras.js';

const TIMEOUT = 180_000;

interface LocalsReport {
  pid: number;
  version: string;
  numpy: { version: string; scalars: Record<string, { type: string; str: string }> } | null;
  repr: Record<string, string>;
}

interface JsonLocal {
  name: string;
  addr: number;
  arg: boolean;
  repr: string | null;
}

function minorOf(interp: Interpreter): number {
  return Number(interp.version.split('.')[1]);
}

const interpreters = supportedInterpreters(loadMatrix()).filter((i) => i.version.startsWith('3.') && minorOf(i) >= 9);
const numpyMissing: string[] = [];
const numpyChecked: string[] = [];

afterEach(killAllChildren);
afterAll(() => {
  console.log(
    `locals e2e: numpy scalars checked on ${numpyChecked.length} interpreters (${numpyChecked.join(', ')}); ` +
      `numpy MISSING on ${numpyMissing.length}${numpyMissing.length ? `: ${numpyMissing.join('; ')}` : ''}`,
  );
});

async function dumpLocals(pid: number, flags: string[]): Promise<Map<string, JsonLocal>> {
  const res = await runCli(['dump', '--pid', String(pid), '--json', ...flags]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  const threads = JSON.parse(res.stdout) as { frames: { name: string; locals: JsonLocal[] | null }[] }[];
  const frame = threads.flatMap((t) => t.frames).find((f) => f.name === 'local_function');
  expect(frame, 'the frame of local_function').toBeDefined();
  return new Map(frame!.locals!.map((l) => [l.name, l]));
}

describe.each(interpreters.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  it('dump --locals renders each value as Python does', { timeout: TIMEOUT }, async () => {
    const numpy = extraPath(interp, 'numpy');
    if ('missing' in numpy) {
      console.warn(`\n!!! NUMPY MISSING for ${interp.id} (${interp.version}): ${numpy.missing}\n`);
      numpyMissing.push(`${interp.id}: ${numpy.missing}`);
    }
    const fx = await spawnFixture<LocalsReport>(interp, 'local_vars.py', [], {
      env: 'path' in numpy ? { PYTHONPATH: numpy.path } : {},
    });
    const { report } = fx;
    if ('path' in numpy) {
      expect(report.numpy, `numpy imports under ${interp.id} from ${numpy.path}`).not.toBeNull();
    }
    const locals = await dumpLocals(fx.pid, ['--locals']);

    // Arguments first, flagged as such.
    expect([...locals.values()].filter((l) => l.arg).map((l) => l.name)).toEqual(['arg1', 'arg2', 'arg3']);
    for (const [name, want] of Object.entries(report.repr)) {
      const got = locals.get(name)?.repr;
      expect(got, `${name} is dumped`).toBeDefined();
      if (name === 'names' || name === 'unicode_val') {
        // Longer than 128 characters: cut to 128, ending in "...".
        expect([...got!].length, `${name} length`).toBe(128);
        expect(got!.endsWith('...'), `${name} is marked as cut`).toBe(true);
        const kept = [...got!].slice(0, 125).join('');
        if (name === 'unicode_val') expect(want.startsWith(kept), `${name}: ${got} is a prefix of Python's`).toBe(true);
        else expect(kept.startsWith("{'arg1': 'foo', 'arg2': None, 'arg3': True, 'args': (), 'kwargs': {}")).toBe(true);
      } else if (['a_set', 'a_frozenset', 'a_bytearray', 'an_instance'].includes(name)) {
        // Shown by type name and address (py-spy's form for them).
        const type = { a_set: 'set', a_frozenset: 'frozenset', a_bytearray: 'bytearray', an_instance: 'Widget' }[name];
        const addr = locals.get(name)!.addr;
        expect(got).toBe(`<${type} at 0x${addr.toString(16)}>`);
      } else {
        expect(got, `${name}`).toBe(want);
      }
    }
    if (report.numpy) {
      const scalars = Object.entries(report.numpy.scalars);
      expect(scalars.length).toBe(19);
      for (const [name, { type, str }] of scalars) {
        expect(locals.get(name)?.repr, `${name} (${type}, numpy ${report.numpy.version})`).toBe(str);
      }
      numpyChecked.push(`${interp.id} (numpy ${report.numpy.version})`);
    }

    // -ll: py-spy's longer renderings, 128 characters per l.
    const longer = await dumpLocals(fx.pid, ['-ll']);
    const unicode = longer.get('unicode_val')!.repr!;
    expect([...unicode].length).toBe(256);
    expect(report.repr.unicode_val!.startsWith([...unicode].slice(0, 253).join(''))).toBe(true);
    expect(longer.get('local1')!.repr).toBe('[-1234, 5678]');
    await fx.kill();
  });
});
