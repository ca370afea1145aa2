// Sub-interpreters (CPython 3.12+) on every matrix interpreter from 3.12 on:
// test/fixtures/subinterpreters.py runs CPU work in the main interpreter
// ("main-spinner") and in two sub-interpreters, each entered from a thread
// of the main one ("host-K", blocked in the exec call, renamed "sub-K"
// inside). It reports its own truth: interpreter ids, thread idents and
// native ids. `dump --json` must list every thread of every interpreter
// with its interpreter id, name and status (the host threads idle, the
// spinners running), `--locals` must read each sub-interpreter's frame,
// `record` must give each spinning interpreter a third of the samples under
// its `interpreter N` root, and pprof must label them `interpreter`.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { writeGcore } from '../helpers/cores.js';
import { killAllChildren, loadMatrix, runCli, spawnFixture, supportedInterpreters, type Interpreter } from '../helpers/pythons.js';
import { cleanupRecord, decodePprof, outputDir, parseRaw } from '../helpers/record.js';

const TIMEOUT = 120_000;
/** Three symmetric spinners: each gets a third of the samples, within this many points. */
const TOLERANCE = 8;

interface ThreadTruth {
  interp_id: number;
  ident: number;
  native_id: number;
  name: string;
}

interface Report {
  pid: number;
  version_info: [number, number, number];
  api: string;
  main: ThreadTruth;
  main_thread: { ident: number; native_id: number };
  subs: (ThreadTruth & { host: ThreadTruth; extra: ThreadTruth | null })[];
}

interface JsonThread {
  thread_id: number;
  os_thread_id: number | null;
  thread_name: string | null;
  interpreter_id: number;
  status: string;
  active: boolean;
  owns_gil: boolean;
  frames: { name: string; line: number; locals: { name: string; repr: string | null }[] | null }[];
}

const minor = (i: Interpreter): number => Number(i.version.split('.')[1]);
const interpreters = supportedInterpreters(loadMatrix()).filter(
  (i) => i.version.startsWith('3.') && minor(i) >= 12 && i.kind !== 'freethreaded',
);

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});
/** The newest interpreter (library, --subprocesses) and one outside a chroot (gcore reads its stacks whole). */
const newest = interpreters.slice().sort((a, b) => minor(b) - minor(a))[0];
const unchrooted = interpreters.find((i) => i.root === null);
/** GIL layouts differ between 3.12 (generated) and 3.13+ (debug offsets): one of each. */
const gilCases = [interpreters.find((i) => minor(i) === 12), newest].filter((i): i is Interpreter => i !== undefined);
afterAll(() => {
  console.log(`sub-interpreter e2e ran on ${interpreters.length} interpreters: ${interpreters.map((i) => i.id).join(', ')}`);
  if (!unchrooted) console.warn('sub-interpreter core-file check SKIPPED: no CPython 3.12+ outside a chroot (pyenv) on this machine');
});

it('has 3.12+ interpreters to run on', () => {
  // debian-3.13/3.14/3.15 are required by install.sh: never silently none.
  expect(interpreters.length, 'no CPython 3.12+ in .cache/pythons/matrix.json').toBeGreaterThanOrEqual(3);
});

