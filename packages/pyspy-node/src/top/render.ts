/**
 * Text of the `top` screen: the header, the table, the help page, and the
 * plain tables printed when standard output is not a terminal. Pure
 * functions of the figures, the view and a width; {@link ./screen.ts} puts
 * the lines on a terminal.
 *
 * @module
 * @internal
 */
import type { TopFigures, TopRow, TopSortKey } from './aggregate.js';

/** What the screen shows besides the figures. */
export interface ScreenInfo {
  /** The profiled command line, or `process PID` until it is known. */
  title: string;
  /** The target's Python version, once attached. */
  pythonVersion: string | undefined;
  /** Aggregated by line rather than by function. */
  lines: boolean;
  /** The column sorted by. */
  sort: TopSortKey;
  /** Sorted smallest first. */
  ascending: boolean;
  /** The display is frozen. */
  paused?: boolean;
  /** How far behind schedule sampling is, in milliseconds. */
  latenessMs?: number;
}

/** The table's numeric columns, in order: keys `1`–`4` sort by them. */
export const COLUMNS: readonly { key: TopSortKey; title: string; width: number }[] = [
  { key: 'ownPct', title: '%Own', width: 8 },
  { key: 'totalPct', title: '%Total', width: 8 },
  { key: 'ownTime', title: 'OwnTime', width: 9 },
  { key: 'totalTime', title: 'TotalTime', width: 10 },
];

/** Rows printed per table when standard output is not a terminal. */
export const PLAIN_ROWS = 25;

/** Lines above the table on the terminal: three of figures and a status line. */
export const HEADER_LINES = 4;

const BOLD = '\x1b[1m';
const NOT_BOLD = '\x1b[22m';
const UNDERLINE = '\x1b[4m';
const NOT_UNDERLINE = '\x1b[24m';
const INVERSE = '\x1b[7m';
const NOT_INVERSE = '\x1b[27m';

/**
 * The three lines of figures above the table, like py-spy's. A command line
 * too long for `width` is shortened so that the Python version still shows.
 */
export function figureLines(figures: TopFigures, info: ScreenInfo, width = Number.POSITIVE_INFINITY): string[] {
  const version = info.pythonVersion ? ` (python v${info.pythonVersion})` : '';
  const frame = `Collecting samples from ''${version}`;
  let title = clean(info.title);
  if (frame.length + title.length > width) title = `${fit(title, Math.max(0, width - frame.length - 3))}...`;
  const first = `Collecting samples from '${title}'${version}`;
  const second = [`Total Samples ${figures.samples}`, `Rate: ${figures.rate.toFixed(1)}/s`];
  // As py-spy: an error rate is news only once it is steady and not negligible.
  if (figures.attempts > 100 && figures.errorPct >= 1) second.push(`Error Rate: ${figures.errorPct.toFixed(2)}%`);
  if ((info.latenessMs ?? 0) >= 1000) {
    second.push(`${((info.latenessMs ?? 0) / 1000).toFixed(1)}s behind: try a lower --rate`);
  }
  // GIL wait is part of Active: threads that want to run but wait their turn.
  const gilWait = figures.gilWait === null ? '' : `, GIL wait: ${percent(figures.gilWait)}`;
  // Without a GIL (free-threaded, GIL disabled) no thread holds one: the
  // figure that says Python ran is whether some thread was attached.
  const running = [
    ...(figures.attached === null || figures.gil !== null ? [`GIL: ${percent(figures.gil)}`] : []),
    ...(figures.attached === null ? [] : [`Attached: ${percent(figures.attached)}`]),
  ];
  let third = `${running.join(', ')}, Active: ${percent(figures.active)}${gilWait}, Threads: ${figures.threads}`;
  // As py-spy with --subprocesses: how many processes the stacks came from.
  if (figures.processes > 1) third += `, Processes: ${figures.processes}`;
  return [first, second.join('   '), third];
}

/** The status line under the figures: how the table is sorted and the keys to know. */
export function statusLine(info: ScreenInfo): string {
  const column = COLUMNS.find((c) => c.key === info.sort)?.title ?? info.sort;
  const order = `sorted by ${column}${info.ascending ? ' (ascending)' : ''}, by ${info.lines ? 'line' : 'function'}`;
  return info.paused ? `PAUSED (space resumes) · ${order}` : `${order} · press ? for help, q to quit`;
}

/** The table's title line, without styling. */
export function tableHeader(lines: boolean): string {
  return `${COLUMNS.map((c) => c.title.padStart(c.width)).join('')}  Function (filename${lines ? ':line' : ''})`;
}

