// `pyspy-node top` with standard input and output that are not terminals:
// it prints a plain table every refresh, which this test parses, against
// test/fixtures/top_target.py under the host's 3.11 (launched, and attached
// then stopped with SIGINT).
import { spawn } from 'node:child_process';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  CLI_PATH,
  FIXTURES_DIR,
  killAllChildren,
  hostInterpreter,
  REPO_ROOT,
  runCli,
  settleWithin,
  spawnFixture,
} from '../helpers/pythons.js';

const FIXTURE = 'top_target.py';
const TIMEOUT = 90_000;
const HOST = hostInterpreter();

/** One printed table. */
interface Table {
  title: string;
  samples: number;
  threads: number;
  rows: { ownPct: number; totalPct: number; ownTime: number; totalTime: number; function: string; where: string }[];
}

const ROW = /^\s*(\d+\.\d\d)%\s+(\d+\.\d\d)%\s+(\d+\.\d\d)s\s+(\d+\.\d\d)s\s+(\S+)(?: \((.+)\))?$/;

/** Parses every table of `stdout`; throws on a line that fits no table. */
function parseTables(stdout: string): Table[] {
  const blocks = stdout.split('\n\n').filter((b) => b.startsWith('Collecting samples'));
  return blocks.map((block) => {
    const [title, totals, figures, header, ...rows] = block.split('\n');
    expect(title).toMatch(/^Collecting samples from '.+' \(python v3\.11\.\d+\)$/);
    expect(totals).toMatch(/^Total Samples \d+ {3}Rate: \d+\.\d\/s/);
    expect(figures).toMatch(/^GIL: \d+\.\d\d%, Active: \d+\.\d\d%, GIL wait: \d+\.\d\d%, Threads: \d+$/);
    expect(header).toBe('    %Own  %Total  OwnTime TotalTime  Function (filename)');
    return {
      title: title!,
      samples: Number(/^Total Samples (\d+)/.exec(totals!)![1]),
      threads: Number(/Threads: (\d+)$/.exec(figures!)![1]),
      rows: rows.map((line) => {
        const m = ROW.exec(line);
        if (!m) throw new Error(`not a table row: ${JSON.stringify(line)}\n--- output:\n${stdout}`);
        return {
          ownPct: Number(m[1]),
          totalPct: Number(m[2]),
          ownTime: Number(m[3]),
          totalTime: Number(m[4]),
          function: m[5]!,
          where: m[6] ?? "",
        };
      }),
    };
  });
}

/** hot_three's share of the two hot functions' accumulated own time. */
function threeShare(table: Table): number {
  const own = (name: string) => table.rows.find((r) => r.function === name)?.ownTime ?? 0;
  return own('hot_three') / (own('hot_three') + own('hot_one'));
}

afterEach(async () => {
  await killAllChildren();
});

describe('pyspy-node top, not on a terminal', () => {
  it('prints a table every refresh until the launched command exits', { timeout: TIMEOUT }, async () => {
    const script = path.join(FIXTURES_DIR, FIXTURE);
    const result = await runCli(
      ['top', '--delay', '0.5', '--rate', '200', '--', ...HOST.argv, script, '--quiet', '--lifetime', '3'],
      { timeoutMs: 60_000 },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const tables = parseTables(result.stdout);
    expect(tables.length).toBeGreaterThanOrEqual(3);
    expect(tables[0]!.title).toContain(`${script} --quiet --lifetime 3`);
    const samples = tables.map((t) => t.samples);
    expect(samples).toEqual([...samples].sort((a, b) => a - b));
    const last = tables.at(-1)!;
    expect(last.samples).toBeGreaterThan(200);
    expect(last.threads).toBe(1);
    expect(last.rows.slice(0, 2).map((r) => [r.function, r.where])).toEqual([
      ['hot_three', 'top_target.py'],
      ['hot_one', 'top_target.py'],
    ]);
    expect(threeShare(last)).toBeGreaterThan(0.65);
    expect(threeShare(last)).toBeLessThan(0.85);
    expect(result.stdout).toMatch(/\n\nprocess \d+ ended\n$/);
  });

  it('stops at SIGINT with exit code 0, leaving the target running', { timeout: TIMEOUT }, async () => {
    const fixture = await spawnFixture(HOST, FIXTURE, [], { via: 'shell' });
    const child = spawn(process.execPath, [CLI_PATH, 'top', '--pid', String(fixture.pid), '--delay', '0.3'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (parseTables(stdout).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      child.kill('SIGINT');
      const code = await settleWithin(closed, 30_000, 'pyspy-node top after SIGINT', fixture.pid);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const tables = parseTables(stdout);
    expect(tables.length).toBeGreaterThanOrEqual(2);
    expect(tables[0]!.rows.map((r) => r.function)).toContain('hot_three');
    expect(stdout).not.toContain('ended');
    expect(process.kill(fixture.pid, 0)).toBe(true);
  });
});