describe.each(interpreters.map((i) => [i.id, i] as const))('sub-interpreters on %s', (_id, interp) => {
  it('dump lists every interpreter\'s threads; record and pprof attribute samples to each', { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<Report>(interp, 'subinterpreters.py', ['--lifetime', '120']);
    const r = fx.report;
    const ids = r.subs.map((s) => s.interp_id);
    expect(new Set(ids.filter((id) => id > 0)).size, `two sub-interpreters with their own ids: ${ids}`).toBe(2);

    // --- dump --json --locals: every thread of every interpreter.
    const res = await runCli(['dump', '--pid', String(fx.pid), '--json', '--locals']);
    expect(res.code, res.stderr).toBe(0);
    const threads = JSON.parse(res.stdout) as JsonThread[];
    const key = (t: { interp: number; ident: number; native: number | null; name: string | null }): string =>
      `${t.interp}/${t.ident}/${t.native}/${t.name}`;
    const got = threads.map((t) =>
      key({ interp: t.interpreter_id, ident: t.thread_id, native: t.os_thread_id, name: t.thread_name }),
    );
    const want = [
      { interp: 0, ident: r.main_thread.ident, native: r.main_thread.native_id, name: 'MainThread' },
      { interp: 0, ident: r.main.ident, native: r.main.native_id, name: 'main-spinner' },
      ...r.subs.flatMap((s) => [
        { interp: s.host.interp_id, ident: s.host.ident, native: s.host.native_id, name: s.host.name },
        { interp: s.interp_id, ident: s.ident, native: s.native_id, name: s.name },
      ]),
    ].map(key);
    expect(got.sort(), 'interpreter/ident/native id/name of every thread').toEqual(want.sort());
    const byName = new Map(threads.map((t) => [t.thread_name, t]));
    expect(byName.get('main-spinner')!.frames[0]!.name).toBe('main_spin');
    expect(byName.get('main-spinner')!.status).toBe('running');
    for (const s of r.subs) {
      const sub = byName.get(s.name)!;
      expect(sub.frames[0]!.name, `${s.name} innermost`).toBe('sub_spin');
      expect(sub.status, `${s.name} status`).toBe('running');
      // Locals of a frame of the sub-interpreter.
      const marker = sub.frames[0]!.locals?.find((l) => l.name === 'marker');
      expect(marker?.repr, `${s.name} local marker`).toBe(`'interp-${s.interp_id}'`);
      // The host thread waits in the exec call while its OS thread runs
      // the sub-interpreter.
      const host = byName.get(s.host.name)!;
      expect(host.status, `${s.host.name} status`).toBe('idle');
      expect(host.frames.map((f) => f.name), `${s.host.name} frames`).toContain('host');
    }
    // Each interpreter has its own GIL: its spinner may hold it, a host
    // thread never does.
    for (const s of r.subs) expect(byName.get(s.host.name)!.owns_gil).toBe(false);

    // --- dump text: each thread names its interpreter.
    const text = await runCli(['dump', '--pid', String(fx.pid)]);
    expect(text.code, text.stderr).toBe(0);
    for (const s of r.subs) {
      expect(text.stdout).toMatch(new RegExp(`^Thread ${s.native_id} \\(active[^)]*\\): "${s.name}" \\[interpreter ${s.interp_id}\\]$`, 'm'));
      expect(text.stdout).toMatch(new RegExp(`^Thread ${s.native_id} \\(idle\\): "${s.host.name}" \\[interpreter 0\\]$`, 'm'));
    }

    // --- record (raw): a third of the samples per spinning interpreter.
    const dir = outputDir();
    const raw = path.join(dir, 'out.txt');
    const rec = await runCli(['record', '--pid', String(fx.pid), '-d', '3', '-f', 'raw', '-o', raw, '--threads']);
    expect(rec.code, rec.stderr).toBe(0);
    const counts = new Map<string, number>();
    let total = 0;
    for (const stack of parseRaw(readFileSync(raw, 'utf8'))) {
      const labels = stack.frames.map((f) => f.label);
      const root = labels[0]!.startsWith('interpreter ') ? labels[0]! : 'main';
      const leaf = stack.frames.at(-1)!.name;
      // Roots in order: the interpreter's, then the thread's.
      if (root !== 'main') expect(labels[1], labels.join(';')).toMatch(/^thread \(\d+\): sub-\d$/);
      expect(leaf, `no idle host thread is sampled: ${labels.join(';')}`).toMatch(/^(main_spin|sub_spin)$/);
      expect(root === 'main' ? 'main_spin' : 'sub_spin').toBe(leaf);
      counts.set(root, (counts.get(root) ?? 0) + stack.count);
      total += stack.count;
    }
    expect(total).toBeGreaterThan(100);
    const shares = Object.fromEntries([...counts].map(([k, v]) => [k, Math.round((1000 * v) / total) / 10]));
    const expected = ['main', ...r.subs.map((s) => `interpreter ${s.interp_id}`)].sort();
    expect(Object.keys(shares).sort(), JSON.stringify(shares)).toEqual(expected);
    for (const [root, share] of Object.entries(shares)) {
      expect(Math.abs(share - 100 / 3), `${root}: ${share}% of samples (${JSON.stringify(shares)})`).toBeLessThanOrEqual(TOLERANCE);
    }

    // --- pprof: an `interpreter` label on the sub-interpreters' samples.
    const pb = path.join(dir, 'out.pb.gz');
    const rec2 = await runCli(['record', '--pid', String(fx.pid), '-d', '2', '-f', 'pprof', '-o', pb]);
    expect(rec2.code, rec2.stderr).toBe(0);
    const labelled = new Map<number, number>();
    for (const s of decodePprof(readFileSync(pb)).samples) {
      const root = s.functions.at(-1)!;
      const label = s.labels.interpreter;
      if (label === undefined) {
        expect(root, 'unlabelled samples are the main interpreter\'s').not.toMatch(/^interpreter /);
        continue;
      }
      expect(root).toBe(`interpreter ${label}`);
      labelled.set(Number(label), (labelled.get(Number(label)) ?? 0) + s.values[0]!);
    }
    expect([...labelled.keys()].sort()).toEqual(r.subs.map((s) => s.interp_id).sort());
  });
});

