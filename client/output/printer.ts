/**
 * The one place the CLI writes a command's result. A result is a plain value: with --json the printer prints
 * the value itself (or its declared JSON form), otherwise the text view the command declared for it, so the
 * two outputs always come from the same data. Something followed as it changes (a batch with --watch or
 * --wait) is printed by `live`: one JSON object per line, a redrawn frame on a terminal, or plain lines.
 *
 * Results carry text from outside (an inventory, AWS), so nothing reaches the terminal as it came: a text
 * view gets the value with every control character shown as an escape (terminal-text.ts), its output keeps
 * only its own layout (newlines, tabs, colours), and JSON escapes what JSON.stringify leaves raw.
 */
import { writeFile } from 'node:fs/promises';
import type { Paint } from './color';
import { paint, useColor } from './color';
import { jsonText, layoutText, visibleValue } from './terminal-text';

/** Where the CLI writes; injectable so tests run the CLI in-process and read what it printed. */
export interface Io {
  /** A line to stdout / stderr. */
  out(text: string): void;
  err(text: string): void;
  /** Raw text (commander's help and usage errors). */
  write(text: string): void;
  writeErr(text: string): void;
  /** stdout is a terminal (redraws, progress bars). */
  tty: boolean;
  /** Colours on stdout (a terminal, and NO_COLOR unset). */
  color: boolean;
  /** Colours on stderr. @default false */
  errColor?: boolean;
}

export function defaultIo(env: NodeJS.ProcessEnv): Io {
  return {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    // Commander's help and usage errors, which repeat what was typed: the printer does not see them.
    write: (text) => process.stdout.write(layoutText(text)),
    writeErr: (text) => process.stderr.write(layoutText(text)),
    tty: Boolean(process.stdout.isTTY),
    color: useColor(process.stdout, env),
    errColor: useColor(process.stderr, env),
  };
}

/** How one kind of result reads. `C` is what the text may also need from the command line (a file name...). */
export interface View<T, C = unknown> {
  /** The text for people, possibly several lines. */
  text(value: T, p: Paint, call: C): string;
  /** The --json form. @default the value itself */
  json?(value: T): unknown;
  /** Text that reports a refusal goes to stderr (stdout stays for results). @default false */
  toStderr?(value: T): boolean;
  /** Said on stderr once the output went to a file (`--out`). @default "written to FILE" */
  savedNote?(value: T, file: string): string;
}

/** How a value that changes reads while it is followed. */
export interface LiveView<T> {
  /** The --json form: one line each time it changes. */
  json(value: T): unknown;
  /** The whole picture, redrawn on a terminal. */
  frame(value: T, color: boolean): string;
  /** Plain lines for what changed (CI logs, pipes). */
  changes(previous: T | undefined, value: T): string[];
  /** After plain lines: the picture at the end. */
  summary(final: T): string;
}

export interface PrintOptions {
  /** JSON on one line, because one-line JSON objects follow (start --wait --json). */
  oneLine?: boolean;
  /** Write the output to this file instead of stdout. */
  file?: string;
}

export class Printer {
  constructor(
    private readonly io: Io,
    /** --json was given. */
    readonly json: boolean
  ) {}

  /** Colours for stdout. */
  get paint(): Paint {
    return paint(this.io.color);
  }

  /** Colours may stay in text the commands composed (progress lines, remarks): one of the streams has them. */
  private get anyColor(): boolean {
    return this.io.color || (this.io.errColor ?? false);
  }

  /** A line of progress on stdout (services starting...). */
  line(text: string): void {
    this.io.out(layoutText(text, this.anyColor));
  }

  /** A remark on stderr. */
  note(text: string): void {
    this.io.err(layoutText(text, this.anyColor));
  }

  async print<T, C>(value: T, view: View<T, C>, call: C, opts: PrintOptions = {}): Promise<void> {
    const toStderr = !this.json && (view.toStderr?.(value) ?? false);
    const color = toStderr ? (this.io.errColor ?? false) : this.io.color;
    const text = this.json
      ? jsonText(view.json ? view.json(value) : value, opts.oneLine ? undefined : 2)
      : layoutText(view.text(visibleValue(value), paint(color), visibleValue(call)), color);
    if (opts.file !== undefined) {
      await writeFile(opts.file, `${text}\n`);
      this.io.err(view.savedNote?.(value, opts.file) ?? `written to ${opts.file}`);
    } else if (toStderr) this.io.err(text);
    else this.io.out(text);
  }

  /** Follows a changing value: `show` each look at it, `end` with the last. */
  live<T>(view: LiveView<T>): { show: (value: T) => void; end: (final: T) => void } {
    let previous: T | undefined;
    let lastJson = '';
    return {
      show: (value) => {
        if (this.json) {
          const line = jsonText(view.json(value));
          if (line !== lastJson) this.io.out(line);
          lastJson = line;
          return;
        }
        const shown = visibleValue(value);
        if (this.io.tty) {
          // Home and clear: the printer's own sequence, added after the frame was made safe.
          this.io.out(`\x1b[H\x1b[J${layoutText(view.frame(shown, this.io.color), this.io.color)}`);
        } else {
          for (const line of view.changes(previous, shown)) this.io.out(layoutText(line));
        }
        previous = shown;
      },
      end: (final) => {
        if (!this.json && !this.io.tty) this.io.out(layoutText(view.summary(visibleValue(final))));
      },
    };
  }
}
