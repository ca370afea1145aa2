/**
 * The interactive `top` screen: keeps the view (sort, line/function,
 * paused, help), answers keys and redraws the whole screen on a
 * {@link TopTerminal}.
 *
 * @module
 * @internal
 */
import { COLUMNS, screenLines, type ScreenInfo } from './render.js';
import type { TopAggregator } from './aggregate.js';
import type { FeedItem } from './feed.js';
import type { TopTerminal } from './terminal.js';

/** What a key asks of the program beyond the screen. */
export type KeyAction = 'quit' | undefined;

/** The screen's state and drawing; the caller feeds it intervals and keys. */
export class TopScreen {
  readonly #term: TopTerminal;
  readonly #aggregator: TopAggregator;
  readonly #info: ScreenInfo;
  #help = false;
  /** Intervals that arrived while paused, counted on resume. */
  #queued: FeedItem[] = [];

  /**
   * @param term Where to draw; nothing is drawn while it is not active.
   * @param aggregator The counts to show.
   * @param title The profiled command line.
   */
  constructor(term: TopTerminal, aggregator: TopAggregator, title: string) {
    this.#term = term;
    this.#aggregator = aggregator;
    this.#info = { title, pythonVersion: undefined, lines: false, sort: 'ownTime', ascending: false, paused: false };
  }

  /** The view as it is now (for tests and the final print). */
  get info(): Readonly<ScreenInfo> {
    return this.#info;
  }

  /** Sets what the header says about the target once it is known. */
  setTarget(target: { title?: string; pythonVersion: string }): void {
    if (target.title !== undefined) this.#info.title = target.title;
    this.#info.pythonVersion = target.pythonVersion;
  }

  /** Counts an interval (or keeps it for later while paused) and redraws. */
  add(item: FeedItem): void {
    if (this.#info.paused) {
      this.#queued.push(item);
      return;
    }
    this.#count(item);
    this.draw();
  }

  /**
   * Acts on one key (as {@link TopTerminal.onKey} delivers them): `1`–`4`
   * sort (again: reverse), `L` lines/functions, `R` reset, space pause,
   * `?` help (Esc closes it), Ctrl-L redraw, `q`/Ctrl-C quit.
   *
   * @returns `'quit'` for `q` and Ctrl-C.
   */
  key(key: string): KeyAction {
    const info = this.#info;
    switch (key) {
      case 'q':
      case 'Q':
      case '\x03':
        return 'quit';
      case '1':
      case '2':
      case '3':
      case '4': {
        const sort = COLUMNS[Number(key) - 1]!.key;
        info.ascending = sort === info.sort ? !info.ascending : false;
        info.sort = sort;
        this.#help = false;
        break;
      }
      case 'l':
      case 'L':
        info.lines = !info.lines;
        break;
      case 'r':
      case 'R':
        this.#aggregator.reset();
        this.#queued = [];
        break;
      case ' ':
        info.paused = !info.paused;
        if (!info.paused) {
          for (const item of this.#queued) this.#count(item);
          this.#queued = [];
        }
        break;
      case '?':
        this.#help = !this.#help;
        break;
      case '\x1b':
        if (!this.#help) return undefined;
        this.#help = false;
        break;
      case '\x0c':
        this.#term.write('\x1b[2J');
        break;
      default:
        return undefined;
    }
    this.draw();
    return undefined;
  }

  /** Redraws the whole screen at the terminal's current size. */
  draw(): void {
    if (!this.#term.active) return;
    const { columns, rows } = this.#term;
    const lines = this.#lines(columns, rows, { help: this.#help, styled: true });
    let frame = '';
    lines.forEach((line, i) => {
      // Cleared before it is written: clearing after a full-width line
      // would erase its last character, where the cursor stays.
      frame += `\x1b[${i + 1};1H\x1b[2K${line}\x1b[0m`;
    });
    if (lines.length < rows) frame += `\x1b[${lines.length + 1};1H\x1b[J`;
    this.#term.write(frame);
  }

  /**
   * The current view as plain text, to leave on the normal screen: the
   * figures and as much of the table as fits `height` lines, without the
   * status line.
   */
  plainView(width: number, height: number): string {
    const lines = this.#lines(width, height + 1, { styled: false });
    lines.splice(3, 1); // the status line: keys that no longer work
    return lines.map((l) => `${l.trimEnd()}\n`).join('');
  }

  #lines(width: number, height: number, options: { help?: boolean; styled: boolean }): string[] {
    const figures = this.#aggregator.figures({
      lines: this.#info.lines,
      sort: this.#info.sort,
      ascending: this.#info.ascending,
      limit: Math.max(0, height),
    });
    return screenLines(figures, this.#info, width, height, options);
  }

  #count(item: FeedItem): void {
    this.#aggregator.add(item.batch, item.info);
    this.#info.latenessMs = item.latenessMs;
  }
}
