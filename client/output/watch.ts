/**
 * `status --watch`: looks at the batch every interval until it ends. On a terminal the picture is redrawn
 * in place by log-update (it rewrites only the lines that changed, hides the cursor while drawing), sized
 * to the window so nothing scrolls away; Ctrl-C stops watching (not the batch) and leaves the terminal
 * clean: the last picture stays, the cursor is shown again. Without a terminal: plain lines; with --json:
 * one `status --json` object per line, on change.
 *
 * Text from outside (names, AWS messages) is made visible before it is rendered (terminal-text.ts), and
 * the frame passes layoutText like everything the printer writes, keeping only its own colours.
 */
import type { BatchView } from '../batch-view';
import { batchEnded, statusJson } from '../batch-view';
import { paint } from './color';
import type { Printer } from './printer';
import { changeLines, countsLine, renderStatus } from './status';
import { jsonText, layoutText, visibleValue } from './terminal-text';
import { batchHeadline, progressLines, renderFrame } from './watch-frame';
import type { WatchState } from './watch-model';
import { WatchTracker } from './watch-model';
import type { LiveBatch } from './watch-source';

/** A terminal to redraw on: stdout when it is one. */
export interface WatchTerminal {
  stream: NodeJS.WriteStream;
  color: boolean;
}

export interface WatchOptions {
  intervalMs: number;
  /** One look at the batch. */
  look: () => Promise<LiveBatch>;
  /** Plain and JSON lines go through the printer. */
  printer: Printer;
  json: boolean;
  /** Redraw here; plain lines when absent. */
  terminal?: WatchTerminal;
  now?: () => number;
}

const INTERRUPTED = Symbol('interrupted');

/** Resolves after `ms`, or at once when `interrupt` fires. */
function pause(ms: number, interrupted: Promise<typeof INTERRUPTED>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([new Promise((r) => (timer = setTimeout(r, ms))), interrupted]).finally(() =>
    clearTimeout(timer)
  );
}

export interface WatchEnd {
  /** The last look (undefined when interrupted before the first). */
  last: BatchView | undefined;
  /** Ctrl-C: the watch stopped, the batch goes on. */
  interrupted: boolean;
}

/** Follows the batch until it ends, or until Ctrl-C. */
export async function watchBatch(opts: WatchOptions): Promise<WatchEnd> {
  const now = opts.now ?? Date.now;
  const tracker = new WatchTracker();
  let onSigint: (() => void) | undefined;
  const interrupted = new Promise<typeof INTERRUPTED>((resolve) => {
    onSigint = () => resolve(INTERRUPTED);
    process.on('SIGINT', onSigint);
  });
  const draw = opts.terminal && !opts.json ? await terminalDrawer(opts.terminal) : undefined;
  let previous: WatchState | undefined;
  let lastJson = '';
  try {
    for (;;) {
      const looked = await Promise.race([opts.look(), interrupted]);
      if (looked === INTERRUPTED) break;
      const live = visibleValue({ ...looked, bytesTotal: undefined, bytesSent: undefined });
      const state = tracker.observe({ ...live, bytesTotal: looked.bytesTotal, bytesSent: looked.bytesSent }, now());
      if (opts.json) {
        const line = jsonText(statusJson(looked.view));
        if (line !== lastJson) opts.printer.line(line);
        lastJson = line;
      } else if (draw) draw.frame(state);
      else for (const line of plainLines(previous, state, new Date(now()))) opts.printer.line(line);
      previous = state;
      if (batchEnded(state.batch)) {
        if (!opts.json && !draw) opts.printer.line(renderStatus(state.batch));
        return { last: looked.view, interrupted: false };
      }
      if ((await pause(opts.intervalMs, interrupted)) === INTERRUPTED) break;
    }
    return { last: previous?.batch, interrupted: true };
  } finally {
    draw?.done();
    if (onSigint) process.off('SIGINT', onSigint);
  }
}

/** Plain lines: phase changes (as `start --wait` prints them), quarters of progress, the batch's ETA. */
function plainLines(previous: WatchState | undefined, state: WatchState, at: Date): string[] {
  const time = at.toISOString().slice(11, 19);
  const lines = [...changeLines(previous?.batch, state.batch, at), ...progressLines(previous, state, time)];
  const counts = countsLine(statusJson(state.batch).counts);
  const changed = !previous || counts !== countsLine(statusJson(previous.batch).counts);
  if (changed && state.eta !== null && !batchEnded(state.batch)) lines.push(`${time} ${batchHeadline(state)}`);
  return lines;
}

interface Drawer {
  frame(state: WatchState): void;
  done(): void;
}

async function terminalDrawer(terminal: WatchTerminal): Promise<Drawer> {
  // Loaded only for a terminal: plain and JSON output need no terminal library.
  const { createLogUpdate } = await import('log-update');
  const render = createLogUpdate(terminal.stream);
  const p = paint(terminal.color);
  return {
    frame: (state) => {
      const size = { columns: terminal.stream.columns || 80, rows: terminal.stream.rows || 24 };
      render(layoutText(renderFrame(state, size, p), terminal.color));
    },
    // Keeps the last picture and shows the cursor again.
    done: () => render.done(),
  };
}
