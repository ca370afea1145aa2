/**
 * The terminal `top` draws on, in plain ANSI: the alternate screen, a
 * hidden cursor, raw keyboard input and resize events, and putting all of
 * that back however the program ends.
 *
 * @module
 * @internal
 */
import type { ReadStream, WriteStream } from 'node:tty';

/** What `top` needs from a terminal; tests pass a fake. */
export interface TopTerminal {
  /** Width in columns. */
  readonly columns: number;
  /** Height in lines. */
  readonly rows: number;
  /** Switches to the alternate screen, hides the cursor and reads keys raw. */
  enter(): void;
  /**
   * Puts the terminal back as it was (raw mode off, cursor shown, normal
   * screen), and stops reading keys. Idempotent.
   */
  leave(): void;
  /** Whether {@link enter} was called and {@link leave} not since. */
  readonly active: boolean;
  /** Writes `text` as it is. */
  write(text: string): void;
  /** Calls `handler` with each key pressed while active; returns the unsubscriber. */
  onKey(handler: (key: string) => void): () => void;
  /** Calls `handler` when the terminal is resized; returns the unsubscriber. */
  onResize(handler: () => void): () => void;
}

/** Alternate screen on, cursor hidden, no auto-wrap, screen cleared. */
const ENTER = '\x1b[?1049h\x1b[?25l\x1b[?7l\x1b[H\x1b[2J';
/** Attributes reset, auto-wrap on, cursor shown, alternate screen off. */
const LEAVE = '\x1b[0m\x1b[?7h\x1b[?25h\x1b[?1049l';

/**
 * The process's own terminal, when both standard input and standard output
 * are terminals; else `undefined`.
 */
export function processTerminal(): TopTerminal | undefined {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return undefined;
  return new TtyTerminal(process.stdin, process.stdout);
}

/** A {@link TopTerminal} on a TTY's input and output streams. */
export class TtyTerminal implements TopTerminal {
  readonly #input: ReadStream;
  readonly #output: WriteStream;
  #active = false;
  readonly #keyHandlers = new Set<(key: string) => void>();
  readonly #onData = (data: Buffer | string) => {
    for (const key of splitKeys(typeof data === 'string' ? data : data.toString('utf8'))) {
      for (const handler of [...this.#keyHandlers]) handler(key);
    }
  };
  /** Last resort: a `process.exit()` somewhere must not leave the terminal raw. */
  readonly #onExit = () => this.leave();

  constructor(input: ReadStream, output: WriteStream) {
    this.#input = input;
    this.#output = output;
  }

  get columns(): number {
    return this.#output.columns || 80;
  }

  get rows(): number {
    return this.#output.rows || 24;
  }

  get active(): boolean {
    return this.#active;
  }

  enter(): void {
    if (this.#active) return;
    this.#active = true;
    process.once('exit', this.#onExit);
    this.#input.setRawMode(true);
    this.#input.on('data', this.#onData);
    this.#input.resume();
    this.write(ENTER);
  }

  leave(): void {
    if (!this.#active) return;
    this.#active = false;
    process.off('exit', this.#onExit);
    this.#input.off('data', this.#onData);
    try {
      this.#input.setRawMode(false);
    } catch {
      // The terminal is gone (hung up): nothing to restore.
    }
    this.#input.pause();
    this.write(LEAVE);
  }

  write(text: string): void {
    // Writes to a terminal are synchronous on POSIX, so this is out even
    // when the process exits right after (the 'exit' handler relies on it).
    if (!this.#output.destroyed) this.#output.write(text);
  }

  onKey(handler: (key: string) => void): () => void {
    this.#keyHandlers.add(handler);
    return () => void this.#keyHandlers.delete(handler);
  }

  onResize(handler: () => void): () => void {
    this.#output.on('resize', handler);
    return () => void this.#output.off('resize', handler);
  }
}

/**
 * Splits raw terminal input into keys: an escape sequence (arrow keys and
 * the like) is one key, `\x1b` alone is Esc, anything else one character.
 */
export function splitKeys(data: string): string[] {
  const keys: string[] = [];
  const re = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1bO.|\x1b.|[\s\S]/gu; // eslint-disable-line no-control-regex
  for (const match of data.matchAll(re)) keys.push(match[0]);
  return keys;
}
