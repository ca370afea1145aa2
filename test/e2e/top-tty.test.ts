// `pyspy-node top` in a real pseudo-terminal (a tmux pane on a private tmux
// server), against test/fixtures/top_target.py under the host's 3.11: the
// screen, the keys, `q`, and the target exiting. The pane runs a script that
// records top's exit status and `stty -a` right after it ends, so the test
// can check the terminal it left behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  CLI_PATH,
  FIXTURES_DIR,
  killAllChildren,
  hostInterpreter,
  REPO_ROOT,
  spawnFixture,
} from '../helpers/pythons.js';

const FIXTURE = 'top_target.py';
const TIMEOUT = 90_000;
const HOST = hostInterpreter();

/** One row of the table as the screen shows it. */
interface ScreenRow {
  ownPct: number;
  totalPct: number;
  ownTime: string;
  totalTime: string;
  function: string;
  where: string;
}

const ROW = /^\s*(\d+\.\d\d)%\s+(\d+\.\d\d)%\s+(\S+)\s+(\S+)\s+(\S+) \((.+)\)$/;

function parseRows(lines: string[]): ScreenRow[] {
  const title = lines.findIndex((l) => /%Own\s+%Total\s+OwnTime\s+TotalTime\s+Function/.test(l));
  if (title < 0) return [];
  const rows: ScreenRow[] = [];
  for (const line of lines.slice(title + 1)) {
    const m = ROW.exec(line);
    if (!m) break;
    rows.push({ ownPct: Number(m[1]), totalPct: Number(m[2]), ownTime: m[3]!, totalTime: m[4]!, function: m[5]!, where: m[6]! });
  }
  return rows;
}

function seconds(text: string): number {
  if (!text.endsWith('s') || text.includes('m')) throw new Error(`unexpected duration ${text}`);
  return Number(text.slice(0, -1));
}

