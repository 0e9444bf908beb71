/**
 * The one place the CLI writes a command's result. A result is a plain value: with --json the printer prints
 * the value itself (or its declared JSON form), otherwise the text view the command declared for it, so the
 * two outputs always come from the same data. Something followed as it changes (a batch with --watch or
 * --wait) is printed by `live`: one JSON object per line, a redrawn frame on a terminal, or plain lines.
 */
import { writeFile } from 'node:fs/promises';
import type { Paint } from './color';
import { paint, useColor } from './color';

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
    write: (text) => process.stdout.write(text),
    writeErr: (text) => process.stderr.write(text),
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

  /** A line of progress on stdout (services starting...). */
  line(text: string): void {
    this.io.out(text);
  }

  /** A remark on stderr. */
  note(text: string): void {
    this.io.err(text);
  }

  async print<T, C>(value: T, view: View<T, C>, call: C, opts: PrintOptions = {}): Promise<void> {
    const toStderr = !this.json && (view.toStderr?.(value) ?? false);
    const text = this.json
      ? JSON.stringify(view.json ? view.json(value) : value, null, opts.oneLine ? undefined : 2)
      : view.text(value, paint(toStderr ? (this.io.errColor ?? false) : this.io.color), call);
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
          const line = JSON.stringify(view.json(value));
          if (line !== lastJson) this.io.out(line);
          lastJson = line;
        } else if (this.io.tty) {
          this.io.out(`\x1b[H\x1b[J${view.frame(value, this.io.color)}`);
        } else {
          for (const line of view.changes(previous, value)) this.io.out(line);
        }
        previous = value;
      },
      end: (final) => {
        if (!this.json && !this.io.tty) this.io.out(view.summary(final));
      },
    };
  }
}
