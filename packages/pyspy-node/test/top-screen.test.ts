// The `top` screen: its text (src/top/render.ts), keys and redraws
// (src/top/screen.ts) on a fake terminal, and raw input splitting
// (src/top/terminal.ts).
import { describe, expect, it } from 'vitest';

import { TopAggregator, type TopFigures } from '../src/top/aggregate.js';
import type { FeedItem } from '../src/top/feed.js';
import {
  clean,
  figureLines,
  fit,
  formatSeconds,
  plainTable,
  screenLines,
  statusLine,
  type ScreenInfo,
} from '../src/top/render.js';
import { TopScreen } from '../src/top/screen.js';
import { splitKeys, type TopTerminal } from '../src/top/terminal.js';

const INFO: ScreenInfo = { title: 'python3 app.py', pythonVersion: '3.12.1', lines: false, sort: 'ownTime', ascending: false };

function figures(extra: Partial<TopFigures> = {}): TopFigures {
  return {
    samples: 400,
    errors: 0,
    attempts: 400,
    elapsedMs: 4000,
    intervalSamples: 100,
    rate: 99.5,
    processes: 1,
    errorPct: 0,
    gil: null,
    attached: null,
    active: 100,
    gilWait: null,
    threads: 1,
    rows: [
      { function: 'spin', file: 'app.py', line: 8, ownPct: 75, totalPct: 75, ownTime: 3, totalTime: 3 },
      { function: 'main', file: 'app.py', line: 28, ownPct: 0, totalPct: 100, ownTime: 0, totalTime: 4 },
    ],
    ...extra,
  };
}

/** Strips ANSI escapes. */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

