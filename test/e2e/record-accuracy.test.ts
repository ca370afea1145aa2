// `pyspy-node record` accuracy: test/fixtures/record_target.py spends its
// CPU time in work_three and work_one at a known 3:1 ratio (the same loop
// body, 3N and N iterations per cycle). Recorded at 100 Hz for 5 s by pid,
// the raw output's shares must be within ±3 percentage points of 75/25, on
// the host's static 3.11 and on 3.14 in its chroot.
//
// The fixture's cycles average ~100 ms and vary in length (see the fixture):
// long enough for a scheduling hiccup not to land in one function only,
// irregular so that they cannot lock onto the sampling period. Measured on
// the 2-core dev machine (load average 2-3): work_three's share 74.9 ± 0.84
// (mean ± standard deviation, 20 runs, 73.5-76.5), so ±3 is about 3.5
// standard deviations. Sampling measures wall time: on an overloaded machine
// (load average 8-9, the target getting half a CPU) long preemptions make
// successive samples see the same frame and shares stray further (62% seen
// once), so a failure message says how much CPU the target got and the load.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { killAllChildren, loadMatrix, runCli, spawnFixture } from '../helpers/pythons.js';
import {
  cleanupRecord,
  interpreter,
  outputDir,
  parseRaw,
  parseSummary,
  ratioSplit,
  RECORD_FIXTURE,
  totalCount,
  type RecordTargetReport,
} from '../helpers/record.js';

/** utime + stime of process `pid`, in seconds (clock ticks are 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const RATE = 100;
const SECONDS = 5;
const TOLERANCE = 3; // percentage points
const matrix = loadMatrix();

afterEach(async () => {
  await cleanupRecord();
  await killAllChildren();
});

describe.each(['debian-3.11', 'debian-3.14'])('%s', (id) => {
  it(`work_three:work_one = 3:1 within ±${TOLERANCE} points at ${RATE} Hz over ${SECONDS} s`, { timeout: 180_000 }, async () => {
    const interp = interpreter(matrix, id);
    const fx = await spawnFixture<RecordTargetReport>(interp, RECORD_FIXTURE, ['--mode', 'ratio'], { via: 'shell' });
    const file = path.join(outputDir(), 'ratio.txt');
    const before = { cpu: cpuSeconds(fx.pid), wall: performance.now() };
    const res = await runCli(['record', '-p', String(fx.pid), '-o', file, '-f', 'raw', '-r', String(RATE), '-d', String(SECONDS)]);
    // How much of a CPU the target got while recorded (the launch of the CLI included): on an
    // overloaded machine its wall-time split, which is what sampling measures, strays from its
    // CPU-time split, and long preemptions make successive samples see the same frame.
    const cpuShare = (cpuSeconds(fx.pid) - before.cpu) / ((performance.now() - before.wall) / 1000);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const machine = `the target got ${(100 * cpuShare).toFixed(0)}% of a CPU while recorded; load average ${load}`;
    expect(res.code, `record exit code; stderr: ${res.stderr}`).toBe(0);
    const summary = parseSummary(res.stderr);
    expect(summary, `summary line in: ${res.stderr}`).not.toBeNull();

    const stacks = parseRaw(readFileSync(file, 'utf8'));
    expect(totalCount(stacks)).toBe(summary!.samples);
    const { three, one, shareThree, shareOne, detail: split } = ratioSplit(stacks, fx.script, summary!.samples);
    const detail = `${id}: ${split}; ${machine}`;
    // Enough samples for the tolerance to mean something, nearly all in the two functions.
    expect(three + one, detail).toBeGreaterThanOrEqual(0.6 * RATE * SECONDS);
    expect(three + one, detail).toBeGreaterThanOrEqual(0.97 * summary!.samples);

    console.log(`record accuracy ${id}: work_three ${shareThree.toFixed(2)}%, work_one ${shareOne.toFixed(2)}% (${detail})`);
    expect(Math.abs(shareThree - 75), `work_three share ${shareThree.toFixed(2)}% (${detail})`).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(shareOne - 25), `work_one share ${shareOne.toFixed(2)}% (${detail})`).toBeLessThanOrEqual(TOLERANCE);
  });
});
