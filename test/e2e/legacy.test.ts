// CPython 2.7 and 3.6-3.10, beyond what dump.test.ts checks on every supported
// interpreter (its fixture's stacks, names, native ids and states match there):
// `record` names the hot function, `dump --locals` reads frame objects' locals,
// a process whose threads all sleep (no GIL holder) is found and shown idle with
// no GIL holder, Python 2 thread names that are UTF-8 byte strings or
// `unicode` objects read back as text, and the default read mode never reports
// a torn stack of frame objects (on Debian's 2.7 and 3.9 and pyenv's 3.10). Runs on the matrix's pre-3.11
// interpreters: Debian bullseye's 2.7 and 3.9 (static, stripped, run in place)
// always, pyenv's 2.7 and 3.6-3.10 where present.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { killAllChildren, loadMatrix, runCli, spawnFixture, spawnPythonCode, supportedInterpreters } from '../helpers/pythons.js';
import { cleanupRecord, leafFunctionCounts, outputDir, parseRaw, parseSummary, totalCount } from '../helpers/record.js';

const TIMEOUT = 180_000;
const matrix = loadMatrix();
const legacy = supportedInterpreters(matrix).filter((i) => {
  const [major, minor] = i.version.split('.').map(Number) as [number, number];
  return major === 2 || minor <= 10;
});

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

interface JsonThread {
  thread_id: number;
  os_thread_id: number | null;
  thread_name: string | null;
  active: boolean;
  owns_gil: boolean;
  frames: { name: string; filename: string; line: number; locals: { name: string; arg: boolean; repr: string | null }[] | null }[];
}

async function dumpJson(pid: number, extra: string[] = []): Promise<JsonThread[]> {
  const res = await runCli(['dump', '--pid', String(pid), '--json', ...extra]);
  expect(res.stderr).not.toMatch(/panicked|stack backtrace/);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as JsonThread[];
}

it('the matrix has Debian bullseye 2.7 and 3.9, supported', () => {
  for (const id of ['debian-2.7', 'debian-3.9']) {
    const interp = matrix.find((i) => i.id === id);
    expect(interp, `${id} in .cache/pythons/matrix.json`).toBeDefined();
    expect(interp!.supported, `${id} supported`).toBe(true);
    expect(interp!.build).toBe('static-stripped');
  }
});

describe.each(legacy.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  it('record: a short raw profile names the hot function', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(interp, 'dump_target.py', ['--depth', '20']);
    const file = path.join(outputDir(), `${interp.id}.txt`);
    const res = await runCli(['record', '--pid', String(fx.pid), '-d', '2', '-r', '100', '-f', 'raw', '-o', file]);
    expect(res.code, res.stderr).toBe(0);
    const summary = parseSummary(res.stderr);
    expect(summary, res.stderr).not.toBeNull();
    expect(summary!.errors, 'errors').toBe(0);
    const stacks = parseRaw(readFileSync(file, 'utf8'));
    const total = totalCount(stacks);
    expect(total, 'samples').toBeGreaterThan(50);
    // Idle threads add no samples: nearly all of them are the busy thread's.
    const leaves = leafFunctionCounts(stacks, 'dump_target.py');
    expect(leaves.get('spin') ?? 0, `leaf functions: ${JSON.stringify([...leaves])}`).toBeGreaterThan(total * 0.9);
    const spin = stacks.find((s) => s.frames.at(-1)?.name === 'spin')!;
    const [lo, hi] = fx.report.busy.line_range;
    expect(spin.frames.at(-1)!.line).toBeGreaterThanOrEqual(lo);
    expect(spin.frames.at(-1)!.line).toBeLessThanOrEqual(hi);
    expect(spin.frames.map((f) => f.name)).toEqual(expect.arrayContaining(['run', 'work', 'recurse']));
  });

  it('dump --locals reads arguments and locals of frame objects', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture(interp, 'dump_target.py', ['--depth', '3']);
    const threads = await dumpJson(fx.pid, ['--locals']);
    const busy = threads.find((t) => t.thread_name === 'busy-worker')!;
    const recurses = busy.frames.filter((f) => f.name === 'recurse');
    expect(recurses).toHaveLength(3);
    // Innermost first: depth 1, 2, 3, each an argument.
    recurses.forEach((f, i) => {
      expect(f.locals).toContainEqual(expect.objectContaining({ name: 'depth', arg: true, repr: String(i + 1) }));
      expect(f.locals!.map((l) => l.name)).toContain('then');
    });
    const spin = busy.frames[0]!;
    expect(spin.name).toBe('spin');
    expect(spin.locals).toContainEqual(expect.objectContaining({ name: 'self', arg: true }));
    expect(spin.locals!.find((l) => l.name === 'n')?.repr).toMatch(/^\d+$/);
    const main = threads.find((t) => t.thread_name === 'MainThread')!;
    const park = main.frames[0]!;
    expect(park.name).toBe('park_main');
    expect(park.locals).toEqual([expect.objectContaining({ name: 'lifetime', arg: true, repr: '900.0' })]);
  });

  it('a process whose threads all sleep: found, every thread idle, no GIL holder', { timeout: TIMEOUT }, async () => {
    // Python 2 keeps a thread's name as a byte string (str() of the name);
    // one is UTF-8 text, one a unicode object set behind the property.
    const target = await spawnPythonCode(
      interp,
      [
        'import os, sys, threading, time',
        'def nap():',
        '    time.sleep(600)',
        'names = ["plain", b"utf8-n\\xc3\\xa4p".decode("utf-8") if sys.version_info[0] == 3 else "utf8-n\\xc3\\xa4p"]',
        'threads = [threading.Thread(target=nap, name=n) for n in names]',
        'u = threading.Thread(target=nap)',
        'if sys.version_info[0] == 2:',
        '    u._Thread__name = u"uni-\\u043f\\u0443\\u0441\\u043a"',
        'else:',
        '    u.name = "uni-\\u043f\\u0443\\u0441\\u043a"',
        'for t in threads + [u]:',
        '    t.daemon = True',
        '    t.start()',
        'time.sleep(0.5)',
        'sys.stdout.write("READY %d\\n" % os.getpid())',
        'sys.stdout.flush()',
        'time.sleep(600)',
      ].join('\n'),
    );
    const threads = await dumpJson(target.pid);
    expect(threads.map((t) => t.thread_name).sort()).toEqual(['MainThread', 'plain', 'uni-пуск', 'utf8-näp']);
    for (const t of threads) {
      expect(t.active, `${t.thread_name} active`).toBe(false);
      expect(t.owns_gil, `${t.thread_name} owns_gil`).toBe(false);
      expect(t.frames[0]?.name, `${t.thread_name} innermost frame`).toBe(t.thread_name === 'MainThread' ? '<module>' : 'nap');
    }
    // The main thread's OS id is the pid; the others are distinct threads of the process.
    expect(threads.find((t) => t.thread_name === 'MainThread')!.os_thread_id).toBe(target.pid);
    expect(new Set(threads.map((t) => t.os_thread_id)).size).toBe(threads.length);
  });
});

