// The dump fixture and the interpreter matrix, checked on their own: every
// interpreter install.sh listed must run test/fixtures/dump_target.py and
// report the stacks the dump tests compare against. Needs no pyspy-node.
import path from 'node:path';
import { readdirSync } from 'node:fs';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  killAllChildren,
  loadMatrix,
  missingRequiredInterpreters,
  spawnFixture,
  type DumpTargetReport,
  type FixtureThread,
} from '../helpers/pythons.js';

const matrix = loadMatrix();
const ran: string[] = [];

afterEach(killAllChildren);
afterAll(() => {
  console.log(`dump_target.py ran under: ${ran.join(', ') || 'nothing'}`);
});

it('the matrix lists every interpreter install.sh must provide', () => {
  expect(missingRequiredInterpreters(matrix)).toEqual([]);
});

function thread(report: DumpTargetReport, name: string): FixtureThread {
  const t = report.threads.find((x) => x.name === name);
  if (!t) throw new Error(`no thread ${name} in report: ${report.threads.map((x) => x.name).join(', ')}`);
  return t;
}

function names(t: FixtureThread): string[] {
  return t.frames.map((f) => f.name);
}

describe.each(matrix.map((i) => [i.id, i] as const))('%s', (_id, interp) => {
  it('runs dump_target.py and reports the parked threads', { timeout: 120_000 }, async () => {
    const fx = await spawnFixture(interp, 'dump_target.py');
    const r = fx.report;
    const [major, minor] = r.version_info;

    expect(r.pid).toBe(fx.pid);
    expect(r.version_info.join('.')).toBe(interp.version);
    expect(r.threads.map((t) => t.name).sort()).toEqual(['MainThread', 'busy-worker', 'lock-waiter', 'sleeper']);
    expect(r.thread_count).toBe(4);
    expect(readdirSync(`/proc/${fx.pid}/task`)).toHaveLength(4);
    expect(new Set(r.threads.map((t) => t.ident)).size).toBe(4);
    if (major! >= 3 && minor! >= 8) {
      // The OS thread ids are the host's tids: a chroot does not change the pid namespace.
      const tids = readdirSync(`/proc/${fx.pid}/task`).map(Number).sort();
      expect(r.threads.map((t) => t.native_id).sort()).toEqual(tids);
    }

    // The script path as the interpreter sees it; the report lives in its /tmp.
    const script = r.busy.filename;
    expect(script).toBe(fx.script);
    if (interp.root) expect(fx.hostPath(script).startsWith(path.join(interp.root, 'tmp') + '/')).toBe(true);

    const busy = thread(r, 'busy-worker');
    expect(busy.ident).toBe(r.busy.ident);
    const [lo, hi] = r.busy.line_range;
    expect(lo).toBeLessThanOrEqual(hi);
    expect(busy.frames[0]).toMatchObject({ name: 'spin', filename: script });
    expect(busy.frames[0]!.line).toBeGreaterThanOrEqual(lo);
    expect(busy.frames[0]!.line).toBeLessThanOrEqual(hi);
    expect(names(busy).slice(0, 203)).toEqual(['spin', ...Array<string>(200).fill('recurse'), 'work', 'run']);
    if (minor! >= 11) expect(busy.frames.slice(0, 3).map((f) => f.qualname)).toEqual(['Worker.spin', 'recurse', 'recurse']);

    const sleeper = thread(r, 'sleeper');
    // 3.12+ inlines list comprehensions (PEP 709); Python 2 never gave them a frame.
    const comprehension = major === 3 && minor! <= 11 ? ['<listcomp>'] : [];
    expect(names(sleeper).slice(0, 5 + comprehension.length)).toEqual([
      'naps',
      '<genexpr>',
      ...comprehension,
      '<lambda>',
      'nested',
      'sleeper_main',
    ]);
    if (minor! >= 11) expect(sleeper.frames[3 + comprehension.length]!.qualname).toBe('sleeper_main.<locals>.nested');

    const waiter = thread(r, 'lock-waiter');
    if (r.features.includes('non-ascii-module')) {
      expect(waiter.frames[0]!.name).toBe('ждать_замок');
      expect(path.basename(waiter.frames[0]!.filename)).toBe('ünïcødé_модуль.py');
    } else {
      expect(major).toBe(2);
      expect(waiter.frames[0]!.name).toBe('wait_for_lock_ascii');
    }

    const main = thread(r, 'MainThread');
    expect(names(main)).toEqual(['park_main', 'main', '<module>']);
    expect(main.native_id ?? fx.pid).toBe(fx.pid);

    ran.push(`${interp.id} (${interp.version})`);
  });
});
