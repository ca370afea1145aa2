// Hardening: many callers in one Node process (issue 10). 50 concurrent
// dump() calls against 10 live processes (half of them this process's own
// children, paused with SIGSTOP, half not, paused with ptrace); a record(),
// a sample() and dumps at once on one target; and repeated attach/detach
// (dump() in a loop, in a child Node process so its RSS is its own) with
// flat memory. Counts are small for `npm test`; raise them locally with
// PYSPY_HARDENING_ATTACH_LOOPS (e.g. 10000).
import { spawn } from 'node:child_process';

import { afterEach, describe, expect, it } from 'vitest';

import {
  describeProcess,
  killAllChildren,
  loadMatrix,
  procStat,
  REPO_ROOT,
  settleWithin,
  spawnFixture,
  type RunningFixture,
} from '../helpers/pythons.js';
import { interpreter, sleep, totalCount, tracerPid } from '../helpers/record.js';

const TIMEOUT = 180_000;
/** Live targets, and concurrent dumps spread over them. */
const TARGETS = 10;
const DUMPS = 50;
/** dump() calls in the attach/detach loop (10,000 for the local run). */
const ATTACH_LOOPS = Number(process.env.PYSPY_HARDENING_ATTACH_LOOPS ?? 300);
/** RSS growth allowed over the loop, after a warm-up of a tenth of it. */
const RSS_SLACK_MB = 24;

const HOST = interpreter(loadMatrix(), 'debian-3.11');
const FIXTURE = 'hardening_snapshot.py';

interface HardeningReport {
  pid: number;
  thread_count: number;
  threads: { ident: number; native_id: number; name: string }[];
}
type Fixture = RunningFixture<HardeningReport>;

afterEach(async () => {
  await killAllChildren();
});

async function library() {
  return import('pyspy-node');
}

function start(via: 'child' | 'shell', busy = false): Promise<Fixture> {
  return spawnFixture<HardeningReport>(HOST, FIXTURE, busy ? ['--busy', '--lifetime', '300'] : ['--lifetime', '300'], {
    via,
  });
}

/** Not stopped, not traced: what a target must be once every reader is done. */
function expectRunning(pid: number): void {
  const st = procStat(pid);
  expect(st, `process ${pid} is gone`).not.toBeNull();
  expect(['t', 'T'], `process ${pid} left stopped: ${describeProcess(pid)}`).not.toContain(st!.state);
  expect(tracerPid(pid), `process ${pid} left traced: ${describeProcess(pid)}`).toBe(0);
}