// Like call_chain.py (see record-consistency.test.ts), with the level functions
// compiled from generated source so that each has its own name before 3.11:
// level_i is called only by level_{i-1}, at line 7i (the "return level_" line).
const CHAIN = `import random, sys, time
DEPTH = 12
src = []
for i in range(DEPTH + 1):
    src.append("def level_%d(target):\\n" % i)
    src.append("    if target == %d:\\n" % i)
    src.append("        x = 0\\n")
    src.append("        for _ in range(200):\\n")
    src.append("            x += 1\\n")
    src.append("        return x\\n")
    if i < DEPTH:
        src.append("    return level_%d(target)\\n" % (i + 1))
exec(compile("".join(src), "chain_gen.py", "exec"))
end = time.time() + float(sys.argv[1])
r = random.Random(1)
while time.time() < end:
    level_0(r.randint(0, DEPTH))
`;

describe.each(
  legacy.filter((i) => ['debian-2.7', 'debian-3.9'].includes(i.id) || i.version.startsWith('3.10.')).map((i) => [i.id, i] as const),
)('%s', (_id, interp) => {
  it('record (default read mode): no torn stack of frame objects', { timeout: TIMEOUT }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pyspy-legacy-chain-'));
    const script = path.join(dir, 'chain.py');
    writeFileSync(script, CHAIN);
    const out = path.join(dir, 'chain.txt');
    const res = await runCli(['record', '-r', '500', '-f', 'raw', '-o', out, '--', ...interp.argv, script, '3']);
    const text = readFileSync(out, 'utf8');
    rmSync(dir, { recursive: true, force: true });
    expect(res.code, res.stderr).toBe(0);
    let checked = 0;
    const bad: string[] = [];
    for (const stack of parseRaw(text)) {
      const levels = stack.frames.flatMap((f) => {
        const m = /^level_(\d+)$/.exec(f.name);
        return m ? [{ level: Number(m[1]), line: f.line }] : [];
      });
      if (levels.length === 0) continue;
      checked += stack.count;
      const ok =
        levels.every((l, i) => l.level === i) && levels.slice(0, -1).every((l) => l.line === 7 * l.level + 7);
      if (!ok) bad.push(stack.frames.map((f) => f.label).join(';'));
    }
    expect(checked, 'samples inside the call chain').toBeGreaterThan(300);
    expect(bad).toEqual([]);
  });
});

