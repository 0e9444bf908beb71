/**
 * How `status --watch` reads. On a terminal, one frame redrawn in place that fits the window: the batch,
 * its ETA and counts, one line per VM at work (progress bar with bytes and %, phase, time in phase, ETA),
 * the failures with their one-line reason, and a summary line for whatever does not fit. Without a
 * terminal, plain lines: each phase change, each quarter of an upload or conversion, and the batch's ETA.
 * Every value was made visible (terminal-text.ts) before it gets here; colours only when asked.
 */
import { statusJson } from '../batch-view';
import { formatBytes, formatDuration } from '../forecast/rates';
import type { Paint } from './color';
import { countsLine, progressBar } from './status';
import type { WatchRow, WatchState } from './watch-model';

export interface FrameSize {
  columns: number;
  rows: number;
}

const ACTIVE = ['Preflight', 'Uploading', 'WaitingForSlot', 'Importing', 'Converting', 'Validating', 'CleaningUp'];

const eta = (seconds: number | null): string => (seconds === null ? '?' : formatDuration(seconds));

/** Cuts plain text to `width` columns (the frame's lines are built plain, coloured after). */
function fit(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

function bytesText(r: WatchRow): string {
  if (r.bytesTotal === null) return '';
  return r.bytesDone === null ? formatBytes(r.bytesTotal) : `${formatBytes(r.bytesDone)}/${formatBytes(r.bytesTotal)}`;
}

function vmLine(r: WatchRow, nameWidth: number, width: number, p: Paint): string {
  const inPhase = `${r.atLeast ? '≥' : ''}${formatDuration(r.inPhase)}`;
  const bar = r.phase === 'Uploading' || r.phase === 'Converting' ? progressBar(r.percent, 16) : ' '.repeat(21);
  const rest = ` ${r.phase.padEnd(14)} ${bar} ${bytesText(r).padEnd(19)} ${inPhase.padStart(11)}  ETA ${eta(r.eta)}`;
  const line = fit(`${fit(r.name, nameWidth).padEnd(nameWidth)}${rest}`, width);
  return r.phase === 'WaitingForSlot' ? p.dim(line) : line;
}

export function batchHeadline(state: WatchState): string {
  const b = state.batch;
  const left = state.eta === null ? '' : ` · ETA ${eta(state.eta)}`;
  const basis = state.measuredVms > 0 ? `rates measured on ${state.measuredVms} VMs` : 'default rates';
  const pause = b.pauseReason ? ` (${b.pauseReason})` : '';
  return `batch ${b.batch}: ${b.state}${pause}, ${b.total} VMs${left}${left ? ` (${basis})` : ''}`;
}

export function limitsLine(state: WatchState): string | undefined {
  const f = state.batch.fleet;
  if (!f) return undefined;
  const l = f.limits;
  const inForce =
    state.conversionLimit !== null && state.conversionLimit !== l.maxConversions
      ? `${state.conversionLimit} conversions in force (batch asked ${l.maxConversions})`
      : `${state.conversionLimit ?? l.maxConversions} conversions`;
  return `wave ${f.currentWave || '-'}; limits: ${l.maxUploads} uploads, ${inForce}${l.maxInFlight ? `, ${l.maxInFlight} in flight` : ''}`;
}

/** The whole picture for a terminal of `size`, never taller than it (one line stays for the cursor). */
export function renderFrame(state: WatchState, size: FrameSize, p: Paint): string {
  const width = Math.max(20, size.columns);
  const head = [p.bold(fit(batchHeadline(state), width)), fit(countsLine(statusJson(state.batch).counts), width)];
  const limits = limitsLine(state);
  if (limits) head.push(p.dim(fit(limits, width)));
  const budget = Math.max(1, size.rows - 1 - head.length);
  const active = state.rows.filter((r) => ACTIVE.includes(r.phase));
  const failed = state.rows.filter((r) => r.phase === 'Failed');
  const nameWidth = Math.min(24, Math.max(4, ...active.map((r) => r.name.length)));
  const body: string[] = [];
  const shownActive = active.slice(0, Math.max(0, budget - (failed.length ? 2 : 0) - 1));
  for (const r of shownActive) body.push(vmLine(r, nameWidth, width, p));
  const failLines = failed.map((r) =>
    // The reason's first line: a message's newlines arrive shown as \n (terminal-text.ts).
    p.red(fit(`✖ ${r.name} ${r.errorType ?? 'Failed'}: ${(r.error ?? '').split('\\n')[0]}`, width))
  );
  const failRoom = Math.max(0, budget - body.length - 1);
  body.push(...failLines.slice(0, failRoom));
  const hiddenActive = active.length - shownActive.length;
  const hiddenFailed = failLines.length - Math.min(failLines.length, failRoom);
  if (hiddenActive > 0 || hiddenFailed > 0) {
    const parts = [
      hiddenActive ? `${hiddenActive} more at work` : '',
      hiddenFailed ? `${hiddenFailed} more failed` : '',
    ];
    body.push(
      p.dim(fit(`… ${parts.filter(Boolean).join(', ')} (vmconvoy status ${state.batch.batch} lists all)`, width))
    );
  }
  return [...head, ...body.slice(0, budget)].join('\n');
}

/** A VM's quarter (0-4) of its current phase: progress lines are printed when it changes. */
export const quarter = (r: WatchRow): number => Math.floor(Math.min(100, r.percent) / 25);

/** Plain progress lines for VMs whose upload or conversion passed a quarter since `previous`. */
export function progressLines(previous: WatchState | undefined, state: WatchState, time: string): string[] {
  const before = new Map(previous?.rows.map((r) => [r.name, r]) ?? []);
  const out: string[] = [];
  for (const r of state.rows) {
    if (r.phase !== 'Uploading' && r.phase !== 'Converting') continue;
    const old = before.get(r.name);
    if (!old || old.phase !== r.phase || quarter(old) === quarter(r) || r.percent >= 100) continue;
    const bytes = bytesText(r);
    out.push(`${time} ${r.name} ${r.phase} ${r.percent}%${bytes ? ` (${bytes})` : ''}, ETA ${eta(r.eta)}`);
  }
  return out;
}