describe('many callers (one Node process)', () => {
  it(`${DUMPS} concurrent dump() calls against ${TARGETS} live processes all succeed`, { timeout: TIMEOUT }, async () => {
    const { dump } = await library();
    const fixtures = await Promise.all(
      Array.from({ length: TARGETS }, (_, i) => start(i % 2 === 0 ? 'child' : 'shell')),
    );
    const t0 = Date.now();
    const results = await settleWithin(
      Promise.allSettled(
        Array.from({ length: DUMPS }, (_, i) => {
          const fx = fixtures[i % TARGETS]!;
          return dump(fx.pid).then((d) => ({ fx, d }));
        }),
      ),
      120_000,
      `${DUMPS} concurrent dumps`,
    );
    const ms = Date.now() - t0;
    const failures = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`dump #${i} of ${fixtures[i % TARGETS]!.pid}: ${String((r.reason as Error).message)}`] : [],
    );
    expect(failures, failures.join('\n')).toEqual([]);
    for (const r of results) {
      if (r.status !== 'fulfilled') continue;
      const { fx, d } = r.value;
      expect(d.pid).toBe(fx.pid);
      const names = d.threads.map((t) => t.threadName).sort();
      expect(names).toEqual(fx.report.threads.map((t) => t.name).sort());
      const deep = d.threads.find((t) => t.threadName === 'deep')!;
      expect(deep.frames.filter((f) => f.name === 'recurse').length).toBe(300);
    }
    for (const fx of fixtures) expectRunning(fx.pid);
    console.log(`${DUMPS} concurrent dumps of ${TARGETS} processes: ${ms} ms`);
  });

  it('a record(), a sample() and dump()s at once on one target', { timeout: TIMEOUT }, async () => {
    const { dump, record, sample } = await library();
    const fx = await start('shell', true);
    const stopRecord = new AbortController();
    // Blocking: every sample pauses the target, so the three readers' pauses meet.
    const recording = record({ pid: fx.pid, rate: 200, blocking: true, signal: stopRecord.signal });
    const batches: { samples: number; errors: number }[] = [];
    const sampling = (async () => {
      for await (const b of sample({ pid: fx.pid, rate: 200, blocking: true, interval: 250 })) {
        batches.push({ samples: b.samples, errors: b.errors });
        if (batches.length >= 8) break;
      }
    })();
    let dumps = 0;
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      const d = await settleWithin(dump(fx.pid), 30_000, 'dump during record and sample', fx.pid);
      expect(d.threads.length).toBe(fx.report.thread_count);
      dumps++;
    }
    await settleWithin(sampling, 60_000, 'sample()', fx.pid);
    stopRecord.abort();
    const profile = await settleWithin(recording, 60_000, 'record()', fx.pid);

    const sampled = batches.reduce((n, b) => n + b.samples, 0);
    const sampleErrors = batches.reduce((n, b) => n + b.errors, 0);
    expect(profile.reason).toBe('stopped');
    expect(profile.samples, 'record() sampled').toBeGreaterThan(50);
    expect(sampled, 'sample() sampled').toBeGreaterThan(50);
    expect(totalCount(profile.stacks().stacks)).toBe(profile.samples);
    // Taking turns to pause costs time, not errors.
    expect(profile.errors, `record() errors of ${profile.samples + profile.errors}`).toBe(0);
    expect(sampleErrors, `sample() errors of ${sampled + sampleErrors}`).toBe(0);
    expect(dumps).toBeGreaterThan(5);
    await sleep(50);
    expectRunning(fx.pid);
    console.log(
      `at once: record ${profile.samples} samples, sample ${sampled} samples in ${batches.length} batches, ${dumps} dumps`,
    );
  });

  it(`dump() attach/detach ${ATTACH_LOOPS} times keeps memory flat`, { timeout: Math.max(TIMEOUT, ATTACH_LOOPS * 100) }, async () => {
    const fx = await start('shell');
    // A child Node process, so the RSS measured is the loop's alone; gc()
    // before each reading, so only what stays reachable (or leaks natively) counts.
    const code = `
      import { dump } from 'pyspy-node';
      const [pid, n] = process.argv.slice(1).map(Number);
      const warm = Math.max(1, Math.floor(n / 10));
      const mb = () => { globalThis.gc(); return process.memoryUsage().rss / 2 ** 20; };
      const before = mb();
      let warmed = before;
      const t0 = Date.now();
      for (let i = 0; i < n; i++) {
        const d = await dump(pid);
        if (d.threads.length !== 4) throw new Error('dump #' + i + ': ' + d.threads.length + ' threads');
        if (i + 1 === warm) warmed = mb();
      }
      const after = mb();
      console.log(JSON.stringify({ n, before, warmed, after, ms: Date.now() - t0 }));
    `;
    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', code, String(fx.pid), String(ATTACH_LOOPS)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code_ = await settleWithin(
      new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c))),
      Math.max(TIMEOUT, ATTACH_LOOPS * 100) - 10_000,
      `${ATTACH_LOOPS} dumps in a child Node process`,
      fx.pid,
    ).finally(() => child.kill('SIGKILL'));
    expect(code_, stderr).toBe(0);
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { n: number; before: number; warmed: number; after: number; ms: number };
    console.log(
      `attach/detach x${r.n}: RSS ${r.before.toFixed(1)} MB before, ${r.warmed.toFixed(1)} MB after ${Math.max(1, Math.floor(r.n / 10))}, ` +
        `${r.after.toFixed(1)} MB after all (${(r.ms / r.n).toFixed(1)} ms per dump)`,
    );
    expect(r.after - r.warmed, `RSS grew from ${r.warmed.toFixed(1)} to ${r.after.toFixed(1)} MB`).toBeLessThan(RSS_SLACK_MB);
    expectRunning(fx.pid);
  });
});