describe('sub-interpreters through the library, --subprocesses and a core file', () => {
  it(`sample() and record --subprocesses on ${newest?.id}: interpreterId and root order`, { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<Report>(newest!, 'subinterpreters.py', ['--lifetime', '120']);
    const subIds = fx.report.subs.map((s) => s.interp_id).sort();
    const { sample } = await import('pyspy-node');
    const seen = new Map<number, string>();
    for await (const batch of sample({ pid: fx.pid, interval: 1000 })) {
      for (const st of batch.stacks) seen.set(st.interpreterId, st.frames[0]!.name);
      break;
    }
    expect([...seen.keys()].sort()).toEqual([0, ...subIds]);
    for (const id of subIds) expect(seen.get(id), `root of interpreter ${id}'s stacks`).toBe(`interpreter ${id}`);
    expect(seen.get(0)).not.toMatch(/^interpreter /);

    // Roots: process, then interpreter, then thread.
    const raw = path.join(outputDir(), 'tree.txt');
    const rec = await runCli(['record', '--pid', String(fx.pid), '-d', '2', '-f', 'raw', '-o', raw, '--subprocesses', '--threads']);
    expect(rec.code, rec.stderr).toBe(0);
    const roots = new Set<string>();
    for (const stack of parseRaw(readFileSync(raw, 'utf8'))) {
      const [proc, second, third] = stack.frames.map((f) => f.label);
      expect(proc, 'process root first').toMatch(new RegExp(`^process ${fx.pid}:`));
      if (second!.startsWith('interpreter ')) {
        expect(third, 'thread root under the interpreter root').toMatch(/^thread \(\d+\): sub-\d$/);
        roots.add(second!);
      } else {
        expect(second).toMatch(/^thread \(\d+\): /);
      }
    }
    expect([...roots].sort()).toEqual(subIds.map((id) => `interpreter ${id}`));
  });

  it.runIf(unchrooted !== undefined)(`dump --core on ${unchrooted?.id}: the same threads as the live dump`, { timeout: TIMEOUT }, async () => {
    const fx = await spawnFixture<Report>(unchrooted!, 'subinterpreters.py', ['--lifetime', '120']);
    const core = writeGcore(outputDir(), fx.pid, 'subinterp');
    const res = await runCli(['dump', '--core', core, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const threads = (JSON.parse(res.stdout) as JsonThread[]).map((t) => `${t.interpreter_id}/${t.thread_name}/${t.status}`);
    const want = [
      '0/MainThread/idle',
      '0/main-spinner/running',
      ...fx.report.subs.flatMap((s) => [`0/${s.host.name}/idle`, `${s.interp_id}/${s.name}/running`]),
    ];
    expect(threads.sort()).toEqual(want.sort());
  });

  it.each(gilCases.map((i) => [i.id, i] as const))(
    'two threads of one sub-interpreter take turns on its own GIL: the waiting one is gil_wait, never idle (%s)',
    { timeout: TIMEOUT },
    async (_id, interp) => {
      const fx = await spawnFixture<Report>(interp, 'subinterpreters.py', ['--lifetime', '120', '--contend']);
      const names = new Set(fx.report.subs.flatMap((s) => [s.name, s.extra!.name]));
      const statuses = new Map<string, number>();
      for (let k = 0; k < 6; k++) {
        const res = await runCli(['dump', '--pid', String(fx.pid), '--json']);
        expect(res.code, res.stderr).toBe(0);
        const threads = (JSON.parse(res.stdout) as JsonThread[]).filter((t) => names.has(t.thread_name ?? ''));
        expect(threads.length, 'both threads of both sub-interpreters').toBe(4);
        for (const t of threads) expect(t.interpreter_id, t.thread_name!).toBeGreaterThan(0);
        for (const t of threads) statuses.set(t.status, (statuses.get(t.status) ?? 0) + 1);
      }
      const seen = JSON.stringify(Object.fromEntries(statuses));
      console.log(`${interp.id}: 4 sub-interpreter spinners in 6 paused dumps: ${seen}`);
      expect(statuses.get('idle') ?? 0, `sub-interpreter spinners: ${seen}`).toBe(0);
      expect(statuses.get('gil_wait') ?? 0, `sub-interpreter spinners: ${seen}`).toBeGreaterThan(0);
    },
  );
});