/** One row of the table, without styling. */
export function rowText(row: TopRow, lines: boolean): string {
  const cells = [
    `${row.ownPct.toFixed(2)}%`,
    `${row.totalPct.toFixed(2)}%`,
    formatSeconds(row.ownTime),
    formatSeconds(row.totalTime),
  ];
  const numbers = cells.map((text, i) => text.padStart(COLUMNS[i]!.width)).join('');
  // Synthetic frames (`<GC>`, `<GIL wait>`) have no file.
  if (row.file === '') return `${numbers}  ${clean(row.function)}`;
  const where = lines ? `${clean(row.file)}:${row.line}` : clean(row.file);
  return `${numbers}  ${clean(row.function)} (${where})`;
}

/**
 * A whole screen of `height` lines at most, each fitting `width` columns:
 * figures, status, the table's title (in inverse video, the sorted column
 * bold and underlined) and as many rows as fit, or the help page.
 */
export function screenLines(
  figures: TopFigures,
  info: ScreenInfo,
  width: number,
  height: number,
  options: { help?: boolean; styled?: boolean } = {},
): string[] {
  const styled = options.styled ?? true;
  const lines = [...figureLines(figures, info, width), statusLine(info)].map((l) => fit(l, width));
  if (options.help) {
    lines.push(...HELP.map((l) => fit(l, width)));
  } else {
    lines.push(styled ? styledHeader(info, width) : fit(tableHeader(info.lines), width));
    for (const row of figures.rows.slice(0, Math.max(0, height - lines.length))) {
      lines.push(fit(rowText(row, info.lines), width));
    }
  }
  return lines.slice(0, Math.max(0, height));
}

/**
 * What is printed on each refresh when standard output is not a terminal:
 * the figures, the table's title and up to {@link PLAIN_ROWS} rows, then an
 * empty line.
 */
export function plainTable(figures: TopFigures, info: ScreenInfo, rows: number = PLAIN_ROWS): string {
  const lines = [...figureLines(figures, info), tableHeader(info.lines)];
  for (const row of figures.rows.slice(0, rows)) lines.push(rowText(row, info.lines));
  return `${lines.join('\n')}\n\n`;
}

/** The help page, shown in place of the table by `?`. */
export const HELP: readonly string[] = [
  '',
  'Keys:',
  '  1  sort by %Own       % of the latest interval spent in the function itself',
  '  2  sort by %Total     % of the latest interval spent in it or what it called',
  '  3  sort by OwnTime    time spent in the function itself since the start (or R)',
  '  4  sort by TotalTime  time spent in it or what it called since the start (or R)',
  '     (the same key again reverses the order)',
  '  L  aggregate by line / by function',
  '  R  reset the counters',
  '  space  pause / resume the display',
  '  ?  show / hide this help (Esc also hides it)',
  '  q  quit (also Ctrl-C)',
];

/**
 * Seconds as a short duration: `0.42s`, `12.30s`, `5m03s`, `2h07m`.
 */
export function formatSeconds(seconds: number): string {
  if (seconds < 99.995) return `${seconds.toFixed(2)}s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Cuts `text` to `width` terminal columns (wide characters count 2,
 * combining marks 0).
 */
export function fit(text: string, width: number): string {
  let used = 0;
  let out = '';
  for (const ch of text) {
    const w = charWidth(ch.codePointAt(0)!);
    if (used + w > width) break;
    used += w;
    out += ch;
  }
  return out;
}

/**
 * Replaces control characters (which a target's file or function names
 * could carry) so that they cannot drive the terminal.
 */
export function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function styledHeader(info: ScreenInfo, width: number): string {
  const plain = tableHeader(info.lines);
  const numbers = COLUMNS.reduce((sum, c) => sum + c.width, 0);
  if (width < numbers) return `${INVERSE}${fit(plain, width)}${NOT_INVERSE}`;
  const cells = COLUMNS.map((c) => {
    const text = c.title.padStart(c.width);
    if (c.key !== info.sort) return text;
    const pad = text.length - c.title.length;
    return `${text.slice(0, pad)}${BOLD}${UNDERLINE}${c.title}${NOT_UNDERLINE}${NOT_BOLD}`;
  });
  const rest = fit(plain.slice(numbers), width - numbers);
  // The title bar spans the whole width.
  const fill = ' '.repeat(Math.max(0, width - numbers - rest.length));
  return `${INVERSE}${cells.join('')}${rest}${fill}${NOT_INVERSE}`;
}

function percent(value: number | null): string {
  return value === null ? 'n/a' : `${value.toFixed(2)}%`;
}

function charWidth(cp: number): number {
  if (cp >= 0x300 && cp <= 0x36f) return 0; // combining diacritical marks
  if (cp === 0x200b || cp === 0x200c || cp === 0x200d) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}
