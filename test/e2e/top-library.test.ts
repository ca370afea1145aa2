// `top()` from the pyspy-node library against test/fixtures/top_target.py
// under the host's 3.11: snapshot shares match the fixture's 3:1 split, and
// leaving the loop or aborting stops sampling.
import { readdirSync, readFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { hostInterpreter, killAllChildren, spawnFixture } from '../helpers/pythons.js';

const FIXTURE = 'top_target.py';
const TIMEOUT = 90_000;
const HOST = hostInterpreter();

/** What top_target.py writes before printing READY. */
interface TopTargetReport {
  pid: number;
  version_info: [number, number, number];
  thread_count: number;
  functions: Record<'hot_three' | 'hot_one' | 'busy_loop', { first_line: number }>;
}

afterEach(async () => {
  await killAllChildren();
});

async function library() {
  // Imported in the tests so that a package that fails to load fails them, not the file.
  return import('pyspy-node');
}

/** Names of this process's threads. */
function threadNames(): string[] {
  return readdirSync('/proc/self/task').map((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
}

async function samplerGone(): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (threadNames().includes('pyspy-sampler')) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('top() from the library', () => {
  it("yields rows whose shares match the fixture's 3:1 split within 5 points", { timeout: TIMEOUT }, async () => {
    const { top } = await library();
    const fixture = await spawnFixture<TopTargetReport>(HOST, FIXTURE, [], { via: 'shell' });
    const snapshots = [];
    // 3 s at 200 Hz: ~600 samples per snapshot, a standard error under 2 points.
    for await (const snap of top({ pid: fixture.pid, interval: 3000, rate: 200 })) {
      snapshots.push(snap);
      if (snapshots.length === 2) break;
    }
    expect(await samplerGone()).toBe(true);
    const last = snapshots[1]!;
    expect(last).toMatchObject({ pid: fixture.pid, threads: 1 });
    // One busy thread: it holds the GIL in (nearly) every sample.
    expect(last.gil).toBeGreaterThan(80);
    expect(last.pythonVersion).toMatch(/^3\.11\.\d+$/);
    expect(last.intervalSamples).toBeGreaterThan(300);
    expect(last.samples).toBeGreaterThan(snapshots[0]!.samples);
    const row = (name: string) => {
      const found = last.rows.find((r) => r.function === name);
      if (!found) throw new Error(`no ${name} in ${JSON.stringify(last.rows)}`);
      return found;
    };
    expect(row('hot_three').file).toBe('top_target.py');
    expect(row('hot_three').line).toBe(fixture.report.functions.hot_three.first_line);
    // The latest interval's shares.
    expect(row('hot_three').ownPct).toBeGreaterThan(70);
    expect(row('hot_three').ownPct).toBeLessThan(80);
    expect(row('hot_one').ownPct).toBeGreaterThan(20);
    expect(row('hot_one').ownPct).toBeLessThan(30);
    expect(row('busy_loop').totalPct).toBeGreaterThan(95);
    // The accumulated times, as shares of the time sampled.
    const elapsed = last.elapsedMs / 1000;
    expect(Math.abs((100 * row('hot_three').ownTime) / elapsed - 75)).toBeLessThan(5);
    expect(Math.abs((100 * row('hot_one').ownTime) / elapsed - 25)).toBeLessThan(5);
    // Sorted by own time.
    expect(last.rows.slice(0, 2).map((r) => r.function)).toEqual(['hot_three', 'hot_one']);
  });

  it('stops at an abort, and aggregates by line when asked', { timeout: TIMEOUT }, async () => {
    const { top } = await library();
    const fixture = await spawnFixture<TopTargetReport>(HOST, FIXTURE, [], { via: 'shell' });
    const controller = new AbortController();
    const snapshots = [];
    for await (const snap of top({ pid: fixture.pid, interval: 300, lines: true, limit: 3, signal: controller.signal })) {
      snapshots.push(snap);
      if (snapshots.length === 2) controller.abort();
    }
    expect(snapshots.length).toBeGreaterThanOrEqual(2);
    expect(await samplerGone()).toBe(true);
    const last = snapshots.at(-1)!;
    expect(last.rows.length).toBeLessThanOrEqual(3);
    const hot = snapshots[1]!.rows.find((r) => r.function === 'hot_three');
    expect(hot?.line).toBeGreaterThan(fixture.report.functions.hot_three.first_line);
  });
});