function totalSamples(lines: string[]): number {
  const m = lines.map((l) => /^Total Samples (\d+)/.exec(l)).find(Boolean);
  return m ? Number(m[1]) : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A tmux server of our own with one 120x40 session running `pyspy-node top ARGS`. */
class TopPane {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'pyspy-top-tty-'));
  /** The server's socket, in `dir`: removed with it. */
  readonly #socket = path.join(this.dir, 'tmux.sock');

  constructor(args: string[]) {
    const script = path.join(this.dir, 'run.sh');
    writeFileSync(
      script,
      [
        'cd "$1"; shift',
        '"$@"',
        `echo "$?" > '${this.dir}/status'`,
        `stty -a > '${this.dir}/stty' 2>&1`,
        'exec sleep 600',
        '',
      ].join('\n'),
    );
    this.tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', 'top', 'sh', script, REPO_ROOT, process.execPath, CLI_PATH, 'top', ...args);
  }

  tmux(...args: string[]): string {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.TMUX;
    return execFileSync('tmux', ['-S', this.#socket, '-f', '/dev/null', ...args], { encoding: 'utf8', env });
  }

  screen(): string[] {
    return this.tmux('capture-pane', '-p', '-t', 'top').split('\n');
  }

  press(key: string): void {
    this.tmux('send-keys', '-t', 'top', key);
  }

  /** `alternate_on` and `cursor_flag` of the pane: is it on the alternate screen, is the cursor shown. */
  modes(): { alternate: boolean; cursor: boolean } {
    const [alternate, cursor] = this.tmux('display-message', '-p', '-t', 'top', '#{alternate_on} #{cursor_flag}').trim().split(' ');
    return { alternate: alternate === '1', cursor: cursor === '1' };
  }

  /** Polls the screen until `test` accepts it. */
  async waitFor(what: string, test: (lines: string[]) => boolean, timeoutMs = 30_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.screen();
      if (test(lines)) return lines;
      if (Date.now() > deadline) throw new Error(`screen never showed ${what}:\n${lines.join('\n')}`);
      await sleep(100);
    }
  }

  /** Waits for `pyspy-node top` to end; its exit status and the `stty -a` it left. */
  async ended(timeoutMs = 30_000): Promise<{ status: number; stty: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(path.join(this.dir, 'stty'))) {
      if (Date.now() > deadline) throw new Error(`pyspy-node top did not end:\n${this.screen().join('\n')}`);
      await sleep(100);
    }
    await sleep(100); // let stty finish writing
    return {
      status: Number(readFileSync(path.join(this.dir, 'status'), 'utf8').trim()),
      stty: readFileSync(path.join(this.dir, 'stty'), 'utf8'),
    };
  }

  close(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // Already gone.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The terminal is line-buffered and echoing again: not left in raw mode. */
function expectCooked(stty: string): void {
  const flags = stty.split(/[\s;]+/);
  expect(flags).toContain('icanon');
  expect(flags).toContain('echo');
  expect(flags).toContain('isig');
}

const panes: TopPane[] = [];
afterEach(async () => {
  for (const pane of panes.splice(0)) pane.close();
  await killAllChildren();
});

describe('pyspy-node top on a terminal', () => {
  it('shows both hot functions, sorts on 1-4, aggregates by line on L, follows resizes, and restores the terminal on q', { timeout: TIMEOUT }, async () => {
    const fixture = await spawnFixture(HOST, FIXTURE, [], { via: 'shell' });
    const pane = new TopPane(['--pid', String(fixture.pid), '--delay', '0.5', '--rate', '200']);
    panes.push(pane);

    let lines = await pane.waitFor('both hot functions after 150 samples', (l) => {
      const names = parseRows(l).map((r) => r.function);
      return totalSamples(l) >= 150 && names.includes('hot_three') && names.includes('hot_one');
    });
    expect(pane.modes()).toEqual({ alternate: true, cursor: false });
    expect(lines[0]).toMatch(new RegExp(`^Collecting samples from '.*top_target\\.py' \\(python v3\\.11\\.\\d+\\)`));
    expect(lines[2]).toMatch(/^GIL: \d+\.\d\d%, Active: \d+\.\d\d%, GIL wait: \d+\.\d\d%, Threads: 1$/);
    expect(lines[3]).toMatch(/^sorted by OwnTime, by function/);
    let rows = parseRows(lines);
    // Sorted by own time: the 3:1 split puts hot_three first.
    expect(rows[0]!.function).toBe('hot_three');
    const three = rows.find((r) => r.function === 'hot_three')!;
    const one = rows.find((r) => r.function === 'hot_one')!;
    expect(three.where).toBe('top_target.py');
    // Plausible: one 0.5 s interval of ~100 samples, so loose bounds on the shares...
    expect(three.ownPct).toBeGreaterThan(50);
    expect(three.ownPct).toBeLessThan(95);
    expect(one.ownPct).toBeGreaterThan(8);
    expect(one.ownPct).toBeLessThan(45);
    expect(three.ownPct + one.ownPct).toBeGreaterThan(85);
    // ...and tighter ones on the times, accumulated over every interval.
    const ratio = seconds(three.ownTime) / seconds(one.ownTime);
    expect(ratio).toBeGreaterThan(2);
    expect(ratio).toBeLessThan(4.5);
    const busy = rows.find((r) => r.function === 'busy_loop')!;
    expect(busy.ownPct).toBeLessThan(5);
    expect(busy.totalPct).toBeGreaterThan(85);

    pane.press('4');
    lines = await pane.waitFor('the TotalTime sort', (l) => /^sorted by TotalTime,/.test(l[3] ?? ''));
    rows = parseRows(lines);
    expect(['<module>', 'main', 'busy_loop']).toContain(rows[0]!.function);
    const names = rows.map((r) => r.function);
    expect(names.indexOf('busy_loop')).toBeLessThan(names.indexOf('hot_three'));
    expect(names.indexOf('hot_three')).toBeLessThan(names.indexOf('hot_one'));

    pane.press('1');
    lines = await pane.waitFor('the %Own sort', (l) => /^sorted by %Own,/.test(l[3] ?? ''));
    expect(parseRows(lines)[0]!.function).toBe('hot_three');
    pane.press('1');
    lines = await pane.waitFor('the reversed %Own sort', (l) => /^sorted by %Own \(ascending\),/.test(l[3] ?? ''));
    expect(parseRows(lines).at(-1)!.function).toBe('hot_three');

    pane.press('L');
    lines = await pane.waitFor('rows by line', (l) => /Function \(filename:line\)/.test(l.join('\n')));
    rows = parseRows(lines);
    expect(rows.some((r) => r.function === 'hot_three' && /^top_target\.py:\d+$/.test(r.where))).toBe(true);

    pane.press('?');
    await pane.waitFor('the help page', (l) => l.some((x) => x.startsWith('Keys:')));
    pane.press('?');
    await pane.waitFor('the table again', (l) => parseRows(l).length > 0);

    // Follows a resize: the long command line is shortened to keep the version in view.
    pane.tmux('resize-window', '-t', 'top', '-x', '70', '-y', '15');
    lines = await pane.waitFor('the narrower screen', (l) => /\.\.\.' \(python v3\.11\.\d+\)$/.test(l[0] ?? ''));
    expect(lines[0]).toHaveLength(70);
    expect(parseRows(lines).length).toBeGreaterThan(0);

    pane.press('q');
    const { status, stty } = await pane.ended();
    expect(status).toBe(0);
    expectCooked(stty);
    expect(pane.modes()).toEqual({ alternate: false, cursor: true });
    expect(pane.screen().join('\n')).not.toContain('Collecting samples');
  });

  it('keeps the last view and says the process ended when the target exits', { timeout: TIMEOUT }, async () => {
    const script = path.join(FIXTURES_DIR, FIXTURE);
    const pane = new TopPane([
      '--delay',
      '0.5',
      '--rate',
      '200',
      '--',
      ...HOST.argv,
      script,
      '--quiet',
      '--lifetime',
      '4',
      '--exit-code',
      '3',
    ]);
    panes.push(pane);
    await pane.waitFor('the table', (l) => parseRows(l).length > 0);
    const { status, stty } = await pane.ended();
    // The launched command's exit code comes through.
    expect(status).toBe(3);
    expectCooked(stty);
    expect(pane.modes()).toEqual({ alternate: false, cursor: true });
    const lines = pane.screen();
    const ended = lines.findIndex((l) => /^process \d+ ended$/.test(l));
    expect(ended).toBeGreaterThan(0);
    const view = lines.slice(0, ended);
    expect(view.some((l) => l.startsWith('Collecting samples from'))).toBe(true);
    const names = parseRows(view).map((r) => r.function);
    expect(names.slice(0, 2)).toEqual(['hot_three', 'hot_one']);
  });
});