class FakeTerminal implements TopTerminal {
  columns = 100;
  rows = 12;
  active = false;
  frames: string[] = [];
  enter(): void {
    this.active = true;
  }
  leave(): void {
    this.active = false;
  }
  write(text: string): void {
    this.frames.push(text);
  }
  onKey(): () => void {
    return () => undefined;
  }
  onResize(): () => void {
    return () => undefined;
  }
  /** The last full frame, as lines of plain text (without the clearing below them). */
  screen(): string[] {
    const frame = (this.frames.at(-1) ?? '').replace(/\x1b\[\d+;1H\x1b\[J$/, ''); // eslint-disable-line no-control-regex
    return frame
      .split(/\x1b\[\d+;1H\x1b\[2K/) // eslint-disable-line no-control-regex
      .slice(1)
      .map((l) => plain(l));
  }
}

function item(counts: Record<string, number>, attempts: number): FeedItem {
  const stacks = Object.entries(counts).map(([name, count], i) => ({
    pid: 7,
    threadId: 1,
    osThreadId: 7,
    threadName: 'MainThread',
    interpreterId: 0,
    frames: [
      { name: '<module>', filename: '/a/app.py', shortFilename: 'app.py', line: 40, firstLine: 1 },
      { name, filename: '/a/app.py', shortFilename: 'app.py', line: 10 + i, firstLine: 10 + i },
    ],
    count,
  }));
  return {
    batch: { samples: stacks.reduce((n, s) => n + s.count, 0), errors: 0, stacks },
    info: { attempts, elapsedMs: attempts * 10, gil: null, active: attempts, threads: 1 },
    latenessMs: 0,
  };
}

describe('top text', () => {
  it('prints the figures like py-spy, with n/a for what was not measured', () => {
    expect(figureLines(figures(), INFO)).toEqual([
      "Collecting samples from 'python3 app.py' (python v3.12.1)",
      'Total Samples 400   Rate: 99.5/s',
      'GIL: n/a, Active: 100.00%, Threads: 1',
    ]);
  });

  it('prints synthetic frames (<GC>) without an empty file', () => {
    const text = plainTable(figures({ rows: [{ function: '<GC>', file: '', line: 0, ownPct: 5, totalPct: 5, ownTime: 0.2, totalTime: 0.2 }] }), INFO);
    expect(text).toMatch(/ {2}<GC>\n/);
    expect(text).not.toContain('<GC> (');
  });

  it('shows the share waiting for the GIL when it was measured', () => {
    expect(figureLines(figures({ gil: 100, active: 400, gilWait: 300 }), INFO)[2]).toBe(
      'GIL: 100.00%, Active: 400.00%, GIL wait: 300.00%, Threads: 1',
    );
  });

  it('shows the attached share instead of the GIL on a target without a GIL', () => {
    const third = figureLines(figures({ gil: null, attached: 97.5, active: 400, gilWait: null, threads: 5 }), INFO)[2];
    expect(third).toBe('Attached: 97.50%, Active: 400.00%, Threads: 5');
    expect(third).not.toMatch(/GIL/);
    // Subprocesses with and without a GIL: both figures.
    expect(figureLines(figures({ gil: 20, attached: 50, gilWait: 0 }), INFO)[2]).toBe(
      'GIL: 20.00%, Attached: 50.00%, Active: 100.00%, GIL wait: 0.00%, Threads: 1',
    );
    const table = plainTable(figures({ attached: 100 }), INFO);
    expect(table).toContain('Attached: 100.00%');
    expect(table).not.toContain('GIL');
  });

  it('adds the error rate once it matters, and lateness', () => {
    const [, few] = figureLines(figures({ attempts: 50, errorPct: 10 }), INFO);
    expect(few).not.toContain('Error');
    const [, many] = figureLines(figures({ errorPct: 2.5 }), { ...INFO, latenessMs: 2500 });
    expect(many).toBe('Total Samples 400   Rate: 99.5/s   Error Rate: 2.50%   2.5s behind: try a lower --rate');
  });

  it('shortens a long command line so that the version still shows', () => {
    const [first] = figureLines(figures(), { ...INFO, title: `python3 ${'x'.repeat(200)}.py` }, 80);
    expect(first).toHaveLength(80);
    expect(first).toMatch(/^Collecting samples from 'python3 x+\.\.\.' \(python v3\.12\.1\)$/);
  });

  it('prints a plain table that reads back', () => {
    const text = plainTable(figures(), INFO);
    expect(text.endsWith('\n\n')).toBe(true);
    const lines = text.trimEnd().split('\n');
    expect(lines[3]).toBe('    %Own  %Total  OwnTime TotalTime  Function (filename)');
    expect(lines.slice(4)).toEqual([
      '  75.00%  75.00%    3.00s     3.00s  spin (app.py)',
      '   0.00% 100.00%    0.00s     4.00s  main (app.py)',
    ]);
    const byLine = plainTable(figures(), { ...INFO, lines: true });
    expect(byLine).toContain('Function (filename:line)');
    expect(byLine).toContain('spin (app.py:8)');
  });

  it('fits the screen: status line, a styled title bar, as many rows as fit', () => {
    const lines = screenLines(figures(), INFO, 60, 6);
    expect(lines).toHaveLength(6);
    expect(lines[3]).toBe('sorted by OwnTime, by function · press ? for help, q to quit');
    expect(lines[4]).toContain('\x1b[7m');
    expect(plain(lines[4]!)).toHaveLength(60);
    expect(lines[5]).toContain('spin (app.py)');
    const help = screenLines(figures(), INFO, 100, 30, { help: true });
    expect(help.join('\n')).toContain('L  aggregate by line / by function');
  });

  it('says when the display is paused', () => {
    expect(statusLine({ ...INFO, paused: true, sort: 'totalPct', ascending: true })).toBe(
      'PAUSED (space resumes) · sorted by %Total (ascending), by function',
    );
  });

  it('formats durations short', () => {
    expect([0, 0.424, 12.3, 99.99, 100, 303, 3599.4, 7620].map(formatSeconds)).toEqual([
      '0.00s',
      '0.42s',
      '12.30s',
      '99.99s',
      '1m40s',
      '5m03s',
      '59m59s',
      '2h07m',
    ]);
  });

  it('cuts text by terminal columns and neutralises control characters', () => {
    expect(fit('abcdef', 4)).toBe('abcd');
    expect(fit('日本語', 5)).toBe('日本');
    expect(fit('e\u0301te', 3)).toBe('e\u0301te');
    expect(clean('evil\x1b[2Jname\n')).toBe('evil?[2Jname?');
  });
});

describe('TopScreen', () => {
  function setup() {
    const term = new FakeTerminal();
    const screen = new TopScreen(term, new TopAggregator(), 'python3 app.py');
    screen.setTarget({ pythonVersion: '3.12.1' });
    term.enter();
    screen.add(item({ spin: 30, wait: 10 }, 40));
    return { term, screen };
  }
  const names = (term: FakeTerminal) => term.screen().slice(5).map((l) => /\s(\S+) \(/.exec(l)?.[1]);

  it('draws only while the terminal is active', () => {
    const term = new FakeTerminal();
    const screen = new TopScreen(term, new TopAggregator(), 'x');
    screen.add(item({ spin: 1 }, 1));
    expect(term.frames).toEqual([]);
  });

  it('draws the header and rows, sorted by own time', () => {
    const { term } = setup();
    const lines = term.screen();
    expect(lines[0]).toBe("Collecting samples from 'python3 app.py' (python v3.12.1)");
    expect(lines[1]).toBe('Total Samples 40   Rate: 100.0/s');
    expect(names(term)).toEqual(['spin', 'wait', '<module>']);
    expect(lines[5]).toBe('  75.00%  75.00%    0.30s     0.30s  spin (app.py)');
  });

  it('sorts by the column of keys 1-4, and reverses on the same key again', () => {
    const { term, screen } = setup();
    expect(screen.key('4')).toBeUndefined();
    expect(names(term)[0]).toBe('<module>');
    expect(term.screen()[3]).toContain('sorted by TotalTime');
    screen.key('4');
    expect(screen.info).toMatchObject({ sort: 'totalTime', ascending: true });
    expect(names(term)).toEqual(['wait', 'spin', '<module>']);
    screen.key('1');
    expect(screen.info).toMatchObject({ sort: 'ownPct', ascending: false });
    expect(names(term)[0]).toBe('spin');
  });

  it('toggles line aggregation, help and pause, and resets', () => {
    const { term, screen } = setup();
    screen.key('L');
    expect(term.screen()[4]).toContain('Function (filename:line)');
    expect(term.screen()[5]).toContain('spin (app.py:10)');
    screen.key('?');
    expect(term.screen().join('\n')).toContain('Keys:');
    screen.key('\x1b');
    expect(term.screen().join('\n')).not.toContain('Keys:');

    screen.key(' ');
    expect(term.screen()[3]).toMatch(/^PAUSED/);
    const frames = term.frames.length;
    screen.add(item({ wait: 40 }, 40));
    expect(term.frames).toHaveLength(frames); // frozen
    screen.key(' ');
    expect(term.screen()[1]).toContain('Total Samples 80');

    screen.key('r');
    expect(term.screen()[1]).toContain('Total Samples 0');
    expect(names(term)).toEqual([]);
  });

  it('asks to quit on q and Ctrl-C, and ignores other keys', () => {
    const { term, screen } = setup();
    const frames = term.frames.length;
    expect(screen.key('x')).toBeUndefined();
    expect(screen.key('\x1b[A')).toBeUndefined();
    expect(term.frames).toHaveLength(frames);
    expect(screen.key('q')).toBe('quit');
    expect(screen.key('\x03')).toBe('quit');
  });

  it('follows the terminal size', () => {
    const { term, screen } = setup();
    term.columns = 40;
    term.rows = 6;
    screen.draw();
    const lines = term.screen();
    expect(lines).toHaveLength(6);
    expect(lines.every((l) => l.length <= 40)).toBe(true);
  });

  it('leaves a plain view without the status line', () => {
    const { screen } = setup();
    const view = screen.plainView(100, 10).split('\n');
    expect(view[0]).toMatch(/^Collecting samples from/);
    expect(view[3]).toBe('    %Own  %Total  OwnTime TotalTime  Function (filename)');
    expect(view[4]).toContain('spin (app.py)');
    expect(view.join('\n')).not.toContain('\x1b');
  });
});

describe('splitKeys', () => {
  it('splits raw input into keys and escape sequences', () => {
    expect(splitKeys('1q')).toEqual(['1', 'q']);
    expect(splitKeys('\x1b[A\x1b')).toEqual(['\x1b[A', '\x1b']);
    expect(splitKeys('\x03')).toEqual(['\x03']);
  });
});

describe('figures with subprocesses', () => {
  it('counts processes when there are several', () => {
    expect(figureLines(figures({ processes: 3 }), INFO)[2]).toMatch(/, Processes: 3$/);
    expect(figureLines(figures(), INFO)[2]).not.toMatch(/Processes/);
  });
});
